"""Augmentation of training audio (speed, room, noise, telephone band, gain) and the noise evaluation adds.

Synthetic voices are clean; spoken questions arrive through rooms, phones and
noisy places. `augment` gives a waveform some of these, each drawn from a
seeded generator, and names what it did (`"noise18db+telephone"`) so a
manifest row says how its audio was made. `add_noise` is the deterministic
white noise at an exact SNR that evaluation uses for its noise shift.
Waveforms are numpy arrays [T] or [C, T] in [-1, 1]; every effect works on
the last axis.
"""
from __future__ import annotations

import importlib.util
import math
import random
from fractions import Fraction
from functools import cache

import numpy as np
import torch
from scipy.signal import fftconvolve, resample_poly

from s2s.data.espeak import SynthesisError

INSTALL_HINT = "pip install 's2s[augment]'"
AUGMENT_P = 0.4  # each effect's chance: about one question in thirteen stays clean
SPEED_RANGE = (0.9, 1.1)
RT60_RANGE_S = (0.2, 0.8)
SNR_RANGE_DB = (5, 30)
GAIN_RANGE_DB = (-12, 6)
TELEPHONE_BAND_HZ = (300, 3400)
REVERB_TAIL_ENERGY = 0.5  # against the direct path's 1: about 3 dB more direct than reverberant sound


def require_audiomentations() -> None:
    """One line naming the extra to install, raised before any audio is rendered."""
    if importlib.util.find_spec("audiomentations") is None:
        raise SynthesisError(f"--augment needs audiomentations: run {INSTALL_HINT}")


def add_noise(wav, snr_db: float, seed: int):
    """`wav` [.., T] (numpy or torch) plus white Gaussian noise at exactly `snr_db` against each waveform's power.

    The noise depends only on `seed` and the shape, so an evaluation's noisy copy is the same on every run.
    A silent waveform stays silent (its SNR has no meaning)."""
    if wav.shape[-1] == 0:
        raise ValueError("add_noise needs at least one sample; the waveform is empty")
    is_tensor = isinstance(wav, torch.Tensor)
    signal = wav.detach().cpu().double().numpy() if is_tensor else np.asarray(wav, dtype=np.float64)
    noise = np.random.default_rng(seed).standard_normal(signal.shape)
    signal_power = np.mean(signal ** 2, axis=-1, keepdims=True)
    noise_power = np.mean(noise ** 2, axis=-1, keepdims=True)
    noisy = signal + noise * np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    if is_tensor:
        return torch.as_tensor(noisy, dtype=wav.dtype, device=wav.device)
    return noisy.astype(np.asarray(wav).dtype)


def change_speed(wav: np.ndarray, speed: float) -> np.ndarray:
    """Play `wav` `speed` times as fast (pitch moves with it, as a tape's would): T / speed samples."""
    ratio = Fraction(speed).limit_denominator(100)
    return resample_poly(wav, ratio.denominator, ratio.numerator, axis=-1).astype(np.float32)


def reverberate(wav: np.ndarray, rate_hz: int, rt60_s: float, seed: int) -> np.ndarray:
    """`wav` in a synthetic room: a direct path plus a noise tail decaying 60 dB in `rt60_s`; same peak level."""
    t_s = np.arange(int(rt60_s * rate_hz)) / rate_hz
    tail = np.random.default_rng(seed).standard_normal(t_s.size) * np.exp(-6.9 * t_s / rt60_s)
    impulse = tail * np.sqrt(REVERB_TAIL_ENERGY / np.sum(tail ** 2))
    impulse[0] = 1.0
    wet = fftconvolve(wav, impulse.reshape((1,) * (wav.ndim - 1) + (-1,)), axes=-1)
    return (wet * np.abs(wav).max() / max(np.abs(wet).max(), 1e-9)).astype(np.float32)


@cache
def _telephone_filter():
    from audiomentations import BandPassFilter

    low_hz, high_hz = TELEPHONE_BAND_HZ
    centre_hz, width_hz = (low_hz + high_hz) / 2, high_hz - low_hz
    return BandPassFilter(min_center_freq=centre_hz, max_center_freq=centre_hz,
                          min_bandwidth_fraction=width_hz / centre_hz, max_bandwidth_fraction=width_hz / centre_hz,
                          min_rolloff=24, max_rolloff=24, zero_phase=False, p=1.0)


def telephone(wav: np.ndarray, rate_hz: int) -> np.ndarray:
    """`wav` through a telephone line's band, 300-3400 Hz (24 dB an octave outside it)."""
    return _telephone_filter()(np.ascontiguousarray(wav, dtype=np.float32), sample_rate=rate_hz)


def change_gain(wav: np.ndarray, gain_db: float) -> tuple[np.ndarray, int]:
    """`wav` louder or softer by up to `gain_db` (whole dB), never past full scale: (wav, the dB applied).

    Clipping would add distortion no real recording level gives, so a loud waveform gets less gain."""
    headroom_db = -20 * math.log10(max(float(np.abs(wav).max()), 1e-9))
    applied_db = int(min(round(gain_db), math.floor(headroom_db)))
    return (wav * 10 ** (applied_db / 20)).astype(np.float32), applied_db


def augment(wav: np.ndarray, rate_hz: int, rng: random.Random) -> tuple[np.ndarray, str]:
    """Some of speed, room, noise, telephone band and gain, in the order sound meets them; returns (wav, what was
    applied, e.g. "speed1.05+noise18db+telephone", "" for none). The same `rng` state gives the same result."""
    wav, applied = np.asarray(wav, dtype=np.float32), []
    if rng.random() < AUGMENT_P:
        speed = round(rng.uniform(*SPEED_RANGE), 2)
        wav = change_speed(wav, speed)
        applied.append(f"speed{speed:.2f}")
    if rng.random() < AUGMENT_P:
        rt60_s = round(rng.uniform(*RT60_RANGE_S), 1)
        wav = reverberate(wav, rate_hz, rt60_s, rng.getrandbits(32))
        applied.append(f"reverb{rt60_s:g}s")
    if rng.random() < AUGMENT_P:
        snr_db = rng.randint(*SNR_RANGE_DB)
        wav = add_noise(wav, snr_db, rng.getrandbits(32))
        applied.append(f"noise{snr_db}db")
    if rng.random() < AUGMENT_P:
        wav = telephone(wav, rate_hz)
        applied.append("telephone")
    if rng.random() < AUGMENT_P:
        wav, gain_db = change_gain(wav, rng.uniform(*GAIN_RANGE_DB))
        applied.append(f"gain{gain_db}db")
    peak = float(np.abs(wav).max(initial=0.0))
    if peak > 1.0:  # loud noise can pass full scale: soften rather than clip when saved
        wav = wav / peak
    return wav, "+".join(applied)
