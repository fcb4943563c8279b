"""The one boundary for audio: load, save, resample, down-mix and check.

Everything that enters s2s as a waveform passes through `prepare`, so bad
input is caught here with one plain sentence instead of deep inside torch.
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

# The longest file `load` reads unless told otherwise: an hour of 16 kHz mono is 230 MB of float32. Longer
# files are refused from their header, before a sample is read. Set S2S_MAX_AUDIO_SECONDS to change it.
MAX_SECONDS = float(os.environ.get("S2S_MAX_AUDIO_SECONDS", 3600))
MIN_SAMPLE_RATE = 1000  # below this nothing of speech survives: a wrong header, not a recording
MAX_RESAMPLE_PHASES = 2000  # see `resample`


class AudioError(ValueError):
    """Bad audio from the user: the message says what was wrong and what to do."""


def check_waveform(wav: torch.Tensor, sample_rate: int) -> None:
    """Reject what no codec can encode: wrong rank, empty, non-finite, bad rate."""
    if not isinstance(wav, torch.Tensor):
        raise AudioError(f"expected a torch.Tensor waveform [B, C, T], got {type(wav).__name__}")
    if wav.dim() != 3:
        raise AudioError(
            f"expected a waveform of shape [B, C, T] (batch, channels, samples), got shape {tuple(wav.shape)}; "
            "use wav[None, None] for a 1-D signal or wav[None] for [C, T]"
        )
    if not wav.is_floating_point():
        raise AudioError(f"expected a float waveform in [-1, 1], got dtype {wav.dtype}; "
                         "convert with wav.float() / 32768")
    if wav.shape[-1] == 0 or wav.shape[0] == 0 or wav.shape[1] == 0:
        raise AudioError(f"the waveform is empty (shape {tuple(wav.shape)}); pass at least one frame of audio")
    if not torch.isfinite(wav).all():
        raise AudioError("the waveform contains NaN or Inf samples; clean the signal (e.g. torch.nan_to_num) first")
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise AudioError(f"sample_rate must be a positive integer in Hz, got {sample_rate!r}")
    if sample_rate < MIN_SAMPLE_RATE:
        raise AudioError(f"sample_rate {sample_rate} Hz is too low for speech (at least {MIN_SAMPLE_RATE} Hz); "
                         "pass the rate the audio was recorded at")


def as_batch(wav: torch.Tensor) -> torch.Tensor:
    """A waveform [T], [C, T] or [B, C, T] as [B, C, T] (other shapes are left for `check_waveform` to refuse)."""
    if not isinstance(wav, torch.Tensor):
        raise AudioError(f"expected a waveform tensor, got {type(wav).__name__}")
    return wav.reshape(1, 1, -1) if wav.dim() == 1 else wav[None] if wav.dim() == 2 else wav


def prepare(wav: torch.Tensor, sample_rate: int, target_rate: int, channels: int = 1) -> torch.Tensor:
    """Check `wav` [B, C, T] and bring it to `target_rate` Hz and `channels` channels."""
    check_waveform(wav, sample_rate)
    wav = wav.float()
    if wav.shape[1] != channels:
        if channels == 1:
            wav = wav.mean(dim=1, keepdim=True)
        elif wav.shape[1] == 1:
            wav = wav.expand(-1, channels, -1)
        else:
            raise AudioError(f"cannot map {wav.shape[1]} channels to {channels}; pass mono or {channels}-channel audio")
    return resample(wav, sample_rate, target_rate)


def resample(wav: torch.Tensor, from_rate: int, to_rate: int) -> torch.Tensor:
    """wav [..., T] from `from_rate` to `to_rate` Hz (band-limited sinc, torchaudio).

    torchaudio's resampler builds a filter per phase, max(rates) / gcd(rates) of them: 441 for 44.1 to 16
    kHz, but 16,000 for a file at 44,099 Hz, minutes and gigabytes for one odd header. Such a rate is read
    as the nearest multiple of 50 Hz instead (a speed and pitch change under 0.3 % at 8 kHz and up).
    """
    if from_rate == to_rate:
        return wav
    if max(from_rate, to_rate) // math.gcd(from_rate, to_rate) > MAX_RESAMPLE_PHASES:
        from_rate = max(50, round(from_rate / 50) * 50)
        if from_rate == to_rate:
            return wav
    return AF.resample(wav, from_rate, to_rate)


def duration(path: str | os.PathLike) -> float:
    """Seconds of audio in `path`, from its header alone (nothing is decoded)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"audio file not found: {path}")
    try:
        info = sf.info(str(path))
        if info.samplerate <= 0 or info.channels <= 0:
            raise RuntimeError(f"header says {info.samplerate} Hz and {info.channels} channels")
    except Exception as err:  # soundfile raises its own error types for every corrupt header
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise AudioError(f"cannot read {path} as audio ({reason}); pass a WAV, FLAC or OGG file") from None
    return info.frames / info.samplerate


