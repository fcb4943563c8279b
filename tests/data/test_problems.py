"""Reasoning problems: deterministic, varied, speakable, and right.

Each answer is solved again here from `question_written` alone, by code that
shares nothing with the generator, so a generator bug makes a test fail.
"""
import random
import re

import pytest

from s2s.data import problems
from s2s.data.numbers import numbers_in, parse_time, words_to_number

SPLIT_SAMPLES = {split: {family: problems.generate_problems(200, seed=7, families=[family], split=split)
                          for family in problems.FAMILIES} for split in ("train", "phrasing", "stretch")}
SAMPLES = SPLIT_SAMPLES["train"]
VOCABULARY = {w.lower() for w in problems.NAMES + problems.OBJECTS + problems.WORDS}
VOCABULARY |= {w for items in problems.CATEGORIES.values() for w in items} | set(problems.CATEGORIES)
VOCABULARY |= {"larger", "greater", "bigger", "smaller"}


def _eval(expression: str) -> int:
    assert re.fullmatch(r"[\d +×-]+", expression), expression
    return eval(expression.replace("×", "*"))


_SAID = ((r"sum of (\d+) and (\d+)", lambda a, b: a + b), (r"(\d+) more than (\d+)", lambda a, b: a + b),
         (r"(\d+) less than (\d+)", lambda a, b: b - a), (r"product of (\d+) and (\d+)", lambda a, b: a * b),
         (r"difference between (\d+) and (\d+)", lambda a, b: a - b), (r"(\d+) added to (\d+)", lambda a, b: a + b),
         (r"(\d+) taken away from (\d+)", lambda a, b: b - a), (r"(\d+) and (\d+) added together", lambda a, b: a + b),
         (r"(\d+) subtracted from (\d+)", lambda a, b: b - a), (r"(\d+) (?:lots|groups) of (\d+)", lambda a, b: a * b),
         (r"total of (\d+) and (\d+)", lambda a, b: a + b), (r"(\d+) increased by (\d+)", lambda a, b: a + b),
         (r"(\d+) reduced by (\d+)", lambda a, b: a - b))


def _arithmetic(q: str) -> str:
    for pattern, value in _SAID:
        match = re.search(pattern, q)
        if match:
            return str(value(int(match[1]), int(match[2])))
    return str(_eval(re.search(r"\d[\d +×-]*\d|\d", q)[0]))


