"""TinyCodecModule: the LightningModule that trains s2s-tiny (`s2s fit --config configs/codec/tiny.yaml`).

Training logic lives here; the network is `TinyCodecNet`, inference is `TinyCodec`.

`init_from` starts from a saved codec folder; with `trainable: decoder` the encoder and the codebooks stay
frozen, so every code a trained model emits keeps its meaning (an LM trained on the old codes still speaks
through the new decoder) and only the waveform it decodes to improves (configs/codec/tiny-decoder.yaml).

`stoi_weight` > 0 adds the negated STOI of each crop (torch_stoi's differentiable STOI, Kolbaek et al. 2018)
to the spectral losses: they weigh every bin and frame alike, while intelligibility lives in the band
envelopes STOI correlates over 384 ms, which is where the decoder fell short (configs/codec/tiny-decoder-stoi.yaml).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import lightning as L
import torch
from torch_stoi import NegSTOILoss
from torchmetrics.functional.audio import short_time_objective_intelligibility

from s2s.codecs.tiny.codec import load_net
from s2s.codecs.tiny.losses import MultiResolutionSTFTLoss, MultiScaleMelLoss
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.training import time_aware_scheduler

TRAINABLE = ("all", "decoder")
STOI_MIN_SECONDS = 0.4  # STOI's 30 analysis frames of 25.6 ms, 12.8 ms apart, at 10 kHz


def _negated_stoi(sample_rate: int) -> torch.nn.Module:
    """torch_stoi's NegSTOILoss ([B, T] -> [B], -STOI, differentiable), its buffers kept out of checkpoints."""
    with warnings.catch_warnings():  # it names torchaudio's resampler by a deprecated alias
        warnings.simplefilter("ignore", UserWarning)
        loss = NegSTOILoss(sample_rate)
    for module in (loss, loss.resample):  # constants (frozen parameters, a resampling kernel): kept as buffers
        for name, value in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
            delattr(module, name)
            module.register_buffer(name, value.detach(), persistent=False)
    return loss


