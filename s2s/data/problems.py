"""Short reasoning problems, each with a spoken question, a chain of thought and a spoken reply.

This is the text side of the spoken-reasoning corpus: a TTS engine later
speaks `question` and `reply`, so those hold numbers as words (see
`numbers`), while `question_written` and `thought` are what the LM reads and
writes, with digits: the form `s2s.hearing.normalise_question` gives any
heard or typed question.

Questions come from a small grammar (`s2s/data/grammar.py`): each family
combines openings, verbs, sentence shapes, fillers, names and objects, so a
family has thousands of surface forms, and a model must read the problem, not
a sentence it has learnt. Part of the grammar is held out of training (the
`phrasing` split) and sizes just beyond training make the `stretch` split.

Answers are canonical so that a checker can compare them exactly: integers as
digits ("11", "-7"), clock times as H:MM on a 12-hour clock ("9:45", "12:05"),
and for comparisons the chosen number as digits. Every answer is computed from
the numbers drawn, never written by hand, and every thought ends on the line
"So the answer is <answer>.". The sums in a thought are left to the
calculator (`s2s/lm/tools.py`): the model's part is to read the question into
the right sum. A question outside what the model can work on (the
`out_of_scope` family) gets the thought `OUT_OF_SCOPE_THOUGHT`, the answer
`OUT_OF_SCOPE` and the reply `OUT_OF_SCOPE_REPLY`.
"""
from __future__ import annotations

import functools
import random
import re
from collections import Counter
from dataclasses import dataclass, replace

from s2s.data import distractors
from s2s.data.grammar import SPLITS, Draw, Slot, check_split
from s2s.data.numbers import clock, number_to_words, time_to_words

FAMILIES = ("arithmetic", "word_problem", "comparison", "sequence", "time", "counting")
OUT_OF_SCOPE_FAMILY = "out_of_scope"
ALL_FAMILIES = FAMILIES + (OUT_OF_SCOPE_FAMILY,)
OUT_OF_SCOPE = "out of scope"
OUT_OF_SCOPE_THOUGHT = "This is not a number or time question I can work on.\nSo I cannot answer it."
OUT_OF_SCOPE_REPLY = "I can only help with number and time questions for now."

NAMES = ("Anna Ben Clara David Emma Felix Grace Henry Jack Kate Leo Mia Noah Olivia Peter Rosa Sam Tom Lucy Max "
         "Sara Paul Nina Omar Lily Adam Zoe Ryan Hannah Luke Ella Jacob Amy Daniel Chloe Oscar Maya Ethan Ruby "
         "Owen").split()
OBJECTS = ("apples pencils marbles stickers cookies books cards shells coins stamps balloons crayons oranges "
           "cupcakes toys buttons candles flowers eggs ribbons rocks beads tickets plates cars").split()
# Short everyday words whose spelling is unambiguous by ear and which espeak-ng reads correctly.
WORDS = ("garden kitchen rabbit window pencil basket candle guitar ladder market planet pocket rocket silver "
         "spider summer winter yellow zebra tiger banana coffee apple bottle butter letter puzzle tomato "
         "elephant umbrella mountain doctor school river forest balloon cookie pepper tennis dinner happy "
         "little pizza jacket monkey turtle dragon lemon carrot cherry puppy kitten teacher blanket giraffe").split()
# Longer than any word of WORDS: the stretch split's words to spell.
LONG_WORDS = ("butterfly chocolate adventure telephone hamburger crocodile strawberry newspaper kangaroo "
              "basketball pineapple sandwich computer vegetable dinosaur").split()
LONG_WORDS = tuple(w for w in LONG_WORDS if len(w) > max(len(w) for w in WORDS))
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
    held_out: int = 0  # how many held-out productions of the grammar the question uses (phrasing split only)


def _say(template: str, **fields) -> tuple[str, str]:
    """`template` filled in twice, spoken and written. A field is an int, a (spoken, written) pair or plain text."""
    spoken, written = {}, {}
    for name, value in fields.items():
        if isinstance(value, int):
            value = (number_to_words(value), str(value))
        elif isinstance(value, str):
            value = (value, value)
        spoken[name], written[name] = value
    said, text = template.format(**spoken), template.format(**written)
    return said[0].upper() + said[1:], text[0].upper() + text[1:]


def _problem(family: str, draw: Draw, question: str, reply: str, fields: dict, steps: list[str],
             answer: str, reply_fields: dict) -> Problem:
    spoken, written = _say(question, **fields)
    said_reply, _ = _say(reply, **reply_fields)
    thought = "\n".join(steps + [f"So the answer is {answer}."])
    return Problem(family, spoken, written, thought, answer, said_reply, draw.held_out)


# Said before some questions, as people do; the held-out ones never occur in training.
_FILLER = Slot(("", "", "", "", "Okay, ", "So, ", "Quick question: ", "Hey, "),
               ("Right, ", "Here's one: ", "Let me ask you something. ", "I was wondering, "),
               extra=("", "", "", "Um, ", "Well, ", "Hi, ", "Next one: ", "Question: ", "Now, ", "Hello, ", "Oh, "))


# Training questions only: how often an opening, an aside or a sign-off that changes nothing comes with them.
DISTRACTOR_SHARES = {"preamble": 0.25, "aside": 0.1, "sign_off": 0.1}


