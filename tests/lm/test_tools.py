"""The calculator: expressions with precedence, clock times left alone, and agreement with every thought; the
answer read back from a thought's last line."""
import pytest

from s2s.data.problems import generate_problems
from s2s.lm.tools import answer_from_thought, calculator_result, evaluate_expression


@pytest.mark.parametrize("expression, value", [
    ("12 - 7", 5), ("2 + 3 × 4", 14), ("10 - 14 + 1", -3), ("-4 + 1", -3), ("16 ÷ 4", 4), ("2 × 3 × 4 - 1", 23),
    ("60 ÷ 3 ÷ 2", 10), ("5 + 60 + 25", 90), ("17 ÷ 4", None), ("3 ÷ 0", None), ("3 +", None), ("a + 1", None),
])
def test_evaluate_expression(expression, value):
    assert evaluate_expression(expression) == value


@pytest.mark.parametrize("thought, written", [
    ("Then 12 - 7 =", " 5"), ("First 2 × 7 = 14, which leaves 10 - 14 + 1.\nThen 10 - 14 =", " -4"),
    ("3 × 2 = 6, 6 × 2 =", " 12"), ("Add the minutes: 25 + 110 =", " 135"),
    ("Then 12 - 7 = 5", None), ("12 =", None), ("From 10:55 + 5 =", None), ("It is 7:10 - 5 =", None),
    ("So the answer is 7.", None), ("Sharing 17 equally into 4 gives 17 ÷ 4 =", None),
    ("4:05 + 120 min =", " 6:05"), ("11:50 + 25 min =", " 12:15"), ("12:40 + 30 min =", " 1:10"),
    ("1:10 - 15 min =", " 12:55"), ("9:00 - 5 min =", " 8:55"), ("From 4:05 to 6:10: 6:10 - 4:05 =", " 125"),
    ("1:15 - 11:30 =", " 105"), ("3:20 - 3:20 =", " 0"), ("13:05 + 5 min =", None), ("4:75 + 5 min =", None),
    ("4:05 + 120 =", None), ("14:05 - 4:05 =", None),
])
def test_calculator_result_only_after_an_expression_and_equals(thought, written):
    assert calculator_result(thought) == written


def test_the_calculator_writes_exactly_what_every_corpus_thought_writes_after_equals():
    """Forced results must be the corpus's own: the model was trained on those thoughts."""
    calls = 0
    for problem in generate_problems(3000, seed=11):
        thought = problem.thought
        for end in (i + 1 for i, c in enumerate(thought) if c == "="):
            written = calculator_result(thought[:end])
            assert written is not None and thought[end:].startswith(written), (thought[:end], written)
            calls += 1
    assert calls > 3000  # most thoughts compute something


@pytest.mark.parametrize("thought, answer", [
    ("12 × 3 = 36.\nSo the answer is 36.", "36"),
    ("5 - 37 = -32.\nSo the answer is -32.", "-32"),
    ("9:30 + 15 minutes = 9:45.\nSo the answer is 9:45.", "9:45"),
    ("So the answer is 3.\nWait: 2 + 2 = 4.\nSo the answer is 4.\n", "4"),  # the last one counts
    ("  so the answer is 1000 .  ", "1000"),
    ("12 × 3 = 36.", None),
    ("So the answer is 3", None),  # no final period: cut short by the cap
    ("", None),
])
def test_answer_from_thought(thought, answer):
    assert answer_from_thought(thought) == answer
