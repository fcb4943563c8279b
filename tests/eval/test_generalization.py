"""The generalization table: one row per shift, the noisy and typed rows, the worst row named."""
import json

import pytest
import torch

from s2s import audio
from s2s.data.numbers import words_to_number
from s2s.data.problems import OUT_OF_SCOPE, OUT_OF_SCOPE_THOUGHT
from s2s.eval.generalization import TEXT_ROW, format_generalization, generalization, shift_label
from s2s.hearing import abstain
from s2s.pipeline import SpokenReply

RATE = 16000
DECLINED_PEAK = 990  # a question audio this loud stands for one out of scope


class PeakReader:
    """Hears a question's answer as 1000 x its peak (so noise makes it mishear), or the last number of a text."""

    sample_rate = RATE

    def __call__(self, audio_in=None, sample_rate=None, text=None, **options):
        if text is not None:
            answer, heard = words_to_number(text), None
        else:
            wav = audio.load(audio_in)[0] if sample_rate is None else audio_in
            answer = round(1000 * float(wav.abs().max()))
            heard = f"What is {answer}?"
        if answer is None or answer >= DECLINED_PEAK:  # "What is the capital of France?", or its audio
            return SpokenReply(thought=OUT_OF_SCOPE_THOUGHT, reply_text="", answer=None, audio=None,
                               timings={"ttfa_ms": 100.0, "total_ms": 200.0, "rtf": 0.5}, waveform=torch.zeros(1, 0),
                               sample_rate=RATE, question_heard=heard, abstained=True,
                               abstain_reason=abstain.OUT_OF_SCOPE)
        return SpokenReply(thought=f"So the answer is {answer}.", reply_text="", answer=str(answer), audio=None,
                           timings={"ttfa_ms": 100.0, "total_ms": 200.0, "rtf": 0.5}, waveform=torch.zeros(1, 0),
                           sample_rate=RATE, question_heard=heard)


def corpus(root, name, voices, split="test", family="arithmetic"):
    rows = []
    for i, (engine, voice) in enumerate(voices):
        answer = 20 + 7 * i if family != "out_of_scope" else DECLINED_PEAK
        wav = answer / 1000 * torch.sin(torch.arange(RATE) * 0.05)[None]
        wav[0, 100] = answer / 1000
        audio.save(root / f"{name}{i}.wav", wav, RATE)
        written = f"What is {answer}?" if family != "out_of_scope" else "What is the capital of France?"
        rows.append({"id": f"{name}-{i}", "family": family, "split": split,
                     "answer": str(answer) if family != "out_of_scope" else OUT_OF_SCOPE, "question_audio":
                     f"{name}{i}.wav", "question_written": written, "question_voice": voice,
                     "question_engine": engine})
    path = root / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_shift_labels_name_engines_and_held_out_voices():
    assert shift_label({"question_engine": "espeak", "question_voice": "en-us+f4"}) == "espeak-ng, held-out voices"
    assert shift_label({"question_voice": "en-us+f3"}) == "espeak-ng, training voices"
    assert shift_label({"question_engine": "piper", "question_voice": "piper:joe"}) == "piper:joe"
    assert shift_label({"question_engine": "festival", "question_voice": "ked_diphone"}) == "festival:ked_diphone"


def test_each_shift_is_a_row_and_noise_is_the_worst(tmp_path):
    test = corpus(tmp_path, "test", [("espeak", "en-029+m1")] * 4)
    other = corpus(tmp_path, "other", [("piper", "piper:joe")] * 3 + [("festival", "festival:ked_diphone")] * 2)
    result = generalization(PeakReader(), [test, other], noise_db=0.0)
    rows = result["rows"]
    assert set(rows) == {"espeak-ng, held-out voices", "piper:joe", "festival:ked_diphone", TEXT_ROW,
                         "espeak-ng, held-out voices, white noise 0 dB SNR"}
    assert rows["piper:joe"]["n"] == 3 and rows["festival:ked_diphone"]["n"] == 2
    assert rows["espeak-ng, held-out voices"]["accuracy_thought"] == 1.0
    assert rows["espeak-ng, held-out voices"]["numbers_heard"] == 1.0
    noisy = rows["espeak-ng, held-out voices, white noise 0 dB SNR"]
    assert noisy["accuracy_thought"] < 0.5  # noise as loud as the question moves its peak
    assert result["worst"] == "espeak-ng, held-out voices, white noise 0 dB SNR"
    assert rows[TEXT_ROW]["accuracy_thought"] == 1.0 and rows[TEXT_ROW]["numbers_heard"] is None
    table = format_generalization(result).splitlines()
    assert table[1].startswith("espeak-ng, held-out voices, white noise") and table[-2].startswith(TEXT_ROW)
    assert table[-1].startswith("worst: espeak-ng, held-out voices, white noise 0 dB SNR")


