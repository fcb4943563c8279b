"""Reasoning problems: deterministic, varied, speakable, and right.

Each answer is solved again here from `question_written` alone, by code that
shares nothing with the generator, so a generator bug makes a test fail.
"""
import random
import re

import pytest

from s2s.data import problems
from s2s.data.numbers import numbers_in, parse_time, words_to_number

SAMPLES = {family: problems.generate_problems(200, seed=7, families=[family]) for family in problems.FAMILIES}
VOCABULARY = {w.lower() for w in problems.NAMES + problems.OBJECTS + problems.WORDS}
VOCABULARY |= {w for items in problems.CATEGORIES.values() for w in items} | set(problems.CATEGORIES)
VOCABULARY |= {"larger", "greater", "bigger", "smaller"}


def _eval(expression: str) -> int:
    assert re.fullmatch(r"[\d +×-]+", expression), expression
    return eval(expression.replace("×", "*"))


def _arithmetic(q: str) -> str:
    return str(_eval(re.search(r"\d[\d +×-]*\d|\d", q)[0]))


def _word_problem(q: str) -> str:
    steps = re.compile(r"buys (\d+) (?:bags|boxes|packs) of (\d+)|has (\d+)|(?:buys|finds|gets) (\d+) more"
                       r"|gives away (\d+)|gives (\d+) to|loses (\d+)|(?:among|between|into) (\d+)")
    total = None
    for match in steps.finditer(q):
        packs, each, has, gain, away, given, lost, share = match.groups()
        if packs:
            total = int(packs) * int(each)
        elif has:
            total = int(has)
        elif gain:
            total += int(gain)
        elif away or given or lost:
            total -= int(away or given or lost)
        else:
            assert total % int(share) == 0, q
            total //= int(share)
    return str(total)


def _comparison(q: str) -> str:
    left, right = q.split(" or ")
    a = _eval(re.search(r"\d[\d +×]*$", left)[0].strip())
    b = _eval(re.match(r"\d[\d +×]*\d|\d", right)[0])
    assert a != b, q
    return str(min(a, b) if "smaller" in q else max(a, b))


def _sequence(q: str) -> str:
    terms = [int(t) for t in re.findall(r"\d+", q)]
    gaps = {b - a for a, b in zip(terms, terms[1:])}
    if len(gaps) == 1:
        return str(terms[-1] + gaps.pop())
    ratio = terms[1] // terms[0]
    assert all(b == a * ratio for a, b in zip(terms, terms[1:])), q
    return str(terms[-1] * ratio)


def _time(q: str) -> str:
    minutes = [int(h) % 12 * 60 + int(m) for h, m in re.findall(r"(\d+):(\d\d)", q)]
    if len(minutes) == 2:
        return str((minutes[1] - minutes[0]) % 720)
    delta = int(re.search(r"(\d+) minute", q)[1])
    sign = -1 if re.search(r"ago|earlier|did it leave", q) else 1
    end = (minutes[0] + sign * delta) % 720
    return f"{end // 60 or 12}:{end % 60:02d}"


def _counting(q: str) -> str:
    word = re.search(r"the word (\w+)", q)
    letter = re.search(r"the letter ([A-Z])", q)
    if letter:
        return str(word[1].count(letter[1].lower()))
    if word:
        return str(len(word[1]))
    head, items = q.split(": ")
    category = next(c for c in problems.CATEGORIES if c in head)
    return str(sum(item in problems.CATEGORIES[category] for item in items.strip("?.").split(", ")))


SOLVERS = {"arithmetic": _arithmetic, "word_problem": _word_problem, "comparison": _comparison,
           "sequence": _sequence, "time": _time, "counting": _counting}


def test_same_seed_same_problems_and_index_independent_of_n():
    assert problems.generate_problems(60, seed=1) == problems.generate_problems(60, seed=1)
    assert problems.generate_problems(60, seed=1) != problems.generate_problems(60, seed=2)
    assert problems.generate_problems(90, seed=5)[:30] == problems.generate_problems(30, seed=5)
    assert {p.family for p in problems.generate_problems(12, seed=0)} == set(problems.FAMILIES)


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="choose from arithmetic"):
        problems.generate_problems(3, seed=0, families=["algebra"])


