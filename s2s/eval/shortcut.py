"""Does the model listen? The question audio replaced three ways, and what the answers then say.

A model that reasons from the audio falls to the chance level on `silence`
and `noise` (its answers can then only come from the family's usual
answers), and on `swap` (the next row's question, cyclically) it answers
the other question: `follows_audio`, the fraction of answers equal to the
other question's answer, is then high while accuracy is near chance. A model
that keeps its accuracy without the audio has learnt a shortcut.
"""
from __future__ import annotations

import statistics

import torch

from s2s.data.problems import chance_level
from s2s.eval.metrics import AnswerAccuracy

MODES = ("silence", "noise", "swap")


def replaced_question(mode: str, wav: torch.Tensor, other: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The question waveform `wav` [..., T] as `mode` replaces it.

    silence: zeros of the same shape; noise: white Gaussian noise of the same
    shape at the RMS of `wav`; swap: `other`, another question's waveform
    (its own length, unchanged).
    """
    if mode == "silence":
        return torch.zeros_like(wav)
    if mode == "noise":
        rms = wav.float().pow(2).mean().sqrt()
        noise = torch.randn(wav.shape, generator=generator, dtype=torch.float32)
        return (noise * rms / noise.pow(2).mean().sqrt().clamp(min=1e-12)).to(wav.dtype)
    if mode == "swap":
        if other is None:
            raise ValueError("the swap mode needs another question's waveform (other=)")
        return other
    raise ValueError(f"unknown shortcut mode {mode!r}; use one of {', '.join(MODES)}")


def mean_chance(families: list[str]) -> float | None:
    """The chance level of `chance_level(family)` averaged over the rows' families (unknown families skipped)."""
    levels = []
    for family in families:
        try:
            levels.append(chance_level(family))
        except ValueError:
            pass
    return statistics.mean(levels) if levels else None


def summarise(mode: str, run: dict) -> dict:
    """Accuracy of one shortcut run (evaluate_manifest's result) beside chance; for `swap` also `follows_audio`,
    the fraction of thought answers equal to the other question's answer (the example's `other_answer`)."""
    examples = run["examples"]
    summary = {"n": run["n"], "accuracy_thought": run["accuracy_thought"],
               "accuracy_reply_text": run["accuracy_reply_text"],
               "chance": mean_chance([e["family"] for e in examples])}
    if mode == "swap":
        follows = AnswerAccuracy()
        follows.update([e["thought_answer"] for e in examples], [e["other_answer"] for e in examples])
        summary["follows_audio"] = float(follows.compute())
    # Per family: a model that answers "6" to every counting question scores above chance without listening.
    summary["per_family"] = {}
    for family in sorted({e["family"] for e in examples}):
        rows = [e for e in examples if e["family"] == family]
        right = AnswerAccuracy()
        right.update([e["thought_answer"] for e in rows], [e["answer"] for e in rows])
        summary["per_family"][family] = {"n": len(rows), "accuracy_thought": float(right.compute()),
                                         "chance": mean_chance([family])}
    return summary