def _word_problem(q: str) -> str:
    numbers = [int(n) for n in re.findall(r"\d+", q)]
    if "twice as many" in q:
        return str(3 * numbers[0] if re.search(r"total|altogether", q) else 2 * numbers[0])
    if "half of them" in q:
        return str(numbers[0] // 2)
    if "ahead" in q or re.search(r"How many (\w+ )?more", q):
        return str(numbers[1] - numbers[0])
    if "each have" in q:
        return str(numbers[0] * numbers[1])
    steps = re.compile(r"buys? (\d+) (?:bags|boxes|packs) of (\d+)|ha(?:s|ve) (\d+)"  # "Mia has", or "I have"
                       r"|(?:buys?|finds?|gets?|wins?|receives?|collects?|is given|am given|picks? up) (\d+) more"
                       r"|(?:gives? away|sells?|drops?|loses?|uses?|throws? away) (\d+)|(?:gives?|hands?) (\d+) to"
                       r"|(?:among|between|into) (\d+)")
    total = None
    for match in steps.finditer(q):
        packs, each, has, gain, lost, given, share = match.groups()
        if packs:
            total = int(packs) * int(each)
        elif has:
            total = int(has)
        elif gain:
            total += int(gain)
        elif lost or given:
            total -= int(lost or given)
        else:
            assert total % int(share) == 0, q
            total //= int(share)
    return str(total)


def _comparison(q: str) -> str:
    sides = re.findall(r"\d+(?: [+×] \d+)*", q)
    assert len(sides) == 2, q
    a, b = (_eval(side) for side in sides)
    assert a != b, q
    return str(min(a, b) if "smaller" in q else max(a, b))


def _sequence(q: str) -> str:
    terms = [int(t) for t in re.findall(r"\d+", q)]
    gaps = [b - a for a, b in zip(terms, terms[1:])]
    if len(set(gaps)) == 1:
        return str(terms[-1] + gaps[0])
    if len(set(gaps[::2])) == 1 and len(set(gaps[1::2])) == 1 and len(gaps) >= 3:  # two steps taking turns
        return str(terms[-1] + gaps[-2])
    ratio = terms[1] // terms[0]
    assert all(b == a * ratio for a, b in zip(terms, terms[1:])), q
    return str(terms[-1] * ratio)


def _time(q: str) -> str:
    minutes = [int(h) % 12 * 60 + int(m) for h, m in re.findall(r"(\d+):(\d\d)", q)]
    if len(minutes) == 2:
        return str((minutes[1] - minutes[0]) % 720)
    hours = re.search(r"(\d+) hours?", q)
    mins = re.search(r"(\d+) minutes", q)
    delta = (int(hours[1]) * 60 if hours else 0) + (int(mins[1]) if mins else 0)
    sign = -1 if re.search(r"ago|earlier|did it leave|did it start|before|did it begin", q) else 1
    end = (minutes[0] + sign * delta) % 720
    return f"{end // 60 or 12}:{end % 60:02d}"


def _counting(q: str) -> str:
    word = re.search(r"the word (\w+)", q)
    letter = re.search(r"the letter ([A-Z])", q)
    if letter:
        return str(word[1].count(letter[1].lower()))
    if word:
        return str(len(word[1]))
    category = next(c for c in problems.CATEGORIES if c in q)
    items = [w for w in re.findall(r"[a-z]+", q) if any(w in members for members in problems.CATEGORIES.values())]
    return str(sum(item in problems.CATEGORIES[category] for item in items))


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


@pytest.mark.parametrize("split", ("train", "phrasing", "stretch"))
@pytest.mark.parametrize("family", problems.FAMILIES)
def test_answers_are_right(family, split):
    for p in SPLIT_SAMPLES[split][family]:
        assert p.family == family
        assert p.answer == SOLVERS[family](p.question_written), p


def _every_sample():
    return [p for by_family in SPLIT_SAMPLES.values() for samples in by_family.values() for p in samples]


def test_every_calculation_in_a_thought_is_right():
    for p in _every_sample():
        assert p.thought.splitlines()[-1] == f"So the answer is {p.answer}."
        for chain, result in re.findall(r"(-?\d+(?: [+×÷-] \d+)+) = (-?\d+)", p.thought):
            assert eval(chain.replace("×", "*").replace("÷", "/")) == int(result), p.thought


def test_spoken_text_says_what_is_written():
    for p in _every_sample():
        for spoken in (p.question, p.reply):
            assert not re.search(r"[\d×÷+=]", spoken), spoken
        # The same numbers, in the same order, in both questions ("minus" is an operator here, not a sign).
        written = [int(n) for n in re.findall(r"\d+", p.question_written.replace(":00", ""))]
        said = re.sub(r"\b(which|next|here's) one\b", r"\1", p.question, flags=re.I)  # "one" as a pronoun
        if not re.search(r"quarter|half past", said):  # those times: the normaliser's round trip checks them
            assert [abs(n) for n in numbers_in(said)] == written, p
        assert len(p.question.split()) <= 36, p.question
        # espeak-ng reads "the letter A appears" with A as the article; a capital ending the sentence is spelt.
        assert "the letter " not in p.question or re.search(r"the letter [A-Z][.?]( |$)", p.question), p.question


def test_reply_holds_the_answer():
    for p in _every_sample():
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


def _pattern(production: str) -> re.Pattern:
    """A held-out production as a pattern over written questions ("What does {e} equal?" -> "What does .+ equal?");
    a production with a "|" holds a thought word after it, which a question never shows."""
    said = production.split("|")[0].strip()
    parts = [re.escape(part) for part in re.split(r"\{\w+\}", said)]
    return re.compile(".+".join(parts), re.I)


def test_held_out_phrasings_never_reach_training_rows():
    held_out = problems.held_out_phrases()
    assert {"filler", "ask_sum", "gains", "losses", "story_shape", "ask_which", "ask_next", "later", "out_of_scope"} \
        <= set(held_out)
    train = [p for family in problems.ALL_FAMILIES
             for p in problems.generate_problems(400, seed=3, families=[family], split="train")]
    assert all(p.held_out == 0 for p in train)
    texts = [p.question_written for p in train]
    for slot, productions in held_out.items():
        for production in productions:
            if production in ("if",):  # a shape, not words: held_out == 0 above covers it
                continue
            pattern = _pattern(production)
            assert not any(pattern.search(text) for text in texts), (slot, production)


def test_training_only_phrasings_reach_training_rows_and_never_the_other_splits():
    extra = problems.training_only_phrases()
    assert {"filler", "ask_sum", "ask_which", "ask_next", "later"} <= set(extra)
    rows = {split: [p.question_written for family in problems.FAMILIES
                    for p in problems.generate_problems(300, seed=3, families=[family], split=split)]
            for split in ("train", "test", "phrasing", "stretch")}
    found = 0
    for slot, productions in extra.items():
        for production in productions:
            pattern = _pattern(production)
            core = [re.sub(r"\{\w+\}", "1", p.split("|")[0]) for p in getattr(problems, f"_{slot.upper()}").train]
            if len(re.sub(r"\{\w+\}", "", production.split("|")[0]).split()) < 3 \
                    or any(pattern.search(text) for text in core):  # too short, or inside a core production
                continue
            found += any(pattern.search(text) for text in rows["train"])
            for split in ("test", "phrasing", "stretch"):
                assert not any(pattern.search(text) for text in rows[split]), (split, slot, production)
    assert found >= 20


def test_phrasing_rows_use_held_out_productions_and_training_sizes():
    for family in problems.ALL_FAMILIES:
        rows = problems.generate_problems(200, seed=4, families=[family], split="phrasing")
        assert all(p.held_out >= 1 for p in rows), family
        again = problems.generate_problems(200, seed=4, families=[family], split="phrasing")
        assert rows == again  # the same seed, the same rows
    assert problems.generate_problems(50, seed=4, split="phrasing") != problems.generate_problems(50, seed=4)


def _size(p) -> tuple:
    """A family's sizes: what the stretch split pushes past training."""
    numbers = [int(n) for n in re.findall(r"\d+", p.question_written)]
    if p.family == "arithmetic":
        return max(numbers), p.question_written.count(" × ") + len(re.findall(r" [+-] ", p.question_written))
    if p.family == "word_problem":  # steps: the sums in its thought
        return (p.thought.count(" = "),)
    if p.family == "sequence":
        gaps = {abs(b - a) for a, b in zip(numbers, numbers[1:])}
        return len(numbers), min(gaps)
    if p.family == "time":
        return (max(int(n) for n in re.findall(r"(\d+) min", p.thought)),)
    if p.family == "comparison":  # the largest number, the most operations on one side
        return max(numbers), max(len(re.findall(r" [+×] ", side))
                                 for side in re.findall(r"\d+(?: [+×] \d+)*", p.question_written))
    word = re.search(r"Spell it: ([a-z-]+)", p.thought)  # (word length, items counted, of them in a mixed list)
    counted = len(re.findall(r"\(\d+\)", p.thought))
    mixed = " is not" in p.thought
    return len(word[1].replace("-", "")) if word else 0, 0 if mixed else counted, counted if mixed else 0


def test_stretch_rows_go_past_every_training_size():
    for family in problems.FAMILIES:
        train = problems.generate_problems(600, seed=9, families=[family])
        limits = [max(_size(p)[i] for p in train) for i in range(len(_size(train[0])))]
        for p in problems.generate_problems(200, seed=9, families=[family], split="stretch"):
            size = _size(p)
            beyond = any(s > limit for s, limit in zip(size, limits))
            assert beyond, (family, p.question_written)


def test_out_of_scope_questions_are_declined_in_every_split():
    for split in ("train", "phrasing"):
        rows = problems.generate_problems(60, seed=2, families=["out_of_scope"], split=split)
        assert {(p.thought, p.answer, p.reply) for p in rows} == \
            {(problems.OUT_OF_SCOPE_THOUGHT, problems.OUT_OF_SCOPE, problems.OUT_OF_SCOPE_REPLY)}
        assert any(re.search(r"\d", p.question_written) for p in rows)  # "has a number" does not mean "in scope"
    train = {p.question_written for p in problems.generate_problems(300, seed=2, families=["out_of_scope"])}
    held = {p.question_written for p in problems.generate_problems(300, seed=2, families=["out_of_scope"],
                                                                   split="phrasing")}
    assert not train & held


def test_every_kind_of_question_is_drawn():
    """Each family's kinds and answer types occur: new sizes and relations, not only the old templates."""
    def some(family, condition, split="train"):
        return any(condition(p) for p in SPLIT_SAMPLES[split][family])

    assert some("arithmetic", lambda p: "sum of" in p.question or "more than" in p.question)
    assert some("arithmetic", lambda p: int(p.answer) > 1000)
    assert some("arithmetic", lambda p: p.thought.count("=") == 1)
    for words in ("twice as many", "half of them", "How many more", "each have", "in total"):
        assert some("word_problem", lambda p, w=words: w in p.question), words
    assert some("word_problem", lambda p: p.thought.count(" = ") == 3)  # three steps
    assert some("comparison", lambda p: p.thought.startswith("First work out") and "Then" in p.thought)
    assert some("sequence", lambda p: "take turns" in p.thought)
    assert some("sequence", lambda p: len(re.findall(r"\d+", p.question_written)) == 3)
    assert some("sequence", lambda p: len(re.findall(r"\d+", p.question_written)) == 6)
    assert some("time", lambda p: "hour" in p.question and "minutes" in p.question)
    assert some("time", lambda p: "half past" in p.question or "quarter" in p.question)
    assert some("time", lambda p: re.search(r"\d+ hours? is", p.thought) is not None)


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="choose from train, test, phrasing, stretch"):
        problems.generate_problems(3, seed=0, split="holdout")


