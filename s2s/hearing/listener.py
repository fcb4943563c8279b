"""Hearing a question while it is spoken: audio arrives in chunks, and the ear runs at each pause.

A user's microphone delivers audio a few tens of milliseconds at a time, and
the question ends with a pause before anyone can know it has ended. The
`Listener` runs the VAD as chunks arrive; when the speaker has paused for
`pause_s`, the ear hears the speech so far. If no more speech comes, that is
the question, already heard when the audio ends, so hearing costs nothing
after the question (the endpointing of voice assistants). If speech goes on,
the ear hears again at the next pause.
"""
from __future__ import annotations

import torch

from s2s.hearing.heard import SAMPLE_RATE, Heard, to_16k
from s2s.hearing.vad import speech_only, speech_spans

VAD_EVERY_SECONDS = 0.1  # how often the VAD looks again as audio arrives


class Listener:
    """`feed(chunk, rate)` as audio arrives, then `finish()` -> (wav [1, T] at 16 kHz, Heard or None)."""

    def __init__(self, hearing, pause_s: float = 0.3):
        self.hearing, self.pause_samples = hearing, int(pause_s * SAMPLE_RATE)
        self.chunks: list[torch.Tensor] = []
        self.samples = self.looked_at = 0
        self.heard: Heard | None = None
        self.heard_until = None  # the end sample of the speech `heard` was made of

    def feed(self, chunk: torch.Tensor, sample_rate: int) -> None:
        """One chunk [T] or [C, T] at `sample_rate` Hz."""
        if chunk.shape[-1] == 0:
            return
        chunk = to_16k(chunk, sample_rate)
        self.chunks.append(chunk)
        self.samples += chunk.shape[-1]
        if self.hearing is None or self.samples - self.looked_at < VAD_EVERY_SECONDS * SAMPLE_RATE:
            return
        self.looked_at = self.samples
        wav = torch.cat(self.chunks)
        spans = speech_spans(wav)
        if spans and self.samples - spans[-1][1] >= self.pause_samples and spans[-1][1] != self.heard_until:
            self.heard = self.hearing.listen(speech_only(wav, spans)[None], SAMPLE_RATE)
            self.heard_until = spans[-1][1]

    def finish(self) -> tuple[torch.Tensor, Heard | None]:
        """The whole question [1, T] at 16 kHz, and what the ear heard of it if no speech came after its last
        hearing (None: hear it now)."""
        wav = torch.cat(self.chunks) if self.chunks else torch.zeros(0)
        spans = speech_spans(wav) if self.heard is not None else []
        fresh = bool(spans) and spans[-1][1] == self.heard_until
        return wav[None], self.heard if fresh else None
