"""s2s-tiny: shapes, rates, streaming, save/load, training through LightningCLI, errors."""
import math

import pytest
import torch

from s2s.audio import AudioError
from s2s.codecs import STREAM_TOLERANCE, CodecError, CodecWeightsNotFound, load_codec
from s2s.codecs.tiny.codec import TinyCodec, save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet

SMALL = TinyCodecConfig(encoder_dim=32, encoder_layers=2, latent_dim=16, num_codebooks=4, codebook_size=64,
                        decoder_dim=48, decoder_layers=3, decoder_lookahead_frames=1)


def speechlike(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """A vowel-like harmonic signal with a moving pitch and syllable envelope: [1, C, T]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * torch.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / rate
    wav = sum(torch.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t)).abs()
    wav = 0.2 * wav + 0.003 * torch.randn(t.shape, generator=g)
    return wav.expand(channels, -1)[None].clone()


@pytest.fixture(scope="module")
def trained_net():
    """A small net trained for a few steps so its codebooks are k-means initialised."""
    torch.manual_seed(0)
    net = TinyCodecNet(SMALL).train()
    batch = torch.cat([speechlike(0.64, 16000, seed=s)[0] for s in range(4)])
    net(batch)
    return net.eval()


@pytest.fixture(scope="module")
def codec(trained_net):
    return TinyCodec(trained_net)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_encode_any_rate_gives_frames_at_50hz(codec, rate):
    wav = speechlike(0.5, rate)
    codes = codec.encode(wav, rate)
    expected_frames = math.ceil(round(wav.shape[-1] * 16000 / rate) / 320)
    assert codes.dtype == torch.long and codes.shape == (1, 4, expected_frames)
    assert 0 <= codes.min() and codes.max() < 64
    decoded = codec.decode(codes)
    assert decoded.dtype == torch.float32 and decoded.shape == (1, 1, expected_frames * 320)


def test_stereo_and_batch_input(codec):
    stereo = torch.cat([speechlike(0.4, 22050, channels=2, seed=1), speechlike(0.4, 22050, channels=2, seed=2)])
    codes = codec.encode(stereo, 22050)
    assert codes.shape[:2] == (2, 4)
    mono = codec.encode(stereo.mean(dim=1, keepdim=True), 22050)
    assert torch.equal(codes, mono)  # stereo is down-mixed, not just the left channel


def test_streaming_decode_matches_full_decode(codec):
    codes = codec.encode(speechlike(1.5, 16000), 16000)
    full = codec.decode(codes)
    pieces = []
    with codec.streaming(batch_size=1):
        for start in range(0, codes.shape[-1], 3):
            pieces.append(codec.decode_step(codes[..., start:start + 3]))
        pieces.append(codec.flush())
    streamed = torch.cat(pieces, dim=-1)
    assert streamed.shape == full.shape
    assert (streamed - full).abs().max() < STREAM_TOLERANCE


def _stream(codec, codes, posteriors=None, step=3):
    pieces = []
    with codec.streaming(batch_size=1):
        for start in range(0, codes.shape[-1], step):
            part = None if posteriors is None else posteriors[:, :, start:start + step]
            pieces.append(codec.decode_step(codes[..., start:start + step], part))
        pieces.append(codec.flush())
    return torch.cat(pieces, dim=-1)


def test_streaming_from_posteriors_decodes_each_codebooks_expected_entry(codec):
    """Certain posteriors say exactly the codes; uncertain ones say the expected entries, streamed as decoded
    whole; frames fed without posteriors in a soft stream count as certain."""
    codes = codec.encode(speechlike(1.2, 16000), 16000)  # [1, 4, F]
    certain = torch.nn.functional.one_hot(codes, 64).float()  # [1, 4, F, 64]
    assert (_stream(codec, codes, certain) - codec.decode(codes)).abs().max() < STREAM_TOLERANCE
    unsure = (certain * 4 + torch.rand(certain.shape, generator=torch.Generator().manual_seed(0))).softmax(-1)
    unsure_codes = unsure.argmax(-1)
    soft = _stream(codec, unsure_codes, unsure)
    assert (soft - codec._decode_posteriors(unsure)).abs().max() < STREAM_TOLERANCE
    assert (soft - codec.decode(unsure_codes)).abs().max() > 10 * STREAM_TOLERANCE  # not the chosen codes' sound
    half = unsure.clone()
    half[:, :, 6:] = torch.nn.functional.one_hot(unsure_codes[:, :, 6:], 64).float()
    pieces = []
    with codec.streaming(batch_size=1):
        pieces.append(codec.decode_step(unsure_codes[..., :6], unsure[:, :, :6]))
        pieces.append(codec.decode_step(unsure_codes[..., 6:]))
        pieces.append(codec.flush())
    assert (torch.cat(pieces, dim=-1) - codec._decode_posteriors(half)).abs().max() < STREAM_TOLERANCE


def test_posteriors_of_the_wrong_shape_or_for_a_codec_without_them_are_refused(codec, trained_net):
    codes = codec.encode(speechlike(0.4, 16000), 16000)
    with codec.streaming(1), pytest.raises(CodecError, match=r"posteriors must be \[B, K, f, C\]"):
        codec.decode_step(codes, torch.ones(1, 4, codes.shape[-1], 32))
    hard = TinyCodec(trained_net)
    hard.decodes_posteriors = False
    with hard.streaming(1), pytest.raises(CodecError, match="decodes codes only"):
        hard.decode_step(codes, torch.nn.functional.one_hot(codes, 64).float())


def test_streaming_emits_audio_before_the_end(codec):
    codes = codec.encode(speechlike(1.0, 16000), 16000)
    with codec.streaming(1):
        first = codec.decode_step(codes[..., : codec.stream_lookahead_frames + 1])
    assert first.shape[-1] == 320  # one frame is final once its lookahead has arrived


def test_save_and_load_round_trip(tmp_path, trained_net, codec):
    folder = save_net(trained_net, tmp_path / "codec")
    loaded = load_codec(folder)
    wav = speechlike(0.6, 16000)
    codes = codec.encode(wav, 16000)
    assert (loaded.decode(codes) - codec.decode(codes)).abs().max() < 1e-2  # weights are float16 on disk
    again = load_codec(save_net(loaded.net, tmp_path / "again"))
    assert torch.equal(again.encode(wav, 16000), loaded.encode(wav, 16000))  # saving a loaded codec is lossless
    assert torch.equal(again.decode(codes), loaded.decode(codes))
    with pytest.raises(FileExistsError):
        save_net(trained_net, folder)
    fewer = load_codec(folder, num_codebooks=2)
    assert fewer.encode(wav, 16000).shape[1] == 2


def test_more_codebooks_reconstruct_the_latent_better(trained_net):
    z = trained_net.encoder(trained_net.analysis(speechlike(0.64, 16000)[0]))
    errors = [(trained_net.quantizer.decode(trained_net.quantizer.encode(z, k)) - z).pow(2).mean() for k in (1, 2, 4)]
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("bad, message", [
    (torch.zeros(1, 1, 0), "empty"),
    (torch.full((1, 1, 1600), float("nan")), "NaN"),
    (torch.zeros(1600), "shape"),
    (torch.zeros(1, 1, 1600, dtype=torch.int16), "float"),
])
def test_bad_audio_gives_one_line_error(codec, bad, message):
    with pytest.raises(AudioError, match=message) as err:
        codec.encode(bad, 16000)
    assert "\n" not in str(err.value)


def test_bad_codes_give_clear_errors(codec):
    with pytest.raises(CodecError, match="range"):
        codec.decode(torch.full((1, 4, 3), 64))
    with pytest.raises(CodecError, match="codebooks"):
        codec.decode(torch.zeros(1, 5, 3, dtype=torch.long))
    with pytest.raises(CodecError, match="streaming"):
        codec.decode_step(torch.zeros(1, 4, 3, dtype=torch.long))


def test_unknown_name_and_missing_weights(tmp_path, trained_net):
    with pytest.raises(CodecError, match="unknown codec 'no-such-codec'.*s2s-tiny"):
        load_codec("no-such-codec")
    folder = save_net(trained_net, tmp_path / "codec")
    (folder / "model.safetensors").unlink()
    with pytest.raises(CodecWeightsNotFound, match="model.safetensors"):
        load_codec(folder)


def test_shipped_codec_reconstructs_the_example_question_intelligibly():
    from s2s import audio as audio_io
    from s2s.demo import EXAMPLE_QUESTION
    from s2s.eval import QualityMetrics

    codec = load_codec("s2s-tiny")
    assert (codec.sample_rate, codec.frame_rate, codec.num_codebooks, codec.codebook_size) == (16000, 50, 8, 1024)
    assert codec.bitrate == 4000
    wav, rate = audio_io.load(EXAMPLE_QUESTION)
    metrics = QualityMetrics(pesq=False)
    reconstruction = codec.decode(codec.encode(wav[None], rate))
    metrics.update(reconstruction, wav[None], codec.sample_rate, reference_sample_rate=rate)
    assert metrics.compute()["stoi"] > 0.85  # random weights score about 0.3
