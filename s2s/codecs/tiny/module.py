"""TinyCodecModule: the LightningModule that trains s2s-tiny (`s2s fit --config configs/codec/tiny.yaml`).

Training logic lives here; the network is `TinyCodecNet`, inference is `TinyCodec`.
"""
from __future__ import annotations

import lightning as L
import torch
from torchmetrics.functional.audio import short_time_objective_intelligibility

from s2s.codecs.tiny.losses import MultiResolutionSTFTLoss, MultiScaleMelLoss
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.training import time_aware_scheduler


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
    ):
        super().__init__()
        self.save_hyperparameters()
        self.config = TinyCodecConfig(sample_rate, hop_samples, n_fft, encoder_dim, encoder_layers, latent_dim,
                                      num_codebooks, codebook_size, decoder_dim, decoder_layers,
                                      decoder_lookahead_frames, kernel_size, ema_decay)
        self.net = TinyCodecNet(self.config)
        self.mel_loss = MultiScaleMelLoss(sample_rate)
        self.stft_loss = MultiResolutionSTFTLoss()

    def _num_codebooks_this_step(self) -> int:
        """Quantiser dropout: sometimes train with only the first k codebooks (k uniform)."""
        if torch.rand(()) < self.hparams.quantizer_dropout:
            return int(torch.randint(1, self.config.num_codebooks + 1, ()))
        return self.config.num_codebooks

    def training_step(self, wav: torch.Tensor, batch_idx: int) -> torch.Tensor:
        hp = self.hparams
        reconstruction, _, commit = self.net(wav, self._num_codebooks_this_step())
        with torch.autocast(wav.device.type, enabled=False):  # spectral losses in fp32 under bf16-mixed training
            mel = self.mel_loss(reconstruction.float(), wav.float())
            stft = self.stft_loss(reconstruction.float(), wav.float())
        loss = hp.mel_weight * mel + hp.stft_weight * stft + hp.commit_weight * commit
        self.log_dict({"train/loss": loss, "train/mel": mel, "train/stft": stft, "train/commit": commit},
                      prog_bar=True, batch_size=wav.shape[0])
        return loss

    def validation_step(self, wav: torch.Tensor, batch_idx: int) -> None:
        reconstruction, _, _ = self.net(wav)
        reconstruction = reconstruction[..., : wav.shape[-1]]
        stoi = short_time_objective_intelligibility(reconstruction, wav, self.config.sample_rate).mean()
        self.log_dict({"val/stoi": stoi, "val/mel": self.mel_loss(reconstruction, wav)}, prog_bar=True,
                      batch_size=1)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, betas=(0.8, 0.99))
        # linear warm-up, then cosine decay to 5% at the end of the run (by steps, or by time under max_time)
        return {"optimizer": optimizer, "lr_scheduler": time_aware_scheduler(optimizer, self.trainer, hp.warmup_steps)}
