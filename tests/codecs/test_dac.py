"""DAC backend: tiny `dac.DAC` models saved in the package's own weights format, loaded offline.

The tiny models keep the real strides (so hops and receptive fields are the
real ones) with narrow layers: the 44.1 kHz layout (hop 512, even strides) and
the 16 kHz layout (hop 320, a stride of 5 whose transposed conv drops samples).
"""
import math

import pytest
import torch
from dac.model import DAC

from s2s.codecs import STREAM_TOLERANCE, CodecError, CodecWeightsNotFound, load_codec
from s2s.codecs.dac import DACCodec

LAYOUTS = {
    "44khz": dict(encoder_rates=[2, 4, 8, 8], decoder_rates=[8, 8, 4, 2], sample_rate=44100),
    "16khz": dict(encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2], sample_rate=16000),
}


def tiny_dac(layout: str) -> DAC:
    torch.manual_seed(0)
    return DAC(encoder_dim=4, latent_dim=16, decoder_dim=32, n_codebooks=4, codebook_size=64, codebook_dim=4,
               **LAYOUTS[layout]).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """layout -> a .pth written by the package's own `DAC.save(path, package=False)`."""
    folder = tmp_path_factory.mktemp("dac")
    paths = {}
    for layout in LAYOUTS:
        (folder / layout).mkdir()
        paths[layout] = tiny_dac(layout).save(str(folder / layout / "weights.pth"), package=False)
    return paths


@pytest.fixture(scope="module", params=list(LAYOUTS))
def codec(request, files):
    return load_codec(files[request.param])


def test_loads_file_and_folder_with_the_files_kwargs(files):
    codec = load_codec(files["16khz"])
    assert isinstance(codec, DACCodec) and codec.name == "weights"
    assert (codec.sample_rate, codec.hop_samples, codec.num_codebooks, codec.codebook_size) == (16000, 320, 4, 64)
    assert codec.frame_rate == 50
    folder_codec = load_codec(files["44khz"].rsplit("/", 1)[0])
    assert (folder_codec.sample_rate, folder_codec.hop_samples) == (44100, 512)
    assert torch.equal(folder_codec.model.state_dict()["quantizer.quantizers.0.codebook.weight"],
                       tiny_dac("44khz").state_dict()["quantizer.quantizers.0.codebook.weight"])


def test_round_trip_shapes(codec, make_wav):
    rate, hop = codec.sample_rate, codec.hop_samples
    wav = make_wav(0.3, rate, batch=2)[..., : 7 * hop + 5]  # not a whole number of hops
    codes = codec.encode(wav, rate)
    assert codes.dtype == torch.long and codes.shape == (2, 4, 8)
    assert 0 <= codes.min() and codes.max() < 64 and not torch.equal(codes[0], codes[1])
    decoded = codec.decode(codes)
    assert decoded.dtype == torch.float32 and decoded.shape == (2, 1, 8 * hop)


def test_matches_the_package(codec, make_wav):
    wav = make_wav(0.3, codec.sample_rate)
    expected = codec.model(wav, codec.sample_rate)
    codes = codec.encode(wav, codec.sample_rate)
    assert torch.equal(codes, expected["codes"])
    decoded, audio = codec.decode(codes), expected["audio"]  # odd strides make the package's audio short
    assert torch.allclose(decoded[..., : audio.shape[-1]], audio, atol=1e-5)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_any_input_rate(codec, make_wav, rate):
    wav = make_wav(0.25, rate)
    codes = codec.encode(wav, rate)
    resampled = math.ceil(wav.shape[-1] * codec.sample_rate / rate)
    assert codes.shape == (1, 4, math.ceil(resampled / codec.hop_samples))


def test_stereo_is_downmixed(codec, make_wav):
    stereo = make_wav(0.3, 22050, channels=2)
    assert torch.equal(codec.encode(stereo, 22050), codec.encode(stereo.mean(1, keepdim=True), 22050))


def test_num_codebooks_keeps_a_prefix(files, make_wav):
    full, two = load_codec(files["44khz"]), load_codec(files["44khz"], num_codebooks=2)
    wav = make_wav(0.3, 44100)
    assert torch.equal(two.encode(wav, 44100), full.encode(wav, 44100)[:, :2])
    assert two.decode(full.encode(wav, 44100)).shape[-1] > 0  # decode takes any codebook count up to 4
    with pytest.raises(CodecError, match=r"\[1, 4\]"):
        load_codec(files["44khz"], num_codebooks=5)


def test_receptive_field_matches_a_measurement(codec):
    """Change one frame's codes and see which decoded frames move: that span is what streaming must cover."""
    frames, probe = 40, 20
    codes = torch.randint(0, 64, (1, 4, frames))
    changed = codes.clone()
    changed[..., probe] = (changed[..., probe] + 1) % 64
    moved = (codec.decode(codes) - codec.decode(changed)).abs()[0, 0].reshape(frames, -1).amax(-1) > 0
    moved_frames = moved.nonzero()[:, 0]
    assert probe - moved_frames.min() == codec.stream_lookahead_frames
    assert moved_frames.max() - probe == codec.stream_context_frames


def test_streaming_matches_full_decode(codec, make_wav, stream_decode):
    codes = codec.encode(make_wav(0.5, codec.sample_rate), codec.sample_rate)
    full = codec.decode(codes)
    assert (stream_decode(codec, codes) - full).abs().max() < STREAM_TOLERANCE
    lookahead = codec.stream_lookahead_frames
    try:
        codec.stream_lookahead_frames = lookahead // 2
        assert (stream_decode(codec, codes) - full).abs().max() > STREAM_TOLERANCE  # too little lookahead
    finally:
        codec.stream_lookahead_frames = lookahead


def test_offline_pretrained_names_the_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("S2S_OFFLINE", "1")
    with pytest.raises(CodecWeightsNotFound) as caught:
        load_codec("dac")
    message = str(caught.value)
    assert "\n" not in message and "weights_44khz_8kbps_0.0.1.pth" in message
    assert "https://github.com/descriptinc/descript-audio-codec/releases/download/0.0.1/weights.pth" in message
    assert str(tmp_path / ".cache" / "descript" / "dac") in message


def test_cached_checkpoint_loads_without_network(monkeypatch, tmp_path, files):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("S2S_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    cache = tmp_path / ".cache" / "descript" / "dac"
    cache.mkdir(parents=True)
    (cache / "weights_16khz_8kbps_0.0.5.pth").symlink_to(files["16khz"])
    codec = load_codec("dac_16khz", num_codebooks=3)
    assert (codec.name, codec.sample_rate, codec.num_codebooks) == ("dac_16khz", 16000, 3)


def test_torch_package_is_refused_with_the_fix(tmp_path):
    path = tiny_dac("44khz").save(str(tmp_path / "packaged.pth"))  # the package's default: package=True
    with pytest.raises(CodecError, match=r"package=False"):
        load_codec(path)


def test_folder_with_two_weights_files_is_not_guessed(files, tmp_path):
    for layout, path in files.items():
        (tmp_path / f"{layout}.pth").symlink_to(path)
    with pytest.raises(CodecError, match="not a codec checkpoint"):
        load_codec(tmp_path)
