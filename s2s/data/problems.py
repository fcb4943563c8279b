"""Short reasoning problems, each with a spoken question, a chain of thought and a spoken reply.

This is the text side of the spoken-reasoning corpus: espeak-ng later speaks
`question` and `reply`, so those hold numbers as words (see `numbers`), while
`question_written` and `thought` are what the LM reads and writes, with digits.

Answers are canonical so that a checker can compare them exactly: integers as
digits ("11", "-7"), clock times as H:MM on a 12-hour clock ("9:45", "12:05"),
and for comparisons the chosen number as digits. Every answer is computed from
the numbers drawn, never written by hand, and every thought ends on the line
"So the answer is <answer>.". Each family has several phrasings so that a model
cannot learn one sentence shape.
"""
from __future__ import annotations

import functools
import random
from collections import Counter
from dataclasses import dataclass

from s2s.data.numbers import clock, number_to_words, time_to_words

FAMILIES = ("arithmetic", "word_problem", "comparison", "sequence", "time", "counting")

NAMES = "Anna Ben Clara David Emma Felix Grace Henry Jack Kate Leo Mia Noah Olivia Peter Rosa Sam Tom".split()
OBJECTS = "apples pencils marbles stickers cookies books cards shells coins stamps balloons crayons".split()
# Short everyday words whose spelling is unambiguous by ear and which espeak-ng reads correctly.
WORDS = ("garden kitchen rabbit window pencil basket candle guitar ladder market planet pocket rocket silver "
         "spider summer winter yellow zebra tiger banana coffee apple bottle butter letter puzzle tomato "
         "elephant umbrella mountain doctor school river forest balloon cookie pepper tennis dinner happy "
         "little pizza jacket monkey turtle dragon lemon carrot cherry puppy kitten teacher blanket giraffe").split()
# No item belongs to two categories ("orange" is both a fruit and a color, so it is left out).
CATEGORIES = {
    "fruits": "apple banana cherry grape lemon mango melon peach pear plum kiwi".split(),
    "animals": "cat dog horse lion tiger rabbit mouse sheep goat monkey zebra duck".split(),
    "colors": "red blue green yellow purple pink brown black white gray".split(),
}
_ONE_OF = {"fruits": "a fruit", "animals": "an animal", "colors": "a color"}


@dataclass(frozen=True)
class Problem:
    family: str
    question: str  # as spoken: numbers in words
    question_written: str  # the same question with digits
    thought: str  # step-by-step working, one step a line, ending "So the answer is <answer>."
    answer: str  # canonical: "11", "9:45"
    reply: str  # as spoken: a short sentence holding the answer in words


def _say(template: str, **fields) -> tuple[str, str]:
    """`template` filled in twice, spoken and written. A field is an int, a (spoken, written) pair or plain text."""
    spoken, written = {}, {}
    for name, value in fields.items():
        if isinstance(value, int):
            value = (number_to_words(value), str(value))
        elif isinstance(value, str):
            value = (value, value)
        spoken[name], written[name] = value
    said = template.format(**spoken)
    return said[0].upper() + said[1:], template.format(**written)


def _problem(family: str, rng: random.Random, questions, replies, fields: dict, steps: list[str],
             answer: str, reply_fields: dict) -> Problem:
    question, question_written = _say(rng.choice(questions), **fields)
    reply, _ = _say(rng.choice(replies), **reply_fields)
    thought = "\n".join(steps + [f"So the answer is {answer}."])
    return Problem(family, question, question_written, thought, answer, reply)


# --- arithmetic ---------------------------------------------------------------

_OPERATORS = {"+": "plus", "-": "minus", "×": "times"}


def _expression(numbers: list[int], ops: list[str]) -> tuple[str, str]:
    spoken = " ".join([number_to_words(numbers[0])] + [f"{_OPERATORS[o]} {number_to_words(n)}"
                                                       for o, n in zip(ops, numbers[1:])])
    return spoken, " ".join([str(numbers[0])] + [f"{o} {n}" for o, n in zip(ops, numbers[1:])])


