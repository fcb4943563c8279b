"""Hostile inputs, property-based (hypothesis): whatever audio file or argument list a user hands the CLI, the
answer is a correct result or one line `s2s...: error: ...` with exit status 2, never a traceback; long input
is refused from its header or processed in bounded chunks."""
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2s import audio
from s2s.cli import main
from s2s.codecs import load_codec
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True)
SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "FLOAT"]


@pytest.fixture(scope="module")
def small_codec(tmp_path_factory) -> str:
    torch.manual_seed(0)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=2,
                                       codebook_size=16, decoder_dim=16, decoder_layers=1)).train()
    net(torch.randn(2, 3200) * 0.1)  # k-means initialises the codebooks
    return str(save_net(net.eval(), tmp_path_factory.mktemp("codec") / "small"))


@st.composite
def audio_files(draw):
    """(file bytes written by `write(path)`, whether it is a readable, finite, non-empty recording)."""
    kind = draw(st.sampled_from(["wav", "wav", "wav", "corrupt_header", "truncated", "noise_bytes", "text",
                                 "empty_file"]))
    channels = draw(st.sampled_from([1, 2, 6]))
    subtype = draw(st.sampled_from(SUBTYPES))
    rate = draw(st.sampled_from([8000, 16000, 22050, 44100]))
    samples = draw(st.sampled_from([0, 1, 7, 320, 4000, 12000]))
    content = draw(st.sampled_from(["tone", "clipped", "silence", "nan", "inf"]))
    seed = draw(st.integers(0, 2**16))

    def write(path: Path) -> None:
        rng = np.random.default_rng(seed)
        t = np.arange(samples) / rate
        data = np.stack([0.4 * np.sin(2 * math.pi * (220 + 40 * c) * t) for c in range(channels)], axis=1)
        if content == "clipped":
            data = np.clip(data * 8, -1, 1)
        elif content == "silence":
            data = np.zeros_like(data)
        elif content in ("nan", "inf") and samples:
            data[rng.integers(samples), 0] = np.nan if content == "nan" else np.inf
        if kind in ("wav", "corrupt_header", "truncated"):
            sf.write(str(path), data.astype(np.float32), rate, subtype=subtype)
            raw = bytearray(path.read_bytes())
            if kind == "corrupt_header":
                raw[rng.choice([0, 1, 2, 3, 8, 9, 10, 11])] ^= 0xFF  # "RIFF" or "WAVE" damaged (not the size between)
            elif kind == "truncated":
                raw = raw[: rng.integers(1, 44)]
            path.write_bytes(bytes(raw))
        elif kind == "noise_bytes":
            path.write_bytes(rng.integers(0, 256, 1 + rng.integers(0, 2000), dtype=np.uint8).tobytes())
        elif kind == "text":
            path.write_text("this is not audio, only a text file renamed .wav\n")
        else:
            path.write_bytes(b"")

    nonfinite = content in ("nan", "inf") and subtype == "FLOAT"  # PCM cannot hold NaN or Inf
    readable = kind == "wav" and samples > 0 and not nonfinite
    return write, readable, {"kind": kind, "channels": channels, "subtype": subtype, "rate": rate,
                             "samples": samples, "content": content}


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code: int, err: str, case) -> None:
    lines = err.strip().splitlines()
    assert code == 2, (case, code, err)
    assert len(lines) == 1 and lines[0].startswith("s2s") and ": error: " in lines[0], (case, err)
    assert "Traceback" not in err


@settings(max_examples=40, **SETTINGS)
@given(case=audio_files())
def test_codec_roundtrip_of_any_file_gives_a_reconstruction_or_one_line(case, small_codec, tmp_path, capsys):
    write, readable, description = case
    source, out = tmp_path / "input.wav", tmp_path / "out.wav"
    out.unlink(missing_ok=True)
    write(source)
    code, _, err = run_cli(["codec", "roundtrip", str(source), "--out", str(out), "--codec", small_codec], capsys)
    if readable:
        assert code == 0, (description, err)
        wav, rate = audio.load(out)
        expected = description["samples"] * 16000 / description["rate"]
        assert rate == 16000 and wav.shape[0] == 1 and abs(wav.shape[-1] - expected) <= 320 + 1, description
        assert torch.isfinite(wav).all()
    else:
        assert_one_line_error(code, err, description)
        assert not out.exists()  # nothing half-written


