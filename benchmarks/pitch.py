"""How far to trust the pitch measure: does it find the direction of espeak-ng's own low / high renderings?

A styled manifest (`s2s data synth --reply-styles`) has each reply in the same voice and rate at three pitches
(`reply_audio_low/normal/high`). For each row, median F0 of the low and high takes against the normal one:
the fraction moved the right way (a style metric can be no surer than this), on the recordings and after an
s2s-tiny round trip (what a converted or generated reply goes through). Ours (`s2s.style.measure.median_f0`,
subharmonic summation) beside torchaudio's `detect_pitch_frequency` (normalised cross-correlation, median
over frames). Prints one JSON object.

    python benchmarks/pitch.py --manifest data/synth/styled-test/manifest.jsonl --limit 48
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torchaudio

from s2s import audio
from s2s.codecs import load_codec
from s2s.data.manifest import read_manifest
from s2s.style.measure import median_f0

PITCHES = ("low", "normal", "high")


def torchaudio_f0(wav: torch.Tensor, sample_rate: int) -> float | None:
    f0 = torchaudio.functional.detect_pitch_frequency(wav.reshape(-1), sample_rate)
    return float(f0.median()) if f0.numel() else None


def moved(f0: dict) -> int:
    """How many of (low < normal, high > normal) hold; a missing measure counts as not moved."""
    if f0["normal"] is None:
        return 0
    return int(f0["low"] is not None and f0["low"] < f0["normal"]) + int(f0["high"] is not None and
                                                                          f0["high"] > f0["normal"])


def measure(manifest: str | Path, limit: int | None = None, codec_name: str = "s2s-tiny") -> dict:
    manifest = Path(manifest)
    rows = [row for row in read_manifest(manifest) if all(row.get(f"reply_audio_{p}") for p in PITCHES)][:limit]
    if not rows:
        raise SystemExit(f"{manifest} has no rows with reply_audio_low/normal/high; render it with "
                         "s2s data synth --reply-styles")
    codec = load_codec(codec_name)
    trackers = {"ours (SHS)": median_f0, "torchaudio detect_pitch_frequency": torchaudio_f0}
    right = {(name, kind): 0 for name in trackers for kind in ("recording", "codec round trip")}
    with torch.no_grad():
        for row in rows:
            takes = {}
            for pitch in PITCHES:
                wav, rate = audio.load(manifest.parent / row[f"reply_audio_{pitch}"])
                wav = audio.prepare(audio.as_batch(wav), rate, codec.sample_rate)[0]
                takes[pitch] = {"recording": wav, "codec round trip": codec.decode(codec.encode(wav[None],
                                                                                              codec.sample_rate))[0]}
            for (name, kind) in right:
                right[name, kind] += moved({p: trackers[name](takes[p][kind], codec.sample_rate) for p in PITCHES})
    pairs = 2 * len(rows)
    return {"rows": len(rows), "pairs": pairs,
            "direction_right": {name: {kind: right[name, kind] / pairs for kind in ("recording", "codec round trip")}
                                for name in trackers}}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default="data/synth/styled-test/manifest.jsonl")
    parser.add_argument("--limit", type=int, default=48)
    parser.add_argument("--codec", default="s2s-tiny")
    args = parser.parse_args(argv)
    result = measure(args.manifest, args.limit, args.codec)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
