"""Residual vector quantisation with EMA codebooks, k-means init and dead-code restarts.

Why RVQ with EMA rather than residual FSQ: EMA codebooks learn from the
encoder's actual distribution without a codebook loss to tune, k-means init
puts every entry where data lives from the first step, and restarting unused
entries keeps all 1024 codes busy, so 10 bits per codebook are really spent.
Quantiser dropout (training with a random number of codebooks) makes the
first k codebooks a usable lower-bitrate codec on their own.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def kmeans(x: torch.Tensor, num_clusters: int, iters: int = 10) -> torch.Tensor:
    """Plain k-means on x [N, D]; returns centroids [num_clusters, D]."""
    picks = torch.randint(0, x.shape[0], (num_clusters,), device=x.device)
    centroids = x[picks].clone()
    for _ in range(iters):
        assign = torch.cdist(x, centroids).argmin(dim=1)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=num_clusters).float()
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    return centroids


class EMACodebook(nn.Module):
    """One codebook [size, dim] updated by exponential moving averages of its assigned vectors."""

    def __init__(self, size: int, dim: int, decay: float = 0.99, dead_threshold: float = 0.05):
        super().__init__()
        self.size, self.decay, self.dead_threshold = size, decay, dead_threshold
        self.register_buffer("embed", torch.randn(size, dim) * 0.1)
        self.register_buffer("embed_sum", self.embed.clone())
        self.register_buffer("cluster_size", torch.ones(size))
        self.register_buffer("initialized", torch.tensor(False))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x [N, D] -> indices [N] of the nearest entries."""
        distances = x.pow(2).sum(1, keepdim=True) - 2 * x @ self.embed.T + self.embed.pow(2).sum(1)[None]
        return distances.argmin(dim=1)

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        return F.embedding(indices, self.embed)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [N, D] -> (quantised [N, D], indices [N]); learns when training."""
        if self.training:
            self._learn(x.detach().float())
        indices = self.encode(x)
        return self.decode(indices), indices

    @torch.no_grad()
    def _learn(self, x: torch.Tensor) -> None:
        if not self.initialized:
            self.embed.copy_(kmeans(x, self.size))
            self.embed_sum.copy_(self.embed)
            self.cluster_size.fill_(1.0)
            self.initialized.fill_(True)
            self._sync_from_rank0()
        indices = self.encode(x)
        counts = torch.bincount(indices, minlength=self.size).float()
        sums = torch.zeros_like(self.embed).index_add_(0, indices, x)
        if _distributed():  # every rank must hold the same codebook
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + 1e-5) / (total + self.size * 1e-5) * total  # Laplace smoothing
        self.embed.copy_(self.embed_sum / smoothed[:, None])
        self._restart_dead(x)

    def _restart_dead(self, x: torch.Tensor) -> None:
        dead = self.cluster_size < self.dead_threshold
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        fresh = x[torch.randint(0, x.shape[0], (n_dead,), device=x.device)]
        self.embed[dead] = fresh
        self.embed_sum[dead] = fresh
        self.cluster_size[dead] = 1.0
        self._sync_from_rank0()

    def _sync_from_rank0(self) -> None:
        if _distributed():
            for buffer in (self.embed, self.embed_sum, self.cluster_size):
                dist.broadcast(buffer, src=0)


class ResidualVQ(nn.Module):
    """K codebooks, each quantising what the previous ones left: codes [B, K, F]."""

    def __init__(self, num_codebooks: int, codebook_size: int, dim: int, decay: float = 0.99):
        super().__init__()
        self.codebooks = nn.ModuleList(EMACodebook(codebook_size, dim, decay) for _ in range(num_codebooks))

    def forward(self, z: torch.Tensor, num_codebooks: int | None = None):
        """z [B, D, F] -> (quantised z [B, D, F] with straight-through gradient, codes [B, k, F], commit loss)."""
        b, d, f = z.shape
        residual = z.transpose(1, 2).reshape(b * f, d)
        quantised = torch.zeros_like(residual)
        codes = []
        for codebook in self.codebooks[: num_codebooks or len(self.codebooks)]:
            q, indices = codebook(residual)
            quantised = quantised + q
            residual = residual - q
            codes.append(indices.view(b, f))
        quantised = quantised.view(b, f, d).transpose(1, 2)
        commit_loss = F.mse_loss(z, quantised.detach())
        z_q = z + (quantised - z).detach()  # straight-through: decoder gradients reach the encoder
        return z_q, torch.stack(codes, dim=1), commit_loss

    def encode(self, z: torch.Tensor, num_codebooks: int | None = None) -> torch.Tensor:
        return self.forward(z, num_codebooks)[1]

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, k, F] (k <= K) -> z [B, D, F]: the sum of the first k codebooks' entries."""
        return sum(cb.decode(codes[:, i]) for i, cb in enumerate(self.codebooks[: codes.shape[1]])).transpose(1, 2)

    def decode_posteriors(self, posteriors: torch.Tensor) -> torch.Tensor:
        """posteriors [B, k, F, C] (k <= K) -> z [B, D, F]: the sum of the first k codebooks' expected entries, the
        least-squares guess of z where a code is uncertain (a one-hot posterior gives `decode`'s entry)."""
        return sum(posteriors[:, i].to(cb.embed.dtype) @ cb.embed
                   for i, cb in enumerate(self.codebooks[: posteriors.shape[1]])).transpose(1, 2)
