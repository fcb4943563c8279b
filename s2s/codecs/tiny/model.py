"""The s2s-tiny codec network: spectrogram in, codes in the middle, waveform out.

Why this shape: on a 2-core CPU a codec must work at frame rate, not at
sample rate. The encoder reads log-magnitude STFT frames (100 Hz, two per
50 Hz code frame, so no detail is averaged away), ConvNeXt blocks mix time,
RVQ turns each 50 Hz latent into K codes, and the decoder predicts magnitude
and phase of a 100 Hz STFT that an inverse STFT turns into samples (as Vocos
does): no upsampling convolutions at 16 kHz, which is where CPU time goes.

    wav [B, T] -> analysis -> [B, 2*bins, F] -> encoder -> z [B, D, F]
      -> RVQ -> codes [B, K, F] -> decoder -> [B, 2F, bins] complex -> iSTFT -> wav [B, F * hop]

The decoder's convolutions look at most `decoder_lookahead_frames` into the
future (the rest are causal), so streaming decode emits audio early.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from s2s.codecs.tiny.quantizer import ResidualVQ


@dataclass
class TinyCodecConfig:
    sample_rate: int = 16000
    hop_samples: int = 320  # one code frame = 20 ms (50 Hz)
    n_fft: int = 640  # STFT size of the front end and the iSTFT head (hop is hop_samples / 2)
    encoder_dim: int = 192
    encoder_layers: int = 4
    latent_dim: int = 64
    num_codebooks: int = 8
    codebook_size: int = 1024
    decoder_dim: int = 320
    decoder_layers: int = 8
    decoder_lookahead_frames: int = 2
    kernel_size: int = 7
    ema_decay: float = 0.99

    @property
    def stft_hop(self) -> int:
        return self.hop_samples // 2

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def to_dict(self) -> dict:
        return asdict(self)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (time mixing) then a pointwise MLP (channel mixing), residual."""

    def __init__(self, dim: int, kernel_size: int, lookahead: int, layer_scale: float):
        super().__init__()
        self.pad = (kernel_size - 1 - lookahead, lookahead)  # lookahead = future frames this block sees
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 3 * dim), nn.GELU(), nn.Linear(3 * dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))  # small residual branches train stably

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, D, F]
        y = self.dwconv(F.pad(x, self.pad)).transpose(1, 2)
        y = self.gamma * self.mlp(self.norm(y))
        return x + y.transpose(1, 2)


class Encoder(nn.Module):
    def __init__(self, cfg: TinyCodecConfig):
        super().__init__()
        self.proj_in = nn.Conv1d(2 * cfg.bins, cfg.encoder_dim, 3, padding=1)
        self.norm_in = nn.LayerNorm(cfg.encoder_dim)
        half = (cfg.kernel_size - 1) // 2
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.encoder_dim, cfg.kernel_size, half, 1 / cfg.encoder_layers)
            for _ in range(cfg.encoder_layers))
        self.norm_out = nn.LayerNorm(cfg.encoder_dim)
        self.proj_out = nn.Linear(cfg.encoder_dim, cfg.latent_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # [B, 2*bins, F] -> z [B, D, F]
        x = self.norm_in(self.proj_in(features).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.proj_out(self.norm_out(x.transpose(1, 2))).transpose(1, 2)


class Decoder(nn.Module):
    def __init__(self, cfg: TinyCodecConfig):
        super().__init__()
        self.cfg = cfg
        self.proj_in = nn.Conv1d(cfg.latent_dim, cfg.decoder_dim, 3)  # causal: padded on the left only
        self.norm_in = nn.LayerNorm(cfg.decoder_dim)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.decoder_dim, cfg.kernel_size, int(i < cfg.decoder_lookahead_frames),
                          1 / cfg.decoder_layers)
            for i in range(cfg.decoder_layers))
        self.norm_out = nn.LayerNorm(cfg.decoder_dim)
        # Two 100 Hz STFT frames per code frame, each a log-magnitude and a phase per bin.
        self.head = nn.Linear(cfg.decoder_dim, 2 * 2 * cfg.bins)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z [B, D, F] -> wav [B, F * hop]
        b, _, frames = z.shape
        x = self.norm_in(self.proj_in(F.pad(z, (2, 0))).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        out = self.head(self.norm_out(x.transpose(1, 2))).float()  # [B, F, 4 * bins]; exp and iSTFT want fp32
        out = out.reshape(b, 2 * frames, 2, self.cfg.bins)
        log_magnitude, phase = out[:, :, 0], out[:, :, 1]
        magnitude = torch.exp(log_magnitude.clamp(max=6.0))  # clamp: exp must not overflow early in training
        spec = torch.polar(magnitude, phase).transpose(1, 2)  # [B, bins, 2F]
        return torch.istft(spec, self.cfg.n_fft, self.cfg.stft_hop, window=self.window, center=True,
                           length=frames * self.cfg.hop_samples)


class TinyCodecNet(nn.Module):
    """Encoder, RVQ and decoder of s2s-tiny; `TinyCodec` wraps it for users, `TinyCodecModule` trains it."""

    def __init__(self, cfg: TinyCodecConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quantizer = ResidualVQ(cfg.num_codebooks, cfg.codebook_size, cfg.latent_dim, cfg.ema_decay)
        self.decoder = Decoder(cfg)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def pad_to_frames(self, wav: torch.Tensor) -> torch.Tensor:
        """Right-pad wav [B, T] with zeros to whole code frames."""
        remainder = wav.shape[-1] % self.cfg.hop_samples
        return F.pad(wav, (0, self.cfg.hop_samples - remainder)) if remainder else wav

    def analysis(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, T] (T a multiple of hop) -> log-magnitude features [B, 2*bins, T / hop]."""
        # Reflection needs more samples than it reflects: a clip of one frame or less is padded with zeros.
        pad_mode = "reflect" if wav.shape[-1] > self.cfg.n_fft // 2 else "constant"
        spec = torch.stft(wav, self.cfg.n_fft, self.cfg.stft_hop, window=self.window, center=True,
                          pad_mode=pad_mode, return_complex=True)[..., :-1]  # drop the frame centred past the end
        log_magnitude = torch.log(spec.abs().clamp(min=1e-5))
        b, bins, frames100 = log_magnitude.shape
        pairs = log_magnitude.reshape(b, bins, frames100 // 2, 2).transpose(2, 3)  # [B, bins, 2, F]
        return pairs.reshape(b, bins * 2, frames100 // 2)

    def latent(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [B, T] -> the encoder's latent z [B, D, ceil(T / hop)], before quantisation."""
        return self.encoder(self.analysis(self.pad_to_frames(wav)))

    def encode(self, wav: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        """wav [B, T] -> codes [B, K, ceil(T / hop)]."""
        return self.quantizer.encode(self.latent(wav), num_codebooks)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, k, F] -> wav [B, F * hop]."""
        return self.decoder(self.quantizer.decode(codes))

    def decode_posteriors(self, posteriors: torch.Tensor) -> torch.Tensor:
        """posteriors [B, k, F, C] of the codes -> wav [B, F * hop], from each codebook's expected entry."""
        return self.decoder(self.quantizer.decode_posteriors(posteriors))

    def forward(self, wav: torch.Tensor, num_codebooks: int | None = None):
        """Training pass: wav [B, T] -> (reconstruction [B, T'], codes, commit loss)."""
        z_q, codes, commit_loss = self.quantizer(self.latent(wav), num_codebooks)
        return self.decoder(z_q), codes, commit_loss
