"""The `s2s` command: the demo, codec round trips, and one-line errors with exit code 2."""
import json

import pytest
import torch

from s2s import audio
from s2s.cli import main
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.demo import EXAMPLE_QUESTION


@pytest.fixture(scope="module")
def small_codec(tmp_path_factory):
    torch.manual_seed(0)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=2,
                                       codebook_size=16, decoder_dim=16, decoder_layers=1)).train()
    net(torch.randn(2, 3200) * 0.1)
    return str(save_net(net.eval(), tmp_path_factory.mktemp("codec") / "small"))


def test_roundtrip_writes_audio_and_prints_figures(small_codec, tmp_path, capsys):
    out = tmp_path / "rec.wav"
    main(["codec", "roundtrip", str(EXAMPLE_QUESTION), "--out", str(out), "--codec", small_codec])
    figures = json.loads(capsys.readouterr().out)
    wav, rate = audio.load(out)
    assert rate == 16000 and wav.shape[-1] == figures["frames"] * 320
    assert figures["bitrate_bps"] == 50 * 2 * 4 and 0 <= figures["stoi"] <= 1
    with pytest.raises(SystemExit) as exit_info:  # never overwrite what a user saved
        main(["codec", "roundtrip", str(EXAMPLE_QUESTION), "--out", str(out), "--codec", small_codec])
    assert exit_info.value.code == 2 and "already exists" in capsys.readouterr().err


def test_demo_answers_the_bundled_question_and_never_overwrites_an_earlier_output(tmp_path, capsys):
    """The main job: the shipped default model hears the bundled question, thinks and speaks."""
    main(["demo", "--out", str(tmp_path)])
    main(["demo", "--out", str(tmp_path)])
    written = sorted(p.name for p in tmp_path.glob("*.wav"))
    assert written == ["example_reply-1.wav", "example_reply.wav"]
    out = capsys.readouterr().out
    assert "heard   :" in out and "thought :" in out and "answer  :" in out and "first audio" in out
    wav, rate = audio.load(tmp_path / "example_reply.wav")
    assert rate == 16000 and wav.shape[-1] > 0.3 * rate  # a spoken reply, not an empty file


def test_demo_falls_back_to_the_codec_stage_without_a_model(small_codec, tmp_path, capsys, monkeypatch):
    import s2s.pipeline

    monkeypatch.setattr(s2s.pipeline, "DEFAULT_MODEL", tmp_path / "no-model-here")
    main(["demo", "--out", str(tmp_path), "--codec", small_codec])
    assert [p.name for p in tmp_path.glob("*.wav")] == ["example_question.reconstructed.wav"]
    assert "STOI" in capsys.readouterr().out.upper()


@pytest.mark.parametrize("argv, message", [
    (["codec", "roundtrip", "missing.wav", "--out", "x.wav"], "not found"),
    (["codec", "roundtrip", str(EXAMPLE_QUESTION), "--out", "x.wav", "--codec", "nope"], "unknown codec 'nope'"),
    (["data", "speech", "--out", "y", "--n", "0"], "positive number"),
])
def test_user_errors_are_one_line_with_exit_code_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and message in err and "\n" not in err and "Traceback" not in err
