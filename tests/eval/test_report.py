"""s2s/eval/report.py's small formatters: what notebooks and reports print for a figure, a count and a table."""
from s2s.eval.report import format_interval, fraction, markdown_table, num, pct


def test_a_missing_figure_prints_as_a_dash():
    assert (pct(0.875), pct(None), num(0.12345), num(1.5, 1), num(None)) == ("87.5%", "-", "0.123", "1.5", "-")


def test_a_count_is_shown_beside_its_percentage():
    assert fraction(3, 4) == "3/4 (75%)" and fraction(0, 0) == "-"


def test_an_accuracy_comes_with_its_wilson_interval():
    assert format_interval(5, 10) == "5/10 = 50.0%, 95 % CI 23.7% to 76.3%"
    assert format_interval(0, 4).startswith("0/4 = 0.0%, 95 % CI 0.0% to ")
    assert format_interval(0, 0) == "0/0: nothing measured"


def test_markdown_table_keeps_its_columns_whatever_the_cells_hold():
    table = markdown_table(["question", "answer"], [["Which is smaller, 3 | 4?", None], [12, 0.5]])
    assert table.splitlines() == ["| question | answer |", "|---|---|", "| Which is smaller, 3 / 4? | - |",
                                  "| 12 | 0.5 |"]
    assert all(line.count("|") == 3 for line in table.splitlines())
