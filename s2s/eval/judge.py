"""How far to trust a judge: its own error rates on clean TTS, where the words are known.

`accuracy_spoken` and the reply WER of `s2s evaluate` are only as good as the
listener that measures them. `judge_figures` runs a judge (the CTC judge, or
pocketsphinx) over a manifest's clean recordings (the corpus's question and
reply audio, whose texts are known) and reports its WER and CER per kind of
recording, and how often it reads the right answer out of a spoken reply.
`s2s judge --manifest M` prints them; the judge's model card quotes them.
"""
from __future__ import annotations

from pathlib import Path

from s2s import audio as audio_io
from s2s.data.manifest import read_manifest
from s2s.eval.metrics import AnswerAccuracy, ReplyErrorRates
from s2s.eval.reasoning import hear, spoken_answer

# (audio field, text field) pairs of a spoken reasoning manifest that a judge can be checked on.
PAIRS = (("question_audio", "question"), ("reply_audio", "reply"))


def judge_figures(judge, manifest: str | Path, limit: int | None = None) -> dict:
    """{"question_audio": {"n", "wer", "cer"}, "reply_audio": {"n", "wer", "cer", "accuracy_answer"}} for
    `judge` (anything with `transcribe(wav [B, T] at 16 kHz)`) over the first `limit` rows of `manifest`."""
    manifest = Path(manifest)
    rows = read_manifest(manifest)[:limit]
    figures = {}
    for audio_field, text_field in PAIRS:
        usable = [r for r in rows if r.get(audio_field) and r.get(text_field)]
        if not usable:
            continue
        rates, accuracy, heard = ReplyErrorRates(), AnswerAccuracy(), []
        for row in usable:
            wav, rate = audio_io.load(manifest.parent / row[audio_field])
            heard.append(hear(judge, wav, rate))
        rates.update(heard, [r[text_field] for r in usable])
        errors = rates.compute()
        figures[audio_field] = {"n": len(usable), "wer": float(errors["wer"]), "cer": float(errors["cer"])}
        if audio_field == "reply_audio" and all(r.get("answer") for r in usable):
            accuracy.update([spoken_answer(h, r["answer"]) for h, r in zip(heard, usable)],
                            [r["answer"] for r in usable])
            figures[audio_field]["accuracy_answer"] = float(accuracy.compute())
    if not figures:
        raise ValueError(f"{manifest} has no rows with any of {', '.join(a for a, _ in PAIRS)} and its text")
    return figures


def format_figures(name: str, figures: dict) -> str:
    lines = [f"{name}:"]
    for field, f in figures.items():
        answer = f", answers right {f['accuracy_answer']:.1%}" if "accuracy_answer" in f else ""
        lines.append(f"  {field:15s} n={f['n']:<5d} WER {f['wer']:.2%}, CER {f['cer']:.2%}{answer}")
    return "\n".join(lines)
