"""Every notebook is committed without outputs and runs top to bottom from a fresh kernel (smoke mode)."""
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

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
def test_notebook_has_a_smoke_parameters_cell(path):
    notebook = nbformat.read(path, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and 'MODE = "smoke"' in tagged[0].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_from_a_fresh_kernel(path):
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    print(f"{path.name}: {time.perf_counter() - start:.0f} s")


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
