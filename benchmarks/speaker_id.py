"""How far to trust the speaker-ID model: its accuracy on recordings whose voice is known.

For every recording of a styled manifest (`s2s data synth --reply-styles`): each reply (labelled with its
style words) and each voice prompt, `speaker.classify` against the row's `reply_voice`. Prints one JSON object:
accuracy and count per kind, and per style for the replies. The figures of the speaker model's card.

    python benchmarks/speaker_id.py                                   # the shipped s2s-speaker-tiny
    python benchmarks/speaker_id.py --speaker DIR --manifest M
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from s2s import audio
from s2s.data.manifest import read_manifest
from s2s.style.evaluate import load_speaker


def measure(speaker, manifest: str | Path) -> dict:
    manifest = Path(manifest)
    rows = read_manifest(manifest)
    result = {}
    for field in ("reply_audio", "voice_audio"):
        right, total = Counter(), Counter()
        for row in rows:
            if not row.get(field):
                continue
            wav, rate = audio.load(manifest.parent / row[field])
            group = (row.get("reply_style") or "normal") if field == "reply_audio" else "prompt"
            right[group] += speaker.classify(wav, rate)[0] == row["reply_voice"]
            total[group] += 1
        if total:
            result[field] = {"accuracy": sum(right.values()) / sum(total.values()), "n": sum(total.values()),
                             "by_style": {group: right[group] / total[group] for group in total}}
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speaker", default="default", help="a speaker model folder (default: s2s-speaker-tiny)")
    parser.add_argument("--manifest", default="data/synth/styled-test/manifest.jsonl")
    args = parser.parse_args(argv)
    result = measure(load_speaker(args.speaker), args.manifest)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
