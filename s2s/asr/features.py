"""Log-mel features: the one view of a waveform the recogniser sees."""
from __future__ import annotations

import torch
import torchaudio

SAMPLE_RATE = 16000
HOP = 160  # 10 ms frames
N_MELS = 80


class LogMel(torch.nn.Module):
    """wav [B, T] at 16 kHz -> log-mel [B, F, 80], normalised per utterance over its valid frames.

    Per-utterance normalisation removes loudness and channel differences
    between voices, which matter more than anything else with few speakers.
    """

    def __init__(self, n_mels: int = N_MELS):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=400, hop_length=HOP, n_mels=n_mels)

    @staticmethod
    def frames(num_samples: torch.Tensor) -> torch.Tensor:
        return num_samples // HOP + 1

    @torch.no_grad()
    def forward(self, wav: torch.Tensor, num_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(wav.device.type, enabled=False):
            feats = (self.mel(wav.float()) + 1e-6).log().transpose(1, 2)  # [B, F, M]
        lengths = self.frames(num_samples).clamp(max=feats.shape[1])
        valid = (torch.arange(feats.shape[1], device=wav.device)[None] < lengths[:, None])[..., None]
        count = lengths[:, None, None].clamp(min=1)
        mean = (feats * valid).sum(1, keepdim=True) / count
        std = (((feats - mean) ** 2 * valid).sum(1, keepdim=True) / count).sqrt().clamp(min=1e-3)
        return ((feats - mean) / std) * valid, lengths