def test_question_splits_and_scope_have_their_own_rows_heard_and_typed(tmp_path):
    held_out = [("espeak", "en-029+m1")] * 2
    manifests = [corpus(tmp_path, "test", held_out), corpus(tmp_path, "phrasing", held_out, split="phrasing"),
                 corpus(tmp_path, "stretch", held_out[:1], split="stretch"),
                 corpus(tmp_path, "oos", held_out, split="phrasing", family="out_of_scope")]
    result = generalization(PeakReader(), manifests, noise_db=None)
    rows = result["rows"]
    heard = "espeak-ng, held-out voices"
    assert set(rows) == {heard, f"phrasing split, {heard}", f"stretch split, {heard}",
                         f"out-of-scope questions, {heard}", TEXT_ROW, f"{TEXT_ROW}, phrasing split",
                         f"{TEXT_ROW}, stretch split", f"{TEXT_ROW}, out-of-scope questions"}
    assert rows[f"stretch split, {heard}"]["n"] == 1 and rows[f"{TEXT_ROW}, phrasing split"]["n"] == 2
    declined = rows[f"out-of-scope questions, {heard}"]
    assert declined["accuracy_thought"] == 1.0 and declined["declined"] == 1.0  # declining is right there
    assert rows[f"{TEXT_ROW}, out-of-scope questions"]["accuracy_thought"] == 1.0
    assert rows[heard]["declined"] == 0.0 and rows[heard]["accuracy_thought"] == 1.0
    assert not result["worst"].startswith("out-of-scope")
    table = format_generalization(result)
    assert "decline" in table.splitlines()[0] and f"{TEXT_ROW}, stretch split" in table


def test_no_noise_row_when_not_asked(tmp_path):
    test = corpus(tmp_path, "test", [("espeak", "en-029+m1")] * 2)
    assert not any("noise" in label for label in generalization(PeakReader(), [test], noise_db=None)["rows"])


def test_the_cli_refuses_a_shift_manifest_that_is_not_one(tmp_path, capsys):
    from s2s.cli import main

    test = corpus(tmp_path, "test", [("espeak", "en-029+m1")] * 2)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(SystemExit):
        main(["evaluate", "--manifest", str(test), "--shifts", str(tmp_path / "empty.jsonl")])
    assert "no examples" in capsys.readouterr().err


def test_an_engines_copy_of_the_questions_is_typed_once(tmp_path):
    test = corpus(tmp_path, "test", [("espeak", "en-029+m1")] * 3)
    copy = corpus(tmp_path, "copy", [("piper", "piper:joe")] * 3)  # the same questions, another engine
    rows = generalization(PeakReader(), [test, copy], noise_db=None)["rows"]
    assert rows["piper:joe"]["n"] == 3 and rows[TEXT_ROW]["n"] == 3


def test_heard_limit_hears_fewer_and_zero_types_only(tmp_path):
    test = corpus(tmp_path, "test", [("espeak", "en-029+m1")] * 4)
    some = generalization(PeakReader(), [test], noise_db=10.0, heard_limit=2)
    assert some["rows"]["espeak-ng, held-out voices"]["n"] == 2 and some["rows"][TEXT_ROW]["n"] == 4
    assert all(f["n"] == 2 for label, f in some["rows"].items() if "noise" in label)
    typed = generalization(PeakReader(), [test], noise_db=10.0, heard_limit=0)
    assert list(typed["rows"]) == [TEXT_ROW] and typed["worst"] is None
    assert "typed only" in format_generalization(typed)


def test_noise_db_takes_a_number_or_off():
    import argparse

    from s2s.cli import _noise_db

    assert _noise_db("10") == 10.0 and _noise_db("off") is None and _noise_db("OFF") is None
    with pytest.raises(argparse.ArgumentTypeError, match="not a number of dB or off"):
        _noise_db("loud")