def test_training_word_problems_are_sometimes_asked_by_the_one_they_are_about(monkeypatch):
    """The same draws with the first-person share at 0 and at 1: the same problem, asked by its subject ("I have
    12 cards and lose 3"), its verbs said by "I", "you" in the thought and the reply; only the train split."""
    shipped = problems.FIRST_PERSON_SHARE

    def drawn(share, split):
        monkeypatch.setattr(problems, "FIRST_PERSON_SHARE", share)
        return problems.generate_problems(300, seed=4, families=["word_problem"], split=split)

    verbs = "|".join(problems._VERBS)
    unchanged = 0
    for third, first in zip(drawn(0.0, "train"), drawn(1.0, "train")):
        if first == third:  # "3 friends each have 10 ribbons": no one to be
            unchanged += 1
            assert not re.search(r"\bthan \w+\?|'s\b", third.question_written), third
            continue
        assert first.answer == third.answer and first.thought.count("\n") == third.thought.count("\n")
        names = [n for n in problems.NAMES if re.search(rf"\b{n}\b", third.question_written)]
        gone = [n for n in names if not re.search(rf"\b{n}\b", first.question_written)]
        assert len(gone) == 1 and gone[0] not in first.thought + first.reply, (third.question_written, first)
        for question in (first.question, first.question_written):
            assert re.search(r"\b(I|me|my|My)\b", question), question
            assert not re.search(rf"\bI ({verbs})\b|\bdoes I\b", question), question
            subject = re.search(r"\bI (?!was\b)\w+[^.?]*", question)
            assert subject and not re.search(rf"(, | and )({verbs})\b", subject.group()), question
        assert first.question.count(" I ") == first.question_written.count(" I ")
    assert unchanged < 0.3 * 300
    shares = drawn(shipped, "train")
    asked = sum(p.question_written != q.question_written for p, q in zip(shares, drawn(0.0, "train")))
    assert 0.15 * 300 < asked < 0.45 * 300
    for split in ("test", "phrasing", "stretch"):
        assert drawn(1.0, split) == drawn(0.0, split)
