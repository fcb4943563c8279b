"""Does the voice converter clone voices it never heard? Conversion into held-out voices, judged by a speaker model.

The held-out split's question recordings are in voices no training corpus uses (`s2s/data/voices.py`). For
each held-out voice with at least two recordings: the first is the reference, the second the *check* (another
sentence by that voice); the source is a recording of another held-out voice. A speaker model (default
`s2s-speaker-many`, trained on the 602 training voices, so these voices are new to it too) embeds them:

  similarity   cosine of the converted speech to the check, beside the source's cosine to the check (no
               conversion: the floor) and the reference's (the same voice, another sentence: the ceiling)
  identified   the fraction of conversions whose embedding is nearest to their own voice's check among all
               the held-out voices' checks (chance: one over their number); the same for the references
               themselves says how well the speaker model tells these voices apart at all

Prints one JSON object.

    python benchmarks/voice_cloning.py --manifest data/synth/test/manifest.jsonl \
        --manifest data/synth/styled-test/manifest.jsonl [--converter DIR] [--speaker DIR] [--limit 40]
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch

from s2s import audio
from s2s.data.manifest import read_manifest
from s2s.style.converter import load_converter
from s2s.style.evaluate import load_speaker

DEFAULT_SPEAKER = Path(__file__).resolve().parents[1] / "s2s" / "assets" / "models" / "s2s-speaker-many"


def held_out_voices(manifests: list[str]) -> dict[str, list[Path]]:
    """question_voice -> its question recordings, over the manifests (held-out split rows only)."""
    recordings = defaultdict(list)
    for manifest in manifests:
        for row in read_manifest(manifest):
            if row.get("split") == "test" and row.get("question_audio"):
                recordings[row["question_voice"]].append(Path(manifest).parent / row["question_audio"])
    return {voice: paths for voice, paths in sorted(recordings.items()) if len(paths) >= 2}


def measure(converter, speaker, manifests: list[str], limit: int | None = None) -> dict:
    voices = held_out_voices(manifests)
    names = list(voices)[:limit]
    if len(names) < 2:
        raise SystemExit("need at least two held-out voices with two recordings each; render a test split with "
                         "s2s data synth --split test")

    def embed(wav: torch.Tensor, rate: int) -> torch.Tensor:
        return speaker.embed(wav, rate)[0]

    checks = torch.stack([embed(*audio.load(voices[name][1])) for name in names])  # [V, D], unit length
    converted_sim, source_sim, reference_sim, identified, reference_identified = [], [], [], 0, 0
    with torch.no_grad():
        for i, name in enumerate(names):
            reference, reference_rate = audio.load(voices[name][0])
            source, source_rate = audio.load(voices[names[(i + 1) % len(names)]][0])  # another held-out voice
            out = embed(converter.convert(source, source_rate, reference, reference_rate), converter.sample_rate)
            scores = checks @ out
            converted_sim.append(float(scores[i]))
            identified += int(scores.argmax()) == i
            source_sim.append(float(checks[i] @ embed(source, source_rate)))
            reference_scores = checks @ embed(reference, reference_rate)
            reference_sim.append(float(reference_scores[i]))
            reference_identified += int(reference_scores.argmax()) == i

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 4)

    return {"voices": len(names), "similarity": {"converted": mean(converted_sim), "source (floor)": mean(source_sim),
                                                 "reference (ceiling)": mean(reference_sim)},
            "identified": {"converted": round(identified / len(names), 4),
                           "reference (ceiling)": round(reference_identified / len(names), 4)},
            "chance": round(1 / len(names), 4)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", action="append", required=True, help="a manifest with held-out questions "
                        "(repeat to pool several)")
    parser.add_argument("--converter", default="default", help="a VoiceConverter folder (default: the shipped one)")
    parser.add_argument("--speaker", default=str(DEFAULT_SPEAKER), help="a SpeakerClassifier folder")
    parser.add_argument("--limit", type=int, default=None, help="only the first N held-out voices")
    args = parser.parse_args(argv)
    result = measure(load_converter(args.converter), load_speaker(args.speaker), args.manifest, args.limit)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