def _arithmetic(rng: random.Random) -> Problem:
    count = rng.choice((2, 3))
    numbers = [rng.randint(0, 12) for _ in range(count + 1)]
    ops = [rng.choice("+-×") for _ in range(count)]
    # Always mix a product with a sum or difference, so precedence matters.
    if "×" not in ops:
        ops[rng.randrange(count)] = "×"
    if set(ops) == {"×"}:
        ops[rng.randrange(count)] = rng.choice("+-")
    fields = {"e": _expression(numbers, ops)}
    steps = ["Multiplication comes before addition and subtraction."]
    nums, rest = list(numbers), list(ops)
    while rest:
        k = rest.index("×") if "×" in rest else 0
        a, op, b = nums[k], rest[k], nums[k + 1]
        value = a * b if op == "×" else a + b if op == "+" else a - b
        nums[k:k + 2], rest[k:k + 1] = [value], []
        word = "First" if len(steps) == 1 else "Then"
        left = f", which leaves {_expression(nums, rest)[1]}" if rest else ""
        steps.append(f"{word} {a} {op} {b} = {value}{left}.")
    return _problem("arithmetic", rng,
                    ("What is {e}?", "How much is {e}?", "Calculate {e}.", "Work out {e}.", "What do you get for {e}?"),
                    ("The answer is {n}.", "It is {n}.", "That makes {n}."),
                    fields, steps, str(nums[0]), {"n": nums[0]})


# --- word problems ------------------------------------------------------------

_GAINS = (("buys {%s} more", "Buying"), ("finds {%s} more", "Finding"), ("gets {%s} more", "Getting"))
_LOSSES = (("gives away {%s}", "Giving away"), ("gives {%s} to {friend}", "Giving away"), ("loses {%s}", "Losing"))


def _word_problem(rng: random.Random) -> Problem:
    name, friend = rng.sample(NAMES, 2)
    things = rng.choice(OBJECTS)
    while True:  # draw until every count stays positive and any sharing comes out whole
        clauses, steps, fields = [], [], {"name": name, "friend": friend, "obj": things}
        share, packs = rng.random() < 0.4, rng.random() < 0.4
        if packs:
            p, q = fields["p"], fields["q"] = rng.randint(2, 5), rng.randint(2, 12)
            box, total = rng.choice(("bags", "boxes", "packs")), p * q
            clauses.append("{name} buys {p} " + box + " of {q} {obj}")
            steps.append(f"{p} {box} of {q} is {p} × {q} = {total} {things}.")
        else:
            total = fields["a"] = rng.randint(5, 30)
            clauses.append("{name} has {a} {obj}")
            steps.append(f"{name} starts with {total} {things}.")
        # Two to three steps in all, and a question short enough to speak quickly.
        changes = rng.randint(0 if share else 1, 2 - share - packs)
        gain, lost, ends_with_loss = rng.random() < 0.5, False, False  # a second change goes the other way
        for i in range(changes):
            key = f"b{i}"
            clause, verb = rng.choice(_GAINS if gain else _LOSSES)
            value = fields[key] = rng.randint(1, 15) if gain else rng.randint(1, max(1, total - 1))
            clauses.append(clause % key)
            after = total + value if gain else total - value
            sign, result = ("+", "more makes") if gain else ("-", "leaves")
            steps.append(f"{verb} {value} {result} {total} {sign} {value} = {after}.")
            total, lost, ends_with_loss, gain = after, lost or not gain, not gain, not gain
        if share:
            fields["k"] = k = rng.randint(2, 6)
            if total % k or total < k:
                continue
            them = "the rest" if lost else "them"
            among = "between" if k == 2 else "among"
            into = rng.choice(((f"shares {them} equally {among} {{k}} friends", "How many does each friend get?",
                                "Each friend gets {n}."),
                               (f"puts {them} equally into {{k}} jars", "How many go in each jar?",
                                "Each jar gets {n}.")))
            clauses.append(into[0])
            steps.append(f"Sharing {total} equally into {k} gives {total} ÷ {k} = {total // k} each.")
            total //= k
            questions, replies = (into[1],), (into[2],)
        else:
            questions = ("How many {obj} does {name} have now?", "How many {obj} does {name} end up with?")
            questions += ("How many {obj} does {name} have left?",) if ends_with_loss else ()
            replies = ("{name} has {n} {obj} now." if total != 1 else "{name} has {n} " + things[:-1] + " now.",
                       "The answer is {n}.")
        if total > 0:
            break
    story = ", ".join(clauses[:-1]) + " and " + clauses[-1]
    questions = tuple(f"{story}. {q}" for q in questions)
    return _problem("word_problem", rng, questions, replies, fields, steps, str(total),
                    {"n": total, "name": name, "obj": things})


