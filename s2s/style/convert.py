"""Voice conversion: the words of one recording, spoken in the voice of another (`s2s convert`).

The words and their timing come from the source, the voice from a reference recording, and the rate and
pitch from style words; the VoiceConverter (`s2s/style/converter.py`) does the work. Every input is checked
before any model runs, with one-line errors.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch

from s2s import audio as audio_io

MAX_SOURCE_SECONDS = 30.0


@dataclass
class Converted:
    audio: str | None  # the written path (None when no `out` was given)
    timings: dict  # total_ms, rtf
    waveform: torch.Tensor = field(repr=False)  # [1, T] at sample_rate
    sample_rate: int = 0


def restyle(converter, wav: torch.Tensor, sample_rate: int, voice=None, voice_rate: int | None = None,
            style: str | list[str] | None = None) -> torch.Tensor:
    """wav [C, T] at `sample_rate` in the voice of `voice` (a checked reference, a file or a waveform at
    `voice_rate`; None keeps the recording's own voice) at the rate and pitch of `style`:
    wav [1, T'] at the converter's rate."""
    from s2s.style.prompt import read_voice, style_choice

    rate, pitch = style_choice(style)
    reference, reference_rate = (wav, sample_rate) if voice is None else read_voice(voice, voice_rate)
    return converter.convert(wav, sample_rate, reference, reference_rate, pitch=pitch, rate=rate).cpu()


def convert(converter, source, voice, *, sample_rate: int | None = None, voice_rate: int | None = None,
            style: str | list[str] | None = None, out: str | os.PathLike | None = None,
            overwrite: bool = False) -> Converted:
    """Speak the words of `source` (a file or a waveform at `sample_rate`) in the voice of `voice` (a file or a
    waveform at `voice_rate`), in `style`; written to `out` when given (never over a file unless `overwrite`)."""
    from s2s.audio import read_question
    from s2s.style.prompt import read_voice, style_choice

    if out is not None and os.path.exists(out) and not overwrite:
        raise FileExistsError(f"{out} already exists; choose another path or pass overwrite=True (--overwrite)")
    style_choice(style)
    read_voice(voice, voice_rate)  # a bad reference fails before anything runs
    wav, rate, _ = read_question(source, sample_rate, max_seconds=MAX_SOURCE_SECONDS, what="recording to convert")
    start = time.perf_counter()
    converted = restyle(converter, wav, rate, voice, voice_rate, style)
    total_s = time.perf_counter() - start
    seconds = converted.shape[-1] / converter.sample_rate
    timings = {"total_ms": round(1000 * total_s, 2), "rtf": round(total_s / seconds, 4) if seconds else None}
    written = None if out is None else str(audio_io.save(out, converted, converter.sample_rate, overwrite=overwrite))
    return Converted(written, timings, converted, converter.sample_rate)
