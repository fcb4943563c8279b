"""Log-mel features: the one view of a waveform the recogniser sees."""
from __future__ import annotations

from functools import partial

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


# Augmentation (training only): what makes a few thousand synthetic utterances generalise to unseen voices is a
# random stretch of the mel axis (another vocal tract), then SpecAugment's frequency and time masks.
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


def mask_states(states: torch.Tensor, lengths: torch.Tensor, time_masks: int = 2, max_width: int = 8,
                channel_drop: float = 0.1) -> torch.Tensor:
    """SpecAugment for a pretrained encoder's states [B, F, width]: zero a few stretches of up to `max_width`
    frames and a random tenth of the channels, each utterance its own."""
    batch, frames, width = states.shape
    steps = torch.arange(frames, device=states.device)
    keep = (torch.rand(batch, 1, width, device=states.device) >= channel_drop).expand(batch, frames, width).clone()
    for _ in range(time_masks):
        span = torch.randint(0, max_width + 1, (batch, 1), device=states.device)
        start = (torch.rand(batch, 1, device=states.device) * (lengths[:, None] - span).clamp(min=0)).long()
        keep &= ~((steps >= start) & (steps < start + span))[:, :, None]
    return states * keep
