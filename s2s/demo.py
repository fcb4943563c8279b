"""The README's main job. Until the reasoning model ships, it is a codec round trip of the
bundled spoken question: it writes the reconstruction and prints its quality figures."""
from __future__ import annotations

import json
from pathlib import Path

from s2s.codecs.roundtrip import roundtrip_file

EXAMPLE_QUESTION = Path(__file__).resolve().parent / "assets" / "example_question.wav"


def free_path(path: Path) -> Path:
    """`path`, or `stem-1.wav`, `stem-2.wav`, ... : the demo never overwrites an earlier output."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def run_demo(out: str = "outputs/demo", codec_name: str = "s2s-tiny") -> dict:
    target = free_path(Path(out) / "example_question.reconstructed.wav")
    figures = roundtrip_file(EXAMPLE_QUESTION, target, codec_name=codec_name)
    print(f"input : {EXAMPLE_QUESTION}  ({figures['seconds_audio']} s)")
    print(f"output: {target}")
    print(f"codec : {figures['codec']}, {figures['num_codebooks']} codebooks x {figures['frames']} frames "
          f"= {figures['bitrate_bps'] / 1000:g} kbit/s")
    print(f"speed : encode {figures['encode_ms']} ms, decode {figures['decode_ms']} ms, RTF {figures['rtf']}")
    print("quality: " + json.dumps({k: figures[k] for k in ("stoi", "si_sdr", "pesq_wb", "logmel_dist")}))
    return figures
