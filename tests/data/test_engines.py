"""Questions from espeak-ng, festival and piper: the engine split keeps held-out voices out of training,
piper speaks in batches and in order, and augmentation and noise are deterministic."""
import random
import re

import numpy as np
import pytest
import torch

from s2s import audio
from s2s.cli import main
from s2s.data import augment, engines, festival, piper
from s2s.data.espeak import SynthesisError
from s2s.data.manifest import read_manifest, validate_manifest
from s2s.data.synth import synthesize


@pytest.fixture(scope="module")
def train_manifest(tmp_path_factory):
    out = tmp_path_factory.mktemp("engines") / "train"
    main(["data", "synth", "--out", str(out), "--n", "8", "--seed", "2", "--engines", "espeak", "festival",
          "--augment"])
    return out / "manifest.jsonl"


@pytest.fixture(scope="module")
def test_manifest(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("engines") / "test", n=6, seed=2, split="test",
                      question_engines=["piper", "festival"], progress=False)


def test_the_split_covers_every_engine_and_never_overlaps():
    for engine in engines.ENGINES:
        train, held_out = set(engines.engine_voices(engine, "train")), set(engines.engine_voices(engine, "test"))
        assert held_out and not train & held_out
        assert all(engines.is_held_out(voice) for voice in held_out)
        assert not any(engines.is_held_out(voice) for voice in train)
    assert engines.engine_voices("festival", "train") == ["festival:kal_diphone"]
    assert engines.engine_voices("piper", "train") == [] and engines.is_held_out("piper:joe")
    assert engines.is_held_out("espeak:en-us+f4") and engines.is_held_out("en-029+f3")
    assert not engines.is_held_out("en-us+f3")


def test_a_train_corpus_of_every_training_engine_holds_no_held_out_voice(train_manifest):
    rows = read_manifest(train_manifest)
    assert {row["question_engine"] for row in rows} == {"espeak", "festival"}
    for row in rows:
        assert not engines.is_held_out(row["question_voice"])
        assert engines.parse_voice(row["question_voice"])[0] == row["question_engine"]
        assert row["question_voice"] in engines.engine_voices(row["question_engine"], "train")
        assert not engines.is_held_out(row["reply_voice"]) and row["question_duration_s"] > 0.5
    augmented = [row["question_augment"] for row in rows]
    assert len(set(augmented)) > 3  # each question draws its own effects
    for effects in filter(None, augmented):
        assert {re.match("[a-z]+", effect)[0] for effect in effects.split("+")} <= \
            {"speed", "reverb", "noise", "telephone", "gain"}
    assert validate_manifest(train_manifest) == []


def test_held_out_voices_and_engines_are_refused_for_training(tmp_path, capsys):
    for voice in ("festival:ked_diphone", "festival:cmu_us_slt_arctic_hts", "piper:joe", "espeak:en-us+f4"):
        with pytest.raises(ValueError, match="held-out voices must never reach training data"):
            synthesize(tmp_path / "x", n=2, split="train", question_voices=[voice])
    with pytest.raises(ValueError, match="piper has no train voices"):
        synthesize(tmp_path / "x", n=2, split="train", question_engines=["espeak", "piper"])
    with pytest.raises(ValueError, match="unknown voice 'festival:nobody'"):
        synthesize(tmp_path / "x", n=2, split="test", question_voices=["festival:nobody"])
    with pytest.raises(ValueError, match="training corpora only"):
        synthesize(tmp_path / "x", n=2, split="test", augment_audio=True)
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "synth", "--out", str(tmp_path / "y"), "--n", "2", "--voices", "festival:ked_diphone"])
    assert exit_info.value.code == 2 and capsys.readouterr().err.strip().count("\n") == 0
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # refused before rendering


def test_a_test_corpus_of_piper_and_festival_has_only_held_out_voices(test_manifest):
    rows = read_manifest(test_manifest)
    assert {row["question_engine"] for row in rows} == {"piper", "festival"}
    assert all(engines.is_held_out(row["question_voice"]) for row in rows)
    for row in rows:
        wav, rate = audio.load(test_manifest.parent / row["question_audio"])
        assert abs(wav.shape[-1] / rate - row["question_duration_s"]) < 0.01 and row["question_duration_s"] > 1.0
        if row["question_engine"] == "piper":
            assert rate == 22050 and 0.85 <= row["question_length_scale"] <= 1.15
        else:
            assert "question_length_scale" not in row and "question_augment" not in row
    assert validate_manifest(test_manifest) == []


def test_same_seed_same_rows(train_manifest, tmp_path):
    again = synthesize(tmp_path / "again", n=8, seed=2, split="train", question_engines=["espeak", "festival"],
                       augment_audio=True, workers=1, progress=False)
    assert again.read_text() == train_manifest.read_text()  # ids, voices, augmentations, durations
    row = read_manifest(again)[0]
    assert (again.parent / row["question_audio"]).read_bytes() == \
        (train_manifest.parent / row["question_audio"]).read_bytes()


