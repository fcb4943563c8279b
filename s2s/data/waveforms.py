"""Random fixed-length crops of speech for codec training, from a manifest or a folder of audio.

The whole corpus is held in memory at the codec's sample rate (an hour of
16 kHz audio is 230 MB), so a training step never waits for the disk.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from s2s import audio
from s2s.data.resumable import EpochBatchSampler, ResumableDataLoader, trainer_epoch
from s2s.data.sources import find_audio_files


def load_all(source: str | Path, sample_rate: int, limit: int | None = None) -> list[torch.Tensor]:
    return [audio.load(p, sample_rate)[0][0] for p in find_audio_files(source)[:limit]]


class RandomCrops(Dataset):
    """`length` crops of `crop_samples` per epoch, each from a random clip at a random offset (zero-padded if short).

    Crop `index` is a pure function of (seed, index); `CropBatches` numbers crops across epochs."""""

    def __init__(self, clips: list[torch.Tensor], crop_samples: int, length: int, seed: int = 0):
        self.clips, self.crop_samples, self.length, self.seed = clips, crop_samples, length, seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        clip = self.clips[int(torch.randint(len(self.clips), (1,), generator=g))]
        start = int(torch.randint(max(1, clip.shape[0] - self.crop_samples + 1), (1,), generator=g))
        crop = clip[start: start + self.crop_samples]
        return torch.nn.functional.pad(crop, (0, self.crop_samples - crop.shape[0]))


class CropBatches(EpochBatchSampler):
    """Epoch e holds crops e * length ... (e + 1) * length - 1 in order: crop k is drawn from seed and k alone,
    so every epoch sees new crops and a resumed run sees the same ones again."""

    def __init__(self, length: int, batch_size: int, epoch: Callable[[], int] | None = None):
        super().__init__(epoch)
        self.length, self.batch_size = length, batch_size

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        first = epoch * self.length
        return [list(range(first + i, first + i + self.batch_size))
                for i in range(0, self.length - self.batch_size + 1, self.batch_size)]


class WaveformDataModule(L.LightningDataModule):
    """Training crops from `train`; validation on the start of each clip in `val` (held-out voices)."""

    def __init__(self, train: str, val: str | None = None, sample_rate: int = 16000, crop_seconds: float = 1.28,
                 batch_size: int = 16, crops_per_epoch: int = 16000, val_clips: int = 16, val_seconds: float = 3.0,
                 num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if not hasattr(self, "train_clips"):
            self.train_clips = load_all(hp.train, hp.sample_rate)
            self.val_clips = load_all(hp.val, hp.sample_rate, hp.val_clips) if hp.val else []

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        crops = RandomCrops(self.train_clips, int(hp.crop_seconds * hp.sample_rate), hp.crops_per_epoch, seed=hp.seed)
        sampler = CropBatches(hp.crops_per_epoch, hp.batch_size, epoch=trainer_epoch(self))
        return ResumableDataLoader(crops, sampler, num_workers=hp.num_workers)

    def val_dataloader(self) -> DataLoader:
        n = int(self.hparams.val_seconds * self.hparams.sample_rate)
        clips = [c[:n] for c in self.val_clips]
        return DataLoader(clips, batch_size=1)
