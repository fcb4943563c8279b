"""transformers backends: tiny Mimi, EnCodec and DAC models written by `save_pretrained`, loaded offline.

The tiny configs keep each model's real strides (hop 1920, 320 and 512) with
narrow layers. Mimi's decoder transformer gets a short sliding window so the
context that exact streaming needs stays small.
"""
import json
import math

import pytest
import torch
from huggingface_hub import constants
from transformers import DacConfig, DacModel, EncodecConfig, EncodecModel, MimiConfig, MimiModel

import s2s.codecs.hf as hf
from s2s.codecs import STREAM_TOLERANCE, CodecError, CodecWeightsNotFound, load_codec

TINY_MIMI = dict(hidden_size=32, num_filters=4, codebook_dim=16, vector_quantization_hidden_dimension=16,
                 num_quantizers=4, codebook_size=64, upsample_groups=32, num_hidden_layers=2, intermediate_size=64,
                 num_attention_heads=2, num_key_value_heads=2, sliding_window=4)
TINY_ENCODEC = dict(hidden_size=16, num_filters=4, num_lstm_layers=1, codebook_size=1024)
TINY_DAC = dict(encoder_hidden_size=4, downsampling_ratios=[2, 4, 8, 8], decoder_hidden_size=32, n_codebooks=4,
                codebook_size=64, codebook_dim=4, sampling_rate=44100)
# name -> (sample rate, hop, default codebooks, codebook size)
EXPECTED = {"mimi": (24000, 1920, 4, 64), "encodec": (24000, 320, 8, 1024), "dac": (44100, 512, 4, 64)}


def tiny_mimi() -> MimiModel:
    torch.manual_seed(0)
    model = MimiModel(MimiConfig(**TINY_MIMI)).eval()
    for name, buffer in model.named_buffers():
        if name.endswith("embed_sum"):  # zeros at init: every code would decode alike
            buffer.normal_()
    return model


def tiny_encodec(make_wav, **config) -> EncodecModel:
    """Codebooks drawn from the residuals they will see (they are zeros at init), as k-means starts."""
    torch.manual_seed(0)
    model = EncodecModel(EncodecConfig(**{**TINY_ENCODEC, **config})).eval()
    with torch.no_grad():
        wav = make_wav(1.0, model.config.sampling_rate, channels=model.config.audio_channels, seed=1)
        residual = model.encoder(wav)[0].T  # [F, D]
        for layer in model.quantizer.layers:
            book = layer.codebook
            picks = torch.randint(len(residual), (book.embed.shape[0],))
            book.embed.copy_(residual[picks] + 0.1 * residual.std() * torch.randn_like(book.embed))
            residual = residual - book.embed[book.quantize(residual)]
    return model


def tiny_dac() -> DacModel:
    torch.manual_seed(0)
    return DacModel(DacConfig(**TINY_DAC)).eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory, make_wav):
    root = tmp_path_factory.mktemp("hf")
    models = {"mimi": tiny_mimi(), "encodec": tiny_encodec(make_wav), "dac": tiny_dac()}
    for kind, model in models.items():
        model.save_pretrained(root / kind)
    return {kind: root / kind for kind in models}


@pytest.fixture(scope="module")
def codecs(folders):
    return {kind: load_codec(folder) for kind, folder in folders.items()}


@pytest.fixture(params=list(EXPECTED))
def kind(request):
    return request.param


def test_loads_save_pretrained_folders(codecs, kind):
    codec = codecs[kind]
    assert isinstance(codec, hf.CODECS[kind]) and codec.name == kind
    assert (codec.sample_rate, codec.hop_samples, codec.num_codebooks, codec.codebook_size) == EXPECTED[kind]


def test_round_trip_shapes(codecs, kind, make_wav):
    codec = codecs[kind]
    rate, hop = codec.sample_rate, codec.hop_samples
    wav = make_wav(0.3 if kind != "mimi" else 0.6, rate, batch=2)[..., : 5 * hop + 7]  # not a whole number of hops
    codes = codec.encode(wav, rate)
    assert codes.dtype == torch.long and codes.shape == (2, codec.num_codebooks, 6)
    assert 0 <= codes.min() and codes.max() < codec.codebook_size and not torch.equal(codes[0], codes[1])
    decoded = codec.decode(codes)
    assert decoded.dtype == torch.float32 and decoded.shape == (2, 1, 6 * hop)