@pytest.mark.parametrize("voice", festival.FESTIVAL_VOICES)
def test_festival_speaks_the_same_samples_every_time_and_ends_each_utterance_in_silence(voice):
    text = "A train leaves at six. When does it arrive at nine?"
    (first, rate), (again, _) = festival.render(text, voice), festival.render(text, voice)
    assert np.array_equal(first, again)
    frames = np.abs(first[: len(first) // 160 * 160]).reshape(-1, 160).max(axis=1)
    loud = np.flatnonzero(frames > 0.01)
    assert len(first) / rate > 2.0 and first[-rate // 10:].max() == 0.0  # the closing pause is silent
    assert (frames[loud[0]:loud[-1]] == 0).any()  # and so is the pause between the two sentences
    assert np.sqrt(np.mean(first[loud[0] * 160:loud[-1] * 160] ** 2)) > 0.02  # the speech itself is kept


def test_silencing_the_closing_pause_follows_festivals_report():
    samples = np.ones(3000, dtype=np.float32)
    report = "Festival: warming up\nutterance 2000 16000 0.05 pau\nutterance 500 8000 0.01 w\n"
    quiet = festival.silence_closing_pauses(samples, 16000, report)
    cut = round((0.05 + festival.TAIL_S) * 16000)
    assert quiet[:cut - round(festival.FADE_S * 16000)].min() == 1.0 and 0 < quiet[cut - 40] < 1
    assert not quiet[cut:2000].any()
    assert quiet[2000:].min() == 1.0  # an utterance ending on a phone (500 samples at 8 kHz: 1000 here) is kept
    assert samples.min() == 1.0  # the caller's array is left as it was


def test_piper_speaks_a_batch_in_order_as_each_sentence_alone():
    texts = ["Seven.", "A train leaves at six twenty five and arrives at eight forty.", "How many cards?"]
    takes = piper.render_many(texts)
    durations_s = [len(samples) / rate for samples, rate in takes]
    assert [rate for _, rate in takes] == [22050] * 3
    assert durations_s[0] < durations_s[2] < durations_s[1] and 0.3 < durations_s[0] < 1.5 < durations_s[1] < 6
    assert all(np.sqrt(np.mean(samples ** 2)) > 0.02 for samples, _ in takes)
    alone, _ = piper.render(texts[2])
    assert np.array_equal(alone, takes[2][0])  # no noise: the same sentence, the same samples, in any batch


def test_missing_piper_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(piper, "_installed", lambda module: module != "piper")
    with pytest.raises(SynthesisError, match=r"pip install 's2s\[piper\]'") as error:
        piper.render("Hello.")
    assert "\n" not in str(error.value)
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", str(tmp_path / "p"), "--n", "2", "--split", "test", "--engines", "piper"])
    err = capsys.readouterr().err.strip()
    assert "s2s[piper]" in err and "\n" not in err and not (tmp_path / "p").exists()
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *args: None)
    with pytest.raises(SynthesisError, match=r"pip install 's2s\[augment\]'"):
        augment.require_audiomentations()


def test_augmentation_is_deterministic_for_a_seed():
    wav = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32) * 0.5
    drawn = [augment.augment(wav, 16000, random.Random(seed)) for seed in range(12)]
    again = [augment.augment(wav, 16000, random.Random(seed)) for seed in range(12)]
    assert all(a == b for (_, a), (_, b) in zip(drawn, again))
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(drawn, again))
    assert len({effects for _, effects in drawn}) > 6 and "" in {effects for _, effects in drawn}
    assert all(np.abs(out).max() <= 1.0 for out, _ in drawn)


def test_add_noise_gives_the_asked_snr_and_the_same_noise_for_a_seed():
    wav = np.random.default_rng(0).uniform(-0.3, 0.3, (2, 8000)).astype(np.float32) * np.array([[1.0], [0.1]],
                                                                                               dtype=np.float32)
    for snr_db in (0, 10, 25):
        noise = augment.add_noise(wav, snr_db, seed=3).astype(np.float64) - wav
        measured_db = 10 * np.log10(np.mean(wav.astype(np.float64) ** 2, -1) / np.mean(noise ** 2, -1))
        assert np.allclose(measured_db, snr_db, atol=0.1)
    tensor = torch.from_numpy(wav)[None]  # [B, C, T]
    noisy = augment.add_noise(tensor, 10, seed=3)
    assert isinstance(noisy, torch.Tensor) and noisy.shape == tensor.shape
    assert torch.equal(noisy, augment.add_noise(tensor, 10, seed=3))
    assert not torch.equal(noisy, augment.add_noise(tensor, 10, seed=4))
