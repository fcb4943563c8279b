"""Who is speaking: a small speaker-ID model whose embeddings judge voice prompts and voice conversion.

x-vector style (Snyder et al., 2018; ECAPA's attentive statistics pooling, Desplanques et al., 2020): log-mels
(only the overall gain removed, since the long-term spectrum is the speaker), dilated 1-D convolutions,
attentive mean and standard deviation over time, a 192-d embedding, and an additive-margin cosine softmax
over the training voices (AM-softmax, Wang et al., 2018), which makes the embedding's cosine similarity
the measure of "same voice". `classify` names the nearest training voice (style accuracy); `similarity`
compares any two recordings, voices never seen included.
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
import torchaudio
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from s2s import audio
from s2s.data.manifest import read_manifest
from s2s.files import atomic_folder, check_init_args
from s2s.training import time_aware_scheduler

SAMPLE_RATE = 16000
CONFIG_FILE, WEIGHTS_FILE = "config.yaml", "model.safetensors"
MIN_SECONDS = 0.5  # shorter references say too little about a voice


class SpeakerNet(nn.Module):
    """wav [B, T] at 16 kHz (+ lengths) -> L2-normalised embeddings [B, dim]."""

    def __init__(self, n_mels: int = 80, channels: int = 256, dim: int = 192):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=n_mels)
        self.stem = nn.Sequential(nn.Conv1d(n_mels, channels, 5, padding=2), nn.ReLU(), nn.BatchNorm1d(channels))
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(channels, channels, 3, padding=d, dilation=d), nn.ReLU(), nn.BatchNorm1d(channels))
            for d in (2, 3, 4))
        self.expand = nn.Sequential(nn.Conv1d(channels, 3 * channels, 1), nn.ReLU())
        self.attention = nn.Sequential(nn.Conv1d(3 * channels, 128, 1), nn.Tanh(), nn.Conv1d(128, 3 * channels, 1))
        self.project = nn.Sequential(nn.Linear(6 * channels, dim), nn.BatchNorm1d(dim))

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        with torch.autocast(wav.device.type, enabled=False):
            feats = (self.mel(wav.float()) + 1e-6).log()  # [B, M, F]
        return feats - feats.mean(dim=(1, 2), keepdim=True)  # gain only: the spectrum's shape is the voice

    def forward(self, wav: torch.Tensor, num_samples: torch.Tensor | None = None) -> torch.Tensor:
        x = self.stem(self.features(wav))
        for block in self.blocks:
            x = x + block(x)
        x = self.expand(x)  # [B, 3C, F]
        frames = x.shape[-1]
        valid = torch.ones(x.shape[0], frames, dtype=torch.bool, device=x.device)
        if num_samples is not None:
            valid = torch.arange(frames, device=x.device)[None] < (num_samples // 160 + 1).clamp(max=frames)[:, None]
        scores = self.attention(x).masked_fill(~valid[:, None], float("-inf"))
        weights = scores.softmax(-1)
        mean = (weights * x).sum(-1)
        std = ((weights * x.pow(2)).sum(-1) - mean.pow(2)).clamp(min=1e-6).sqrt()
        return F.normalize(self.project(torch.cat([mean, std], -1)), dim=-1)


class SpeakerClassifier(L.LightningModule):
    """SpeakerNet + a cosine classifier over `voices`, trained with an additive margin.

    `voices`: the voice names to tell apart, or None to read them from `voices_manifest` (every value of
    `voice_fields` in it, sorted), so a config needs no list of hundreds of names.
    """

    def __init__(self, voices: list[str] | None = None, voices_manifest: str | None = None,
                 voice_fields: list[str] | None = None, channels: int = 256, dim: int = 192,
                 margin: float = 0.2, scale: float = 30.0, lr: float = 2e-3, weight_decay: float = 1e-4,
                 warmup_steps: int = 200):
        super().__init__()
        self.save_hyperparameters()
        if voices is None:
            if voices_manifest is None:
                raise ValueError("SpeakerClassifier needs `voices` or a `voices_manifest` to read them from")
            fields = voice_fields or ["question_voice"]
            voices = sorted({row[f] for row in read_manifest(voices_manifest) for f in fields if row.get(f)})
        if len(voices) < 2:
            raise ValueError(f"a speaker classifier needs at least 2 voices, got {voices}")
        self.hparams.voices = list(voices)  # saved with the weights: a reloaded model needs no manifest
        self.voices = list(voices)
        self.net = SpeakerNet(channels=channels, dim=dim)
        self.classes = nn.Parameter(torch.randn(len(voices), dim) * 0.01)

    # ------------------------------------------------------------------ use
    def _prepare(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        wav = audio.prepare(audio.as_batch(wav), sample_rate, SAMPLE_RATE)[:, 0]  # [B, T]
        seconds = wav.shape[-1] / SAMPLE_RATE
        if seconds < MIN_SECONDS:
            raise audio.AudioError(f"the voice recording is {seconds:.2f} s long; give at least {MIN_SECONDS} s")
        if wav.abs().amax() < 1e-4:
            raise audio.AudioError("the voice recording is silent; give a recording of someone speaking")
        return wav.to(self.device)

    @torch.no_grad()
    def embed(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Embeddings [B, dim] (unit length) of wav [T], [C, T] or [B, C, T] at `sample_rate`."""
        was_training = self.training
        self.eval()
        embedding = self.net(self._prepare(wav, sample_rate))
        self.train(was_training)
        return embedding

    def similarity(self, a: torch.Tensor, rate_a: int, b: torch.Tensor, rate_b: int) -> float:
        """Cosine similarity of two recordings' voices (1: the same voice)."""
        return float((self.embed(a, rate_a) * self.embed(b, rate_b)).sum(-1).mean())

    @torch.no_grad()
    def classify(self, wav: torch.Tensor, sample_rate: int) -> list[str]:
        """The training voice each recording is nearest to."""
        scores = self.embed(wav, sample_rate) @ F.normalize(self.classes, dim=-1).T
        return [self.voices[i] for i in scores.argmax(-1).tolist()]

    # ------------------------------------------------------------------ training
    def _logits(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.net(batch["wav"], batch["num_samples"])
        cosine = embedding @ F.normalize(self.classes, dim=-1).T
        targets = torch.tensor([self.voices.index(v) for v in batch["text"]], device=cosine.device)
        return cosine, targets

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        cosine, targets = self._logits(batch)
        margin = F.one_hot(targets, cosine.shape[-1]) * self.hparams.margin
        loss = F.cross_entropy(self.hparams.scale * (cosine - margin), targets)
        accuracy = (cosine.argmax(-1) == targets).float().mean()
        self.log_dict({"train/loss": loss, "train/accuracy": accuracy}, prog_bar=True, batch_size=len(targets))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        cosine, targets = self._logits(batch)
        self.log("val/accuracy", (cosine.argmax(-1) == targets).float().mean(), prog_bar=True,
                 batch_size=len(targets))

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        return {"optimizer": optimizer, "lr_scheduler": time_aware_scheduler(optimizer, self.trainer, hp.warmup_steps)}

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, out_dir: str | os.PathLike, overwrite: bool = False, half: bool = False) -> Path:
        state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
                 for k, v in self.state_dict().items()}
        with atomic_folder(out_dir, overwrite) as tmp:
            save_file(state, str(tmp / WEIGHTS_FILE))
            init_args = {k: v for k, v in self.hparams.items() if not k.startswith("_")}
            (tmp / CONFIG_FILE).write_text(yaml.safe_dump({"init_args": init_args}, sort_keys=False))
        return Path(out_dir)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> SpeakerClassifier:
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{folder} is not a saved SpeakerClassifier: it needs {CONFIG_FILE} and "
                                    f"{WEIGHTS_FILE}")
        saved = yaml.safe_load((folder / CONFIG_FILE).read_text()) or {}
        model = cls(**check_init_args(cls, saved.get("init_args", {}), folder / CONFIG_FILE))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in load_file(folder / WEIGHTS_FILE).items()})
        return model.eval()


class RandomCropsOf(torch.utils.data.Dataset):
    """Training items as random crops of at most `seconds` (a voice is in every part of a recording)."""

    def __init__(self, items: torch.utils.data.Dataset, seconds: float, seed: int = 0):
        self.items, self.samples, self.seed = items, int(seconds * SAMPLE_RATE), seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        wav = item["wav"]
        if wav.numel() > self.samples:
            start = random.Random(f"{self.seed}:{index}").randrange(wav.numel() - self.samples)
            wav = wav[start: start + self.samples]
        return {"wav": wav, "text": item["text"]}