@settings(max_examples=12, **SETTINGS)
@given(case=audio_files())
def test_reply_to_any_file_answers_or_says_what_is_wrong_in_one_line(case, tmp_path, capsys):
    write, readable, description = case
    source, out = tmp_path / "question.wav", tmp_path / "reply.wav"
    out.unlink(missing_ok=True)
    write(source)
    code, printed, err = run_cli(["reply", str(source), "--out", str(out), "--json"], capsys)
    if readable:  # noise, silence or a tone: the model answers something, and says so in the one JSON object
        assert code == 0, (description, err)
        reply = json.loads(printed)
        assert {"thought", "reply_text", "answer", "audio", "timings"} <= set(reply)
    else:
        assert_one_line_error(code, err, description)


WORDS = ["reply", "evaluate", "judge", "export", "codec", "roundtrip", "eval", "data", "synth", "validate",
         "--text", "--out", "--ckpt", "--manifest", "--limit", "--temperature", "--seed", "--max-seconds",
         "--codec", "--num-codebooks", "--n", "--split", "--json", "-1", "0", "nan", "inf", "1e999", "x", "",
         "what is two plus two", "/nonexistent/file.wav", "missing.jsonl", "--overwrite", "mimi", "dac_44khz",
         "convert", "--voice", "--style", "--converter", "fast", "none"]


@settings(max_examples=80, **SETTINGS)
@given(args=st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))
def test_any_argument_list_ends_in_a_result_or_one_line(args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("S2S_OFFLINE", "1")
    if "synth" in args:  # a valid synth would render a corpus; keep it to at most a couple of rows
        args = [a if a not in ("1e999", "inf") else "-1" for a in args]
    code, _, err = run_cli(args, capsys)
    if code != 0:
        assert code == 2, (args, code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and ": error: " in lines[0] and "Traceback" not in err, (args, err)


def test_a_file_longer_than_allowed_is_refused_from_its_header(tmp_path, monkeypatch, capsys):
    path = tmp_path / "long.wav"
    audio.save(path, torch.zeros(1, 16000 * 3), 16000)
    code, _, err = run_cli(["reply", str(path), "--max-seconds", "2"], capsys)
    assert_one_line_error(code, err, "3 s question, 2 s allowed")
    assert "is 3.0 s long; a question may last at most 2 s" in err

    reads = []
    monkeypatch.setattr(sf, "read", lambda *args, **kwargs: reads.append(args))
    with pytest.raises(audio.AudioError, match="more than the 1 s allowed"):
        audio.load(path, max_seconds=1)
    assert reads == []  # the samples of a refused file are never read
    # The header's frame count decides: a header claiming a 2 GB data chunk is refused, or read no further
    # than the bytes that are really there.
    raw = bytearray(path.read_bytes())
    data_at = raw.index(b"data")
    raw[data_at + 4: data_at + 8] = struct.pack("<I", 2**31)
    path.write_bytes(bytes(raw))
    monkeypatch.undo()
    try:
        wav, _ = audio.load(path, max_seconds=60)
        assert wav.shape[-1] <= 16000 * 3
    except audio.AudioError as error:
        assert "\n" not in str(error)


def test_long_input_is_encoded_and_decoded_in_bounded_chunks(small_codec, make_wav, monkeypatch):
    codec = load_codec(small_codec)
    wav = make_wav(2.0, 16000)
    whole = codec.encode(wav, 16000)
    codec.encode_chunk_seconds = 0.5
    calls = []
    real_encode, real_decode = codec._encode, codec._decode
    monkeypatch.setattr(codec, "_encode", lambda w: calls.append(w.shape[-1]) or real_encode(w))
    chunked = codec.encode(wav, 16000)
    assert calls == [8000, 8000, 8000, 8000]  # never more than a chunk at once
    assert chunked.shape == whole.shape and (chunked == whole).float().mean() > 0.9  # only chunk edges may differ
    sizes = []
    monkeypatch.setattr(codec, "_decode", lambda c: sizes.append(c.shape[-1]) or real_decode(c))
    decoded = codec.decode(whole)
    assert sizes and max(sizes) < whole.shape[-1]  # the streaming decoder's windows, never the whole
    codec.encode_chunk_seconds = 60.0
    at_once = codec.decode(whole)
    assert decoded.shape == at_once.shape and torch.allclose(decoded, at_once, atol=1e-3)


def test_a_bad_training_config_value_is_one_line_naming_the_key(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["s2s"])
    config = Path(__file__).resolve().parents[1] / "configs" / "codec" / "tiny.yaml"
    code, _, err = run_cli(["fit", "--config", str(config), "--trainer.max_steps", "many"], capsys)
    assert_one_line_error(code, err, "max_steps: many")
    assert "max_steps" in err and "many" in err
