"""Training the voice converter (`s2s fit --config configs/style/converter.yaml`): `ConverterModule` wraps a
VoiceConverter (`s2s/style/converter.py`) and trains its network by reconstruction on `ConversionDataModule`'s
recordings: a recording's content (read through a random mel-axis warp) and another recording of the same voice
give back the first recording's codec latent (L1)."""
from __future__ import annotations

import os
import random
from pathlib import Path

import lightning as L
import torch

from s2s import audio
from s2s.data.datamodule import LengthBucketSampler
from s2s.data.resumable import ResumableDataLoader, trainer_epoch
from s2s.style.converter import PITCH_STEP, PITCHES, SAMPLE_RATE, VoiceConverter
from s2s.training import nested_state, own_hyperparameters, time_aware_scheduler


class ConverterModule(L.LightningModule):
    """Trains `self.converter`, a VoiceConverter built from the model's arguments (see it); the content encoder
    and codec stay frozen. `warp`: the range of the random mel-axis warp of the content's input while training."""

    def __init__(self, content_encoder: str, codec: str = "s2s-tiny", dim: int = 256, layers: int = 6,
                 bottleneck: int = 32, kernel_size: int = 7, warp: tuple[float, float] = (0.82, 1.22),
                 num_codebooks: int = 8, lr: float = 2e-3, weight_decay: float = 1e-4, warmup_steps: int = 200):
        super().__init__()
        self.save_hyperparameters()
        with own_hyperparameters():
            self.converter = VoiceConverter(content_encoder, codec, dim, layers, bottleneck, kernel_size, num_codebooks)

    def train(self, mode: bool = True):  # the content encoder and codec stay frozen in eval mode
        super().train(mode)
        self.converter.content_encoder.eval()
        self.converter.codec.eval()
        return self

    def _loss(self, batch: dict, warp) -> torch.Tensor:
        wav, num_samples, converter = batch["wav"], batch["num_samples"], self.converter
        with torch.no_grad():
            target = converter.codec.latent(wav)  # [B, latent, F]
        content, lengths = converter.content(batch["content"], batch["content_samples"], warp)
        frames = target.shape[-1]
        predicted = converter.net(content, lengths, batch["reference"], batch["reference_samples"], batch["pitch"],
                                  frames)
        valid = (torch.arange(frames, device=wav.device)[None]
                 < torch.ceil(num_samples / converter.codec.cfg.hop_samples)[:, None])[:, None].to(predicted.dtype)
        return ((predicted - target).abs() * valid).sum() / (valid.sum() * target.shape[1]).clamp(min=1)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch, tuple(self.hparams.warp))
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["num_samples"]))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.log("val/loss", self._loss(batch, None), prog_bar=True, batch_size=len(batch["num_samples"]))

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.converter.net.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        return {"optimizer": optimizer, "lr_scheduler": time_aware_scheduler(optimizer, self.trainer, hp.warmup_steps)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Checkpoints from before the converter had its own module hold `net.*`: read them as `converter.net.*`."""
        checkpoint["state_dict"] = nested_state(checkpoint.get("state_dict", {}), "converter.")

    def save_pretrained(self, out_dir: str | os.PathLike, overwrite: bool = False, half: bool = False) -> Path:
        return self.converter.save_pretrained(out_dir, overwrite=overwrite, half=half)


def pitch_word(target_pitch: float, reference_pitch: float) -> int:
    """The pitch id (PITCHES) of a recording against its reference, in espeak-ng's pitch units (0-99): more than
    PITCH_STEP lower is low, more than PITCH_STEP higher is high (the style corpus's low and high are 30 away)."""
    offset = target_pitch - reference_pitch
    return PITCHES.index("low" if offset < -PITCH_STEP else "high" if offset > PITCH_STEP else "normal")


class ConversionDataset(torch.utils.data.Dataset):
    """Recordings with their voice and pitch, for training by reconstruction: each item is a target recording,
    the recording its content is taken from, and a reference (another recording of the same voice).

    * replies of a styled corpus (rows with `reply_style`): the content is the same words at a random one of
      their pitches where the corpus has them (`reply_audio_low/normal/high`, the same reply, voice and rate at
      each pitch, aligned within a few frames), so the pitch word, not the content, must say the pitch;
    * voice prompts (`voice_audio`, normal pitch) and, with `questions`, the questions of any corpus (hundreds of
      voices at random pitches): their own content. Questions teach the reference encoder voices beyond the six
      of the style corpus, so that an unseen reference is cloned rather than mapped to the nearest of six.

    References are voice prompts and questions of other rows. The pitch word is the target's pitch against the
    reference's (`pitch_word`). `val_every`/`validation`: every `val_every`-th row of each manifest is validation
    (other sentences of the same voices); the rest is training."""

    def __init__(self, manifests: str | os.PathLike | list, val_every: int | None = None, validation: bool = False,
                 questions: bool = True, crop_seconds: float = 3.0, reference_seconds: float = 3.0, seed: int = 0,
                 fixed: bool = False):
        from s2s.data.manifest import read_manifest
        from s2s.data.synth import REPLY_PITCHES

        manifests = [Path(m) for m in (manifests if isinstance(manifests, (list, tuple)) else [manifests])]
        normal = REPLY_PITCHES["normal"]
        self.items: list[tuple[dict[int, torch.Tensor], str, int]] = []  # (int16 takes by pitch, voice, pitch)
        self.references: dict[str, list[tuple[int, torch.Tensor, int]]] = {}  # voice -> (item, wav, pitch)
        for manifest in manifests:
            for index, row in enumerate(read_manifest(manifest)):
                if val_every and (index % val_every == 0) != validation:
                    continue
                if "reply_style" in row:
                    takes = {REPLY_PITCHES[word]: self._load(manifest.parent / row[f"reply_audio_{word}"])
                             for word in PITCHES if row.get(f"reply_audio_{word}")}
                    takes = takes or {row["reply_pitch"]: self._load(manifest.parent / row["reply_audio"])}
                    self.items.extend((takes, row["reply_voice"], pitch) for pitch in takes)
                    if row.get("voice_audio"):
                        self._add_reference(manifest.parent / row["voice_audio"], row["reply_voice"], normal)
                if questions and row.get("question_audio") and row.get("question_voice"):
                    self._add_reference(manifest.parent / row["question_audio"], row["question_voice"],
                                        row.get("question_pitch", normal))
        alone = {voice for voice, refs in self.references.items() if len(refs) < 2}
        self.items = [item for item in self.items if item[1] not in alone]  # a voice heard once has no other take
        missing = sorted({voice for _, voice, _ in self.items} - set(self.references))
        if not self.items or missing:
            where = ", ".join(str(m) for m in manifests)
            raise ValueError(f"{where}: needs recordings with at least two of each voice (voice prompts or questions; "
                             f"missing {missing or 'all'}); make it with s2s data synth --reply-styles")
        self.crop, self.reference_crop = int(crop_seconds * SAMPLE_RATE), int(reference_seconds * SAMPLE_RATE)
        self.seed, self.fixed = seed, fixed  # fixed (validation): the same crop and reference every time

    def _add_reference(self, path: Path, voice: str, pitch: int) -> None:
        """A recording that is both a training item (its own content) and a reference for its voice."""
        wav = self._load(path)
        self.items.append(({pitch: wav}, voice, pitch))
        self.references.setdefault(voice, []).append((len(self.items) - 1, wav, pitch))

    @staticmethod
    def _load(path: Path) -> torch.Tensor:
        wav = audio.load(path, SAMPLE_RATE)[0].mean(0)
        return (wav.clamp(-1, 1) * 32767).short()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        # Training draws from the global generator (seeded, saved in checkpoints and restored on resume).
        rng = random.Random(f"{self.seed}:{index}") if self.fixed else random
        takes, voice, pitch = self.items[index]
        wav, content = takes[pitch], takes[rng.choice(sorted(takes))]
        length = min(wav.numel(), content.numel())
        if length > self.crop:  # whole content frames (640 samples at 25 Hz) so codec and content agree
            start = rng.randrange((length - self.crop) // 640 + 1) * 640
            wav, content = wav[start: start + self.crop], content[start: start + self.crop]
        _, reference, reference_pitch = rng.choice([ref for ref in self.references[voice] if ref[0] != index])
        if reference.numel() > self.reference_crop:
            start = rng.randrange(reference.numel() - self.reference_crop)
            reference = reference[start: start + self.reference_crop]
        return {"wav": wav.float() / 32767, "content": content.float() / 32767,
                "reference": reference.float() / 32767, "pitch": pitch_word(pitch, reference_pitch)}


def collate_conversion(items: list[dict]) -> dict:
    def pad(key: str) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([item[key].numel() for item in items])
        out = torch.zeros(len(items), int(lengths.max()))
        for row, item in zip(out, items):
            row[: item[key].numel()] = item[key]
        return out, lengths

    wav, num_samples = pad("wav")
    content, content_samples = pad("content")
    reference, reference_samples = pad("reference")
    return {"wav": wav, "num_samples": num_samples, "content": content, "content_samples": content_samples,
            "reference": reference, "reference_samples": reference_samples,
            "pitch": torch.tensor([item["pitch"] for item in items])}


class ConversionDataModule(L.LightningDataModule):
    """The recordings of `train` (one manifest or a list: a styled corpus, and any corpus for its questions);
    every `val_every`-th row of each kept apart for validation (other sentences of the same voices)."""

    def __init__(self, train: str | list[str], val_every: int = 20, questions: bool = True,
                 crop_seconds: float = 3.0, reference_seconds: float = 3.0, batch_size: int = 16,
                 num_workers: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.train_set = self.val_set = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            hp = self.hparams
            common = {"val_every": hp.val_every, "questions": hp.questions, "crop_seconds": hp.crop_seconds,
                      "reference_seconds": hp.reference_seconds}
            self.train_set = ConversionDataset(hp.train, **common)
            self.val_set = ConversionDataset(hp.train, validation=True, seed=1, fixed=True, **common)

    def _loader(self, dataset: ConversionDataset, shuffle: bool) -> ResumableDataLoader:
        lengths = [min(takes[pitch].numel(), dataset.crop) for takes, _, pitch in dataset.items]
        sampler = LengthBucketSampler(lengths, self.hparams.batch_size, shuffle=shuffle,
                                      epoch=trainer_epoch(self) if shuffle else None)
        return ResumableDataLoader(dataset, sampler, collate_fn=collate_conversion,
                                   num_workers=self.hparams.num_workers)

    def train_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.val_set, shuffle=False)
