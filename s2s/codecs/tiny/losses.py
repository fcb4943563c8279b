"""Reconstruction losses of s2s-tiny: multi-scale log-mel and multi-resolution STFT.

No GAN: adversarial training is slow on a CPU and buys naturalness, not
intelligibility. Spectral losses at several resolutions pin down the
magnitude envelope (what STOI and listeners rely on), and because they are
computed on the decoded waveform they also force consistent phases.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from torch import nn


class MultiResolutionSTFTLoss(nn.Module):
    """Mean over resolutions of L1 on log magnitude plus spectral convergence."""

    def __init__(self, resolutions=((256, 64), (512, 128), (1024, 256), (2048, 512))):
        super().__init__()
        self.resolutions = resolutions
        for n_fft, _ in resolutions:
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = prediction.new_zeros(())
        for n_fft, hop in self.resolutions:
            window = getattr(self, f"window_{n_fft}")
            pred = torch.stft(prediction, n_fft, hop, window=window, return_complex=True).abs()
            true = torch.stft(target, n_fft, hop, window=window, return_complex=True).abs()
            log_l1 = F.l1_loss(torch.log(pred.clamp(min=1e-5)), torch.log(true.clamp(min=1e-5)))
            convergence = torch.linalg.norm(true - pred) / torch.linalg.norm(true).clamp(min=1e-5)
            loss = loss + log_l1 + convergence
        return loss / len(self.resolutions)


class MultiScaleMelLoss(nn.Module):
    """Mean over scales of L1 between log-mel spectrograms (DAC uses the same idea)."""

    def __init__(self, sample_rate: int, scales=((512, 128, 40), (1024, 256, 80), (2048, 512, 128))):
        super().__init__()
        self.mels = nn.ModuleList(
            torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels, power=1.0)
            for n_fft, hop, n_mels in scales)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = prediction.new_zeros(())
        for mel in self.mels:
            loss = loss + F.l1_loss(torch.log(mel(prediction).clamp(min=1e-5)), torch.log(mel(target).clamp(min=1e-5)))
        return loss / len(self.mels)
