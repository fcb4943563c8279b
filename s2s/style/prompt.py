"""The style prompt of a reply: a reference recording of the voice to speak in, and style words.

Both travel inside the `<voice> .. </voice>` segment of a turn (`s2s/lm/formats/base.py`):
the words as text ids ("fast low"), then the reference as codec tokens. A
model trained on `s2s data synth --reply-styles` learns to speak in the
prompt's voice at the asked rate and pitch; with no prompt it speaks in the
assistant's voice.
"""
from __future__ import annotations

import torch

from s2s import audio
from s2s.style.metrics import STYLES

VOICE_MIN_SECONDS = 1.0  # less says too little about a voice
VOICE_MAX_SECONDS = 4.0  # longer references are cut to their first seconds (training prompts last about 3 s)
VOICE_MAX_FILE_SECONDS = 600.0  # refused outright, from the header


def style_words(style: str | list[str] | None) -> str:
    """A style as the words a model was trained on: rate first, then pitch, "normal" left out ("" for none).

    Accepts "fast", "fast low", "low,fast" or ["fast", "low"]; refuses unknown words and two of one axis.
    """
    if style is None:
        return ""
    words = style.replace(",", " ").split() if isinstance(style, str) else [str(w) for w in style]
    chosen: dict[str, str] = {}
    for word in words:
        axis = next((a for a, allowed in STYLES.items() if word in allowed), None)
        if axis is None:
            allowed = ", ".join(w for a in STYLES.values() for w in a if w != "normal")
            raise ValueError(f"unknown style {word!r}; choose from {allowed} (one rate and one pitch at most)")
        if axis in chosen and chosen[axis] != word:
            raise ValueError(f"the style asks for both {chosen[axis]!r} and {word!r}; give one {axis} at most")
        chosen[axis] = word
    return " ".join(chosen[axis] for axis in STYLES if chosen.get(axis, "normal") != "normal")


def style_choice(style: str | list[str] | None) -> tuple[str, str]:
    """A style as (rate, pitch) words, "normal" where it asks for none: ("fast", "normal") for "fast"."""
    words = style_words(style).split()
    return tuple(next((w for w in words if w in allowed), "normal") for allowed in STYLES.values())


def read_voice(voice, sample_rate: int | None = None) -> tuple[torch.Tensor, int]:
    """A reference recording checked and cut for a voice prompt: (wav [C, T], rate).

    `voice` is a file or a waveform [T] / [C, T] at `sample_rate`. Refused with one line: shorter than
    VOICE_MIN_SECONDS, silent, or unreadable; cut to its first VOICE_MAX_SECONDS.
    """
    from s2s.audio import read_question

    wav, rate, _ = read_question(voice, sample_rate, max_seconds=VOICE_MAX_FILE_SECONDS, what="voice prompt")
    seconds = wav.shape[-1] / rate
    if seconds < VOICE_MIN_SECONDS:
        raise audio.AudioError(f"the voice prompt is {seconds:.2f} s long; give at least {VOICE_MIN_SECONDS:g} s "
                               "of the voice speaking")
    if float(wav.abs().amax()) < 1e-4:
        raise audio.AudioError("the voice prompt is silent; give a recording of the voice speaking")
    return wav[:, : round(VOICE_MAX_SECONDS * rate)], rate
