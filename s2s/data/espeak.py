"""Render text to speech with espeak-ng (a Debian package, fast, many voices)."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np

ESPEAK_SAMPLE_RATE = 22050


class SynthesisError(RuntimeError):
    """espeak-ng is missing or failed."""


def espeak_binary() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise SynthesisError("espeak-ng is not installed: run `make setup` (or `apt-get install espeak-ng`)")
    return binary


def render(text: str, voice: str = "en-us", speed_wpm: int = 175, pitch: int = 50) -> tuple[np.ndarray, int]:
    """Speak `text`; returns (float32 samples [T], sample rate in Hz)."""
    if not text.strip():
        raise SynthesisError("cannot synthesise empty text")
    cmd = [espeak_binary(), "-v", voice, "-s", str(speed_wpm), "-p", str(pitch), "--stdout", text]
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    if proc.returncode != 0 or len(proc.stdout) < 100:
        raise SynthesisError(f"espeak-ng failed for voice {voice!r}: {proc.stderr.decode(errors='replace').strip()}")
    # espeak-ng writes a streaming WAV header with unknown length: parse the PCM ourselves.
    data_at = proc.stdout.find(b"data") + 8
    samples = np.frombuffer(proc.stdout[data_at:], dtype="<i2").astype(np.float32) / 32768.0
    return samples, ESPEAK_SAMPLE_RATE


def trim_silence(samples: np.ndarray, threshold: float = 1e-3, pad: int = 1000) -> np.ndarray:
    """Cut leading and trailing silence (espeak-ng adds some), keeping `pad` samples."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    if loud.size == 0:
        return samples
    return samples[max(0, loud[0] - pad): loud[-1] + pad]
