"""Training the word decoder (`s2s/lm/word_decoder.py`) on the word chunks of a reasoner's replies:
`s2s fit --config configs/lm/word-decoder.yaml`."""
from __future__ import annotations

import os
import random
from functools import partial
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader

from s2s.eval.reasoning import DEFAULT_JUDGE
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.reply_speech import reply_speech_rows
from s2s.lm.vocab import JointVocab
from s2s.lm.word_decoder import WordDecoder, collate, load_decoder, save_decoder, word_occurrences
from s2s.training import time_aware_scheduler


class WordDecoderModule(L.LightningModule):
    """Trains a WordDecoder for the word_timed reasoner saved in `reasoner` (its vocabulary: text ids,
    codebooks, longest duration). Cross-entropy of every frame's codes, plus `duration_weight` times that of
    each word's duration (with `durations`); `s2s export` writes the decoder's folder, which goes inside the
    reasoner's as `word_decoder/`. `init_from`: a saved decoder folder to start from (its weights; parts it
    lacks, such as a duration predictor, start fresh), to go on training a shipped decoder on new data."""

    def __init__(self, reasoner: str, dim: int = 256, layers: int = 4, heads: int = 4, dropout: float = 0.1,
                 durations: bool = True, duration_weight: float = 1.0, lr: float = 1e-3, weight_decay: float = 0.01,
                 warmup_steps: int = 200, init_from: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        vocab = reasoner_vocab(reasoner)
        self.decoder = WordDecoder(vocab.text_vocab_size, vocab.num_codebooks, vocab.codebook_size, vocab.durations,
                                   dim=dim, layers=layers, heads=heads, dropout=dropout, durations=durations)
        if init_from is not None:  # a resumed run's checkpoint then overwrites these weights, as it should
            self._start_from(init_from)

    def _start_from(self, folder: str) -> None:
        start = load_decoder(folder, reasoner_vocab(self.hparams.reasoner))
        shapes = {k: v.shape for k, v in self.decoder.state_dict().items()}
        wrong = [k for k, v in start.state_dict().items() if k in shapes and v.shape != shapes[k]]
        extra = [k for k in start.state_dict() if k not in shapes]
        if wrong or extra:
            raise ValueError(f"init_from {folder}: its decoder is not this config's ({(wrong + extra)[0]} differs): "
                             f"give the same dim, layers and heads as its config.yaml")
        self.decoder.load_state_dict(start.state_dict(), strict=False)

    def _loss(self, batch: dict) -> dict[str, torch.Tensor]:
        inputs = {k: v for k, v in batch.items() if k != "codes"}
        logits = self.decoder(**inputs)
        codes = batch["codes"]
        frames_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), codes.reshape(-1), ignore_index=-100)
        said = codes >= 0
        parts = {"frames_loss": frames_loss, "loss": frames_loss,
                 "code_accuracy": ((logits.argmax(-1) == codes) & said).sum() / said.sum().clamp(min=1)}
        first = batch["chunk"] == 0  # a word's first chunk: the duration the LM would choose
        if self.decoder.predicts_durations and bool(first.any()):
            predicted = self.decoder.duration_logits(batch["word"][first], batch["before"][first],
                                                     batch["after"][first])
            target = batch["lengths"][first] - 1
            parts["duration_loss"] = F.cross_entropy(predicted, target)
            parts["duration_error"] = (predicted.argmax(-1) - target).abs().float().mean()  # frames
            parts["loss"] = frames_loss + self.hparams.duration_weight * parts["duration_loss"]
        return parts

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        parts = self._loss(batch)
        self.log_dict({f"train/{k}": v for k, v in parts.items()}, prog_bar=True)
        return parts["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        parts = self._loss(batch)
        self.log_dict({f"val/{k}": v for k, v in parts.items()}, prog_bar=True)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        return {"optimizer": optimizer, "lr_scheduler": time_aware_scheduler(optimizer, self.trainer, hp.warmup_steps)}

    def save_pretrained(self, out_dir: str | os.PathLike, overwrite: bool = False, half: bool = False) -> Path:
        return save_decoder(self.decoder, out_dir, overwrite=overwrite, half=half)


def reasoner_vocab(folder: str | os.PathLike) -> JointVocab:
    """The joint vocabulary of the reasoner saved in `folder` (its config.yaml), without loading its weights."""
    config = Path(folder) / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{folder} is not a saved SpeechReasoningLM ({config} is missing): give the "
                                "folder of the word_timed reasoner the decoder is for")
    saved = yaml.safe_load(config.read_text()) or {}
    if saved.get("init_args", {}).get("format") != "word_timed":
        raise ValueError(f"{folder} is a {saved.get('init_args', {}).get('format')} model; a word decoder says the "
                         "words of word_timed replies")
    return JointVocab.from_dict(saved["vocab"])


class WordChunkData(L.LightningDataModule):
    """Every word chunk said in the replies of `train` (`word_occurrences`: the reasoner's codes of each
    distinct reply, its words timed by the CTC `judge`, both cached beside the manifest); `val_chunks` of them,
    drawn with `seed`, are held out for validation."""

    def __init__(self, reasoner: str, train: str | list[str], judge: str = "default", val_chunks: int = 500,
                 batch_size: int = 64, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.chunks: dict[str, list[dict]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.chunks:
            return
        hp = self.hparams
        manifests = [hp.train] if isinstance(hp.train, str) else list(hp.train)
        judge = str(DEFAULT_JUDGE) if hp.judge == "default" else hp.judge
        model = SpeechReasoningLM.from_pretrained(hp.reasoner)
        chunks = word_occurrences(reply_speech_rows(model, manifests, judge), model.vocab)
        if len(chunks) <= hp.val_chunks:
            raise ValueError(f"{', '.join(manifests)} say only {len(chunks)} word chunks, not more than val_chunks "
                             f"({hp.val_chunks}): give more replies or hold out fewer")
        random.Random(hp.seed).shuffle(chunks)
        self.chunks = {"val": chunks[: hp.val_chunks], "train": chunks[hp.val_chunks:]}
        self.vocab = model.vocab

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        collate_chunks = partial(collate, text_vocab_size=self.vocab.text_vocab_size,
                                 num_codebooks=self.vocab.num_codebooks)
        generator = torch.Generator().manual_seed(self.hparams.seed)
        return DataLoader(self.chunks[split], batch_size=self.hparams.batch_size, shuffle=shuffle,
                          collate_fn=collate_chunks, generator=generator, drop_last=shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)
