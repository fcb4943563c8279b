"""Spoken reasoning examples as batches: manifest text plus codec tokens, bucketed by length.

Codes come from the token cache (`s2s data tokenize`) when it exists for the
codec, else they are encoded on the fly with the same call, so both paths
give identical tokens. Batches group examples of similar length (fewer pad
frames, faster steps) while their order still changes every epoch.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import Dataset

from s2s.codecs import Codec, load_codec
from s2s.data.manifest import read_manifest
from s2s.data.resumable import EpochBatchSampler, ResumableDataLoader, trainer_epoch
from s2s.data.token_cache import TokenCache, cache_folder, encode_file

TEXT_FIELDS = ("family", "question", "question_written", "thought", "answer", "reply")
CODE_FIELDS = ("question_audio", "reply_audio")


class SpokenReasoningDataset(Dataset):
    """Rows of a manifest with `question_codes` and `reply_codes` [K, F]."""

    def __init__(self, manifest: str | Path, codec: Codec, cache: TokenCache | None = None):
        self.manifest = Path(manifest)
        self.rows = read_manifest(self.manifest)
        self.codec, self.cache = codec, cache

    def __len__(self) -> int:
        return len(self.rows)

    def codes(self, row: dict, field: str) -> torch.Tensor:
        key = f"{row['id']}:{field}"
        if self.cache is not None and key in self.cache:
            return self.cache.get(row["id"], field)
        return encode_file(self.codec, self.manifest.parent / row[field])

    def length_frames(self, index: int) -> int:
        """Question plus reply frames, from the manifest's durations (no audio is read)."""
        row = self.rows[index]
        seconds = sum(float(row.get(f.replace("audio", "duration_s"), 0.0)) for f in CODE_FIELDS)
        return int(seconds * self.codec.frame_rate)

    def __getitem__(self, index: int) -> dict:
        row = self.rows[index]
        item = {"id": row["id"], **{k: row.get(k, "") for k in TEXT_FIELDS}}
        for field in CODE_FIELDS:
            if row.get(field):
                item[field.replace("audio", "codes")] = self.codes(row, field)
        return item


def collate(items: list[dict]) -> dict:
    """Texts as lists; codes padded with 0 to [B, K, F_max], with their lengths in frames [B]."""
    batch = {key: [item[key] for item in items] for key in items[0] if not key.endswith("_codes")}
    for key in (k for k in items[0] if k.endswith("_codes")):
        codes = [item[key] for item in items]
        lengths = torch.tensor([c.shape[-1] for c in codes])
        padded = torch.zeros(len(codes), codes[0].shape[0], int(lengths.max()), dtype=torch.long)
        for i, c in enumerate(codes):
            padded[i, :, : c.shape[-1]] = c
        batch[key], batch[key.replace("codes", "lengths")] = padded, lengths
    return batch


class LengthBucketSampler(EpochBatchSampler):
    """Shuffle, cut into pools of `batch_size * pool_batches`, sort each pool by length, batch, shuffle batches."""

    def __init__(self, lengths: list[int], batch_size: int, pool_batches: int = 50, seed: int = 0,
                 shuffle: bool = True, epoch: Callable[[], int] | None = None):
        super().__init__(epoch)
        self.lengths, self.batch_size, self.pool_batches = lengths, batch_size, pool_batches
        self.seed, self.shuffle = seed, shuffle

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed + epoch)
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        pool_size = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(order), pool_size):
            pool = sorted(order[start: start + pool_size], key=self.lengths.__getitem__)
            batches += [pool[i: i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        return batches


class SpokenReasoningDataModule(L.LightningDataModule):
    def __init__(self, train: str, val: str | None = None, codec: str = "s2s-tiny", use_cache: bool = True,
                 batch_size: int = 16, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()

    def _dataset(self, manifest: str) -> SpokenReasoningDataset:
        folder = cache_folder(Path(manifest), self.codec, fingerprint=self.fingerprint)
        cache = TokenCache(folder) if self.hparams.use_cache and (folder / "cache.json").exists() else None
        return SpokenReasoningDataset(manifest, self.codec, cache)

    def setup(self, stage: str | None = None) -> None:
        if not hasattr(self, "codec"):
            self.codec = load_codec(self.hparams.codec)
            self.fingerprint = self.codec.fingerprint()  # once: it hashes every weight
            self.train_set = self._dataset(self.hparams.train)
            self.val_set = self._dataset(self.hparams.val) if self.hparams.val else None

    def _loader(self, dataset: SpokenReasoningDataset, shuffle: bool) -> ResumableDataLoader:
        lengths = [dataset.length_frames(i) for i in range(len(dataset))]
        sampler = LengthBucketSampler(lengths, self.hparams.batch_size, seed=self.hparams.seed, shuffle=shuffle,
                                      epoch=trainer_epoch(self) if shuffle else None)
        return ResumableDataLoader(dataset, sampler, collate_fn=collate, num_workers=self.hparams.num_workers)

    def train_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> ResumableDataLoader | list:
        return self._loader(self.val_set, shuffle=False) if self.val_set else []
