"""s2s/notebook.py: the notebook modes, and setting one in a notebook's parameters cell without touching the file."""
import nbformat
import pytest

from s2s.notebook import DEFAULT_MODE, MODES, check_mode, parameters_cell, with_mode


def _notebook(parameters: str, tagged: int = 1):
    cells = [nbformat.v4.new_markdown_cell("# a title")]
    for _ in range(tagged):
        cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    cells.append(nbformat.v4.new_code_cell('MODE = "not a parameter"\nprint(MODE)'))
    return nbformat.v4.new_notebook(cells=cells)


def test_the_three_modes_and_the_default():
    assert list(MODES) == ["shipped", "smoke", "reproduce"] and DEFAULT_MODE == "shipped"
    assert check_mode("smoke") == "smoke"


def test_an_unknown_mode_is_one_line_naming_the_modes():
    with pytest.raises(ValueError) as error:
        check_mode("full")
    message = str(error.value)
    assert "\n" not in message and "'full'" in message and all(repr(mode) in message for mode in MODES)


def test_with_mode_rewrites_only_the_parameters_cell_of_a_copy():
    notebook = _notebook('# "shipped": the default\nMODE = "shipped"  # a comment\nSTEPS = 3')
    smoke = with_mode(notebook, "smoke")
    assert parameters_cell(smoke).source == '# "shipped": the default\nMODE = "smoke"\nSTEPS = 3'
    assert parameters_cell(notebook).source.count('MODE = "shipped"') == 1  # the original is untouched
    assert smoke.cells[-1].source == notebook.cells[-1].source  # a MODE line in another cell is not a parameter


def test_with_mode_adds_the_line_where_the_cell_has_none():
    assert parameters_cell(with_mode(_notebook("STEPS = 3"), "reproduce")).source == 'STEPS = 3\nMODE = "reproduce"'
    assert parameters_cell(with_mode(_notebook(""), "smoke")).source == 'MODE = "smoke"'


def test_with_mode_refuses_an_unknown_mode_and_a_notebook_without_one_parameters_cell():
    with pytest.raises(ValueError, match="not a notebook mode"):
        with_mode(_notebook('MODE = "shipped"'), "full")
    for tagged in (0, 2):
        with pytest.raises(ValueError, match="exactly one cell tagged 'parameters'"):
            with_mode(_notebook('MODE = "shipped"', tagged=tagged), "smoke")


def test_run_notebook_runs_the_file_in_the_mode_asked_from_its_own_folder(tmp_path):
    from s2s.notebook import run_notebook

    notebook = _notebook('MODE = "shipped"')
    notebook.cells[-1] = nbformat.v4.new_code_cell("import os\nprint(MODE, os.getcwd())")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "n.ipynb")
    for mode in ("smoke", "shipped"):
        ran = run_notebook(tmp_path / "n.ipynb", mode, timeout_s=60)
        assert ran.cells[-1].outputs[0]["text"].split() == [mode, str(tmp_path)]
    assert 'MODE = "shipped"' in nbformat.read(tmp_path / "n.ipynb", as_version=4).cells[1].source  # file unchanged
