import math
import sys

import pytest
import torch
import torchaudio.functional as AF

from s2s.audio import AudioError
from s2s.eval import LogMelDistance, QualityMetrics, pesq_available

RATE = 16_000
needs_pesq = pytest.mark.skipif(not pesq_available(), reason="the pesq package is not installed")


def speech_like(seconds: float = 1.0, sample_rate: int = RATE, seed: int = 0) -> torch.Tensor:
    """[1, 1, T]: a gliding harmonic voice with 1/k harmonics to 7.5 kHz, syllables at 4 Hz, a faint noise floor."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    f0_hz = 140 + 30 * torch.sin(2 * math.pi * 3 * t)
    phase = 2 * math.pi * torch.cumsum(f0_hz, 0) / sample_rate
    voice = sum(torch.sin(k * phase) / k for k in range(1, 42))
    syllables = 0.55 + 0.45 * torch.sin(2 * math.pi * 4 * t)
    return (0.2 * voice * syllables + 1e-3 * torch.randn(t.shape, generator=g))[None, None]


def noise(like: torch.Tensor, std: float, seed: int = 1) -> torch.Tensor:
    return std * torch.randn(like.shape, generator=torch.Generator().manual_seed(seed))


def figures(reconstruction, reference, sample_rate=RATE, reference_sample_rate=None):
    metrics = QualityMetrics()
    metrics.update(reconstruction, reference, sample_rate, reference_sample_rate)
    return metrics.compute()


def test_identical_signals_score_perfectly():
    x = speech_like()
    result = figures(x, x)
    assert set(result) == {"stoi", "si_sdr", "pesq_wb", "logmel_dist"}
    assert result["stoi"] == pytest.approx(1.0, abs=1e-4)
    assert result["logmel_dist"] == 0.0
    assert result["si_sdr"] > 60.0
    if pesq_available():
        assert result["pesq_wb"] > 4.5  # wide-band MOS-LQO tops out at 4.64


def test_half_level_is_ln2_in_logmel_and_invisible_to_si_sdr_and_stoi():
    x = speech_like()
    result = figures(0.5 * x, x)
    # Mel magnitudes are linear in the signal and all lie above the 1e-5 floor,
    # so every log-mel value moves by exactly ln 2.
    assert result["logmel_dist"] == pytest.approx(math.log(2), abs=1e-5)
    assert result["stoi"] == pytest.approx(1.0, abs=1e-4)
    assert result["si_sdr"] > 60.0


def test_si_sdr_is_scale_invariant_for_a_degraded_signal():
    x = speech_like()
    degraded = x + noise(x, 0.02)
    full, half = figures(degraded, x), figures(0.5 * degraded, x)
    assert 5.0 < full["si_sdr"] < 40.0
    assert half["si_sdr"] == pytest.approx(full["si_sdr"], abs=1e-3)
    assert half["logmel_dist"] > full["logmel_dist"]  # unlike SI-SDR, log-mel sees the level change


def test_white_noise_is_unintelligible():
    x = speech_like()
    result = figures(noise(x, 0.1), x)
    assert result["stoi"] < 0.2
    assert result["si_sdr"] < -20.0
    assert result["logmel_dist"] > 1.0


def test_different_rates_and_lengths_are_aligned_at_16khz():
    reference_22k = speech_like(sample_rate=22_050)
    reconstruction_24k = AF.resample(reference_22k, 22_050, 24_000)
    reconstruction_24k = torch.cat([reconstruction_24k, torch.zeros(1, 1, 2400)], dim=-1)  # 100 ms codec padding
    result = figures(reconstruction_24k, reference_22k, 24_000, reference_sample_rate=22_050)
    assert result["stoi"] > 0.99
    assert result["si_sdr"] > 30.0
    assert result["logmel_dist"] < 0.05


def test_stereo_is_down_mixed():
    x = speech_like()
    stereo = torch.cat([x, x], dim=1)
    assert figures(stereo, x)["logmel_dist"] == 0.0


def test_accumulating_two_updates_gives_the_mean():
    x, y = speech_like(seed=0), speech_like(seconds=0.75, seed=3)
    x_degraded, y_degraded = x + noise(x, 0.03), 0.7 * y + noise(y, 0.01, seed=2)
    first, second = figures(x_degraded, x), figures(y_degraded, y)
    both = QualityMetrics()
    both.update(x_degraded, x, RATE)
    both.update(y_degraded, y, RATE)
    result = both.compute()
    for key in ("stoi", "si_sdr", "logmel_dist") + (("pesq_wb",) if pesq_available() else ()):
        assert result[key] == pytest.approx((first[key] + second[key]) / 2, rel=1e-5), key
    assert first["stoi"] != pytest.approx(second["stoi"], abs=1e-3)  # so the mean is a real test
    both.reset()
    with pytest.raises(RuntimeError, match="no clips"):
        both.compute()


def test_batch_items_are_separate_clips():
    x = speech_like()
    single = figures(x + noise(x, 0.05), x)
    batch = figures(torch.cat([x, x + noise(x, 0.05)]), torch.cat([x, x]))
    assert batch["logmel_dist"] == pytest.approx(single["logmel_dist"] / 2, rel=1e-5)


@needs_pesq
def test_pesq_skips_clips_it_cannot_score():
    metrics = QualityMetrics()
    silence = torch.zeros(1, 1, RATE)
    metrics.update(silence, silence, RATE)
    assert metrics.compute()["pesq_wb"] is None
    x = speech_like()
    metrics.update(x, x, RATE)
    assert metrics.compute()["pesq_wb"] > 4.5
    assert int(metrics.metrics["pesq_wb"].skipped) == 1


def test_pesq_reported_unavailable_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "pesq", None)  # makes `import pesq` fail
    assert not pesq_available()
    x = speech_like()
    result = figures(x, x)
    assert result["pesq_wb"] is None
    assert result["stoi"] == pytest.approx(1.0, abs=1e-4)


def test_too_short_or_mismatched_input_is_refused():
    x = speech_like()
    with pytest.raises(AudioError, match="at least 0.5 s"):
        figures(x[..., :4000], x)
    with pytest.raises(AudioError, match="batches differ"):
        figures(torch.cat([x, x]), x)
    with pytest.raises(AudioError, match="shape"):
        figures(x[0, 0], x)


def test_logmel_distance_settings():
    metric = LogMelDistance()
    frames = metric.log_mel(torch.zeros(1, RATE))
    assert frames.shape == (1, 80, RATE // 256 + 1)
    assert torch.all(frames == math.log(1e-5))


def test_dtw_aligns_a_slower_copy_at_no_cost():
    from s2s.eval.audio_quality import dtw_cost

    frames = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    slower = frames.repeat_interleave(2, dim=0)  # every frame held twice
    assert dtw_cost(frames, slower) == 0.0
    lifted = torch.cat([frames, torch.zeros(4, 1)], 1), torch.cat([frames, torch.ones(4, 1)], 1)
    assert dtw_cost(*lifted) == pytest.approx(1.0)  # every aligned pair 1 apart, the diagonal the best path
    assert dtw_cost(frames, frames + 1) == pytest.approx(2 / 5)  # a shift: 0 -> 1 and 3 -> 4 cost, the rest align
    assert dtw_cost(torch.zeros(1, 2), torch.tensor([[3.0, 4.0]])) == pytest.approx(5.0)


def test_mel_cepstral_distortion_ignores_rate_and_level_but_not_content():
    from s2s.eval.audio_quality import MelCepstralDistortion

    speech = speech_like(1.0, seed=3)[0, 0]
    slower = AF.resample(speech, 16000, 12000)  # the same sound at 12 kHz
    mcd = MelCepstralDistortion()
    mcd.update([speech], [speech.clone()], 16000)
    assert mcd.compute() < 1e-3  # the same audio
    mcd.reset()
    mcd.update([0.5 * speech], [speech], 16000)
    assert mcd.compute() < 0.1  # c0 (loudness) is left out: only the log's floor on quiet bands moves
    mcd.reset()
    mcd.update([speech], [speech], 16000, target_sample_rate=16000)
    noise = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    mcd.update([noise], [speech], 16000)
    assert mcd.count == 2 and 0 < mcd.compute() < 100
    other = MelCepstralDistortion()
    other.update([noise], [speech], 16000)
    near = MelCepstralDistortion()
    near.update([slower], [speech], 12000, target_sample_rate=16000)  # resampled back to 16 kHz inside
    assert float(near.compute()) < float(other.compute()) / 2  # the same content, other rate, is far closer
    with pytest.raises(ValueError, match="2 utterances for 1 references"):
        other.update([speech, speech], [speech], 16000)
