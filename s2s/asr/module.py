"""CTCRecognizer: the LightningModule that trains the conformer (`s2s fit --config configs/asr/...`).

Augmentation is what makes a few thousand synthetic utterances generalise to
unseen voices: a random stretch of the mel axis (a different vocal tract),
then SpecAugment's frequency and time masks.
"""
from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file, save_file
from torchmetrics.text import CharErrorRate

from s2s.asr.beam import beam_segments
from s2s.asr.char_lm import FILE_NAME as TEXT_LM_FILE
from s2s.asr.char_lm import CharNgramLM
from s2s.asr.features import N_MELS, LogMel
from s2s.asr.labels import build_labels
from s2s.asr.model import ConformerConfig, ConformerCTC
from s2s.training import atomic_folder, check_init_args, time_aware_scheduler

CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_DIR = "config.yaml", "model.safetensors", "tokenizer"


def warp_mel_axis(feats: torch.Tensor, low: float = 0.88, high: float = 1.12) -> torch.Tensor:
    """Stretch each utterance's mel axis by its own random factor (vocal-tract-length perturbation)."""
    batch, frames, mels = feats.shape
    scale = torch.empty(batch, 1, 1, device=feats.device).uniform_(low, high)
    source = (torch.arange(mels, device=feats.device).float() / scale).clamp(max=mels - 1)  # [B, 1, M]
    lower = source.floor().long()
    upper = (lower + 1).clamp(max=mels - 1)
    frac = source - lower
    take = partial(torch.gather, feats, 2)
    return take(lower.expand(batch, frames, mels)) * (1 - frac) + take(upper.expand(batch, frames, mels)) * frac


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, freq_masks: int = 2, freq_width: int = 12,
                 time_masks: int = 4, time_fraction: float = 0.05) -> torch.Tensor:
    """Zero random mel bands and random stretches of time, each utterance its own."""
    batch, frames, mels = feats.shape
    keep = torch.ones_like(feats, dtype=torch.bool)
    bins, steps = torch.arange(mels, device=feats.device), torch.arange(frames, device=feats.device)
    for _ in range(freq_masks):
        width = torch.randint(0, freq_width + 1, (batch, 1), device=feats.device)
        start = (torch.rand(batch, 1, device=feats.device) * (mels - width)).long()
        keep &= ~((bins >= start) & (bins < start + width))[:, None, :]
    for _ in range(time_masks):
        width = (torch.rand(batch, 1, device=feats.device) * time_fraction * lengths[:, None]).long()
        start = (torch.rand(batch, 1, device=feats.device) * (lengths[:, None] - width)).long()
        keep &= ~((steps >= start) & (steps < start + width))[:, :, None]
    return feats * keep


def greedy_segments(log_probs: torch.Tensor, length: int) -> list[tuple[int, int, int]]:
    """CTC greedy path of one utterance as (label, first frame, end frame) runs, blanks dropped."""
    best = log_probs[:length].argmax(-1).tolist()
    runs, start = [], 0
    for t in range(1, length + 1):
        if t == length or best[t] != best[start]:
            if best[start] != 0:
                runs.append((best[start], start, t))
            start = t
    return runs


