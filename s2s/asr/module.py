"""RecognizerModule: the LightningModule that trains a CTCRecognizer (`s2s fit --config configs/asr/...`):
CTC loss on augmented audio, AdamW on a time-aware schedule, greedy CER on validation. `s2s export` (or
`save_pretrained`) writes the recogniser alone, which `CTCRecognizer.from_pretrained` loads without Lightning.
"""
from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.text import CharErrorRate

from s2s.asr.recognizer import CTCRecognizer, greedy_segments
from s2s.asr.whisper_states import is_whisper_frontend
from s2s.training import nested_state, time_aware_scheduler


class RecognizerModule(L.LightningModule):
    """Trains `self.recognizer`, a CTCRecognizer built from the architecture arguments (see its docstring).

    `augment`: mel-axis warp and SpecAugment on every training batch. `init_from` (a saved recogniser's folder)
    starts from its weights wherever names and shapes agree (`CTCRecognizer.init_from`).
    """

    def __init__(self, labels: str = "chars", dim: int = 192, layers: int = 5, heads: int = 4, ff_mult: int = 4,
                 conv_kernel: int = 15, subsample_channels: int = 64, dropout: float = 0.1, lr: float = 2e-3,
                 weight_decay: float = 0.01, warmup_steps: int = 300, augment: bool = True,
                 init_from: str | None = None, frontend: str = "log-mel"):
        super().__init__()
        self.save_hyperparameters()
        self.recognizer = CTCRecognizer(labels, dim, layers, heads, ff_mult, conv_kernel, subsample_channels, dropout,
                                        frontend)
        self.val_cer = CharErrorRate()
        if init_from is not None:
            self.recognizer.init_from(init_from)

    def forward(self, wav: torch.Tensor, num_samples: torch.Tensor):
        return self.recognizer(wav, num_samples, augment=self.training and self.hparams.augment)

    def _loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if ("states" in batch) != is_whisper_frontend(self.hparams.frontend):
            raise ValueError(f"the recogniser reads {self.hparams.frontend} but the data gives "
                             f"{'Whisper states' if 'states' in batch else 'audio'}: set data.init_args.frontend "
                             "to the model's frontend")
        if "states" in batch:  # cached Whisper encoder states
            _, log_probs, lengths = self.recognizer.from_features(batch["states"], batch["lengths"],
                                                                  augment=self.training and self.hparams.augment)
        else:
            _, log_probs, lengths = self(batch["wav"], batch["num_samples"])
        labels = self.recognizer.labels
        targets = [torch.tensor(labels.encode(text), dtype=torch.long) for text in batch["text"]]
        target_lengths = torch.tensor([t.numel() for t in targets])
        loss = F.ctc_loss(log_probs.transpose(0, 1), torch.cat(targets), lengths.cpu(), target_lengths,
                          blank=0, reduction="mean", zero_infinity=True)
        return loss, log_probs, lengths

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["text"]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, log_probs, lengths = self._loss(batch)
        labels = self.recognizer.labels
        hypotheses = [labels.decode([label for label, _, _ in greedy_segments(lp, int(n))])
                      for lp, n in zip(log_probs, lengths)]
        references = [labels.decode(labels.encode(text)) for text in batch["text"]]
        self.val_cer.update(hypotheses, references)
        size = len(batch["text"])
        self.log("val/loss", loss, batch_size=size)
        self.log("val/cer", self.val_cer, prog_bar=True, batch_size=size)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, betas=(0.9, 0.98))
        return {"optimizer": optimizer, "lr_scheduler": time_aware_scheduler(optimizer, self.trainer, hp.warmup_steps)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Checkpoints from before the recogniser had its own module hold `net.*`: read them as `recognizer.net.*`."""
        checkpoint["state_dict"] = nested_state(checkpoint.get("state_dict", {}), "recognizer.")

    def save_pretrained(self, out_dir: str | os.PathLike, overwrite: bool = False, half: bool = False) -> Path:
        """The recogniser's folder (`CTCRecognizer.save_pretrained`): where training started is not part of it."""
        return self.recognizer.save_pretrained(out_dir, overwrite=overwrite, half=half)
