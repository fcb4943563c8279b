"""Recordings labelled by voice, for the speaker-ID model: training crops, and held-out sentences of the same
voices for validation (the test split's voices are held out from the classifier too, so they cannot check it)."""
from __future__ import annotations

import lightning as L
from torch.utils.data import Subset

from s2s.asr.data import SpeechTextDataset, collate
from s2s.data.datamodule import LengthBucketSampler
from s2s.data.resumable import ResumableDataLoader, trainer_epoch
from s2s.style.speaker import RandomCropsOf


class VoiceDataModule(L.LightningDataModule):
    """`pairs`: which audio field is read with which voice field, e.g. [[question_audio, question_voice]].
    Every `val_every`-th recording of `train` is kept apart for validation: the same voices, other sentences."""

    def __init__(self, train: str, pairs: list[list[str]] | None = None, val_every: int = 20,
                 crop_seconds: float = 2.0, batch_size: int = 64, num_workers: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.pairs = [tuple(p) for p in (pairs or [["question_audio", "question_voice"]])]
        self.train_set = self.val_set = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            every = self.hparams.val_every
            recordings = SpeechTextDataset(self.hparams.train, self.pairs)
            train = [i for i in range(len(recordings)) if i % every]
            self.train_set = RandomCropsOf(Subset(recordings, train), self.hparams.crop_seconds)
            self.val_set = Subset(recordings, list(range(0, len(recordings), every)))
            self.lengths = {"train": [min(recordings.items[i][0].numel(), self.train_set.samples) for i in train],
                            "val": [recordings.items[i][0].numel() for i in range(0, len(recordings), every)]}

    def _loader(self, dataset, lengths: list[int], shuffle: bool) -> ResumableDataLoader:
        sampler = LengthBucketSampler(lengths, self.hparams.batch_size, shuffle=shuffle,
                                      epoch=trainer_epoch(self) if shuffle else None)
        return ResumableDataLoader(dataset, sampler, collate_fn=collate, num_workers=self.hparams.num_workers)

    def train_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.train_set, self.lengths["train"], shuffle=True)

    def val_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.val_set, self.lengths["val"], shuffle=False)
