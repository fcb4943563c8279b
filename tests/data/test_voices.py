"""The held-out voice split and the espeak-ng speech renderer."""
import json
import random

import pytest

from s2s.data import voices
from s2s.data.espeak import SynthesisError, render
from s2s.data.speech import render_speech


def test_held_out_voices_never_appear_in_training():
    train, test = set(voices.voices("train")), set(voices.voices("test"))
    assert train and test and not train & test
    assert train | test == set(voices.voices("all"))
    for voice in train:
        base, variant = voice.split("+")
        assert variant not in voices.HELD_OUT_VARIANTS and base not in voices.HELD_OUT_BASES
    rng = random.Random(0)
    assert all(voices.sample_voice(rng, "train")["voice"] in train for _ in range(500))


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="train, test or all"):
        voices.voices("dev")


def test_render_speaks_and_rejects_empty_text():
    samples, rate = render("Seven times six.", "en-us+m3")
    assert rate == 22050 and 0.3 * rate < len(samples) < 3 * rate and abs(samples).max() > 0.05
    with pytest.raises(SynthesisError, match="empty"):
        render("  ")


def test_same_seed_same_corpus_whatever_the_worker_count(tmp_path):
    a = render_speech(tmp_path / "a", 6, seed=3, split="test", workers=1)
    b = render_speech(tmp_path / "b", 6, seed=3, split="test", workers=2)
    rows_a, rows_b = a.read_text(), b.read_text()
    assert rows_a == rows_b
    first = json.loads(rows_a.splitlines()[0])
    assert voices.is_held_out(first["voice"])
    assert (tmp_path / "a" / first["audio"]).read_bytes() == (tmp_path / "b" / first["audio"]).read_bytes()
    assert render_speech(tmp_path / "c", 6, seed=4, split="test").read_text() != rows_a
    with pytest.raises(FileExistsError, match="already exists"):
        render_speech(tmp_path / "a", 6, seed=3, split="test")
