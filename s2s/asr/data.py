"""(audio, text) pairs from manifests, held in memory at 16 kHz (or as Whisper's encoder states, for a recogniser
that reads them), batched by length."""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import Dataset

from s2s import audio
from s2s.asr.features import SAMPLE_RATE
from s2s.asr.whisper_states import cached_states, is_whisper_frontend, pad_states
from s2s.data.datamodule import LengthBucketSampler
from s2s.data.manifest import read_manifest
from s2s.data.resumable import ResumableDataLoader, trainer_epoch


class SpeechTextDataset(Dataset):
    """Every (audio_field, text_field) pair named in `pairs` of every row of `manifest` (one path or a list of
    them, so that corpora rendered apart train together), loaded once as int16; with a Whisper `frontend`, as
    that Whisper's encoder states (float16, cached beside each manifest: `s2s/asr/whisper_states.py`)."""

    def __init__(self, manifest: str | Path | list[str | Path], pairs: list[tuple[str, str]],
                 frontend: str = "log-mel"):
        manifests = [Path(m) for m in (manifest if isinstance(manifest, (list, tuple)) else [manifest])]
        self.items: list[tuple[torch.Tensor, str]] = []
        self.states = is_whisper_frontend(frontend)
        for path in manifests:
            rows = read_manifest(path)
            for audio_field, text_field in pairs:
                kept = [row for row in rows if row.get(audio_field) and row.get(text_field)]
                if self.states and kept:
                    inputs = cached_states(path, kept, audio_field, frontend)
                else:
                    inputs = [(audio.load(path.parent / row[audio_field], SAMPLE_RATE)[0].mean(0).clamp(-1, 1)
                               * 32767).short() for row in kept]
                self.items += [(x, row[text_field]) for x, row in zip(inputs, kept)]
        if not self.items:
            raise ValueError(f"{', '.join(map(str, manifests))}: no rows with any of the (audio, text) fields {pairs}")

    def __len__(self) -> int:
        return len(self.items)

    def length(self, index: int) -> int:
        return self.items[index][0].shape[0]

    def __getitem__(self, index: int) -> dict:
        x, text = self.items[index]
        return {"states": x, "text": text} if self.states else {"wav": x.float() / 32767, "text": text}


def collate(items: list[dict]) -> dict:
    if "states" in items[0]:
        states, lengths = pad_states([item["states"] for item in items])
        return {"states": states, "lengths": lengths, "text": [item["text"] for item in items]}
    lengths = torch.tensor([item["wav"].numel() for item in items])
    wav = torch.zeros(len(items), int(lengths.max()))
    for row, item in zip(wav, items):
        row[: item["wav"].numel()] = item["wav"]
    return {"wav": wav, "num_samples": lengths, "text": [item["text"] for item in items]}


class SpeechTextDataModule(L.LightningDataModule):
    """`train`: one manifest or a list; `pairs`: which audio field is read with which text field, e.g.
    [[question_audio, question_written]]; `frontend`: the recogniser's (a Whisper size: the rows are read as its
    encoder states, computed once)."""

    def __init__(self, train: str | list[str], val: str | None = None, pairs: list[list[str]] | None = None,
                 batch_size: int = 32, num_workers: int = 0, frontend: str = "log-mel"):
        super().__init__()
        self.save_hyperparameters()
        self.pairs = [tuple(p) for p in (pairs or [["question_audio", "question"]])]
        self.train_set = self.val_set = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None and stage in (None, "fit"):
            self.train_set = SpeechTextDataset(self.hparams.train, self.pairs, self.hparams.frontend)
        if self.val_set is None and self.hparams.val:
            self.val_set = SpeechTextDataset(self.hparams.val, self.pairs, self.hparams.frontend)

    def _loader(self, dataset: SpeechTextDataset, shuffle: bool) -> ResumableDataLoader:
        lengths = [dataset.length(i) for i in range(len(dataset))]
        sampler = LengthBucketSampler(lengths, self.hparams.batch_size, shuffle=shuffle,
                                      epoch=trainer_epoch(self) if shuffle else None)
        return ResumableDataLoader(dataset, sampler, collate_fn=collate, num_workers=self.hparams.num_workers)

    def train_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> ResumableDataLoader | list:
        return self._loader(self.val_set, shuffle=False) if self.val_set is not None else []
