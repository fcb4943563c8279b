"""Does the model listen? The question audio replaced five ways, and what the answers then say.

A model that listens abstains on `silence`, `noise`, a `tone` and `music`
(no one asked anything: `abstained` near 1), or at worst falls to the
chance level (its answers can then only come from the family's usual
answers); on `swap` (the next row's question, cyclically) it answers the
other question: `follows_audio`, the fraction of answers equal to the other
question's answer, is then high while accuracy is near chance. A model that
keeps its accuracy without the audio has learnt a shortcut.
"""
from __future__ import annotations

import statistics

import torch

from s2s.data.problems import chance_level
from s2s.eval.metrics import AnswerAccuracy

MODES = ("silence", "noise", "tone", "music", "swap")


def replaced_question(mode: str, wav: torch.Tensor, other: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """The question waveform `wav` [..., T] as `mode` replaces it.

    silence: zeros of the same shape; noise: white Gaussian noise of the same
    shape at the RMS of `wav`; tone: a sine of 220-880 Hz; music: notes of a
    random melody over a chord, with harmonics and a decaying envelope (both
    at the RMS of `wav`, taken at 16 kHz); swap: `other`, another question's
    waveform (its own length, unchanged).
    """
    if mode == "silence":
        return torch.zeros_like(wav)
    if mode in ("tone", "music"):
        rms = wav.float().pow(2).mean().sqrt().clamp(min=1e-3)
        sound = (tone if mode == "tone" else music)(wav.shape[-1], 16000, generator)
        return (sound * rms / sound.pow(2).mean().sqrt().clamp(min=1e-12)).expand(wav.shape).to(wav.dtype)
    if mode == "noise":
        rms = wav.float().pow(2).mean().sqrt()
        noise = torch.randn(wav.shape, generator=generator, dtype=torch.float32)
        return (noise * rms / noise.pow(2).mean().sqrt().clamp(min=1e-12)).to(wav.dtype)
    if mode == "swap":
        if other is None:
            raise ValueError("the swap mode needs another question's waveform (other=)")
        return other
    raise ValueError(f"unknown shortcut mode {mode!r}; use one of {', '.join(MODES)}")


def tone(samples: int, sample_rate: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[T] a pure tone of 220-880 Hz."""
    hz = 220 + 660 * torch.rand((), generator=generator)
    return torch.sin(2 * torch.pi * hz * torch.arange(samples) / sample_rate)


def music(samples: int, sample_rate: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[T] a melody of quarter-second notes over a held chord: harmonics, a plucked envelope, no voice."""
    t = torch.arange(samples) / sample_rate
    root = 110 * 2 ** (torch.randint(0, 12, (), generator=generator) / 12)
    chord = sum(torch.sin(2 * torch.pi * root * ratio * t) for ratio in (1.0, 1.25, 1.5))
    steps = torch.tensor([0, 2, 4, 5, 7, 9, 11, 12])
    note_samples = sample_rate // 4
    notes = steps[torch.randint(0, len(steps), (samples // note_samples + 1,), generator=generator)]
    hz = (2 * root * 2 ** (notes / 12)).repeat_interleave(note_samples)[:samples]
    phase = 2 * torch.pi * torch.cumsum(hz / sample_rate, 0)
    envelope = torch.exp(-6 * (torch.arange(samples) % note_samples) / note_samples)
    melody = envelope * sum(torch.sin(k * phase) / k for k in (1, 2, 3, 4))
    return 0.4 * chord + melody


def mean_chance(families: list[str]) -> float | None:
    """The chance level of `chance_level(family)` averaged over the rows' families (unknown families skipped)."""
    levels = []
    for family in families:
        try:
            levels.append(chance_level(family))
        except ValueError:
            pass
    return statistics.mean(levels) if levels else None


def follows_audio(examples: list[dict]) -> float:
    """The fraction of swapped-audio answers that answer the other question (each example's `other_answer`): high
    for a model that listens, near chance for one that guesses from the family."""
    follows = AnswerAccuracy()
    follows.update([e["thought_answer"] for e in examples], [e["other_answer"] for e in examples])
    return float(follows.compute())


def summarise(mode: str, run: dict) -> dict:
    """Accuracy of one shortcut run (evaluate_manifest's result) beside chance; for `swap` also `follows_audio`,
    the fraction of thought answers equal to the other question's answer (the example's `other_answer`)."""
    examples = run["examples"]
    summary = {"n": run["n"], "accuracy_thought": run["accuracy_thought"],
               "accuracy_reply_text": run["accuracy_reply_text"], "abstained": run.get("abstained"),
               "chance": mean_chance([e["family"] for e in examples])}
    if mode == "swap":
        summary["follows_audio"] = follows_audio(examples)
    # Per family: a model that answers "6" to every counting question scores above chance without listening.
    summary["per_family"] = {}
    for family in sorted({e["family"] for e in examples}):
        rows = [e for e in examples if e["family"] == family]
        right = AnswerAccuracy()
        right.update([e["thought_answer"] for e in rows], [e["answer"] for e in rows])
        summary["per_family"][family] = {"n": len(rows), "accuracy_thought": float(right.compute()),
                                         "chance": mean_chance([family])}
    return summary
