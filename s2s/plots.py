"""Figures the notebooks and model cards show: spectrograms, code grids, curves.

Each function returns a matplotlib Figure, so a notebook displays it and a
script saves it; nothing here touches global pyplot state beyond creating it.
"""
from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
import torch


def log_spectrogram(wav: torch.Tensor, n_fft: int = 512, hop: int = 128) -> torch.Tensor:
    """wav [T] -> dB magnitude [bins, frames], for display."""
    spec = torch.stft(wav.flatten().float(), n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    return 20 * torch.log10(spec.clamp(min=1e-5))


def plot_spectrograms(wavs: dict[str, torch.Tensor], sample_rate: int):
    """One spectrogram per named waveform, stacked, on the same colour scale."""
    fig, axes = plt.subplots(len(wavs), 1, figsize=(10, 2.6 * len(wavs)), squeeze=False, sharex=True)
    for ax, (name, wav) in zip(axes[:, 0], wavs.items()):
        spec = log_spectrogram(wav)
        seconds = wav.numel() / sample_rate
        ax.imshow(spec, origin="lower", aspect="auto", vmin=-80, vmax=float(spec.max()), cmap="magma",
                  extent=(0, seconds, 0, sample_rate / 2000))
        ax.set_title(name)
        ax.set_ylabel("kHz")
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    return fig


def plot_codes(codes: torch.Tensor, frame_rate: float):
    """The code grid of one item, codes [K, F] (or [1, K, F]): one row per codebook."""
    codes = codes.squeeze(0) if codes.dim() == 3 else codes
    fig, ax = plt.subplots(figsize=(10, 0.35 * codes.shape[0] + 1.2))
    ax.imshow(codes, aspect="auto", interpolation="nearest", cmap="tab20",
              extent=(0, codes.shape[1] / frame_rate, codes.shape[0] - 0.5, -0.5))
    ax.set_ylabel("codebook")
    ax.set_xlabel("seconds")
    ax.set_title(f"{codes.shape[0]} codebooks x {codes.shape[1]} frames")
    fig.tight_layout()
    return fig


def plot_curve(xs, series: dict[str, list[float]], xlabel: str, ylabel: str, title: str = ""):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def read_metrics_csv(path: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """Lightning CSVLogger metrics -> {metric: (steps, values)}, skipping empty cells."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if key in ("epoch", "step") or value in ("", None):
                    continue
                steps, values = series.setdefault(key, ([], []))
                steps.append(int(row["step"]))
                values.append(float(value))
    return series


def metric_by_version(logs_dir: str | Path, key: str = "train/loss") -> list[dict[int, float]]:
    """`key` by step for each run logged under `logs_dir` (a CSVLogger's lightning_logs/), oldest version first:
    a run resumed with `--ckpt_path last` logs a new version, so a killed run and its resumption come apart."""
    versions = sorted(Path(logs_dir).glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    return [dict(zip(*read_metrics_csv(path).get(key, ([], [])))) for path in versions]


def plot_training_curves(metrics_csv: str | Path, keys: list[str] | None = None):
    """Loss curves of a Lightning run (CSVLogger's metrics.csv), one line per metric."""
    series = read_metrics_csv(metrics_csv)
    keys = keys or sorted(series)
    fig, ax = plt.subplots(figsize=(8, 4))
    for key in keys:
        if key in series:
            ax.plot(*series[key], label=key)
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