# --- comparison ---------------------------------------------------------------

_PLACES = ("ones", "tens", "hundreds")


def _compare_steps(a: int, b: int, larger: bool) -> list[str]:
    big, small = max(a, b), min(a, b)
    if len(str(big)) != len(str(small)):
        steps = [f"{big} has {len(str(big))} digits and {small} has {len(str(small))}, so {big} is larger."]
    else:
        i = next(i for i, (x, y) in enumerate(zip(str(big), str(small))) if x != y)
        place = _PLACES[len(str(big)) - 1 - i]
        steps = [f"Both have {len(str(big))} digit{'s' if big > 9 else ''}. Compare the {place}: "
                 f"{str(big)[i]} is more than {str(small)[i]}, so {big} is larger than {small}."]
    if not larger:
        steps.append(f"The question asks for the smaller one, which is {small}.")
    return steps


def _comparison(rng: random.Random) -> Problem:
    larger = rng.random() < 0.6
    word = rng.choice(("larger", "greater", "bigger")) if larger else "smaller"
    kind = rng.random()
    if kind < 0.35:  # a product or sum against a number close to it
        x, y = rng.randint(2, 12), rng.randint(2, 12)
        op = rng.choice("×+")
        left = x * y if op == "×" else x + y
        right = max(0, left + rng.choice((-1, 1)) * rng.randint(1, 8))
        sides = [((f"{number_to_words(x)} {_OPERATORS[op]} {number_to_words(y)}", f"{x} {op} {y}"), left),
                 ((number_to_words(right), str(right)), right)]
        steps = [f"First work out {x} {op} {y} = {left}."]
    else:
        if kind < 0.6:  # the same two digits swapped
            a, b = rng.sample(range(1, 10), 2)
            left, right = 10 * a + b, 10 * b + a
        else:
            left, right = rng.sample(range(1, 1000 if rng.random() < 0.3 else 100), 2)
        sides = [((number_to_words(v), str(v)), v) for v in (left, right)]
        steps = []
    rng.shuffle(sides)
    (first, a), (second, b) = sides
    steps += _compare_steps(a, b, larger)
    chosen = max(a, b) if larger else min(a, b)
    return _problem("comparison", rng,
                    ("Which is {w}, {x} or {y}?", "Which number is {w}, {x} or {y}?", "Is {x} or {y} {w}?",
                     "Pick the {w} number: {x} or {y}."),
                    ("{n} is {w}.", "The {w} one is {n}.", "It is {n}."),
                    {"w": word, "x": first, "y": second}, steps, str(chosen), {"n": chosen, "w": word})


# --- sequences ----------------------------------------------------------------

def _sequence(rng: random.Random) -> Problem:
    length, kind = rng.choice((4, 4, 5)), rng.random()
    if kind < 0.3:
        ratio, start = rng.choice((2, 3)), rng.randint(1, 6)
        terms = [start * ratio ** i for i in range(length + 1)]
        products = ", ".join(f"{a} × {ratio} = {b}" for a, b in zip(terms, terms[1:-1]))
        steps = [f"The gaps grow, but each number is {ratio} times the one before: {products}.",
                 f"The rule is multiply by {ratio}: {terms[-2]} × {ratio} = {terms[-1]}."]
    else:
        step = rng.randint(1, 10)
        if kind < 0.6:
            step, start = -step, rng.randint(step * length, step * length + 30)
        else:
            start = rng.randint(0, 20)
        terms = [start + step * i for i in range(length + 1)]
        pairs = zip(terms, terms[1:-1])
        if step > 0:
            gaps = ", ".join(f"{b} - {a} = {step}" for a, b in pairs)
            steps = [f"Each number is {step} more than the one before: {gaps}.",
                     f"The rule is add {step}: {terms[-2]} + {step} = {terms[-1]}."]
        else:
            gaps = ", ".join(f"{a} - {b} = {-step}" for a, b in pairs)
            steps = [f"Each number is {-step} less than the one before: {gaps}.",
                     f"The rule is subtract {-step}: {terms[-2]} - {-step} = {terms[-1]}."]
    shown = (", ".join(number_to_words(t) for t in terms[:-1]), ", ".join(str(t) for t in terms[:-1]))
    return _problem("sequence", rng,
                    ("What comes next: {s}?", "What is the next number: {s}?",
                     "Continue the sequence {s}. What comes next?", "Which number follows {s}?"),
                    ("The next number is {n}.", "Next comes {n}.", "It is {n}."),
                    {"s": shown}, steps, str(terms[-1]), {"n": terms[-1]})


