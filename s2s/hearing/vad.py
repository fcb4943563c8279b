"""Is anyone speaking, and where? Silero VAD (the ONNX model faster-whisper ships) before any hearing.

A recogniser always writes something, and a reasoner always answers what it
is given: silence, noise, a tone or music would get a confident number. The
VAD is trained on speech against every other sound, so it is the first gate:
no speech, no question.

It also tells the ears where the question is. A recording starts before
the first word and ends after the last, and both ears learnt from clips
that start at the first word: a second of silence before a question cost
them numbers (`speech_only` cuts it away).
"""
from __future__ import annotations

import torch

SAMPLE_RATE = 16000
MIN_SPEECH_SECONDS = 0.3  # less than a short word
MARGIN_SECONDS = 0.1  # kept either side of the speech found (its spans already reach 0.1 s past the words)
# A mean further from zero than this is a microphone's offset, and is removed. A smaller one is left alone: removing
# it would turn a clip's digital silence into a constant the CTC ear never heard (festival's voices: 8 numbers in 60).
DC_OFFSET = 0.01


def speech_spans(wav: torch.Tensor, threshold: float = 0.5) -> list[tuple[int, int]]:
    """wav [T] at 16 kHz -> the (start, end) samples of each stretch of speech Silero VAD finds."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    samples = wav.detach().float().cpu().numpy()
    if samples.shape[-1] < 512:  # shorter than one VAD window (32 ms): no word fits
        return []
    options = VadOptions(threshold=threshold, min_speech_duration_ms=150, min_silence_duration_ms=300,
                         speech_pad_ms=100)
    return [(span["start"], span["end"]) for span in get_speech_timestamps(samples, options)]


def enough_speech(spans: list[tuple[int, int]]) -> bool:
    """Whether `speech_spans` found at least MIN_SPEECH_SECONDS of speech."""
    return sum(end - start for start, end in spans) >= MIN_SPEECH_SECONDS * SAMPLE_RATE


def has_speech(wav: torch.Tensor) -> bool:
    """Whether wav [T] at 16 kHz holds at least MIN_SPEECH_SECONDS of speech."""
    return enough_speech(speech_spans(wav))


def speech_only(wav: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
    """wav [T] at 16 kHz as the ears hear it: from the first of its `spans` to the end of the last,
    MARGIN_SECONDS more either side (all of it when no span), its DC offset removed if over DC_OFFSET."""
    if spans:
        margin = int(MARGIN_SECONDS * SAMPLE_RATE)
        wav = wav[max(0, spans[0][0] - margin): spans[-1][1] + margin]
    offset = wav.mean() if wav.numel() else wav.new_zeros(())
    return wav - offset if abs(float(offset)) > DC_OFFSET else wav
