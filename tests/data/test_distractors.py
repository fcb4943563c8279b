import random
import re

from s2s.data import distractors, problems
from s2s.data.numbers import numbers_in


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def test_distractors_say_no_number_and_no_word_of_the_grammar():
    grammar = set()
    for split in ("train", "test", "phrasing", "stretch"):
        for family in problems.ALL_FAMILIES:
            for p in problems.generate_problems(150, seed=11, families=[family], split=split):
                grammar |= _words(p.thought) | _words(p.reply)
                if split != "train":
                    grammar |= _words(p.question_written)
    common = set(distractors.common_words())
    assert len(common) >= 1000 and not common & grammar
    rng = random.Random(0)
    for _ in range(500):
        for text in (distractors.preamble(rng), distractors.aside(rng), distractors.sign_off(rng)):
            assert not numbers_in(text) and not re.search(r"\d", text), text


def test_held_out_openings_share_no_content_word_with_the_distractors():
    stop = {"i", "me", "you", "one", "a", "the", "is", "it"}
    held_out = {word for filler in problems.held_out_phrases()["filler"] for word in _words(filler)} - stop
    pools = distractors._GREETINGS + distractors._REASONS + distractors._SIGN_OFFS + distractors.common_words()
    assert held_out and not held_out & {word for text in pools for word in _words(text)}


def test_only_training_questions_carry_distractors():
    common = set(distractors.common_words())

    def carried(split: str) -> int:
        rows = problems.generate_problems(600, seed=5, split=split)
        return sum(any(word in common for word in _words(p.question_written)) for p in rows)

    assert carried("train") >= 60  # a preamble in about a quarter, an aside or a sign-off in a tenth
    for split in ("test", "phrasing", "stretch"):
        assert carried(split) == 0, split


def test_the_other_splits_draw_exactly_what_they_drew_without_distractors(monkeypatch):
    before = {split: problems.generate_problems(50, seed=9, split=split) for split in ("test", "phrasing", "stretch")}
    monkeypatch.setattr(problems, "DISTRACTOR_SHARES", {"preamble": 0.0, "aside": 0.0, "sign_off": 0.0})
    for split, rows in before.items():
        assert problems.generate_problems(50, seed=9, split=split) == rows, split