def _opening(draw: Draw, template: str) -> str:
    """`template` after a filler (its first letter lowered after one that is not a sentence); in the train split,
    sometimes with words that change nothing around it (`s2s/data/distractors.py`)."""
    filler = draw.phrase(_FILLER)
    if draw.split == "train":
        filler, template = _distracted(draw.rng, filler, template)
    if not filler or filler.endswith(". ") or filler.endswith(": ") or template.startswith(("I ", "I'")):
        return filler + template
    return filler + template[0].lower() + template[1:]


def _distracted(rng: random.Random, filler: str, template: str) -> tuple[str, str]:
    """The filler or a preamble; an aside between the template's sentences; a sign-off after it."""
    if rng.random() < DISTRACTOR_SHARES["preamble"]:
        filler = distractors.preamble(rng)
    boundary = template.find(". ")
    if rng.random() < DISTRACTOR_SHARES["aside"] and 0 < boundary < len(template) - 2:
        template = f"{template[:boundary + 2]}{distractors.aside(rng)} {template[boundary + 2:]}"
    if rng.random() < DISTRACTOR_SHARES["sign_off"]:
        template = f"{template} {distractors.sign_off(rng)}"
    return filler, template


# --- arithmetic ---------------------------------------------------------------

# Spoken operator words; all are read back to + - × by the normaliser, so the written form has symbols.
_SAID_OPERATORS = {"+": ("plus",), "-": ("minus", "take away"), "×": ("times", "multiplied by")}
_ASK_SUM = Slot(("What is {e}?", "How much is {e}?", "Calculate {e}.", "Work out {e}.", "What do you get for {e}?",
                 "What's {e}?", "Can you tell me what {e} is?", "Please work out {e}.", "Tell me what {e} makes.",
                 "What is the answer to {e}?", "How much do you get for {e}?"),
                ("I'd like to know what {e} comes to.", "Could you figure out {e} for me?", "What does {e} equal?",
                 "Do you know what {e} is?", "Find the value of {e}."),
                extra=("What's the result of {e}?", "Could you calculate {e}?", "Can you work out {e}?",
                       "Solve {e}.", "Compute {e}.", "How much does {e} make?", "Give me the answer to {e}.",
                       "What would {e} be?"))
# One operation said in words: (template, operator, the operands' order in the sum).
_SAID_SUMS = Slot(("the sum of {a} and {b}|+|ab", "{a} more than {b}|+|ba", "{b} less than {a}|-|ab",
                   "the product of {a} and {b}|×|ab", "the difference between {a} and {b}|-|ab",
                   "{a} added to {b}|+|ba", "{b} taken away from {a}|-|ab"),
                  ("{a} and {b} added together|+|ab", "{b} subtracted from {a}|-|ab", "{a} lots of {b}|×|ab",
                   "{a} groups of {b}|×|ab"),
                  extra=("the total of {a} and {b}|+|ab", "{a} increased by {b}|+|ab", "{a} reduced by {b}|-|ab"))


def _spoken_expression(draw: Draw, numbers: list[int], ops: list[str]) -> tuple[str, str]:
    spoken = " ".join([number_to_words(numbers[0])] + [f"{draw.rng.choice(_SAID_OPERATORS[o])} {number_to_words(n)}"
                                                       for o, n in zip(ops, numbers[1:])])
    return spoken, " ".join([str(numbers[0])] + [f"{o} {n}" for o, n in zip(ops, numbers[1:])])


def _value(a: int, op: str, b: int) -> int:
    return a * b if op == "×" else a + b if op == "+" else a - b


def _solve_steps(numbers: list[int], ops: list[str]) -> tuple[list[str], int]:
    """The thought's lines for an expression (products first, then left to right) and its value."""
    steps = ["Multiplication comes before addition and subtraction."] if "×" in ops and set(ops) - {"×"} else []
    nums, rest, first = list(numbers), list(ops), True
    while rest:
        k = rest.index("×") if "×" in rest else 0
        a, op, b = nums[k], rest[k], nums[k + 1]
        value = _value(a, op, b)
        nums[k:k + 2], rest[k:k + 1] = [value], []
        left = f", which leaves {' '.join([str(nums[0])] + [f'{o} {n}' for o, n in zip(rest, nums[1:])])}" \
            if rest else ""
        steps.append(f"{'First' if first else 'Then'} {a} {op} {b} = {value}{left}.")
        first = False
    return steps, nums[0]


def _operand(draw: Draw, big: bool) -> int:
    """Mostly small numbers, as everyday sums are; now and then up to 100 (101 to 999 when `big`)."""
    while True:  # never a whole hundred: "one hundred and eight" would be heard as 108
        n = draw.rng.randint(101, 999) if big else \
            draw.rng.randint(0, 12) if draw.rng.random() < 0.6 else draw.rng.randint(13, 99)
        if n % 100:
            return n


