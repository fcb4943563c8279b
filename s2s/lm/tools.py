"""A calculator the LM calls by writing `=`: the model sets up the sum, the tool does the arithmetic.

A tiny LM trained for an hour on a CPU learns how to reason about a problem
(which numbers, which operation, in which order) long before it learns its
arithmetic tables: the first s2s-reasoner-tiny wrote `12 - 7 = 13`. As in
the GSM8K paper's calculator annotations, generation watches the thought:
when it ends in an expression and `=` (`... 12 - 7 =`), the result (` 5`) is
written for the model, as forced ids it then reads on like its own. The
model is trained on the corpus's thoughts, whose results are always right,
so nothing changes in training; `s2s evaluate --no-calculator` measures the
model alone.

Only the expression just before `=` counts: integers joined by `+`, `-`,
`×` and `÷` (multiplication and division first), a sign glued to its number
(`-4 + 1`); a division that does not come out whole is left to the model.
Clock times on a 12-hour clock have their own two sums: `4:05 + 120 min =`
gives ` 6:05` (and `-` goes back), `6:10 - 4:05 =` gives the minutes between
them, ` 125` (forward in time, so `1:15 - 11:30 =` is ` 105`).

`answer_from_thought` reads the answer back from the thought's last line
(`So the answer is 14.`), the line every corpus thought ends with.
"""
from __future__ import annotations

import re

from s2s.data.numbers import HALF_DAY, clock, clock_minutes

# Integers joined by spaced operators, ending in " =": the thought's way of writing a sum it is about to finish.
# A number glued to ':' on either side is part of a clock time, not an operand.
_NUMBER = r"(?<![\d:])-?\d+(?![\d:])"
_EXPRESSION = re.compile(rf"({_NUMBER}(?: [+\-×÷] {_NUMBER})+) =$")
_TOKEN = re.compile(r"-?\d+|[+\-×÷]")
# The thought's last line, as `s2s/data/problems.py` writes it.
_ANSWER_LINE = re.compile(r"^\s*so the answer is\s+(?P<answer>.*\S)\s*\.\s*$", re.IGNORECASE)

_CLOCK = r"(?<![\d:])(\d{1,2}):([0-5]\d)(?![\d:])"
_CLOCK_SHIFT = re.compile(rf"{_CLOCK} ([+\-]) (\d+) min =$")
_CLOCK_GAP = re.compile(rf"{_CLOCK} - {_CLOCK} =$")


def answer_from_thought(thought: str) -> str | None:
    """X of the thought's last line `So the answer is X.` ("-32", "9:45", ...); None when there is none.

    Lines after it are ignored. Without its final period the line does not
    count: a thought cut short by its cap may hold half an answer.
    """
    for line in reversed(thought.splitlines()):
        match = _ANSWER_LINE.match(line)
        if match:
            return match["answer"]
    return None


def clock_result(thought: str) -> str | None:
    """What the calculator writes after "H:MM + N min =" (the clock N minutes later; "-": earlier) or after
    "H:MM - H:MM =" (the minutes from the second time forward to the first); None otherwise."""
    shift = _CLOCK_SHIFT.search(thought)
    if shift is not None:
        start = clock_minutes(int(shift[1]), int(shift[2]))
        if start is None:
            return None
        delta = int(shift[4])
        return f" {clock(start + delta if shift[3] == '+' else start - delta)}"
    gap = _CLOCK_GAP.search(thought)
    if gap is not None:
        end, start = clock_minutes(int(gap[1]), int(gap[2])), clock_minutes(int(gap[3]), int(gap[4]))
        return None if end is None or start is None else f" {(end - start) % HALF_DAY}"
    return None


def evaluate_expression(expression: str) -> int | None:
    """The value of "a op b op c ..." (op in + - × ÷, × and ÷ first, then left to right); None when a division
    is not whole or the text is not such an expression."""
    parts = expression.split(" ")
    if len(parts) % 2 == 0 or not all(_TOKEN.fullmatch(p) for p in parts):
        return None
    numbers, operators = [int(parts[0])], []
    for op, text in zip(parts[1::2], parts[2::2]):
        value = int(text)
        if op in "×÷":
            left = numbers.pop()
            if op == "÷" and (value == 0 or left % value):
                return None
            numbers.append(left * value if op == "×" else left // value)
        else:
            numbers.append(value)
            operators.append(op)
    total = numbers[0]
    for op, value in zip(operators, numbers[1:]):
        total = total + value if op == "+" else total - value
    return total


def calculator_result(thought: str) -> str | None:
    """What the calculator writes after a thought that ends in "EXPRESSION =" (" 5" after "... 12 - 7 =") or in
    a clock sum (" 6:05" after "4:05 + 120 min ="); None when the thought does not end that way."""
    match = _EXPRESSION.search(thought)
    if match is None:
        return clock_result(thought)
    value = evaluate_expression(match[1])
    return None if value is None else f" {value}"
