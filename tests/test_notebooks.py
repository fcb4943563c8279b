"""Every notebook is committed without outputs, in its default mode, and runs top to bottom from a fresh kernel in
smoke mode (set in its parameters cell as `benchmarks/notebooks.py` sets a mode: `s2s.notebook.run_notebook`)."""
import re
import time
from pathlib import Path

import nbformat
import pytest

from s2s.notebook import DEFAULT_MODE, MODES, parameters_cell, run_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb files"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    dirty = [i for i, cell in enumerate(notebook.cells)
             if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; clear them with jupyter nbconvert --clear-output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_opens_in_the_default_mode(path):
    """One cell tagged `parameters`, whose one MODE line is the default: Jupyter runs the shipped models."""
    cell = parameters_cell(nbformat.read(path, as_version=4))
    modes = re.findall(r"^MODE = (.*)$", cell.source, re.MULTILINE)
    assert modes == [f'"{DEFAULT_MODE}"'], f'{path.name}: the parameters cell should say MODE = "{DEFAULT_MODE}"'
    assert all(f'"{mode}"' in cell.source for mode in MODES), f"{path.name}: the parameters cell names every mode"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_mode_from_a_fresh_kernel(path):
    start = time.perf_counter()
    run_notebook(path, "smoke", timeout_s=600)
    print(f"{path.name}: {time.perf_counter() - start:.0f} s in smoke mode")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_and_its_text_source_agree(path):
    """Each notebook is paired with a jupytext percent-format .py, which reviews and diffs read.

    Edit either file, then run `jupytext --sync notebooks/*.ipynb`.
    """
    import jupytext

    paired = path.with_suffix(".py")
    assert paired.exists(), f"{paired.name} is missing; run jupytext --set-formats ipynb,py:percent {path.name}"
    notebook_cells = [(c.cell_type, c.source.strip()) for c in nbformat.read(path, as_version=4).cells]
    text_cells = [(c.cell_type, c.source.strip()) for c in jupytext.read(paired).cells]
    assert notebook_cells == text_cells, f"{path.name} and {paired.name} differ; run jupytext --sync {path.name}"