def _arithmetic(draw: Draw) -> Problem:
    rng = draw.rng
    # Stretch: one more operation than training's three, or operands past 100.
    more_terms = draw.stretch and rng.random() < 0.5
    big = draw.stretch and not more_terms
    if rng.random() < 0.3 and not more_terms:  # one operation, said in words
        template, op, order = draw.phrase(_SAID_SUMS).split("|")
        a, b = _operand(draw, big), _operand(draw, big)
        if op == "-" and "difference" in template:
            a, b = max(a, b), min(a, b)
        if op == "×" and a > 12 and b > 12:  # one large factor at most, as in longer sums
            b = rng.randint(2, 12)
        x, y = (a, b) if order == "ab" else (b, a)
        steps, value = _solve_steps([x, y], [op])
        fields = {"e": template.format(a="{a}", b="{b}")}
        question = draw.phrase(_ASK_SUM).replace("{e}", fields["e"])
        return _problem("arithmetic", draw, _opening(draw, question), rng.choice(_REPLY_SUM), {"a": a, "b": b},
                        steps, str(value), {"n": value})
    count = 4 if more_terms else draw.size((1, 2 if big else 3))
    while True:  # redrawn until every step stays below 100,000, a number still quick to say
        numbers, ops, steps, value = _expression(draw, count, big)
        if all(abs(int(n)) < 100_000 for n in re.findall(r"-?\d+", " ".join(steps))):
            break
    question = _opening(draw, draw.phrase(_ASK_SUM))
    return _problem("arithmetic", draw, question, rng.choice(_REPLY_SUM), {"e": _spoken_expression(draw, numbers, ops)},
                    steps, str(value), {"n": value})


def _expression(draw: Draw, count: int, big: bool) -> tuple[list[int], list[str], list[str], int]:
    """`count` operations on drawn numbers, products mixed with sums: numbers, operators, thought lines, value."""
    rng = draw.rng
    numbers = [_operand(draw, big) for _ in range(count + 1)]
    ops = [rng.choice("+-×") for _ in range(count)]
    if count > 1:  # mix a product with a sum or difference, so precedence matters
        if "×" not in ops:
            ops[rng.randrange(count)] = "×"
        if set(ops) == {"×"}:
            ops[rng.randrange(count)] = rng.choice("+-")
    for i, op in enumerate(ops):  # keep products speakable: one large factor at most, the others small
        if op == "×" and numbers[i + 1] > 12 and (numbers[i] > 12 or (i and ops[i - 1] == "×")):
            numbers[i + 1] = rng.randint(2, 12)
        if op == "×" and i and ops[i - 1] == "×" and numbers[i] > 12:
            numbers[i] = rng.randint(2, 12)
    return (numbers, ops, *_solve_steps(numbers, ops))


_REPLY_SUM = ("The answer is {n}.", "It is {n}.", "That makes {n}.")


# --- word problems ------------------------------------------------------------

_GAINS = Slot(("buys {n} more|Buying", "finds {n} more|Finding", "gets {n} more|Getting"),
              ("is given {n} more|Being given", "picks up {n} more|Picking up"),
              extra=("wins {n} more|Winning", "receives {n} more|Receiving", "collects {n} more|Collecting"))
_LOSSES = Slot(("gives away {n}|Giving away", "gives {n} to {friend}|Giving away", "loses {n}|Losing"),
               ("sells {n}|Selling", "drops {n}|Dropping"),
               extra=("uses {n}|Using", "hands {n} to {friend}|Giving away", "throws away {n}|Throwing away"))
_HOW_MANY_NOW = Slot(("How many {obj} does {name} have now?", "How many {obj} does {name} end up with?",
                      "How many {obj} does {name} have at the end?", "How many {obj} are there now?"),
                     ("What is the number of {obj} {name} has now?", "Now how many {obj} has {name} got?"),
                     extra=("So how many {obj} does {name} have?", "How many {obj} does {name} have after that?",
                            "Count {name}'s {obj} now."))
_HOW_MANY_LEFT = Slot(("How many {obj} does {name} have left?", "How many {obj} are left?"),
                      ("How many {obj} remain?",),
                      extra=("How many {obj} are still there?", "How many {obj} does {name} still have?"))
_IN_TOTAL = Slot(("How many {obj} do they have in total?", "How many {obj} do they have altogether?",
                  "How many {obj} is that in total?"),
                 ("What is the total number of {obj}?",),
                 extra=("How many {obj} are there altogether?", "Together, how many {obj} do they have?"))
_BOXES = ("bags", "boxes", "packs")
_STORY_SHAPE = Slot(("story first",), ("if",))  # the story, then the question; held out: the question after "If"


