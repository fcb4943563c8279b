"""EnCodec backend: the package's own checkpoint format, loaded offline with random weights.

The models keep their real architecture (the format is a state dict of it), so
the files are the real size. Codebooks are drawn from real latents, as k-means
starts in training: the package's zero codebooks would make every code decode
alike and let shape-only bugs through.
"""
import math

import pytest
import torch
from encodec.model import EncodecModel

from s2s.codecs import STREAM_TOLERANCE, CodecError, CodecWeightsNotFound, load_codec
from s2s.codecs.encodec import CHECKPOINTS, NOMINAL_RMS, EncodecCodec

FILE_24 = CHECKPOINTS["encodec_24khz"]
FILE_48 = CHECKPOINTS["encodec_48khz"]


def random_state(build, make_wav) -> dict:
    """Random weights; each codebook drawn from the residuals it will see, as k-means starts in training."""
    torch.manual_seed(0)
    model = build(pretrained=False)
    wav = make_wav(1.0, model.sample_rate, channels=model.channels, seed=1)
    with torch.no_grad():
        latents = model.encoder(wav / wav.std())  # [1, D, F]
        residual = latents[0].T  # [F, D]
        for layer in model.quantizer.vq.layers:
            book = layer._codebook
            picks = torch.randint(len(residual), (book.codebook_size,))
            book.embed.copy_(residual[picks] + 0.1 * residual.std() * torch.randn_like(book.embed))
            residual = residual - book.embed[book.quantize(residual)]
    return model.state_dict()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, make_wav):
    """A folder holding both checkpoints, named as the package names them."""
    folder = tmp_path_factory.mktemp("encodec")
    torch.save(random_state(EncodecModel.encodec_model_24khz, make_wav), folder / FILE_24)
    torch.save(random_state(EncodecModel.encodec_model_48khz, make_wav), folder / FILE_48)
    return folder


@pytest.fixture(scope="module")
def codec24(folder):
    return load_codec(folder / FILE_24)


@pytest.fixture(scope="module")
def codec48(folder):
    return load_codec(folder / FILE_48)


def test_loads_by_file_with_its_properties(codec24, codec48):
    assert isinstance(codec24, EncodecCodec) and codec24.name == "encodec_24khz"
    assert (codec24.sample_rate, codec24.hop_samples, codec24.channels) == (24000, 320, 1)
    assert (codec24.num_codebooks, codec24.codebook_size, codec24.frame_rate) == (8, 1024, 75)  # 6 kbps
    assert codec24.bitrate == 6000
    assert (codec48.sample_rate, codec48.hop_samples, codec48.channels, codec48.num_codebooks) == (48000, 320, 2, 4)


def test_folder_with_both_checkpoints_is_ambiguous(folder, tmp_path):
    with pytest.raises(CodecError, match="both"):
        load_codec(folder)
    (tmp_path / FILE_24).symlink_to(folder / FILE_24)
    assert load_codec(tmp_path).name == "encodec_24khz"


def test_round_trip_shapes(codec24, make_wav):
    wav = make_wav(0.3, 24000, batch=2)[..., :7207]  # not a whole number of hops
    codes = codec24.encode(wav, 24000)
    frames = math.ceil(7207 / 320)
    assert codes.dtype == torch.long and codes.shape == (2, 8, frames)
    assert 0 <= codes.min() and codes.max() < 1024
    assert not torch.equal(codes[0], codes[1])
    decoded = codec24.decode(codes)
    assert decoded.dtype == torch.float32 and decoded.shape == (2, 1, frames * 320)


