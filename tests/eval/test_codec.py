import json

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from s2s.audio import AudioError
from s2s.codecs.base import Codec, CodecError
from s2s.data.manifest import ManifestError
from s2s.data.sources import find_audio_files
from s2s.eval.codec import evaluate_codec, format_report


class ResidualScalarCodec(Codec):
    """Quantises each sample (one frame per sample) residually: codebook k rounds what
    codebooks 0..k-1 left over onto a 16-level grid 15x finer than the last, so each
    extra codebook makes the round trip about 23 dB cleaner."""

    name = "fake-rsq"
    sample_rate = 16_000
    hop_samples = 1
    num_codebooks = 3
    codebook_size = 16

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()), requires_grad=False)  # gives the codec a device

    def step(self, k: int) -> float:
        """Grid spacing of codebook k: level 0 spans [-1, 1], level k spans one step of level k-1."""
        return 2.0 / (self.codebook_size - 1) ** (k + 1)

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        residual, codes = wav[:, 0].clamp(-1, 1), []
        centre = (self.codebook_size - 1) / 2
        for k in range(self.num_codebooks):
            code = (residual / self.step(k) + centre).round().clamp(0, self.codebook_size - 1)
            residual = residual - (code - centre) * self.step(k)
            codes.append(code)
        return torch.stack(codes, dim=1)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        centre = (self.codebook_size - 1) / 2
        return sum((codes[:, k] - centre) * self.step(k) for k in range(codes.shape[1]))[:, None]


# Every clip gets a faint noise floor, as recordings do: without one, bands that hold
# only numerical leakage make STOI and log-mel judge the codec's noise against nothing.
def noise_floor(num_samples: int, seed: int = 0) -> np.ndarray:
    return 1e-3 * np.random.default_rng(seed).standard_normal(num_samples)


def voice(seconds: float, sample_rate: int, f0_hz: float = 150.0) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * np.cumsum(f0_hz + 20 * np.sin(2 * np.pi * 3 * t)) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 20))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    return (0.2 * harmonics * syllables + noise_floor(len(t))).astype(np.float32)


def chirp(seconds: float, sample_rate: int) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * (200 * t + 1500 * t ** 2)) + noise_floor(len(t), seed=1)).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> tuple:
    root = tmp_path_factory.mktemp("clips")
    (root / "more").mkdir()
    sf.write(root / "a_voice.wav", voice(1.0, 16_000), 16_000)
    sf.write(root / "b_chirp.wav", chirp(0.8, 22_050), 22_050)
    noisy = voice(0.6, 24_000, f0_hz=210) + 0.01 * np.random.default_rng(0).standard_normal(14_400)
    sf.write(root / "more" / "c_noisy_stereo.flac", np.stack([noisy, 0.5 * noisy], axis=1), 24_000)
    (root / "notes.txt").write_text("not audio")
    return root, 1.0 + 0.8 + 0.6


@pytest.fixture(scope="module")
def codec() -> ResidualScalarCodec:
    return ResidualScalarCodec().eval()


@pytest.fixture(scope="module")
def by_codebooks(codec, clips) -> dict:
    folder, _ = clips
    return {n: evaluate_codec(codec, folder, num_codebooks=n, progress=False) for n in (1, 2, 3)}


def test_fake_codec_round_trips(codec):
    wav = torch.from_numpy(voice(0.5, 16_000))[None, None]
    codes = codec.encode(wav, 16_000)
    assert codes.shape == (1, 3, 8000)
    for num_codebooks in (1, 2, 3):
        error = (codec.decode(codes[:, :num_codebooks]) - wav).abs().max()
        assert error <= codec.step(num_codebooks - 1) / 2 * 1.01, num_codebooks


def test_folder_is_searched_recursively_for_wav_and_flac(clips):
    folder, _ = clips
    assert [p.name for p in find_audio_files(folder)] == ["a_voice.wav", "b_chirp.wav", "c_noisy_stereo.flac"]