# --- clock time ---------------------------------------------------------------

def _spoken_clock(minutes: int) -> tuple[str, str]:
    return time_to_words((minutes // 60) % 12, minutes % 60), clock(minutes)


# Clock arithmetic is one line the calculator finishes (`s2s/lm/tools.py`): the model's part is to read the
# question into the right sum (which clock, which way, how many minutes); hour roll-over and the 12-hour wrap
# are the tool's, as sums are. Measured: a 9 M-parameter LM trained for 85 minutes got 73 % of time questions
# right when it had to carry hours itself, step by step, against 94 % of arithmetic with the calculator.
def _later_steps(start: int, delta: int) -> list[str]:
    return [f"{clock(start)} + {delta} min = {clock(start + delta)}."]


def _earlier_steps(start: int, delta: int) -> list[str]:
    return [f"{clock(start)} - {delta} min = {clock(start - delta)}."]


def _duration_steps(start: int, end: int) -> list[str]:
    return [f"From {clock(start)} to {clock(end)}: {clock(end)} - {clock(start)} = {end - start} min."]


def _time(rng: random.Random) -> Problem:
    start, kind = rng.randrange(0, 720, rng.choice((5, 5, 1))), rng.random()
    if kind < 0.35:
        delta = rng.randrange(10, 185, 5)
        return _problem("time", rng,
                        ("A film starts at {t} and ends at {u}. How many minutes long is it?",
                         "A train leaves at {t} and arrives at {u}. How many minutes is the trip?",
                         "A lesson runs from {t} to {u}. How many minutes does it last?"),
                        ("It lasts {n} minutes.", "That is {n} minutes."),
                        {"t": _spoken_clock(start), "u": _spoken_clock(start + delta)},
                        _duration_steps(start, start + delta), str(delta), {"n": delta})
    if kind < 0.75:
        delta = rng.randrange(5, 125, 5)
        end, steps = start + delta, _later_steps(start, delta)
        questions = ("It is {t}. What time will it be in {d} minutes?",
                     "The clock shows {t}. What time will it show {d} minutes later?",
                     "A bus leaves at {t} and the trip takes {d} minutes. When does it arrive?")
        replies = ("It will be {n}.", "The time will be {n}.")
    else:  # back in time only within the hour before, which a person does by borrowing an hour
        delta = rng.randrange(5, 60, 5)
        end, steps = start - delta, _earlier_steps(start, delta)
        questions = ("It is {t} now. What time was it {d} minutes ago?",
                     "The clock shows {t}. What did it show {d} minutes earlier?",
                     "A bus arrives at {t} after a {d} minute trip. When did it leave?")
        replies = ("It was {n}.", "The time was {n}.")
    return _problem("time", rng, questions, replies, {"t": _spoken_clock(start), "d": delta}, steps,
                    clock(end), {"n": _spoken_clock(end)})


# --- counting -----------------------------------------------------------------

def _counting(rng: random.Random) -> Problem:
    kind = rng.random()
    if kind < 0.3:
        word = rng.choice(WORDS)
        steps = [f"Spell it: {'-'.join(word)}. That is {len(word)} letters."]
        return _problem("counting", rng,
                        ("How many letters are in the word {w}?", "How many letters does the word {w} have?",
                         "Count the letters in the word {w}."),
                        ("The word {w} has {n} letters.", "It has {n} letters."),
                        {"w": word}, steps, str(len(word)), {"n": len(word), "w": word})
    if kind < 0.6:
        word = rng.choice(WORDS)
        letters = sorted(set(word)) if rng.random() < 0.75 else sorted(set("abcdefghijklmnoprstuwy") - set(word))
        letter = rng.choice(letters)
        where = [str(i + 1) for i, c in enumerate(word) if c == letter]
        count = len(where)
        if count == 0:
            found = f"The letter {letter} does not appear, so 0 times."
        else:
            at = where[0] if count == 1 else ", ".join(where[:-1]) + " and " + where[-1]
            found = (f"The letter {letter} is at position{'s' if count > 1 else ''} {at}, "
                     f"so it appears {count} time{'s' if count != 1 else ''}.")
        # The letter ends the question: espeak-ng reads "the letter A appears" with A as the article.
        return _problem("counting", rng,
                        ("How many times does the word {w} contain the letter {l}?",
                         "In the word {w}, count the letter {l}."),
                        ("It appears {n} time" + ("s." if count != 1 else "."), "The answer is {n}."),
                        {"w": word, "l": letter.upper()}, [f"Spell it: {'-'.join(word)}.", found], str(count),
                        {"n": count})
    category, other = rng.sample(sorted(CATEGORIES), 2)
    if kind < 0.8:
        items = rng.sample(CATEGORIES[category], rng.randint(2, 7))
        steps = ["Count them: " + ", ".join(f"{item} ({i + 1})" for i, item in enumerate(items)) + "."]
        questions = ("How many {c} are in this list: {items}?", "Count the {c}: {items}.")
    else:
        items = rng.sample(CATEGORIES[category], rng.randint(1, 4)) + rng.sample(CATEGORIES[other], rng.randint(1, 3))
        rng.shuffle(items)
        seen, notes = 0, []
        for item in items:
            if item in CATEGORIES[category]:
                seen += 1
                notes.append(f"{item} is {_ONE_OF[category]} ({seen})")
            else:
                notes.append(f"{item} is not")
        steps = [", ".join(notes) + "."]
        questions = ("How many of these are {c}: {items}?", "How many {c} are in this list: {items}?")
    count = sum(item in CATEGORIES[category] for item in items)
    noun = category if count != 1 else _ONE_OF[category].split()[1]
    return _problem("counting", rng, questions,
                    (("There are {n} " if count != 1 else "There is {n} ") + noun + ".", "I count {n}."),
                    {"c": category, "items": ", ".join(items)}, steps, str(count), {"n": count})


_GENERATORS = {"arithmetic": _arithmetic, "word_problem": _word_problem, "comparison": _comparison,
               "sequence": _sequence, "time": _time, "counting": _counting}


def _check_families(families) -> None:
    unknown = [f for f in families if f not in _GENERATORS]
    if unknown or not families:
        raise ValueError(f"unknown problem family {unknown or families!r}; choose from {', '.join(FAMILIES)}")


def generate_problem(rng: random.Random, family: str | None = None) -> Problem:
    """One problem of `family` (a random family when None), drawn with `rng`."""
    family = family or rng.choice(FAMILIES)
    _check_families([family])
    return _GENERATORS[family](rng)


def generate_problems(n: int, seed: int, families=None) -> list[Problem]:
    """`n` problems cycling through `families` (all when None).

    Problem i depends only on (seed, i), so a longer list starts with the shorter one.
    """
    families = tuple(families or FAMILIES)
    _check_families(families)
    return [generate_problem(random.Random(f"{seed}:{i}"), families[i % len(families)]) for i in range(n)]


@functools.lru_cache(maxsize=None)
def chance_level(family: str) -> float:
    """Accuracy of a guesser that never hears the question, for `family`.

    It is the larger of two baselines: always giving the family's most common
    answer (measured on 2000 problems of a fixed seed), and picking one of the
    spoken options at random where the question offers them (0.5 for the two
    numbers of a comparison). A model near this level is not reasoning.
    """
    answers = Counter(p.answer for p in generate_problems(2000, seed=-1, families=[family]))
    most_common = answers.most_common(1)[0][1] / 2000
    return max(most_common, 0.5) if family == "comparison" else most_common
