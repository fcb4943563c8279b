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
(`-4 + 1`). A clock time (`10:55`) is not a number, and a division that does
not come out whole is left to the model.
"""
from __future__ import annotations

import re

# Integers joined by spaced operators, ending in " =": the thought's way of writing a sum it is about to finish.
# A number glued to ':' on either side is part of a clock time, not an operand.
_NUMBER = r"(?<![\d:])-?\d+(?![\d:])"
_EXPRESSION = re.compile(rf"({_NUMBER}(?: [+\-×÷] {_NUMBER})+) =$")
_TOKEN = re.compile(r"-?\d+|[+\-×÷]")


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
    """What the calculator writes after a thought that ends in "EXPRESSION =": " 5" after "... 12 - 7 =";
    None when the thought does not end that way."""
    match = _EXPRESSION.search(thought)
    if match is None:
        return None
    value = evaluate_expression(match[1])
    return None if value is None else f" {value}"
