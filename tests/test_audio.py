"""The audio boundary: loading, saving, resampling, down-mixing and its one-line errors."""
import numpy as np
import pytest
import soundfile as sf
import torch

from s2s import audio
from s2s.audio import AudioError


def test_prepare_resamples_and_downmixes():
    wav = torch.randn(2, 2, 44100) * 0.1
    out = audio.prepare(wav, 44100, 16000)
    assert out.shape == (2, 1, 16000)
    assert torch.allclose(audio.prepare(wav, 16000, 16000), wav.mean(dim=1, keepdim=True))


def test_prepare_upmixes_mono_for_stereo_codecs():
    assert audio.prepare(torch.randn(1, 1, 100), 16000, 16000, channels=2).shape == (1, 2, 100)
    with pytest.raises(AudioError, match="6 channels"):
        audio.prepare(torch.randn(1, 6, 100), 16000, 16000, channels=2)


@pytest.mark.parametrize("wav, rate, message", [
    (torch.zeros(1, 1, 0), 16000, "empty"),
    (torch.tensor([[[0.0, float("inf")]]]), 16000, "NaN or Inf"),
    (torch.zeros(1, 100), 16000, r"\[B, C, T\]"),
    (torch.zeros(1, 1, 100), 0, "sample_rate"),
    (np.zeros((1, 1, 100)), 16000, "torch.Tensor"),
])
def test_bad_input_is_refused_in_one_line(wav, rate, message):
    with pytest.raises(AudioError, match=message) as err:
        audio.prepare(wav, rate, 16000)
    assert "\n" not in str(err.value)


def test_save_load_round_trip_and_no_overwrite(tmp_path):
    wav = 0.5 * torch.sin(torch.arange(8000) / 5.0)[None]
    path = audio.save(tmp_path / "a.wav", wav, 8000)
    loaded, rate = audio.load(path)
    assert rate == 8000 and loaded.shape == (1, 8000)
    assert (loaded - wav).abs().max() < 1e-4  # 16-bit PCM
    with pytest.raises(FileExistsError, match="already exists"):
        audio.save(path, wav, 8000)
    assert audio.load(path, sample_rate=16000)[0].shape == (1, 16000)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary file


def test_load_downmixes_stereo_files(tmp_path):
    data = np.stack([np.ones(100), -np.ones(100) * 0.5], axis=1).astype(np.float32) * 0.5
    sf.write(tmp_path / "s.wav", data, 16000)
    wav, _ = audio.load(tmp_path / "s.wav")
    assert wav.shape == (1, 100) and abs(float(wav.mean()) - 0.125) < 1e-3


def test_load_errors(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        audio.load(tmp_path / "missing.wav")
    (tmp_path / "fake.wav").write_text("this is not audio")
    with pytest.raises(AudioError, match="cannot read") as err:
        audio.load(tmp_path / "fake.wav")
    assert "\n" not in str(err.value)


def test_an_odd_sample_rate_resamples_quickly_and_a_tiny_one_is_refused():
    wav = torch.sin(torch.arange(44099) / 10.0)[None, None]
    out = audio.prepare(wav, 44099, 16000)  # coprime with 16000: read as 44100 Hz, not 16,000 filter phases
    assert abs(out.shape[-1] - 16000) <= 1 and torch.allclose(out, audio.prepare(wav, 44100, 16000))
    with pytest.raises(audio.AudioError, match="7 Hz is too low for speech"):
        audio.prepare(torch.randn(1, 1, 14), 7, 16000)