def load(path: str | os.PathLike, sample_rate: int | None = None, mono: bool = True,
         max_seconds: float | None = None) -> tuple[torch.Tensor, int]:
    """Read an audio file as a float tensor [C, T]; resample when `sample_rate` is given.

    Files longer than `max_seconds` (default `MAX_SECONDS`) are refused from their header, so a huge or
    malicious file never fills the memory; non-finite samples (float WAVs can hold NaN) are refused too.
    """
    max_seconds = MAX_SECONDS if max_seconds is None else max_seconds
    seconds = duration(path)
    if seconds > max_seconds:
        raise AudioError(f"{path} lasts {seconds:.1f} s, more than the {max_seconds:g} s allowed; "
                         "cut it into shorter files (or raise the limit: max_seconds, S2S_MAX_AUDIO_SECONDS)")
    try:
        data, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises its own error types for every corrupt header
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise AudioError(f"cannot read {path} as audio ({reason}); pass a WAV, FLAC or OGG file") from None
    wav = torch.from_numpy(np.ascontiguousarray(data.T))
    if wav.shape[-1] == 0:
        raise AudioError(f"{path} holds no samples; record or synthesise some audio first")
    if not torch.isfinite(wav).all():
        raise AudioError(f"{path} contains NaN or Inf samples; re-export it as 16-bit PCM or clean the signal")
    if mono and wav.shape[0] > 1:
        wav = wav.mean(dim=0, keepdim=True)
    if sample_rate is not None and sample_rate != file_rate:
        if file_rate < MIN_SAMPLE_RATE:
            raise AudioError(f"{path} claims {file_rate} Hz, too low for speech (at least {MIN_SAMPLE_RATE} Hz); "
                             "re-export it at its real rate")
        wav = resample(wav, file_rate, sample_rate)
        file_rate = sample_rate
    return wav, file_rate


def save(path: str | os.PathLike, wav: torch.Tensor, sample_rate: int, overwrite: bool = False) -> Path:
    """Write `wav` [C, T] (or [T]) as 16-bit WAV, atomically; refuse to overwrite unless asked."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another path or pass overwrite=True (--overwrite)")
    wav = wav.detach().float().cpu()
    if wav.dim() == 1:
        wav = wav[None]
    if wav.dim() != 2:
        raise AudioError(f"save expects a waveform [C, T] or [T], got shape {tuple(wav.shape)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        sf.write(tmp, wav.clamp(-1, 1).T.numpy(), sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


MAX_QUESTION_SECONDS = 30.0


def check_question(audio, text) -> None:
    """Exactly one question: audio (a file or a waveform) or text."""
    if (audio is None) == (text is None):
        given = "both" if audio is not None else "neither"
        raise ValueError(f"give exactly one question, audio (a file or a waveform) or text (--text), got {given}")


def read_question(audio=None, sample_rate: int | None = None, text: str | None = None,
                  max_seconds: float = MAX_QUESTION_SECONDS, what: str = "question"):
    """The question checked and loaded: (wav [C, T] or None, its rate or None, text or None).
    (`what` names the recording in errors: the question, or a voice prompt.)

    `audio` is a file (any format soundfile reads, any rate and channels) or
    a waveform [T] or [C, T] at `sample_rate` Hz, lasting at most `max_seconds`
    (a longer file is refused from its header, before it is read).
    """
    check_question(audio, text)
    if text is not None:
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the text question is empty; pass a question such as --text 'What is 3 + 4?'")
        return None, None, text
    if isinstance(audio, (str, os.PathLike)):
        if sample_rate is not None:
            raise ValueError("sample_rate is for a waveform; a file's own rate is read from the file")
        refuse_long(audio, duration(audio), max_seconds, what)  # from the header, before it is read
        wav, sample_rate = load(audio, max_seconds=max_seconds)
        where = str(audio)
    elif isinstance(audio, torch.Tensor):
        if sample_rate is None:
            raise ValueError(f"a waveform {what} needs its sample_rate in Hz")
        wav = audio if audio.dim() == 2 else audio[None] if audio.dim() == 1 else None
        if wav is None:
            raise AudioError(f"a waveform {what} must be [T] or [C, T], got shape {tuple(audio.shape)}")
        where = "the waveform"
    else:
        raise ValueError(f"audio must be a file path or a waveform tensor, got {type(audio).__name__}")
    check_waveform(wav[None], sample_rate)  # empty, non-finite, bad rate: one sentence each
    refuse_long(where, wav.shape[-1] / sample_rate, max_seconds, what)
    return wav, sample_rate, None


def is_chunks(audio) -> bool:
    """Whether `audio` is an iterator of waveform chunks (audio as it arrives), not a file or one waveform."""
    return audio is not None and not isinstance(audio, (str, os.PathLike, torch.Tensor)) and hasattr(audio, "__iter__")


def refuse_long(where, seconds: float, max_seconds: float, what: str = "question") -> None:
    """One line for a recording longer than a question may be."""
    if seconds > max_seconds:
        raise AudioError(f"{where} is {seconds:.1f} s long; a {what} may last at most "
                         f"{max_seconds:g} s: trim it first (or raise --max-seconds)")
