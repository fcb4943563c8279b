"""Whisper's encoder as a recogniser's front end: frozen, pretrained states for a small CTC head to read.

Whisper tiny.en's encoder turns speech into 384-wide states, 50 a second,
that it learnt from 680,000 hours of people; a small conformer trained on our
corpus reads the question's characters from them (`StatesCTC` in
`s2s/asr/model.py`). This is the frozen-upstream, light-downstream recipe of
SUPERB, and the encoder-plus-adapter design of speech LLMs with a CTC
compressor in between (`s2s/hearing/ctc.py`). The encoder is never trained
here, and in the cross-checked ears it runs once per question for both the
Whisper ear's beams and the head (`s2s/asr/whisper.py`).

Training reads the states from a cache written beside each manifest on first
use (`cached_states`): the encoder costs about 85 ms a question on 2 cores,
far more than the head's step.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn as nn

from s2s import audio
from s2s.asr.whisper import SAMPLE_RATE, default_threads, encoder_states, is_whisper_name, load_model, resolve_whisper

# The encoder's width for each size of Whisper (its d_model): what the head's input layer is built for.
WIDTHS = {"tiny": 384, "base": 512, "small": 768, "medium": 1024, "large": 1280, "turbo": 1280}


def is_whisper_frontend(frontend: str) -> bool:
    """Whether a recogniser's `frontend` is Whisper's encoder (anything but the default, log-mel)."""
    return frontend != "log-mel"


def encoder_width(spec: str) -> int:
    """The width of the states of the Whisper `spec` names (whisper-tiny.en -> 384)."""
    size = str(spec).removeprefix("openai/").removeprefix("Systran/faster-").removeprefix("whisper-")
    width = next((w for name, w in WIDTHS.items() if size.startswith(name)), None)
    if not is_whisper_name(spec) or width is None:
        raise ValueError(f"frontend {spec!r}: give log-mel or a Whisper size such as whisper-tiny.en")
    return width


class WhisperStates(nn.Module):
    """wav [B, T] at 16 kHz -> Whisper's encoder states [B, F, width] and their lengths [B], 50 frames a
    second. The Whisper model loads on first use and is shared with every Whisper ear of the process."""

    def __init__(self, spec: str = "whisper-tiny.en"):
        super().__init__()
        self.spec, self.width = str(spec), encoder_width(spec)
        self._model = None

    def states(self, wav: torch.Tensor) -> torch.Tensor:
        """One waveform [T] at 16 kHz -> its states [frames, width], float32."""
        if self._model is None:
            self._model = load_model(str(resolve_whisper(self.spec)), default_threads())
        return encoder_states(self._model, wav)

    @torch.no_grad()
    def forward(self, wav: torch.Tensor, num_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [self.states(row[:int(n)]) for row, n in zip(wav, num_samples)]
        return pad_states(rows, wav.device)


def pad_states(rows: list[torch.Tensor], device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of states [F_i, width] -> [B, max F, width] (zeros after each row) and lengths [B]."""
    lengths = torch.tensor([row.shape[0] for row in rows], device=device)
    states = torch.zeros(len(rows), int(lengths.max()), rows[0].shape[1], device=device)
    for i, row in enumerate(rows):
        states[i, :row.shape[0]] = row.float()
    return states, lengths


def cached_states(manifest: Path, rows: list[dict], audio_field: str, spec: str) -> list[torch.Tensor]:
    """Whisper `spec`'s states [F, width] (float16) of the `audio_field` audio of each of `rows` of `manifest`,
    computed once and kept beside it (`whisper-states-<spec>-<field>-<hash>.pt`, the hash of the manifest and the
    rows: a corpus rendered anew into the same folder is encoded anew)."""
    paths = [row[audio_field] for row in rows]
    digest = hashlib.blake2b(manifest.read_bytes() + "\n".join(paths).encode(), digest_size=8).hexdigest()
    cache = manifest.parent / f"whisper-states-{Path(spec).name}-{audio_field}-{digest}.pt"
    if cache.is_file():
        return torch.load(cache, weights_only=True)
    front = WhisperStates(spec)
    states = [front.states(audio.load(manifest.parent / path, SAMPLE_RATE)[0].mean(0).clamp(-1, 1)).half()
              for path in paths]
    tmp = cache.with_suffix(".tmp")
    torch.save(states, tmp)
    tmp.replace(cache)
    return states
