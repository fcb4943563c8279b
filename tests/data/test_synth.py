"""`s2s data synth`: deterministic, held-out voices kept apart, valid manifests, clear errors."""
import json
import random

import pytest

from s2s import audio
from s2s.cli import main
from s2s.data.manifest import read_manifest, validate_manifest, write_manifest
from s2s.data.problems import FAMILIES
from s2s.data.synth import ASSISTANT_VOICE, REPLY_PITCHES, REPLY_RATES, STYLE_VOICES, rethink, synthesize
from s2s.data.voices import is_held_out


@pytest.fixture(scope="module")
def train_manifest(tmp_path_factory):
    return synthesize(tmp_path_factory.mktemp("synth") / "train", n=12, seed=5, split="train", progress=False)


def test_every_family_with_question_thought_answer_and_spoken_reply(train_manifest):
    rows = read_manifest(train_manifest)
    assert {row["family"] for row in rows} == set(FAMILIES)
    for row in rows:
        assert row["question"] and row["thought"] and row["answer"] and row["reply"]
        assert not any(ch.isdigit() for ch in row["question"] + row["reply"])  # spoken text says numbers as words
        assert row["reply_voice"] == ASSISTANT_VOICE["voice"] and not is_held_out(row["question_voice"])
        assert row["question_duration_s"] > 0.3 and row["reply_duration_s"] > 0.3
    assert validate_manifest(train_manifest) == []


def test_same_seed_same_corpus(train_manifest, tmp_path):
    again = synthesize(tmp_path / "again", n=12, seed=5, split="train", workers=1, progress=False)
    assert again.read_text() == train_manifest.read_text()
    first = read_manifest(again)[0]
    assert (again.parent / first["question_audio"]).read_bytes() == \
        (train_manifest.parent / first["question_audio"]).read_bytes()
    other = synthesize(tmp_path / "other", n=12, seed=6, split="train", progress=False)
    assert other.read_text() != train_manifest.read_text()


def test_test_split_uses_only_held_out_voices_and_chosen_reply_voice(tmp_path):
    rows = read_manifest(synthesize(tmp_path / "t", n=6, seed=0, split="test", families=["comparison"],
                                    reply_voice="random", progress=False))
    assert all(is_held_out(row["question_voice"]) and row["family"] == "comparison" for row in rows)
    assert all(is_held_out(row["reply_voice"]) for row in rows)  # random reply voices come from the split too


def test_styled_replies_follow_their_style_words_and_carry_a_prompt_in_their_voice(tmp_path):
    rows = read_manifest(synthesize(tmp_path / "s", n=24, seed=1, reply_styles=True, progress=False))
    assert {row["reply_voice"] for row in rows} <= set(STYLE_VOICES) and len({row["reply_voice"] for row in rows}) > 2
    for row in rows:
        words = row["reply_style"].split()
        rate = next((w for w in words if w in REPLY_RATES), "normal")
        pitch = next((w for w in words if w in REPLY_PITCHES), "normal")
        assert set(words) <= (set(REPLY_RATES) | set(REPLY_PITCHES)) - {"normal"}
        assert (row["reply_speed_wpm"], row["reply_pitch"]) == (REPLY_RATES[rate], REPLY_PITCHES[pitch])
        if row["reply_voice"] != ASSISTANT_VOICE["voice"]:  # only the assistant's own voice may go unprompted
            assert "voice_audio" in row
        if "voice_audio" in row:
            assert row["voice_duration_s"] > 1.5 and (tmp_path / "s" / row["voice_audio"]).is_file()
        # The same reply at every pitch, aligned in time: one take is the reply itself; the others last as long.
        assert row[f"reply_audio_{pitch}"] == row["reply_audio"]
        takes = [audio.load(tmp_path / "s" / row[f"reply_audio_{p}"]) for p in REPLY_PITCHES]
        lengths = [wav.shape[-1] / rate for wav, rate in takes]
        assert len(set(row[f"reply_audio_{p}"] for p in REPLY_PITCHES)) == 3 and max(lengths) - min(lengths) < 0.08
    assert {len(row["reply_style"].split()) for row in rows} == {0, 1, 2}
    assert any("voice_audio" not in row for row in rows)
    with pytest.raises(ValueError, match="not a training voice"):
        synthesize(tmp_path / "h", n=2, reply_styles=True, reply_voices=["en-us+f4"])