class CTCRecognizer(L.LightningModule):
    """`labels`: "chars" (a judge of spoken answers), "written" or "tokenizer:<folder>" (the LM's ears).

    `init_from` (a saved recogniser's folder) starts training from its weights wherever names and shapes
    agree, typically everything but the output layer when the labels change: an encoder that already
    hears needs only a new head, far cheaper than hearing from scratch on a CPU.
    """

    def __init__(self, labels: str = "chars", dim: int = 192, layers: int = 5, heads: int = 4, ff_mult: int = 4,
                 conv_kernel: int = 15, subsample_channels: int = 64, dropout: float = 0.1, lr: float = 2e-3,
                 weight_decay: float = 0.01, warmup_steps: int = 300, augment: bool = True,
                 init_from: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.labels = build_labels(labels)
        self.config = ConformerConfig(N_MELS, dim, layers, heads, ff_mult, conv_kernel, subsample_channels,
                                      dropout, self.labels.size)
        self.net = ConformerCTC(self.config)
        self.features = LogMel()
        self.val_cer = CharErrorRate()
        # A character LM of the training text (`text_lm.json.gz` in a saved folder): when set, transcripts come
        # from a beam search fused with it instead of the greedy path. Not a weight: it is counted, not trained.
        self.text_lm: CharNgramLM | None = None
        if init_from is not None:
            self.init_from(init_from)

    def init_from(self, folder: str | os.PathLike) -> list[str]:
        """Copy the weights of the recogniser saved in `folder` that fit this one; returns the names left new."""
        path = Path(folder) / WEIGHTS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"init_from {folder}: no {WEIGHTS_FILE} there; give a folder saved by "
                                    "CTCRecognizer.save_pretrained or s2s export")
        own, source = self.net.state_dict(), load_file(path)
        fitting = {k: v.float() for k, v in source.items() if k in own and own[k].shape == v.shape}
        if len(fitting) < len(own) / 2:
            raise ValueError(f"init_from {folder}: only {len(fitting)} of its {len(source)} weights fit this "
                             "recogniser; give one with the same dim, layers, heads and subsampling")
        self.net.load_state_dict(fitting, strict=False)
        return sorted(set(own) - set(fitting))

    # ------------------------------------------------------------------ inference
    def forward(self, wav: torch.Tensor, num_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """wav [B, T] at 16 kHz -> hidden [B, F, dim], log-probs [B, F, labels], lengths [B] (25 frames a second)."""
        feats, lengths = self.features(wav, num_samples)
        if self.training and self.hparams.augment:
            feats = spec_augment(warp_mel_axis(feats), lengths)
        hidden, logits, lengths = self.net(feats, lengths)
        return hidden, logits.float().log_softmax(-1), lengths

    def use_text_lm(self, lm: CharNgramLM | None) -> None:
        """Decode with `lm` (None: greedy). Its alphabet must be the one this recogniser spells."""
        alphabet = getattr(self.labels, "alphabet", None)
        if lm is not None and lm.alphabet != alphabet:
            raise ValueError(f"the text LM is written in another alphabet than this recogniser's {self.labels.kind} "
                             "labels; build it for this recogniser with s2s asr lm ITS_FOLDER")
        self.text_lm = lm

    def segments(self, log_probs: torch.Tensor, length: int) -> list[tuple[int, int, int]]:
        """One utterance's (label, first frame, end frame) runs: the LM-fused beam when a text LM is set
        (`use_text_lm` checked that it spells this recogniser's characters), else the greedy path."""
        lm = self.text_lm
        if lm is None:
            return greedy_segments(log_probs, length)
        return beam_segments(log_probs, length, lm.alphabet, lm, lm.beam, lm.alpha, lm.beta)

    @torch.no_grad()
    def transcribe(self, wav: torch.Tensor, num_samples: torch.Tensor | None = None) -> list[str]:
        """CTC transcripts of wav [B, T] at 16 kHz (greedy, or beam search with the text LM when one is set)."""
        if num_samples is None:
            num_samples = torch.full((wav.shape[0],), wav.shape[1], device=wav.device)
        _, log_probs, lengths = self(wav, num_samples)
        return [self.labels.decode([label for label, _, _ in self.segments(lp, int(n))])
                for lp, n in zip(log_probs, lengths)]

    # ------------------------------------------------------------------ training
    def _loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        _, log_probs, lengths = self(batch["wav"], batch["num_samples"])
        targets = [torch.tensor(self.labels.encode(text), dtype=torch.long) for text in batch["text"]]
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
        hypotheses = [self.labels.decode([label for label, _, _ in greedy_segments(lp, int(n))])
                      for lp, n in zip(log_probs, lengths)]
        references = [self.labels.decode(self.labels.encode(text)) for text in batch["text"]]
        self.val_cer.update(hypotheses, references)
        size = len(batch["text"])
        self.log("val/loss", loss, batch_size=size)
        self.log("val/cer", self.val_cer, prog_bar=True, batch_size=size)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, betas=(0.9, 0.98))
        return {"optimizer": optimizer, "lr_scheduler": time_aware_scheduler(optimizer, self.trainer, hp.warmup_steps)}

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, out_dir: str | os.PathLike, overwrite: bool = False, half: bool = False) -> Path:
        """A folder with config.yaml, model.safetensors and (for tokenizer labels) the tokenizer it spells with.
        `half` stores float16 weights; `from_folder` casts them back to float32."""
        # The saved weights are the whole model: where training started (`init_from`) is not needed to load it.
        init_args = {k: v for k, v in self.hparams.items() if not k.startswith("_") and k != "init_from"}
        with atomic_folder(out_dir, overwrite) as tmp:
            if self.labels.kind == "tokenizer":
                self.labels.tokenizer.save_pretrained(tmp / TOKENIZER_DIR)
                init_args["labels"] = f"tokenizer:{TOKENIZER_DIR}"
            weights = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
                       for k, v in self.net.state_dict().items()}
            save_file(weights, tmp / WEIGHTS_FILE)
            if self.text_lm is not None:
                self.text_lm.save(tmp / TEXT_LM_FILE)
            (tmp / CONFIG_FILE).write_text(yaml.safe_dump({"init_args": init_args}, sort_keys=False))
        return Path(out_dir)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> CTCRecognizer:
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{folder} is not a saved CTCRecognizer: it needs {CONFIG_FILE} and {WEIGHTS_FILE}")
        saved = yaml.safe_load((folder / CONFIG_FILE).read_text()) or {}
        init_args = check_init_args(cls, saved.get("init_args", {}), folder / CONFIG_FILE)
        if init_args.get("labels", "").startswith("tokenizer:"):
            init_args["labels"] = f"tokenizer:{folder / init_args['labels'].partition(':')[2]}"
        model = cls(**init_args)
        model.net.load_state_dict(load_file(folder / WEIGHTS_FILE))
        if (folder / TEXT_LM_FILE).is_file():
            model.use_text_lm(CharNgramLM.load(folder / TEXT_LM_FILE))
        return model.eval()