def test_results_count_files_seconds_and_bitrate(by_codebooks, clips):
    _, seconds = clips
    result = by_codebooks[2]
    assert result["n_files"] == 3
    assert result["seconds_audio"] == pytest.approx(seconds)
    assert result["num_codebooks"] == 2
    assert result["bitrate_bps"] == 16000 * 2 * 4  # frames/s * codebooks * bits per 16-entry code
    assert set(result) >= {"stoi", "si_sdr", "pesq_wb", "logmel_dist", "codec"}


def test_more_codebooks_reconstruct_better(by_codebooks):
    one, two, three = by_codebooks[1], by_codebooks[2], by_codebooks[3]
    assert one["stoi"] < two["stoi"] < three["stoi"]
    assert one["si_sdr"] < two["si_sdr"] < three["si_sdr"]
    assert one["logmel_dist"] > two["logmel_dist"] > three["logmel_dist"]
    assert three["stoi"] > 0.95
    if three["pesq_wb"] is not None:
        assert one["pesq_wb"] < two["pesq_wb"] < three["pesq_wb"]
    assert by_codebooks[3]["bitrate_bps"] == 3 * by_codebooks[1]["bitrate_bps"]


def test_manifest_and_limit(codec, clips):
    folder, _ = clips
    manifest = folder / "more" / "eval.jsonl"
    manifest.write_text(json.dumps({"audio": "../a_voice.wav", "text": "hi"}) + "\n\n"
                        + json.dumps({"path": "c_noisy_stereo.flac"}) + "\n")
    assert [p.name for p in find_audio_files(manifest)] == ["a_voice.wav", "c_noisy_stereo.flac"]
    result = evaluate_codec(codec, manifest, limit=1, progress=False)
    assert result["n_files"] == 1
    assert result["seconds_audio"] == pytest.approx(1.0)
    assert result["num_codebooks"] == 3


def test_format_report_is_a_small_table(by_codebooks):
    report = format_report({**by_codebooks[2], "pesq_wb": None})
    lines = report.splitlines()
    assert lines[0].split() == ["codec", "fake-rsq"]
    assert "128.00 kbps" in report
    assert f"{by_codebooks[2]['stoi']:.3f}" in report
    assert "n/a (install the pesq package)" in report


def test_empty_folder_is_refused(codec, tmp_path):
    (tmp_path / "readme.txt").write_text("no audio here")
    with pytest.raises(FileNotFoundError, match="no .wav or .flac files under"):
        evaluate_codec(codec, tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        evaluate_codec(codec, tmp_path / "missing", progress=False)


@pytest.mark.parametrize("bad_line, error, message", [
    ("{not json", ManifestError, ":3: not valid JSON"),
    ('{"text": "no audio field"}', AudioError, ':3: expected an "audio" or "path" field'),
    ('["a_voice.wav"]', ManifestError, ":3: expected a JSON object"),
    ('{"audio": "gone.wav"}', FileNotFoundError, ":3: audio file .*gone.wav not found"),
])
def test_bad_manifest_line_names_its_number(codec, clips, tmp_path, bad_line, error, message):
    folder, _ = clips
    manifest = tmp_path / "eval.jsonl"
    good = json.dumps({"audio": str(folder / "a_voice.wav")})
    manifest.write_text(f"{good}\n\n{bad_line}\n{good}\n")
    with pytest.raises(error, match=message):
        evaluate_codec(codec, manifest, progress=False)


@pytest.mark.parametrize("num_codebooks", [0, 4, -1, 2.0])
def test_num_codebooks_out_of_range(codec, clips, num_codebooks):
    folder, _ = clips
    with pytest.raises(CodecError, match="num_codebooks must be an integer from 1 to 3 for fake-rsq"):
        evaluate_codec(codec, folder, num_codebooks=num_codebooks, progress=False)


def test_too_short_file_names_the_file(codec, tmp_path):
    sf.write(tmp_path / "blip.wav", chirp(0.1, 16_000), 16_000)
    with pytest.raises(AudioError, match="blip.wav: .*at least 0.5 s"):
        evaluate_codec(codec, tmp_path, progress=False)