class TinyCodecModule(L.LightningModule):
    def __init__(
        self,
        sample_rate: int = 16000,
        hop_samples: int = 320,
        n_fft: int = 640,
        encoder_dim: int = 192,
        encoder_layers: int = 4,
        latent_dim: int = 64,
        num_codebooks: int = 8,
        codebook_size: int = 1024,
        decoder_dim: int = 320,
        decoder_layers: int = 8,
        decoder_lookahead_frames: int = 2,
        kernel_size: int = 7,
        ema_decay: float = 0.99,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 300,
        quantizer_dropout: float = 0.5,
        mel_weight: float = 1.0,
        stft_weight: float = 1.0,
        commit_weight: float = 1.0,
        stoi_weight: float = 0.0,
        init_from: str | None = None,
        trainable: str = "all",
    ):
        super().__init__()
        if trainable not in TRAINABLE:
            raise ValueError(f"trainable={trainable!r}: choose one of {list(TRAINABLE)}")
        if trainable == "decoder" and init_from is None:
            raise ValueError("trainable='decoder' fine-tunes a trained codec: give init_from (a codec folder)")
        self.save_hyperparameters()
        self.config = TinyCodecConfig(sample_rate, hop_samples, n_fft, encoder_dim, encoder_layers, latent_dim,
                                      num_codebooks, codebook_size, decoder_dim, decoder_layers,
                                      decoder_lookahead_frames, kernel_size, ema_decay)
        self.net = TinyCodecNet(self.config)
        self.mel_loss = MultiScaleMelLoss(sample_rate)
        self.stft_loss = MultiResolutionSTFTLoss()
        if stoi_weight < 0:
            raise ValueError(f"stoi_weight={stoi_weight}: a loss weight must be >= 0 (0 leaves STOI out)")
        self.stoi_loss = _negated_stoi(sample_rate) if stoi_weight > 0 else None
        if init_from is not None:
            self._load_codec_folder(init_from)
        if trainable == "decoder":
            self.net.encoder.requires_grad_(False)
            self.net.quantizer.requires_grad_(False)
            self.train()  # Lightning keeps each submodule's mode as it finds it: set the frozen ones to eval now

    def _load_codec_folder(self, folder: str) -> None:
        """Copy a saved codec's weights; its architecture must be this config's (no silent partial load)."""
        source = load_net(Path(folder))
        if source.cfg != self.config:
            differ = {k: f"{v} there, {getattr(self.config, k)} here" for k, v in source.cfg.to_dict().items()
                      if getattr(self.config, k) != v}
            raise ValueError(f"init_from {folder}: its config differs from this model's in {differ}; "
                             "set the model's sizes to the folder's config.yaml")
        self.net.load_state_dict(source.state_dict())

    def train(self, mode: bool = True):
        """Frozen parts stay in eval mode: the codebooks' EMA must not move while the decoder learns."""
        super().train(mode)
        if self.hparams.trainable == "decoder":
            self.net.encoder.eval()
            self.net.quantizer.eval()
        return self

    def _num_codebooks_this_step(self) -> int:
        """Quantiser dropout: sometimes train with only the first k codebooks (k uniform)."""
        if torch.rand(()) < self.hparams.quantizer_dropout:
            return int(torch.randint(1, self.config.num_codebooks + 1, ()))
        return self.config.num_codebooks

    def training_step(self, wav: torch.Tensor, batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        if self.hparams.trainable == "decoder":
            with torch.no_grad():  # frozen encoder and codebooks: no graph, no commitment to learn
                z_q, _, commit = self.net.quantizer(self.net.latent(wav), self._num_codebooks_this_step())
            reconstruction = self.net.decoder(z_q)
        else:
            reconstruction, _, commit = self.net(wav, self._num_codebooks_this_step())
        with torch.autocast(wav.device.type, enabled=False):  # spectral losses in fp32 under bf16-mixed training
            mel = self.mel_loss(reconstruction.float(), wav.float())
            stft = self.stft_loss(reconstruction.float(), wav.float())
            logged = {"train/mel": mel, "train/stft": stft, "train/commit": commit}
            loss = hp.mel_weight * mel + hp.stft_weight * stft + hp.commit_weight * commit
            if self.stoi_loss is not None:  # silent crops score 0 and pull nothing
                if wav.shape[-1] < STOI_MIN_SECONDS * self.config.sample_rate:
                    raise ValueError(f"stoi_weight needs crops of at least {STOI_MIN_SECONDS} s (STOI correlates "
                                     f"30 frames of 12.8 ms), got {wav.shape[-1] / self.config.sample_rate:.2f} s: "
                                     "raise the data's crop_seconds or set stoi_weight: 0")
                logged["train/stoi"] = -self.stoi_loss(reconstruction.float(), wav.float()).mean()
                loss = loss - hp.stoi_weight * logged["train/stoi"]
        self.log_dict({"train/loss": loss, **logged}, prog_bar=True, batch_size=wav.shape[0])
        return loss

    def validation_step(self, wav: torch.Tensor, batch_idx: int) -> None:
        reconstruction, _, _ = self.net(wav)
        reconstruction = reconstruction[..., : wav.shape[-1]]
        stoi = short_time_objective_intelligibility(reconstruction, wav, self.config.sample_rate).mean()
        self.log_dict({"val/stoi": stoi, "val/mel": self.mel_loss(reconstruction, wav)}, prog_bar=True,
                      batch_size=1)

    def configure_optimizers(self):
        hp = self.hparams
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=hp.lr, weight_decay=hp.weight_decay, betas=(0.8, 0.99))
        # linear warm-up, then cosine decay to 5% at the end of the run (by steps, or by time under max_time)
        return {"optimizer": optimizer, "lr_scheduler": time_aware_scheduler(optimizer, self.trainer, hp.warmup_steps)}
