"""The shipped default model gives the replies it gave when they were recorded: thoughts, reply texts and speech
codes of 20 fixed questions (19 typed questions of the grammar's test split, seed 11, and the bundled spoken one).

The recording is `tests/data/shipped_replies.json`; write it again only when the model itself changes:

    python tests/test_shipped_replies.py tests/data/shipped_replies.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parent / "data" / "shipped_replies.json"
SAME_CODES = 0.99  # speech codes at near-ties may differ between CPUs' float kernels; words may not


def replies() -> list[dict]:
    """The shipped model's reply to each fixed question, as the recording stores it."""
    import torch

    from s2s.data.problems import generate_problems
    from s2s.demo import EXAMPLE_QUESTION
    from s2s.pipeline import S2SPipeline

    torch.manual_seed(0)
    pipeline = S2SPipeline.from_pretrained()
    questions = [p.question_written for p in generate_problems(19, seed=11, split="test")]
    rows = []
    for question in questions + [None]:
        events = pipeline.stream(text=question) if question else pipeline.stream(audio=str(EXAMPLE_QUESTION))
        reply = next(value for kind, value in events if kind == "done")
        rows.append({"question": question or EXAMPLE_QUESTION.name, "thought": reply.thought,
                     "reply_text": reply.reply_text, "reply_codes": reply.reply_codes.tolist()})
    return rows


@pytest.fixture(scope="module")
def now() -> list[dict]:
    return replies()


def test_the_shipped_model_thinks_and_says_what_it_did_when_recorded(now):
    recorded = json.loads(REFERENCE.read_text())
    assert [r["question"] for r in now] == [r["question"] for r in recorded]
    for got, want in zip(now, recorded):
        assert (got["thought"], got["reply_text"]) == (want["thought"], want["reply_text"]), want["question"]
    same = total = 0
    for got, want in zip(now, recorded):
        frames = min(len(got["reply_codes"][0]), len(want["reply_codes"][0]))
        total += max(len(got["reply_codes"][0]), len(want["reply_codes"][0])) * len(want["reply_codes"])
        same += sum(a == b for g, w in zip(got["reply_codes"], want["reply_codes"]) for a, b in zip(g[:frames], w))
    assert total and same / total >= SAME_CODES, f"{same} of {total} speech codes as recorded"


def test_the_recording_holds_real_replies():
    """The comparison above means something: twenty different questions, answered with speech."""
    recorded = json.loads(REFERENCE.read_text())
    assert len(recorded) == 20 and len({r["question"] for r in recorded}) == 20
    assert all("So the answer is" in r["thought"] and r["reply_text"] and len(r["reply_codes"][0]) > 10
               for r in recorded)


def test_soft_speech_says_the_same_codes_in_the_expected_sound():
    """With `soft_speech` (the default) the codec decodes the word decoder's probabilities: the model reads the
    same codes and the reply lasts as long, but its sound is the expected one, not the chosen codes' own."""

    from s2s.pipeline import S2SPipeline

    pipeline = S2SPipeline.from_pretrained()
    soft = pipeline(text="What is 21 + 4?")
    hard = pipeline(text="What is 21 + 4?", soft_speech=False)
    assert soft.thought == hard.thought and soft.reply_text == hard.reply_text and soft.answer == "25"
    assert soft.waveform.shape == hard.waveform.shape
    decoded = pipeline.codec.decode(next(v for k, v in pipeline.stream(text="What is 21 + 4?") if k == "done")
                                    .reply_codes[None])[0]
    assert (hard.waveform - decoded).abs().max() < 1e-3  # hard speech is the chosen codes decoded
    assert (soft.waveform - hard.waveform).abs().max() > 1e-2


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(replies(), separators=(",", ":")) + "\n")
