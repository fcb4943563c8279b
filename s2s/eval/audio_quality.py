"""How close a codec's reconstruction is to the original: STOI, SI-SDR, PESQ-WB, log-mel distance; and how
close a spoken reply is to a reference recording of the same words: mel-cepstral distortion after DTW.

Every figure is computed at 16 kHz on mono audio, per clip, and averaged over
clips. `QualityMetrics` is the entry point: it takes a reconstruction and its
reference at any rates and lengths, brings both to 16 kHz, trims them to the
shorter one (the two are assumed time-aligned from their first sample) and
feeds the individual `torchmetrics` metrics below.
"""
from __future__ import annotations

import math

import torch
import torchaudio
from torchmetrics import Metric, MetricCollection
from torchmetrics.audio import ScaleInvariantSignalDistortionRatio, ShortTimeObjectiveIntelligibility

from s2s import audio

METRIC_SAMPLE_RATE = 16_000  # Hz; wide-band PESQ is defined only at 16 kHz, so everything uses it
# STOI analyses 384 ms segments; shorter clips give it nothing to correlate.
MIN_CLIP_SECONDS = 0.5
QUALITY_FIGURES = ("stoi", "si_sdr", "pesq_wb", "logmel_dist")


def pesq_available() -> bool:
    """Whether the optional `pesq` package imports (it is a compiled extension)."""
    try:
        import pesq  # noqa: F401
    except ImportError:
        return False
    return True