def test_every_family_has_several_phrasings():
    for family, samples in SAMPLES.items():
        shapes = set()
        for p in samples:  # the template's own words: numbers, names, objects and lists taken out
            words = [w for w in re.findall(r"[a-z']+", p.question_written.lower()) if w not in VOCABULARY]
            shapes.add(tuple(words[:2] + words[-2:]))
        assert len(shapes) >= 3, (family, shapes)


@pytest.mark.parametrize("family", problems.FAMILIES)
def test_answers_are_right(family):
    for p in SAMPLES[family]:
        assert p.family == family
        assert p.answer == SOLVERS[family](p.question_written), p


def test_every_calculation_in_a_thought_is_right():
    for p in (p for samples in SAMPLES.values() for p in samples):
        assert p.thought.splitlines()[-1] == f"So the answer is {p.answer}."
        for chain, result in re.findall(r"(-?\d+(?: [+×÷-] \d+)+) = (-?\d+)", p.thought):
            assert eval(chain.replace("×", "*").replace("÷", "/")) == int(result), p.thought


def test_spoken_text_says_what_is_written():
    for p in (p for samples in SAMPLES.values() for p in samples):
        for spoken in (p.question, p.reply):
            assert not re.search(r"[\d×÷+=]", spoken), spoken
        # The same numbers, in the same order, in both questions ("minus" is an operator here, not a sign).
        written = [int(n) for n in re.findall(r"\d+", p.question_written.replace(":00", ""))]
        assert [abs(n) for n in numbers_in(p.question)] == written, p
        assert len(p.question.split()) <= 22, p.question
        # espeak-ng reads "the letter A appears" with A as the article; a capital ending the sentence is spelt.
        assert "the letter " not in p.question or re.search(r"the letter [A-Z][.?]$", p.question), p.question


def test_reply_holds_the_answer():
    for p in (p for samples in SAMPLES.values() for p in samples):
        if ":" in p.answer:
            assert parse_time(p.reply) == tuple(int(x) for x in p.answer.split(":")), p
        else:
            assert words_to_number(p.reply) == int(p.answer), p


def test_hard_cases_are_drawn():
    """The cases where a careless generator or model goes wrong all occur in the samples."""
    def some(family, condition):
        return any(condition(p) for p in SAMPLES[family])

    assert some("arithmetic", lambda p: int(p.answer) < 0) and some("arithmetic", lambda p: p.thought.count("=") == 3)
    assert some("word_problem", lambda p: "÷" in p.thought) and some("word_problem", lambda p: "×" in p.thought)
    assert some("comparison", lambda p: "smaller" in p.question) and some("comparison", lambda p: "×" in p.thought)
    assert some("sequence", lambda p: "multiply" in p.thought) and some("sequence", lambda p: "subtract" in p.thought)
    def clock_sum(p):  # (start hour, sign, end hour) of a thought "H:MM + N min = H:MM."
        m = re.match(r"(\d+):\d\d ([+-]) \d+ min = (\d+):", p.thought)
        return m and (int(m[1]), m[2], int(m[3]))

    assert some("time", lambda p: (s := clock_sum(p)) and s[1] == "+" and s[2] < s[0])  # forward past 12
    assert some("time", lambda p: (s := clock_sum(p)) and s[1] == "-" and s[2] != s[0])  # back into the hour before
    assert some("time", lambda p: "12:" in p.answer) and some("time", lambda p: ":" not in p.answer)
    assert some("counting", lambda p: p.answer == "0") and some("counting", lambda p: "is not" in p.thought)
    assert problems.generate_problem(random.Random(0)).family in problems.FAMILIES


def test_chance_level():
    assert problems.chance_level("comparison") == 0.5
    for family in problems.FAMILIES:
        assert 0 < problems.chance_level(family) <= 0.5