def test_codes_and_audio_match_the_package(codec24, make_wav):
    wav = make_wav(0.3, 24000)
    model = codec24.model
    (expected_codes, _), = model.encode(wav)
    codes = codec24.encode(wav, 24000)
    assert torch.equal(codes, expected_codes)
    assert torch.allclose(codec24.decode(codes), model.decode([(expected_codes, None)]), atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_any_input_rate(codec24, make_wav, rate):
    wav = make_wav(0.25, rate)
    codes = codec24.encode(wav, rate)
    assert codes.shape == (1, 8, math.ceil(math.ceil(wav.shape[-1] * 24000 / rate) / 320))


def test_stereo_is_downmixed(codec24, make_wav):
    stereo = make_wav(0.3, 24000, channels=2)
    assert torch.equal(codec24.encode(stereo, 24000), codec24.encode(stereo.mean(1, keepdim=True), 24000))


def test_bandwidth_picks_a_prefix_of_codebooks(folder, codec24, make_wav):
    low = load_codec(folder / FILE_24, bandwidth=1.5)
    assert low.num_codebooks == 2 and load_codec(folder / FILE_24, bandwidth=24.0).num_codebooks == 32
    wav = make_wav(0.3, 24000)
    assert torch.equal(low.encode(wav, 24000), codec24.encode(wav, 24000)[:, :2])  # residual VQ
    assert low.decode(codec24.encode(wav, 24000)).shape[1] == 1  # decode takes any codebook count
    with pytest.raises(CodecError, match="1.5, 3, 6, 12, 24"):
        load_codec(folder / FILE_24, bandwidth=5.0)
    assert load_codec(folder / FILE_24, num_codebooks=16).bandwidth == 12.0  # the loader's common option
    with pytest.raises(CodecError, match=r"\[2, 4, 8, 16, 32\]"):
        load_codec(folder / FILE_24, num_codebooks=3)


def test_streaming_matches_full_decode(codec24, make_wav, stream_decode):
    codes = codec24.encode(make_wav(0.6, 24000), 24000)
    full = codec24.decode(codes)
    assert codec24.stream_lookahead_frames == 0  # causal decoder
    error = (stream_decode(codec24, codes) - full).abs()[0, 0]
    assert error.max() < codec24.stream_tolerance
    assert error[codec24.stream_start_frames * 320:].max() < STREAM_TOLERANCE  # past the reflect-padded start
    # The context matters: without it the LSTM and convs start cold at every step.
    try:
        codec24.stream_context_frames = 0
        assert (stream_decode(codec24, codes) - full).abs().max() > 10 * codec24.stream_tolerance
    finally:
        del codec24.stream_context_frames  # back to the class value


def test_48khz_codes_ignore_loudness(codec48, make_wav):
    """The scale is dropped: a clip and its quieter copy give the same codes and play at the nominal level.

    Longer than the package's 1 s segments, so the codes must come out as one contiguous grid."""
    wav = make_wav(1.2, 48000, channels=2)
    codes = codec48.encode(wav, 48000)
    assert codes.shape == (1, 4, math.ceil(wav.shape[-1] / 320))
    assert torch.equal(codes, codec48.encode(0.1 * wav, 48000))
    decoded = codec48.decode(codes)
    assert decoded.shape == (1, 1, codes.shape[-1] * 320)
    model = codec48.model
    unscaled = model.decoder(model.quantizer.decode(codes.transpose(0, 1))).mean(1, keepdim=True)
    assert torch.allclose(decoded, NOMINAL_RMS * unscaled, atol=1e-6)


def test_48khz_streaming_within_its_stated_tolerance(codec48, make_wav, stream_decode):
    codes = codec48.encode(make_wav(0.3, 48000), 48000)
    error = (stream_decode(codec48, codes) - codec48.decode(codes)).abs().max()
    assert STREAM_TOLERANCE < codec48.stream_tolerance  # GroupNorm over time: exact match is impossible
    assert error < codec48.stream_tolerance


def test_offline_pretrained_names_the_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("S2S_OFFLINE", "1")
    with pytest.raises(CodecWeightsNotFound) as caught:
        load_codec("encodec")
    message = str(caught.value)
    assert "\n" not in message and FILE_24 in message
    assert "https://dl.fbaipublicfiles.com/encodec/v0/" + FILE_24 in message
    assert str(tmp_path / "hub" / "checkpoints") in message


def test_cached_checkpoint_loads_without_network(monkeypatch, tmp_path, folder):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("S2S_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / FILE_24).symlink_to(folder / FILE_24)
    codec = load_codec("encodec_24khz", bandwidth=3.0)
    assert codec.name == "encodec_24khz" and codec.num_codebooks == 4
    expected = torch.load(folder / FILE_24, weights_only=True)
    assert torch.equal(codec.model.state_dict()["quantizer.vq.layers.0._codebook.embed"],
                       expected["quantizer.vq.layers.0._codebook.embed"])


def test_download_failure_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("S2S_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def unreachable(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    with pytest.raises(CodecWeightsNotFound, match=FILE_48):
        load_codec("encodec_48khz")
