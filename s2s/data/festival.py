"""Render text with festival: a second TTS engine, never used for training, so codec and
model figures on it measure speech from an engine they have not heard."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from s2s.data.espeak import SynthesisError

# Debian packages festvox-kallpc16k, festvox-kdlpc16k and festvox-us-slt-hts.
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")


def render(text: str, voice: str = "kal_diphone") -> tuple[np.ndarray, int]:
    """Speak `text` with a festival voice; returns (float32 samples [T], sample rate in Hz)."""
    binary = shutil.which("text2wave")
    if binary is None:
        raise SynthesisError("festival is not installed: run `make setup` (or `apt-get install festival "
                             "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts`)")
    if not text.strip():
        raise SynthesisError("cannot synthesise empty text")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        proc = subprocess.run([binary, "-o", str(out), "-eval", f"(voice_{voice})"], input=text.encode(),
                              capture_output=True, timeout=120)
        if proc.returncode != 0 or not out.exists():
            raise SynthesisError(f"festival failed for voice {voice!r}: {proc.stderr.decode(errors='replace').strip()}")
        samples, rate = sf.read(out, dtype="float32")
    return samples, rate
