"""Fixtures shared by the whole test suite."""
import math

import pytest
import torch

# Tests run small models, where intra-op threads buy little; on a shared machine
# (CI, or a box that is also training) they spin-wait for busy cores, which made
# the codec tests about 50x slower when measured.
torch.set_num_threads(1)


def chirp_wav(seconds: float, sample_rate: int, channels: int = 1, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A deterministic test signal [B, C, T]: a rising chirp plus a little noise, each item and channel different."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(round(seconds * sample_rate)) / sample_rate
    items = []
    for b in range(batch):
        f0_hz = 150.0 * (1 + b) + 60.0 * torch.arange(channels)[:, None]
        tone = 0.3 * torch.sin(2 * math.pi * f0_hz * t * (1 + t))
        items.append(tone + 0.01 * torch.randn(channels, t.numel(), generator=g))
    return torch.stack(items)


def speech_wav(seconds: float, sample_rate: int, channels: int = 1) -> torch.Tensor:
    """Real speech [C, T] (espeak-ng saying a question), cut or padded with silence to `seconds`: what a
    question must hold for the pipeline's VAD to find speech (a chirp is rightly abstained on)."""
    from s2s import audio
    from s2s.data import espeak

    samples, rate = espeak.render("What is twelve times three?", voice="en-us", speed_wpm=240)
    wav = audio.prepare(torch.from_numpy(samples.copy())[None, None], rate, sample_rate)[0, 0]
    wav = torch.nn.functional.pad(wav, (0, max(0, round(seconds * sample_rate) - wav.numel())))
    wav = wav[: round(seconds * sample_rate)]
    return torch.stack([wav * (1 - 0.2 * c) for c in range(channels)])


@pytest.fixture(scope="session")
def make_speech():
    """`make_speech(seconds, sample_rate, channels=1)` -> espeak-ng speech [C, T], cut or padded to `seconds`."""
    return speech_wav


@pytest.fixture(scope="session")
def make_wav():
    """`make_wav(seconds, sample_rate, channels=1, batch=1, seed=0)` -> float wav [B, C, T]."""
    return chirp_wav


def decode_streaming(codec, codes: torch.Tensor, steps_frames=(1, 2, 3)) -> torch.Tensor:
    """Feed codes [B, K, F] to `codec.decode_step` a few frames at a time, then flush: wav [B, 1, T]."""
    pieces, start, i = [], 0, 0
    with codec.streaming(codes.shape[0]):
        while start < codes.shape[-1]:
            step = steps_frames[i % len(steps_frames)]
            pieces.append(codec.decode_step(codes[..., start:start + step]))
            start, i = start + step, i + 1
        pieces.append(codec.flush())
    return torch.cat(pieces, dim=-1)


@pytest.fixture(scope="session")
def stream_decode():
    """`stream_decode(codec, codes)` -> the streaming decode of codes [B, K, F], 1-3 frames per step."""
    return decode_streaming