def test_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(ValueError, match="held-out voices must never reach training data"):
        synthesize(tmp_path / "x", n=2, split="train", question_voices=["en-us+f4"])
    with pytest.raises(ValueError, match="unknown families"):
        synthesize(tmp_path / "x", n=2, families=["poetry"])
    with pytest.raises(SystemExit) as exit_info:
        main(["data", "synth", "--out", str(tmp_path / "y"), "--n", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_cli_writes_the_manifest_and_refuses_to_overwrite(tmp_path, capsys):
    main(["data", "synth", "--out", str(tmp_path / "c"), "--n", "2", "--families", "counting"])
    rows = [json.loads(line) for line in (tmp_path / "c" / "manifest.jsonl").read_text().splitlines()]
    assert [row["family"] for row in rows] == ["counting", "counting"]
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", str(tmp_path / "c"), "--n", "2"])
    assert "already exists" in capsys.readouterr().err


def test_rethink_rewrites_only_thoughts_and_checks_the_seed(train_manifest, capsys):
    """A corpus rendered before a thought's wording changed gets today's thoughts, everything else kept."""
    rows = read_manifest(train_manifest)
    stale = [dict(row, thought="An old way of thinking.") if i % 2 else row for i, row in enumerate(rows)]
    old = write_manifest(train_manifest.with_name("old.jsonl"), stale, overwrite=True)
    out, changed = rethink(old, train_manifest.with_name("new.jsonl"), seed=5)
    assert changed == len(rows) // 2 and read_manifest(out) == rows
    with pytest.raises(ValueError, match="give the --seed"):
        rethink(old, train_manifest.with_name("other.jsonl"), seed=6)
    with pytest.raises(ValueError, match="is the manifest being read"):
        rethink(old, old, seed=5, overwrite=True)
    with pytest.raises(ValueError, match="write it beside"):
        rethink(old, train_manifest.parent.parent / "elsewhere.jsonl", seed=5)
    with pytest.raises(FileExistsError):
        rethink(old, out, seed=5)
    with pytest.raises(SystemExit):
        main(["data", "rethink", str(old), "--seed", "6", "--out", str(train_manifest.with_name("x.jsonl"))])
    assert "give the --seed" in capsys.readouterr().err
    main(["data", "rethink", str(old), "--seed", "5", "--out", str(out), "--overwrite"])
    assert f"{len(rows) // 2} thoughts rewritten" in capsys.readouterr().out


def test_a_reply_bank_speaks_each_new_reply_once(train_manifest, tmp_path, capsys):
    """`s2s data replies`: the distinct replies of the drawn problems, less those an excluded manifest already
    speaks, each once in the assistant's voice, with no question."""
    from s2s.data.problems import generate_problem
    from s2s.data.synth import synthesize_replies

    drawn = {generate_problem(random.Random(f"3:replies:{i}"), FAMILIES[i % len(FAMILIES)]).reply
             for i in range(30)}
    known = {row["reply"] for row in read_manifest(train_manifest)}
    main(["data", "replies", "--out", str(tmp_path / "bank"), "--problems", "30", "--seed", "3",
          "--exclude", str(train_manifest)])
    rows = read_manifest(tmp_path / "bank" / "manifest.jsonl")
    assert sorted(row["reply"] for row in rows) == sorted(drawn - known)
    for row in rows:
        assert "question" not in row and row["reply_voice"] == ASSISTANT_VOICE["voice"]
        wav, rate = audio.load(tmp_path / "bank" / row["reply_audio"])
        assert abs(wav.shape[-1] / rate - row["reply_duration_s"]) < 0.01 and row["reply_duration_s"] > 0.3
    everything = write_manifest(tmp_path / "all.jsonl", [{"reply": r} for r in drawn])
    with pytest.raises(ValueError, match="already in"):
        synthesize_replies(tmp_path / "none", 30, seed=3, exclude=[everything])
    with pytest.raises(SystemExit):
        main(["data", "replies", "--out", str(tmp_path / "bank"), "--problems", "30"])
    assert "already exists" in capsys.readouterr().err
