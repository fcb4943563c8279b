"""CTCRecognizer: the conformer CTC recogniser as a plain `nn.Module`, the way it is used (`from_pretrained`, then
`transcribe`, or the frames and log-probs from `forward`). Training wraps it: `s2s/asr/module.py`.

A saved recogniser is a folder: `config.yaml` (its architecture), `model.safetensors`, its text LM when one was
counted (`text_lm.json.gz`, fused into a beam search) and, for `labels: tokenizer:...`, the tokenizer it spells in.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
import yaml
from safetensors.torch import load_file, save_file

from s2s.asr.beam import beam_segments
from s2s.asr.char_lm import FILE_NAME as TEXT_LM_FILE
from s2s.asr.char_lm import CharNgramLM
from s2s.asr.features import N_MELS, LogMel, mask_states, spec_augment, warp_mel_axis
from s2s.asr.labels import build_labels
from s2s.asr.model import ConformerConfig, ConformerCTC, StatesCTC
from s2s.asr.whisper_states import WhisperStates, is_whisper_frontend
from s2s.data.manifest import read_manifest
from s2s.files import atomic_folder, check_init_args

CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_DIR = "config.yaml", "model.safetensors", "tokenizer"
# What the training module adds to a saved config (older folders hold them): read past, never built.
TRAINING_KEYS = ("lr", "weight_decay", "warmup_steps", "augment", "init_from")


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


class CTCRecognizer(nn.Module):
    """`labels`: "chars" (a judge of spoken answers), "written" or "tokenizer:<folder>" (the LM's ears).
    25 frames a second of hidden states and label log-probs from 16 kHz audio.

    `frontend`: what the conformer reads. "log-mel" (the default) is the recogniser a student trains from scratch
    on a CPU; a Whisper size ("whisper-tiny.en") reads pretrained Whisper's frozen encoder states instead
    (`s2s/asr/whisper_states.py`), which have heard people, and trains only the head."""

    def __init__(self, labels: str = "chars", dim: int = 192, layers: int = 5, heads: int = 4, ff_mult: int = 4,
                 conv_kernel: int = 15, subsample_channels: int = 64, dropout: float = 0.1,
                 frontend: str = "log-mel"):
        super().__init__()
        self.init_args = {"labels": labels, "dim": dim, "layers": layers, "heads": heads, "ff_mult": ff_mult,
                          "conv_kernel": conv_kernel, "subsample_channels": subsample_channels, "dropout": dropout,
                          "frontend": frontend}
        self.labels = build_labels(labels)
        self.config = ConformerConfig(N_MELS, dim, layers, heads, ff_mult, conv_kernel, subsample_channels,
                                      dropout, self.labels.size)
        if is_whisper_frontend(frontend):
            self.features = WhisperStates(frontend)
            self.net = StatesCTC(self.config, self.features.width)
        else:
            self.net = ConformerCTC(self.config)
            self.features = LogMel()
        self.frontend = frontend
        # A character LM of the training text (`text_lm.json.gz` in a saved folder): when set, transcripts come
        # from a beam search fused with it instead of the greedy path. Not a weight: it is counted, not trained.
        self.text_lm: CharNgramLM | None = None

    def init_from(self, folder: str | os.PathLike) -> list[str]:
        """Copy the weights of the recogniser saved in `folder` that fit this one; returns the names left new.
        Typically everything but the output layer when the labels change: an encoder that already hears needs
        only a new head, far cheaper than hearing from scratch on a CPU."""
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

    def forward(self, wav: torch.Tensor, num_samples: torch.Tensor,
                augment: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """wav [B, T] at 16 kHz -> hidden [B, F, dim], log-probs [B, F, labels], lengths [B] (25 frames a second).
        `augment` (training): warp the mel axis and mask bands and stretches of time first."""
        feats, lengths = self.features(wav, num_samples)
        return self.from_features(feats, lengths, augment)

    def from_features(self, feats: torch.Tensor, lengths: torch.Tensor,
                      augment: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`forward` from the front end's output (log-mel, or cached Whisper states [B, F, width] in training)."""
        if augment:
            feats = mask_states(feats, lengths) if is_whisper_frontend(self.frontend) else \
                spec_augment(warp_mel_axis(feats), lengths)
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

    def save_pretrained(self, out_dir: str | os.PathLike, overwrite: bool = False, half: bool = False) -> Path:
        """A folder with config.yaml, model.safetensors and (for tokenizer labels) the tokenizer it spells with.
        `half` stores float16 weights; `from_pretrained` casts them back to float32."""
        init_args = dict(self.init_args)
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
    def from_pretrained(cls, folder: str | os.PathLike) -> CTCRecognizer:
        """The recogniser saved in `folder` (by `save_pretrained` or `s2s export`), in eval mode."""
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise FileNotFoundError(f"{folder} is not a saved CTCRecognizer: it needs {CONFIG_FILE} and {WEIGHTS_FILE}")
        saved = yaml.safe_load((folder / CONFIG_FILE).read_text()) or {}
        init_args = check_init_args(cls, saved.get("init_args", {}), folder / CONFIG_FILE, ignored=TRAINING_KEYS)
        if init_args.get("labels", "").startswith("tokenizer:"):
            init_args["labels"] = f"tokenizer:{folder / init_args['labels'].partition(':')[2]}"
        model = cls(**init_args)
        model.net.load_state_dict(load_file(folder / WEIGHTS_FILE))
        if (folder / TEXT_LM_FILE).is_file():
            model.use_text_lm(CharNgramLM.load(folder / TEXT_LM_FILE))
        return model.eval()


def build_for_recognizer(folder: str | os.PathLike, manifests, fields, order: int = 10, overwrite: bool = False,
                         **fusion) -> Path:
    """Count the `fields` texts of every row of `manifests` in the alphabet of the recogniser saved in `folder`
    and save the model there (FILE_NAME), where `CTCRecognizer.from_pretrained` finds it."""
    recognizer = CTCRecognizer.from_pretrained(folder)
    labels = recognizer.labels
    if getattr(labels, "alphabet", None) is None:
        raise ValueError(f"{folder} spells {labels.kind} labels; a text LM needs a recogniser of characters "
                         "(labels: chars or written)")
    texts = [labels.normalise(row[field]) for manifest in manifests for row in read_manifest(manifest)
             for field in fields if row.get(field)]
    if not texts:
        raise ValueError(f"no rows of {', '.join(map(str, manifests))} have any of the fields {', '.join(fields)}")
    return CharNgramLM.from_texts(texts, labels.alphabet, order=order, **fusion).save(Path(folder) / TEXT_LM_FILE,
                                                                                      overwrite=overwrite)
