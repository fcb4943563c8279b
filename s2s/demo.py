"""The README's main job: answer the bundled spoken question with the shipped default model, offline.

It prints the question (as the corpus wrote it), what the model heard, its
thought, its reply and the timings, and writes the spoken reply. If no default model is
installed (a trimmed checkout), it falls back to a codec round trip of the
same question, so the command still shows the first stage of the pipeline.
"""
from __future__ import annotations

import json
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"
EXAMPLE_QUESTION = ASSETS / "example_question.wav"
EXAMPLE_INFO = ASSETS / "example_question.json"  # what the question says, its answer and the voice speaking it


def free_path(path: Path) -> Path:
    """`path`, or `stem-1.wav`, `stem-2.wav`, ... : the demo never overwrites an earlier output."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def run_codec_demo(out: str = "outputs/demo", codec_name: str = "s2s-tiny") -> dict:
    from s2s.eval.codec import roundtrip_file

    target = free_path(Path(out) / "example_question.reconstructed.wav")
    figures = roundtrip_file(EXAMPLE_QUESTION, target, codec_name=codec_name)
    print(f"input : {EXAMPLE_QUESTION}  ({figures['seconds_audio']} s)")
    print(f"output: {target}")
    print(f"codec : {figures['codec']}, {figures['num_codebooks']} codebooks x {figures['frames']} frames "
          f"= {figures['bitrate_bps'] / 1000:g} kbit/s")
    print(f"speed : encode {figures['encode_ms']} ms, decode {figures['decode_ms']} ms, RTF {figures['rtf']}")
    print("quality: " + json.dumps({k: figures[k] for k in ("stoi", "si_sdr", "pesq_wb", "logmel_dist")}))
    return figures


def run_demo(out: str = "outputs/demo", codec_name: str = "s2s-tiny", ckpt: str | None = None) -> dict:
    from s2s.pipeline import DEFAULT_MODEL, S2SPipeline

    if ckpt is None and not Path(DEFAULT_MODEL).is_dir():
        print(f"no default reasoning model at {DEFAULT_MODEL}: showing the codec stage instead")
        return run_codec_demo(out, codec_name)
    info = json.loads(EXAMPLE_INFO.read_text())
    pipeline = S2SPipeline.from_pretrained(ckpt)
    target = free_path(Path(out) / "example_reply.wav")
    reply = pipeline(EXAMPLE_QUESTION, out=target)
    print(f"question: {EXAMPLE_QUESTION.name} ({info['voice']}, a voice no model here trained on)")
    print(f"          \"{info['question']}\"  (expected answer: {info['answer']})")
    if reply.question_heard is not None:
        print(f"heard   : {reply.question_heard}")
    print("thought :")
    for line in reply.thought.splitlines():
        print(f"          {line}")
    print(f"reply   : {reply.reply_text}")
    print(f"answer  : {reply.answer} ({'right' if reply.answer == info['answer'] else 'wrong'})")
    print(f"audio   : {reply.audio}")
    timings = reply.timings
    ttfa = "-" if timings["ttfa_ms"] is None else f"{timings['ttfa_ms']:.0f} ms"
    hear = "" if timings["hear_ms"] is None else f" (hearing {timings['hear_ms']:.0f} ms)"
    print(f"timings : first audio {ttfa} after the question{hear}, total {timings['total_ms']:.0f} ms, "
          f"RTF {timings['rtf']}")
    return reply.to_json()