def _story(draw: Draw, name: str, friend: str, things: str) -> Problem:
    """A start, one to three changes, perhaps a fair share: "Mia has 12 cards, buys 5 more and loses 3."."""
    rng = draw.rng
    # Steps in all: 1 to 3 in training, 4 in stretch.
    while True:  # draw until every count stays positive and any sharing comes out whole
        steps_wanted = 4 if draw.stretch else draw.size((1, 3))
        clauses, steps, fields = [], [], {"name": name, "friend": friend, "obj": things}
        packs = rng.random() < 0.35
        share = steps_wanted > 1 and rng.random() < 0.35
        if packs:
            p, q = fields["p"], fields["q"] = rng.randint(2, 6), rng.randint(2, 12)
            box, total = rng.choice(_BOXES), p * q
            clauses.append("{name} buys {p} " + box + " of {q} {obj}")
            steps.append(f"{p} {box} of {q} is {p} × {q} = {total} {things}.")
        else:
            total = fields["a"] = rng.randint(5, 40)
            clauses.append("{name} has {a} {obj}")
            steps.append(f"{name} starts with {total} {things}.")
        changes = steps_wanted - share - packs
        if changes < 0 or (changes == 0 and not (share or packs)):
            continue
        gain, lost, ends_with_loss = rng.random() < 0.5, False, False  # each change goes the other way
        for i in range(changes):
            key = f"b{i}"
            clause, verb = draw.phrase(_GAINS if gain else _LOSSES).split("|")
            value = fields[key] = rng.randint(1, 15) if gain else rng.randint(1, max(1, total - 1))
            clauses.append(clause.replace("{n}", "{" + key + "}"))
            after = total + value if gain else total - value
            sign, result = ("+", "more makes") if gain else ("-", "leaves")
            steps.append(f"{verb} {value} {result} {total} {sign} {value} = {after}.")
            total, lost, ends_with_loss, gain = after, lost or not gain, not gain, not gain
        if total <= 0:
            continue
        if share:
            fields["k"] = k = rng.randint(2, 6)
            if total % k or total < k:
                continue
            them = "the rest" if lost else "them"
            among = "between" if k == 2 else "among"
            clause, question, reply = rng.choice(
                ((f"shares {them} equally {among} {{k}} friends", "How many does each friend get?",
                  "Each friend gets {n}."),
                 (f"puts {them} equally into {{k}} jars", "How many go in each jar?", "Each jar gets {n}.")))
            clauses.append(clause)
            steps.append(f"Sharing {total} equally into {k} gives {total} ÷ {k} = {total // k} each.")
            total //= k
        else:
            slot = _HOW_MANY_LEFT if ends_with_loss and rng.random() < 0.5 else _HOW_MANY_NOW
            question = draw.phrase(slot)
            reply = "{name} has {n} {obj} now." if total != 1 else "{name} has {n} " + things[:-1] + " now."
            reply = rng.choice((reply, "The answer is {n}."))
        break
    story = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]
    if draw.phrase(_STORY_SHAPE) == "if":  # "If Mia has 12 cards and loses 3, how many cards does Mia have now?"
        template = f"If {story}, {question[0].lower()}{question[1:]}"
    else:
        template = f"{story}. {question}"
    return _problem("word_problem", draw, _opening(draw, template), reply, fields, steps, str(total),
                    {"n": total, "name": name, "obj": things})


def _relation(draw: Draw, name: str, friend: str, things: str) -> Problem:
    """"How many more", "twice as many", "half of", "each": one or two steps that name a relation."""
    rng = draw.rng
    kind = rng.random()
    fields = {"name": name, "friend": friend, "obj": things}
    if kind < 0.3:
        a, b = sorted(rng.sample(range(2, 60), 2))
        fields |= {"a": a, "b": b}
        question = f"{{name}} has {{a}} {{obj}} and {{friend}} has {{b}}. {draw.phrase(_HOW_MANY_MORE)}"
        steps, answer = [f"{friend} has {b} and {name} has {a}: {b} - {a} = {b - a} more."], b - a
    elif kind < 0.55:
        a = fields["a"] = rng.randint(2, 30)
        question = "{name} has {a} {obj} and {friend} has twice as many. "
        if rng.random() < 0.5:
            question += draw.phrase(_IN_TOTAL)
            steps, answer = [f"Twice {a} is 2 × {a} = {2 * a}.", f"In total {a} + {2 * a} = {3 * a}."], 3 * a
        else:
            question += "How many {obj} does {friend} have?"
            steps, answer = [f"Twice {a} is 2 × {a} = {2 * a}."], 2 * a
    elif kind < 0.8:
        half = rng.randint(2, 25)
        a = fields["a"] = 2 * half
        question = "{name} has {a} {obj} and gives half of them to {friend}. " + draw.phrase(_HOW_MANY_LEFT)
        steps, answer = [f"Half of {a} is {a} ÷ 2 = {half}.", f"{a} - {half} = {half} left."], half
    else:
        k, q = fields["k"], fields["q"] = rng.randint(2, 9), rng.randint(2, 12)
        question = "{k} friends each have {q} {obj}. " + draw.phrase(_IN_TOTAL)
        steps, answer = [f"{k} friends with {q} each is {k} × {q} = {k * q}."], k * q
    return _problem("word_problem", draw, _opening(draw, question), "The answer is {n}.", fields, steps, str(answer),
                    {"n": answer})


_HOW_MANY_MORE = Slot(("How many more {obj} does {friend} have?", "How many more does {friend} have than {name}?"),
                      ("By how many {obj} is {friend} ahead?",),
                      extra=("How many {obj} more does {friend} have?",
                             "How many more {obj} does {friend} have than {name}?"))


# Training word problems only: how often the one they are about is the asker ("I have 12 cards and lose 3").
FIRST_PERSON_SHARE = 0.3
# The verbs a word problem's subject takes, said by "I" without the "s": the story's own ("Mia has", "buys 3 packs",
# "shares them", "puts them") and the first word of every gain and loss, so a new one is conjugated too.
_VERBS = tuple(dict.fromkeys(("has", "buys", "shares", "puts", *(
    production.split()[0] for slot in (_GAINS, _LOSSES) for production in slot.train + slot.held_out + slot.extra))))
_AS_I = {"has": "have", "is": "am"}


def _word_problem(draw: Draw) -> Problem:
    name, friend = draw.rng.sample(NAMES, 2)
    things = draw.rng.choice(OBJECTS)
    if draw.stretch or draw.rng.random() < 0.6:  # the stretch split is the longer story
        problem = _story(draw, name, friend, things)
    else:
        problem = _relation(draw, name, friend, things)
    if draw.split == "train" and draw.rng.random() < FIRST_PERSON_SHARE:
        return _in_first_person(problem, name)
    return problem


