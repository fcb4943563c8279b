"""The speaker-ID model: trains from the YAML, tells voices apart, exports and reloads, refuses bad references."""
import json
from pathlib import Path

import pytest
import torch

from s2s.audio import AudioError
from s2s.cli import main
from s2s.data.espeak import render
from s2s.style.speaker import SpeakerClassifier

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "style" / "speaker-id.yaml")
VOICES = ["en-us+f3", "en+m3", "en-gb-x-rp+klatt"]
SENTENCES = ["the cat sat on the mat", "seven plus nine is sixteen", "how many apples are left",
             "a train leaves at nine", "which number is larger", "she buys four packs of pens"]


@pytest.fixture(scope="module")
def voice_manifest(tmp_path_factory) -> Path:
    from s2s import audio

    root = tmp_path_factory.mktemp("voices")
    rows = []
    for v, voice in enumerate(VOICES):
        for s, sentence in enumerate(SENTENCES):
            samples, rate = render(sentence, voice)
            path = f"wavs/{v}-{s}.wav"
            audio.save(root / path, torch.from_numpy(samples).float()[None], rate)
            rows.append({"id": f"{v}-{s}", "question_audio": path, "question_voice": voice})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "manifest.jsonl"


def test_fit_from_the_yaml_learns_to_tell_three_voices_apart_and_exports(voice_manifest, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["s2s"])
    torch.manual_seed(0)
    main(["fit", "--config", CONFIG, "--model.init_args.voices_manifest", str(voice_manifest),
          "--model.init_args.channels", "32", "--model.init_args.dim", "16", "--model.init_args.warmup_steps", "1",
          "--data.init_args.train", str(voice_manifest), "--data.init_args.val_every", "6",
          "--data.init_args.batch_size", "6", "--data.init_args.crop_seconds", "1.0",
          "--trainer.max_steps", "40", "--trainer.val_check_interval", "20", "--trainer.precision", "32",
          "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
    main(["export", "runs/speaker-id/checkpoints/last.ckpt", "speaker"])
    model = SpeakerClassifier.from_folder("speaker")
    assert model.voices == sorted(VOICES)
    for voice in VOICES:  # sentences it trained on, except the first (held out for validation)
        samples, rate = render("four plus four is eight", voice)
        assert model.classify(torch.from_numpy(samples).float(), rate) == [voice]
    a, b = (torch.from_numpy(render("hello there", voice)[0]).float() for voice in VOICES[:2])
    same = model.similarity(a, 22050, torch.from_numpy(render("good morning", VOICES[0])[0]).float(), 22050)
    assert same > model.similarity(a, 22050, b, 22050)


def test_bad_references_are_refused_in_one_line():
    model = SpeakerClassifier(voices=["a", "b"], channels=8, dim=4)
    with pytest.raises(AudioError, match="0.10 s long; give at least 0.5 s"):
        model.embed(torch.randn(1600) * 0.1, 16000)
    with pytest.raises(AudioError, match="silent"):
        model.embed(torch.zeros(16000), 16000)
    with pytest.raises(ValueError, match="at least 2 voices"):
        SpeakerClassifier(voices=["a"])
    embedding = model.embed(torch.randn(2, 1, 16000) * 0.1, 16000)
    assert embedding.shape == (2, 4) and torch.allclose(embedding.norm(dim=-1), torch.ones(2), atol=1e-5)
