"""What every ear gives: `Heard` (the question as text, how sure the ear is) and its `HeardQuestion` (the
vectors' ids the reasoner reads at its `<heard>` ids), `Hearing` (that, and how likely the ear finds any other
transcript of the same audio), and `to_16k`, the one way audio reaches an ear."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from s2s import audio as audio_io

SAMPLE_RATE = 16000
HEARING_DIR = "hearing"  # where a model folder keeps its CTC ear
# How likely an ear finds a written question as a transcript of the audio it heard (None: it cannot say).
LogLikelihood = Callable[[str], float | None]


@dataclass
class HeardQuestion:
    """The segments heard in one question: top-k text ids [n, k] and their probabilities [n, k], hidden [n, D]."""

    token_ids: torch.Tensor
    probs: torch.Tensor
    hidden: torch.Tensor

    def __len__(self) -> int:
        return self.token_ids.shape[0]

    def to_dict(self) -> dict:
        return {"token_ids": self.token_ids, "probs": self.probs, "hidden": self.hidden}


@dataclass
class Heard:
    """What an ear made of one question."""

    question: HeardQuestion  # what the reasoner reads at its <heard> ids
    text: str  # the question as heard
    confidence: float  # the ear's own, 0-1
    ear: str  # which ear wrote it: "ctc" or "whisper"


@dataclass
class Hypothesis:
    """One transcript an ear offers: as the reasoner reads it, in the ear's own words (Whisper's before
    normalising), and the ear's own mean log-probability per label for it."""

    heard: Heard
    said: str
    score: float


@dataclass
class Hearing:
    """One ear's hearing of one waveform: its hypotheses, best first (Whisper's beams; a CTC ear's one
    transcript), and `log_likelihood(text)`, the mean log-probability per label the ear gives any written
    question as a transcript of the same audio, None where it cannot say (Whisper on audio longer than its 30 s
    window). Ears check each other's transcripts with it (`CrossCheckedHearing`)."""

    hypotheses: list[Hypothesis]
    log_likelihood: LogLikelihood

    @property
    def heard(self) -> Heard:
        return self.hypotheses[0].heard


def to_16k(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """A waveform [C, T] or [T] at any rate -> [T] mono at 16 kHz."""
    wav = wav if wav.dim() == 2 else wav[None]
    return audio_io.prepare(wav[None].float(), sample_rate, SAMPLE_RATE, channels=1)[0, 0]


def text_question(text: str, tokenizer) -> HeardQuestion:
    """A heard text as the reasoner reads it: one segment per text token, each its token for sure (no hidden)."""
    ids = torch.tensor(tokenizer(text or " ", add_special_tokens=False)["input_ids"], dtype=torch.long)[:, None]
    return HeardQuestion(ids, torch.ones(ids.shape), torch.zeros(ids.shape[0], 1))