def _in_first_person(problem: Problem, name: str) -> Problem:
    """`problem` asked by the one it is about: `name` becomes "I" (its verbs, "me", "my") in the question, and
    "you" in the thought and the reply. People ask about themselves; the grammar's stories are about others."""
    verbs = "|".join(_VERBS)

    def asked(text: str) -> str:
        text = re.sub(rf"\bdoes {name}\b", "do I", text)
        text = re.sub(rf"\b{name}'s\b", "my", text)
        text = re.sub(rf"\b{name} ({verbs})\b", lambda m: "I " + _AS_I.get(m[1], m[1][:-1]), text)
        # The story's later clauses share the subject: "I have 12 cards, buy 5 more and lose 3".
        while (clause := re.search(rf"\bI (\w+)(?:(?!\. |\? |, how).)*?(?:, | and )({verbs})\b", text)):
            text = text[:clause.start(2)] + _AS_I.get(clause[2], clause[2][:-1]) + text[clause.end(2):]
        text = re.sub(rf"\b{name}\b", "me", text)
        return re.sub(r"(^|[.?!:] )my\b", lambda m: m[1] + "My", text)

    def told(text: str) -> str:
        text = re.sub(rf"\b{name} starts\b", "you start", text)
        text = re.sub(rf"\b{name} has\b", "you have", text)
        text = re.sub(rf"\b{name}\b", "you", text)
        return re.sub(r"(^|\n|[.?!:] )you\b", lambda m: m[1] + "You", text)

    return replace(problem, question=asked(problem.question), question_written=asked(problem.question_written),
                   thought=told(problem.thought), reply=told(problem.reply))


# --- comparison ---------------------------------------------------------------

_PLACES = ("ones", "tens", "hundreds", "thousands")
_ASK_WHICH = Slot(("Which is {w}, {x} or {y}?", "Which number is {w}, {x} or {y}?", "Is {x} or {y} {w}?",
                   "Pick the {w} number: {x} or {y}.", "Which is {w}: {x} or {y}?",
                   "Tell me which is {w}, {x} or {y}.", "Which one is {w}, {x} or {y}?"),
                  ("Which would you say is {w}, {x} or {y}?", "If you had to pick, which is {w}: {x} or {y}?",
                   "{x} or {y}: which is {w}?"),
                  extra=("Which is {w} here, {x} or {y}?", "Say which is {w}, {x} or {y}.",
                         "Which is the {w} number, {x} or {y}?", "What's {w}, {x} or {y}?"))


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


def _side(draw: Draw, terms: int) -> tuple[tuple[str, str], int, str]:
    """An expression of `terms` small numbers joined by + or ×, its value, and its thought line's sum."""
    numbers = [draw.rng.randint(2, 12) for _ in range(terms)]
    ops = [draw.rng.choice("×+") for _ in range(terms - 1)]
    spoken, written = _spoken_expression(draw, numbers, ops)
    return (spoken, written), _solve_steps(numbers, ops)[1], written


def _comparison(draw: Draw) -> Problem:
    rng = draw.rng
    larger = rng.random() < 0.6
    word = rng.choice(("larger", "greater", "bigger")) if larger else "smaller"
    kind = rng.random()
    while True:  # sides as (said, value, the thought's sum or None)
        if kind < 0.45:  # an expression against a number close to it, or against another expression
            terms = 3 if draw.stretch else 2
            said, left, left_sum = _side(draw, terms)
            sides = [(said, left, left_sum)]
            if kind < 0.25:
                right = max(0, left + rng.choice((-1, 1)) * rng.randint(1, 8))
                sides.append(((number_to_words(right), str(right)), right, None))
            else:
                sides.append(_side(draw, rng.choice((2, terms))))
        else:
            if kind < 0.65:  # the same digits, two of them swapped (four digits in the stretch split)
                digits = rng.sample("123456789", 4 if draw.stretch else 2)
                left, right = int("".join(digits)), int("".join(digits[1::-1] + digits[2:]))
            else:
                top = 10000 if draw.stretch else 1000 if rng.random() < 0.3 else 100
                left, right = rng.sample(range(1000 if draw.stretch else 1, top), 2)
            sides = [((number_to_words(v), str(v)), v, None) for v in (left, right)]
        if sides[0][1] != sides[1][1]:
            break
    rng.shuffle(sides)
    sums = [f"{total} = {value}" for _, value, total in sides if total]
    steps = [f"{'First work out' if i == 0 else 'Then'} {line}." for i, line in enumerate(sums)]
    (first, a, _), (second, b, _) = sides
    steps += _compare_steps(a, b, larger)
    chosen = max(a, b) if larger else min(a, b)
    question = _opening(draw, draw.phrase(_ASK_WHICH))
    return _problem("comparison", draw, question, rng.choice(("{n} is {w}.", "The {w} one is {n}.", "It is {n}.")),
                    {"w": word, "x": first, "y": second}, steps, str(chosen), {"n": chosen, "w": word})


# --- sequences ----------------------------------------------------------------

_ASK_NEXT = Slot(("What comes next: {s}?", "What is the next number: {s}?",
                  "Continue the sequence {s}. What comes next?", "Which number follows {s}?",
                  "What number comes after {s}?", "What's the next number in {s}?",
                  "Finish the pattern: {s}, what comes next?"),
                 ("Here's a pattern: {s}. What's next?", "If the numbers go {s}, what is the next one?",
                  "Look at {s}. Which number should come next?"),
                 extra=("Give the next number after {s}.", "{s}, what comes next?", "Complete the sequence: {s}.",
                        "What is the next term of {s}?", "Tell me the next number: {s}."))