class LogMelDistance(Metric):
    """Mean absolute difference of natural-log mel spectrograms, averaged over clips.

    For each clip (inputs `[..., T]` at 16 kHz, same shape):

        M(x)  = mel filterbank applied to |STFT(x)| (magnitude, not power)
        d     = mean over mel bins and frames of |ln max(M(rec), 1e-5) - ln max(M(ref), 1e-5)|

    STFT: n_fft 1024 (64 ms), Hann window of 1024 samples, hop 256 (16 ms),
    centred with reflect padding. Mel: 80 bands from 0 to 8000 Hz, Slaney
    scale and Slaney area normalisation (the librosa / HiFi-GAN filterbank).
    Because M is linear in the signal, scaling a clip by g shifts every
    unclipped log-mel value by ln g: a reconstruction at half the level of its
    reference scores exactly ln 2 ~ 0.693. 0 means identical spectrograms.
    """

    is_differentiable = True
    higher_is_better = False
    full_state_update = False
    sample_rate = METRIC_SAMPLE_RATE
    n_fft = 1024
    hop_samples = 256
    n_mels = 80
    floor = 1e-5  # magnitudes below this (about -100 dB) count as silence

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.sample_rate, n_fft=self.n_fft, win_length=self.n_fft, hop_length=self.hop_samples,
            f_min=0.0, f_max=self.sample_rate / 2, n_mels=self.n_mels, power=1.0, center=True,
            pad_mode="reflect", norm="slaney", mel_scale="slaney")
        self.add_state("sum_dist", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """wav [..., T] at 16 kHz -> natural-log mel magnitudes [..., 80, frames]."""
        return self.mel(wav.float()).clamp(min=self.floor).log()

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.shape != target.shape:
            raise ValueError(f"preds and target must have the same shape, got {tuple(preds.shape)} "
                             f"and {tuple(target.shape)}")
        per_clip = (self.log_mel(preds) - self.log_mel(target)).abs().mean(dim=(-2, -1))
        self.sum_dist += per_clip.double().sum()
        self.total += per_clip.numel()

    def compute(self) -> torch.Tensor:
        return (self.sum_dist / self.total).float()


class WidebandPESQ(Metric):
    """Wide-band PESQ (ITU-T P.862.2 MOS-LQO, about 1.0 to 4.64) at 16 kHz, averaged over clips.

    A thin wrapper over the `pesq` package instead of torchmetrics' own,
    because PESQ refuses some clips (no speech-like activity, too short):
    those are skipped and counted in `skipped` rather than aborting a whole
    evaluation. `compute` returns NaN when no clip could be scored.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if not pesq_available():
            raise ModuleNotFoundError("wide-band PESQ needs the `pesq` package; install it with "
                                      "pip install 's2s[pesq]' (it compiles a C extension)")
        self.add_state("sum_pesq", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")
        self.add_state("skipped", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        import pesq

        preds_np = preds.detach().reshape(-1, preds.shape[-1]).double().cpu().numpy()
        target_np = target.detach().reshape(-1, target.shape[-1]).double().cpu().numpy()
        for degraded, reference in zip(preds_np, target_np):
            if not reference.any():  # pesq divides by the peak level, so silence yields NaN
                self.skipped += 1
                continue
            try:
                score = pesq.pesq(METRIC_SAMPLE_RATE, reference, degraded, "wb")
            except pesq.PesqError:
                self.skipped += 1
                continue
            self.sum_pesq += score
            self.total += 1

    def compute(self) -> torch.Tensor:
        if self.total == 0:
            return torch.tensor(float("nan"))
        return (self.sum_pesq / self.total).float()


class QualityMetrics:
    """All codec quality figures, accumulated clip by clip.

        metrics = QualityMetrics()
        metrics.update(reconstruction, reference, codec.sample_rate, reference_sample_rate=file_rate)
        metrics.compute()  # {"stoi": ..., "si_sdr": ..., "pesq_wb": ..., "logmel_dist": ...}

    - stoi: short-time objective intelligibility (pystoi via torchmetrics), 0 to 1, higher is better.
    - si_sdr: scale-invariant signal-to-distortion ratio in dB, zero-mean (Le Roux et al. 2019), higher is better.
    - pesq_wb: wide-band PESQ, higher is better; None when `pesq` is not installed or no clip could be scored.
    - logmel_dist: see `LogMelDistance`, lower is better.
    """

    def __init__(self, pesq: bool = True) -> None:
        metrics = {
            "stoi": ShortTimeObjectiveIntelligibility(fs=METRIC_SAMPLE_RATE, extended=False),
            "si_sdr": ScaleInvariantSignalDistortionRatio(zero_mean=True),
            "logmel_dist": LogMelDistance(),
        }
        self.has_pesq = pesq and pesq_available()
        if self.has_pesq:
            metrics["pesq_wb"] = WidebandPESQ()
        # The metrics share state names (`total`), so grouping them would merge unrelated states.
        self.metrics = MetricCollection(metrics, compute_groups=False)
        self.num_clips = 0

    def update(self, reconstruction: torch.Tensor, reference: torch.Tensor, sample_rate: int,
               reference_sample_rate: int | None = None) -> None:
        """Add a batch: reconstruction [B, C, T] at `sample_rate` Hz, reference [B, C', T'] at
        `reference_sample_rate` Hz (default: the same). Channels are averaged to mono."""
        reference_sample_rate = sample_rate if reference_sample_rate is None else reference_sample_rate
        rec = audio.prepare(reconstruction.detach().cpu(), sample_rate, METRIC_SAMPLE_RATE)
        ref = audio.prepare(reference.detach().cpu(), reference_sample_rate, METRIC_SAMPLE_RATE)
        if rec.shape[0] != ref.shape[0]:
            raise audio.AudioError(f"reconstruction and reference batches differ ({rec.shape[0]} vs {ref.shape[0]}); "
                                   "pass one reconstruction per reference")
        num_samples = min(rec.shape[-1], ref.shape[-1])
        if num_samples < MIN_CLIP_SECONDS * METRIC_SAMPLE_RATE:
            raise audio.AudioError(f"the clip is {num_samples / METRIC_SAMPLE_RATE:.3f} s long after trimming to the "
                                   f"shorter signal; quality metrics need at least {MIN_CLIP_SECONDS} s of audio")
        self.metrics.update(rec[:, 0, :num_samples], ref[:, 0, :num_samples])
        self.num_clips += rec.shape[0]

    def compute(self) -> dict[str, float | None]:
        """Mean of each figure over all clips so far, as plain floats."""
        if self.num_clips == 0:
            raise RuntimeError("no clips yet: call QualityMetrics.update(reconstruction, reference, sample_rate) first")
        values = {name: float(value) for name, value in self.metrics.compute().items()}
        pesq_wb = values.get("pesq_wb")
        values["pesq_wb"] = None if pesq_wb is None or math.isnan(pesq_wb) else pesq_wb
        return {key: values[key] for key in QUALITY_FIGURES}

    def reset(self) -> None:
        self.metrics.reset()
        self.num_clips = 0


def dtw_cost(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean frame distance along the cheapest monotonic alignment of frames a [N, D] and b [M, D] (plain DTW,
    steps (1,0), (0,1), (1,1)), divided by the path's length."""
    distance = torch.cdist(a[None].double(), b[None].double())[0].numpy()  # [N, M]
    n, m = distance.shape
    cost = [[math.inf] * (m + 1) for _ in range(n + 1)]
    steps = [[0] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(1, n + 1):
        row, previous, d = cost[i], cost[i - 1], distance[i - 1]
        for j in range(1, m + 1):
            best, count = min((previous[j - 1], steps[i - 1][j - 1]), (previous[j], steps[i - 1][j]),
                              (row[j - 1], steps[i][j - 1]))
            row[j], steps[i][j] = best + d[j - 1], count + 1
    return cost[n][m] / steps[n][m]


class MelCepstralDistortion(Metric):
    """Mel-cepstral distortion (dB) after DTW alignment (MCD-DTW), the usual distance between a synthesised
    utterance and a reference recording of the same words: unlike STOI or SI-SDR it needs no time alignment,
    so it fits a reply the model spoke at its own pace against the corpus's TTS of the same sentence.

    update(preds, target, sample_rate, target_sample_rate=sample_rate): lists of waveforms [T] (any lengths).
    Cepstra c1..c13 of 25 ms frames every 10 ms at 16 kHz (c0, the loudness, left out);
    MCD = 10 / ln 10 * sqrt(2 * sum (c - c')^2).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    FRAME_HOP = 160

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")
        self.mfcc = torchaudio.transforms.MFCC(METRIC_SAMPLE_RATE, n_mfcc=14, log_mels=True,
                                               melkwargs={"n_fft": 400, "hop_length": self.FRAME_HOP, "n_mels": 40})

    def cepstra(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """[T] at `sample_rate` -> c1..c13 [frames, 13]."""
        wav = audio.prepare(wav.reshape(1, 1, -1).float(), sample_rate, METRIC_SAMPLE_RATE)[0, 0]
        return self.mfcc(wav)[1:].T

    def update(self, preds: list[torch.Tensor], target: list[torch.Tensor], sample_rate: int,
               target_sample_rate: int | None = None) -> None:
        if len(preds) != len(target):
            raise ValueError(f"{len(preds)} utterances for {len(target)} references")
        for pred, ref in zip(preds, target):
            distortion = self.distortion_db(pred, ref, sample_rate, target_sample_rate)
            if distortion is not None:
                self.total += distortion
                self.count += 1

    def distortion_db(self, pred: torch.Tensor, ref: torch.Tensor, sample_rate: int,
                      target_sample_rate: int | None = None) -> float | None:
        """MCD-DTW of one utterance against its reference, without touching the metric's state; None when
        either is only a few frames long (nothing to compare)."""
        a, b = self.cepstra(pred, sample_rate), self.cepstra(ref, target_sample_rate or sample_rate)
        if min(a.shape[0], b.shape[0]) < 3:
            return None
        return float(10 / math.log(10) * math.sqrt(2) * dtw_cost(a, b))  # dtw_cost: mean distance per pair

    def compute(self) -> torch.Tensor:
        return (self.total / self.count).float() if self.count else torch.tensor(float("nan"))
