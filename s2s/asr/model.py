"""A small conformer: conv subsampling x4 (100 -> 25 frames a second), then conformer blocks (`ConformerCTC`);
or the same blocks over a pretrained encoder's states, two frames a step (`StatesCTC`).

Each block is the Conformer recipe (Gulati et al., 2020): half feed-forward,
self-attention, a depthwise convolution for local patterns, half
feed-forward. Absolute sinusoidal positions are enough at these lengths
(a question is a few seconds, under 300 frames after subsampling).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ConformerConfig:
    n_mels: int = 80
    dim: int = 192
    layers: int = 5
    heads: int = 4
    ff_mult: int = 4
    conv_kernel: int = 15
    subsample_channels: int = 64
    dropout: float = 0.1
    num_labels: int = 39

    def to_dict(self) -> dict:
        return asdict(self)


def _sinusoids(length: int, dim: int, device) -> torch.Tensor:
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
    return table


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, mult: int, dropout: float):
        super().__init__(nn.LayerNorm(dim), nn.Linear(dim, dim * mult), nn.SiLU(), nn.Dropout(dropout),
                         nn.Linear(dim * mult, dim), nn.Dropout(dropout))


class ConvModule(nn.Module):
    def __init__(self, dim: int, kernel: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.mid_norm = nn.LayerNorm(dim)
        self.pointwise_out = nn.Conv1d(dim, dim, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        x = self.norm(x).masked_fill(pad[..., None], 0.0).transpose(1, 2)  # [B, D, T]
        x = self.depthwise(F.glu(self.pointwise_in(x), dim=1))
        x = F.silu(self.mid_norm(x.transpose(1, 2))).transpose(1, 2)
        return self.dropout(self.pointwise_out(x).transpose(1, 2))


class ConformerBlock(nn.Module):
    def __init__(self, c: ConformerConfig):
        super().__init__()
        self.ff1, self.ff2 = FeedForward(c.dim, c.ff_mult, c.dropout), FeedForward(c.dim, c.ff_mult, c.dropout)
        self.attn_norm = nn.LayerNorm(c.dim)
        self.attn = nn.MultiheadAttention(c.dim, c.heads, dropout=c.dropout, batch_first=True)
        self.conv = ConvModule(c.dim, c.conv_kernel, c.dropout)
        self.out_norm = nn.LayerNorm(c.dim)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ff1(x)
        h = self.attn_norm(x)
        x = x + self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        x = x + self.conv(x, pad)
        return self.out_norm(x + 0.5 * self.ff2(x))


class ConformerCTC(nn.Module):
    """log-mel [B, F, n_mels] -> hidden [B, F/4, dim] and label logits [B, F/4, num_labels] (0 = blank)."""

    def __init__(self, config: ConformerConfig):
        super().__init__()
        self.config = c = config
        ch = c.subsample_channels
        self.subsample = nn.Sequential(nn.Conv2d(1, ch, 3, stride=2, padding=1), nn.SiLU(),
                                       nn.Conv2d(ch, ch, 3, stride=2, padding=1), nn.SiLU())
        self.project = nn.Linear(ch * ((c.n_mels + 3) // 4), c.dim)
        self.blocks = nn.ModuleList(ConformerBlock(c) for _ in range(c.layers))
        self.head = nn.Linear(c.dim, c.num_labels)

    @staticmethod
    def output_lengths(lengths: torch.Tensor) -> torch.Tensor:
        for _ in range(2):
            lengths = (lengths - 1) // 2 + 1
        return lengths

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.subsample(feats[:, None])  # [B, C, F/4, M/4]
        x = self.project(x.permute(0, 2, 1, 3).flatten(2))
        lengths = self.output_lengths(lengths)
        x = x + _sinusoids(x.shape[1], x.shape[2], x.device).to(x.dtype)
        pad = torch.arange(x.shape[1], device=x.device)[None] >= lengths[:, None]
        for block in self.blocks:
            x = block(x, pad)
        return x, self.head(x), lengths


class StatesCTC(nn.Module):
    """A pretrained encoder's states [B, F, width] at 50 a second -> hidden [B, F/2, dim] and label logits
    [B, F/2, num_labels] (0 = blank): two frames side by side per step (25 a second, the conformer's rate),
    projected, then conformer blocks. The states already hold where each frame is, so no positions are added."""

    def __init__(self, config: ConformerConfig, width: int):
        super().__init__()
        self.config = c = config
        self.norm = nn.LayerNorm(width)
        self.project = nn.Linear(2 * width, c.dim)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(ConformerBlock(c) for _ in range(c.layers))
        self.head = nn.Linear(c.dim, c.num_labels)

    @staticmethod
    def output_lengths(lengths: torch.Tensor) -> torch.Tensor:
        return (lengths + 1) // 2

    def forward(self, states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if states.shape[1] % 2:
            states = F.pad(states, (0, 0, 0, 1))
        x = self.norm(states).reshape(states.shape[0], states.shape[1] // 2, -1)
        x = self.dropout(self.project(x))
        lengths = self.output_lengths(lengths)
        pad = torch.arange(x.shape[1], device=x.device)[None] >= lengths[:, None]
        for block in self.blocks:
            x = block(x, pad)
        return x, self.head(x), lengths