def _sequence(draw: Draw) -> Problem:
    rng = draw.rng
    length, kind = draw.size((3, 6), (7, 8)), rng.random()
    if kind < 0.2:  # multiply: at most 6 shown terms, so they stay speakable
        length = min(length, 7 if draw.stretch else 5)
        ratio, start = rng.choice((2, 3)) if not draw.stretch else rng.choice((2, 2, 3)), rng.randint(1, 5)
        terms = [start * ratio ** i for i in range(length + 1)]
        products = ", ".join(f"{a} × {ratio} = {b}" for a, b in zip(terms, terms[1:-1]))
        steps = [f"The gaps grow, but each number is {ratio} times the one before: {products}.",
                 f"The rule is multiply by {ratio}: {terms[-2]} × {ratio} = {terms[-1]}."]
    elif kind < 0.35:  # two steps taking turns: +2, +5, +2, ...
        length = max(length, 5)
        first, second = rng.sample(range(1, 11), 2)
        terms = [rng.randint(0, 20)]
        for i in range(length):
            terms.append(terms[-1] + (first if i % 2 == 0 else second))
        gaps = ", ".join(f"+{b - a}" for a, b in zip(terms, terms[1:-1]))
        step = terms[-1] - terms[-2]
        steps = [f"The gaps take turns: {gaps}.", f"The next gap is +{step}: {terms[-2]} + {step} = {terms[-1]}."]
    else:
        step = draw.size((1, 10), (11, 25)) if draw.stretch and rng.random() < 0.5 else rng.randint(1, 10)
        if kind < 0.65:
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
    return _problem("sequence", draw, _opening(draw, draw.phrase(_ASK_NEXT)),
                    rng.choice(("The next number is {n}.", "Next comes {n}.", "It is {n}.")),
                    {"s": shown}, steps, str(terms[-1]), {"n": terms[-1]})


# --- clock time ---------------------------------------------------------------