@torch.inference_mode()
def test_matches_transformers(codecs, make_wav):
    wav = make_wav(0.5, 24000)
    mimi = codecs["mimi"].model
    codes = codecs["mimi"].encode(wav, 24000)
    assert torch.equal(codes, mimi.encode(wav).audio_codes)
    assert torch.allclose(codecs["mimi"].decode(codes), mimi.decode(codes).audio_values, atol=1e-6)
    encodec = codecs["encodec"].model
    assert torch.equal(codecs["encodec"].encode(wav, 24000), encodec.encode(wav, bandwidth=6.0).audio_codes[0])
    dac = codecs["dac"].model
    wav = make_wav(0.3, 44100)[..., : 20 * 512]
    codes = codecs["dac"].encode(wav, 44100)
    assert torch.equal(codes, dac.encode(wav).audio_codes)
    assert torch.allclose(codecs["dac"].decode(codes)[:, 0], dac.decode(audio_codes=codes).audio_values, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_any_input_rate(codecs, kind, make_wav, rate):
    codec = codecs[kind]
    wav = make_wav(0.3, rate)
    resampled = math.ceil(wav.shape[-1] * codec.sample_rate / rate)
    assert codec.encode(wav, rate).shape == (1, codec.num_codebooks, math.ceil(resampled / codec.hop_samples))


def test_stereo_is_downmixed(codecs, kind, make_wav):
    codec = codecs[kind]
    stereo = make_wav(0.3, 32000, channels=2)
    assert torch.equal(codec.encode(stereo, 32000), codec.encode(stereo.mean(1, keepdim=True), 32000))


def test_num_codebooks_keeps_a_prefix(folders, codecs, make_wav):
    wav = make_wav(0.5, 24000)
    two = load_codec(folders["mimi"], num_codebooks=2)
    assert torch.equal(two.encode(wav, 24000), codecs["mimi"].encode(wav, 24000)[:, :2])
    low = load_codec(folders["encodec"], num_codebooks=2)  # 1.5 kbps
    assert torch.equal(low.encode(wav, 24000), codecs["encodec"].encode(wav, 24000)[:, :2])
    assert load_codec(folders["dac"], num_codebooks=3).num_codebooks == 3
    with pytest.raises(CodecError, match=r"\[2, 4, 8, 16, 32\]"):
        load_codec(folders["encodec"], num_codebooks=3)
    with pytest.raises(CodecError, match=r"\[1, 4\]"):
        load_codec(folders["dac"], num_codebooks=5)


def test_mimi_context_covers_the_measured_reach(codecs):
    """A changed frame moves later audio for a while (attention windows, convs): the context must cover it."""
    codec = codecs["mimi"]
    frames, probe = 30, 5
    codes = torch.randint(0, 64, (1, 4, frames))
    changed = codes.clone()
    changed[..., probe] = (changed[..., probe] + 1) % 64
    moved = (codec.decode(codes) - codec.decode(changed)).abs()[0, 0].reshape(frames, -1).amax(-1) > 0
    moved_frames = moved.nonzero()[:, 0]
    assert moved_frames.min() == probe  # causal: nothing before the change moves
    assert 0 < moved_frames.max() - probe <= codec.stream_context_frames


def test_streaming_matches_full_decode(codecs, kind, make_wav, stream_decode):
    codec = codecs[kind]
    codes = codec.encode(make_wav(1.6 if kind == "mimi" else 0.5, codec.sample_rate), codec.sample_rate)
    full = codec.decode(codes)
    error = (stream_decode(codec, codes) - full).abs()[0, 0]
    assert error.max() < getattr(codec, "stream_tolerance", STREAM_TOLERANCE)
    start_frames = getattr(codec, "stream_start_frames", 0)  # EnCodec's reflect-padded start, see encodec.py
    assert error[start_frames * codec.hop_samples:].max() < STREAM_TOLERANCE
    context = codec.stream_context_frames
    try:
        codec.stream_context_frames = 0
        assert (stream_decode(codec, codes) - full).abs().max() > STREAM_TOLERANCE  # the context matters
    finally:
        codec.stream_context_frames = context


def test_48khz_encodec_form_is_refused(tmp_path, make_wav):
    stereo = dict(sampling_rate=48000, audio_channels=2, normalize=True, chunk_length_s=1.0, overlap=0.01,
                  use_causal_conv=False, norm_type="time_group_norm", target_bandwidths=[3.0, 6.0, 12.0, 24.0])
    tiny_encodec(make_wav, **stereo).save_pretrained(tmp_path)
    with pytest.raises(CodecError, match="encodec_48khz"):
        load_codec(tmp_path)


def test_other_transformers_folders_are_not_claimed(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert hf.from_path(tmp_path) is None
    with pytest.raises(CodecError, match="not a codec checkpoint"):
        load_codec(tmp_path)


@pytest.fixture
def empty_hub_cache(monkeypatch, tmp_path):
    """The Hub cache pointed at an empty folder (the constant is read when a model loads)."""
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_offline_pretrained_names_the_missing_files(monkeypatch, empty_hub_cache):
    monkeypatch.setenv("S2S_OFFLINE", "1")
    with pytest.raises(CodecWeightsNotFound) as caught:
        load_codec("mimi")
    message = str(caught.value)
    assert "\n" not in message and "config.json" in message and "model.safetensors" in message
    assert "https://huggingface.co/kyutai/mimi" in message and str(empty_hub_cache) in message


def test_unreachable_hub_fails_after_one_request(monkeypatch, empty_hub_cache):
    """Without the offline flag: one metadata request, and no retrying download after it fails."""
    monkeypatch.delenv("S2S_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    requests = []

    def unreachable(url, **kwargs):
        requests.append(url)
        raise OSError("network is unreachable")

    monkeypatch.setattr(hf, "get_hf_file_metadata", unreachable)
    with pytest.raises(CodecWeightsNotFound, match="descript/dac_16khz"):
        load_codec("hf-dac_16khz")
    assert requests == ["https://huggingface.co/descript/dac_16khz/resolve/main/config.json"]


def test_cached_snapshot_loads_without_network(monkeypatch, empty_hub_cache, folders):
    monkeypatch.setenv("S2S_OFFLINE", "1")
    commit = "0" * 40
    snapshot = empty_hub_cache / "models--kyutai--mimi" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in ("config.json", "model.safetensors"):
        (snapshot / file).symlink_to(folders["mimi"] / file)
    (empty_hub_cache / "models--kyutai--mimi" / "refs").mkdir()
    (empty_hub_cache / "models--kyutai--mimi" / "refs" / "main").write_text(commit)
    codec = load_codec("mimi", num_codebooks=2)
    assert (codec.name, codec.num_codebooks, codec.hop_samples) == ("mimi", 2, 1920)