def _spoken_clock(rng: random.Random, minutes: int) -> tuple[str, str]:
    """A clock time said as people say it ("four oh five", "half past four", "quarter to five") and as H:MM."""
    hour, minute = (minutes // 60) % 12, minutes % 60
    said = time_to_words(hour, minute)
    next_hour = number_to_words((hour + 1) % 12 or 12)
    if minute in (15, 30, 45) and rng.random() < 0.5:
        said = {15: f"quarter past {number_to_words(hour or 12)}", 30: f"half past {number_to_words(hour or 12)}",
                45: f"quarter to {next_hour}"}[minute]
    return said, clock(minutes)


def _spoken_duration(rng: random.Random, delta: int, hours_allowed: bool) -> tuple[tuple[str, str], list[str]]:
    """A duration said in minutes, hours, or both ("an hour and 15 minutes" is written "1 hour and 15 minutes"),
    and the thought line that turns it into minutes."""
    hours, minutes = divmod(delta, 60)
    if not hours_allowed or not hours or rng.random() < 0.4:
        return (f"{number_to_words(delta)} minutes", f"{delta} minutes"), []
    unit = "hour" if hours == 1 else "hours"
    said, written = f"{number_to_words(hours)} {unit}", f"{hours} {unit}"
    if minutes:
        said, written = f"{said} and {number_to_words(minutes)} minutes", f"{written} and {minutes} minutes"
        line = f"{hours} {unit} and {minutes} min is {hours} × 60 + {minutes} = {delta} min."
    else:
        line = f"{hours} {unit} is {hours} × 60 = {delta} min."
    return (said, written), [line]


_LATER = Slot(("It is {t}. What time will it be in {d}?", "The clock shows {t}. What time will it show {d} later?",
               "A bus leaves at {t} and the trip takes {d}. When does it arrive?",
               "A film starts at {t} and lasts {d}. What time does it finish?",
               "It's {t} now. What time will it be {d} from now?",
               "A meeting starts at {t} and runs for {d}. When does it end?"),
              ("If it is {t} now, what time will it be after {d}?", "Starting at {t}, what time is it {d} later?",
               "We leave at {t} and drive for {d}. What time do we get there?"),
              extra=("What time will it be {d} after {t}?",
                     "The game starts at {t} and goes on for {d}. When is it over?",
                     "I leave at {t} and walk for {d}. What time is it then?"))
_EARLIER = Slot(("It is {t} now. What time was it {d} ago?", "The clock shows {t}. What did it show {d} earlier?",
                 "A bus arrives at {t} after a trip of {d}. When did it leave?",
                 "A film ends at {t} and lasted {d}. When did it start?"),
                ("It's {t}. What was the time {d} before now?",
                 "If a class ends at {t} after {d}, when did it begin?"),
                extra=("What time was it {d} before {t}?",
                       "The show ended at {t} after running for {d}. When did it begin?"))
_BETWEEN = Slot(("A film starts at {t} and ends at {u}. How many minutes long is it?",
                 "A train leaves at {t} and arrives at {u}. How many minutes is the trip?",
                 "A lesson runs from {t} to {u}. How many minutes does it last?",
                 "How many minutes are there from {t} to {u}?"),
                ("If a show goes from {t} until {u}, how many minutes is that?",
                 "Between {t} and {u}, how many minutes pass?"),
                extra=("How long is it from {t} to {u}, in minutes?",
                       "A walk starts at {t} and ends at {u}. How many minutes did it take?"))


def _time(draw: Draw) -> Problem:
    rng = draw.rng
    start, kind = rng.randrange(0, 720, rng.choice((5, 5, 15, 1))), rng.random()
    # Stretch: longer spans than training's two hours (three to five hours).
    if kind < 0.3:
        delta = rng.randrange(185, 305, 5) if draw.stretch else rng.randrange(10, 185, 5)
        end = start + delta
        steps = [f"From {clock(start)} to {clock(end)}: {clock(end)} - {clock(start)} = {delta} min."]
        return _problem("time", draw, _opening(draw, draw.phrase(_BETWEEN)),
                        rng.choice(("It lasts {n} minutes.", "That is {n} minutes.")),
                        {"t": _spoken_clock(rng, start), "u": _spoken_clock(rng, end)}, steps, str(delta), {"n": delta})
    later = kind < 0.7
    delta = rng.randrange(185, 305, 5) if draw.stretch else rng.randrange(5, 185 if later else 125, 5)
    said, steps = _spoken_duration(rng, delta, hours_allowed=True)
    end = start + delta if later else start - delta
    steps.append(f"{clock(start)} {'+' if later else '-'} {delta} min = {clock(end)}.")
    question = draw.phrase(_LATER if later else _EARLIER)
    reply = rng.choice(("It will be {n}.", "The time will be {n}.") if later else ("It was {n}.", "The time was {n}."))
    return _problem("time", draw, _opening(draw, question), reply, {"t": _spoken_clock(rng, start), "d": said},
                    steps, clock(end), {"n": (time_to_words((end // 60) % 12, end % 60), clock(end))})


# --- counting -----------------------------------------------------------------

_ASK_LETTERS = Slot(("How many letters are in the word {w}?", "How many letters does the word {w} have?",
                     "Count the letters in the word {w}.", "How long is the word {w}, in letters?"),
                    ("Tell me how many letters make up the word {w}.", "How many letters has the word {w} got?"),
                    extra=("Spell the word {w}. How many letters is that?",))
_ASK_LETTER = Slot(("How many times does the word {w} contain the letter {l}?",
                    "In the word {w}, count the letter {l}.", "How often does the word {w} have the letter {l}?"),
                   ("Count how many times the word {w} uses the letter {l}.",),
                   extra=("In the word {w}, how often do you see the letter {l}?",))
_ASK_LIST = Slot(("How many {c} are in this list: {items}?", "Count the {c}: {items}.",
                  "How many {c} can you find here: {items}?"),
                 ("Here is a list: {items}. How many {c} are in it?",),
                 extra=("Count how many {c} there are: {items}.", "In this list, how many are {c}: {items}?"))
_ASK_MIXED = Slot(("How many of these are {c}: {items}?", "How many {c} are in this list: {items}?"),
                  ("Of {items}, how many are {c}?",),
                  extra=("Count the {c} among these: {items}.",))


def _counting(draw: Draw) -> Problem:
    rng, kind = draw.rng, draw.rng.random()
    if kind < 0.3:
        word = rng.choice(LONG_WORDS if draw.stretch else WORDS)
        steps = [f"Spell it: {'-'.join(word)}. That is {len(word)} letters."]
        return _problem("counting", draw, _opening(draw, draw.phrase(_ASK_LETTERS)),
                        rng.choice(("The word {w} has {n} letters.", "It has {n} letters.")),
                        {"w": word}, steps, str(len(word)), {"n": len(word), "w": word})
    if kind < 0.6:
        word = rng.choice(LONG_WORDS if draw.stretch else WORDS)
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
        return _problem("counting", draw, _opening(draw, draw.phrase(_ASK_LETTER)),
                        rng.choice(("It appears {n} time" + ("s." if count != 1 else "."), "The answer is {n}.")),
                        {"w": word, "l": letter.upper()}, [f"Spell it: {'-'.join(word)}.", found], str(count),
                        {"n": count})
    category, other = rng.sample(sorted(CATEGORIES), 2)
    most = (8, 9) if draw.stretch else (2, 7)  # stretch: longer lists
    if kind < 0.8:
        items = rng.sample(CATEGORIES[category], draw.size((2, 7), most))
        steps = ["Count them: " + ", ".join(f"{item} ({i + 1})" for i, item in enumerate(items)) + "."]
        slot = _ASK_LIST
    else:
        items = rng.sample(CATEGORIES[category], draw.size((1, 4), (5, 6))) + \
            rng.sample(CATEGORIES[other], rng.randint(1, 3))
        rng.shuffle(items)
        seen, notes = 0, []
        for item in items:
            if item in CATEGORIES[category]:
                seen += 1
                notes.append(f"{item} is {_ONE_OF[category]} ({seen})")
            else:
                notes.append(f"{item} is not")
        steps = [", ".join(notes) + "."]
        slot = _ASK_MIXED
    count = sum(item in CATEGORIES[category] for item in items)
    noun = category if count != 1 else _ONE_OF[category].split()[1]
    return _problem("counting", draw, _opening(draw, draw.phrase(slot)),
                    rng.choice((("There are {n} " if count != 1 else "There is {n} ") + noun + ".", "I count {n}.")),
                    {"c": category, "items": ", ".join(items)}, steps, str(count), {"n": count})


# --- out of scope -------------------------------------------------------------

# Questions the model cannot work on, some with numbers in them, so that "has a number" is not "in scope".
_OUT_OF_SCOPE = Slot(
    ("What is the capital of {country}?", "Tell me a joke.", "Tell me a joke about {thing}.",
     "What's the weather like today?", "Who wrote {book}?", "How are you today?", "Can you sing me a song?",
     "What is your name?", "How do you say hello in {language}?", "Who won the world cup in {year}?",
     "Set an alarm for {hour}.", "Play some music.", "How do I bake bread?", "What is the meaning of life?",
     "Where do {animal}s live?", "Why is the sky blue?", "Tell me a story about {thing}.",
     "What should I cook for dinner?", "Who is the best football player?", "Call {name} for me.",
     "Remind me to buy {thing}s.", "Is it going to rain tomorrow?", "What does a {animal} eat?",
     "Who was the first person on the moon?", "Send a message to {name}.", "What happened in {year}?",
     "How old is the sun?", "Can you recommend a good book?"),
    ("What is the tallest mountain in the world?", "Do you like {thing}s?", "Who painted the Mona Lisa?",
     "Tell me something funny.", "What time does the shop on the corner close?", "How do I get to the station?",
     "Write a poem about {thing}.", "What language do people speak in {country}?", "Turn on the lights.",
     "Who invented the telephone?", "What is {name}'s favorite color?", "Book a table for {people} people."))
_COUNTRIES = "France Spain Italy Japan Brazil Canada Egypt Kenya Norway Peru".split()
_LANGUAGES = "French Spanish German Italian Japanese".split()
_BOOKS = ("Hamlet", "Moby Dick", "Pride and Prejudice", "The Hobbit")
_ANIMALS = "penguin whale tiger panda rabbit owl".split()
_THINGS = "cats dogs pizza robots the sea trains coffee space".split()


def _out_of_scope(draw: Draw) -> Problem:
    rng = draw.rng
    thing = rng.choice(_THINGS)
    fields = {"country": rng.choice(_COUNTRIES), "thing": thing.rstrip("s") if thing.endswith("s") else thing,
              "book": rng.choice(_BOOKS), "language": rng.choice(_LANGUAGES), "year": rng.randint(1950, 2024),
              "people": rng.randint(2, 11), "animal": rng.choice(_ANIMALS), "name": rng.choice(NAMES)}
    hour = rng.randint(2, 11)
    fields["hour"] = (f"{number_to_words(hour)} o'clock", f"{hour}:00")  # the normaliser writes clock times so
    question, written = _say(_opening(draw, draw.phrase(_OUT_OF_SCOPE)), **fields)
    return Problem(OUT_OF_SCOPE_FAMILY, question, written, OUT_OF_SCOPE_THOUGHT, OUT_OF_SCOPE, OUT_OF_SCOPE_REPLY,
                   draw.held_out)


_GENERATORS = {"arithmetic": _arithmetic, "word_problem": _word_problem, "comparison": _comparison,
               "sequence": _sequence, "time": _time, "counting": _counting, OUT_OF_SCOPE_FAMILY: _out_of_scope}


def _check_families(families) -> None:
    unknown = [f for f in families if f not in _GENERATORS]
    if unknown or not families:
        raise ValueError(f"unknown problem family {unknown or families!r}; choose from {', '.join(ALL_FAMILIES)}")


def generate_problem(rng: random.Random, family: str | None = None, split: str = "train") -> Problem:
    """One problem of `family` (a random in-scope family when None), drawn with `rng` from `split`'s part of the
    grammar (`s2s/data/grammar.py`: train, test, phrasing or stretch)."""
    check_split(split)
    family = family or rng.choice(FAMILIES)
    _check_families([family])
    return _GENERATORS[family](Draw(rng, split))


def generate_problems(n: int, seed: int, families=None, split: str = "train") -> list[Problem]:
    """`n` problems cycling through `families` (the in-scope ones when None), drawn from `split`.

    Problem i depends only on (seed, i, split), so a longer list starts with the shorter one.
    """
    families = tuple(families or FAMILIES)
    _check_families(families)
    check_split(split)
    tag = "" if split in ("train", "test") else f"{split}:"
    return [generate_problem(random.Random(f"{tag}{seed}:{i}"), families[i % len(families)], split)
            for i in range(n)]


def _productions(part: str) -> dict[str, tuple[str, ...]]:
    """Each slot's `part` ("held_out" or "extra"), by slot name, for the slots that have any."""
    return {name.strip("_").lower(): getattr(slot, part) for name, slot in globals().items()
            if isinstance(slot, Slot) and getattr(slot, part)}


def held_out_phrases() -> dict[str, tuple[str, ...]]:
    """The grammar's productions that only the phrasing split uses, by slot: the documented phrasing split."""
    return _productions("held_out")


def training_only_phrases() -> dict[str, tuple[str, ...]]:
    """The productions only the train split draws, by slot (more ways of asking; `test` never shows them)."""
    return _productions("extra")


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


__all__ = ["ALL_FAMILIES", "CATEGORIES", "FAMILIES", "NAMES", "OBJECTS", "OUT_OF_SCOPE", "OUT_OF_SCOPE_FAMILY",
           "OUT_OF_SCOPE_REPLY", "OUT_OF_SCOPE_THOUGHT", "Problem", "SPLITS", "WORDS", "chance_level",
           "generate_problem", "generate_problems", "held_out_phrases"]
