"""The modes a notebook runs in, named once, and how a runner sets one.

Every notebook in `notebooks/` has one cell tagged `parameters` that says `MODE = "shipped"`. Opened in
Jupyter it runs on the models shipped in `s2s/assets/`; the tests and the benchmark run it in another mode by
rewriting that line before the kernel sees it (`with_mode`), as papermill injects parameters.
"""
from __future__ import annotations

import copy
import re

MODES = {
    "shipped": "the shipped models in s2s/assets/models/ (the default; minutes)",
    "smoke": "tiny random parts, for the tests (seconds; their words are noise)",
    "reproduce": "trains from scratch as the model cards did (hours)",
}
DEFAULT_MODE = "shipped"
PARAMETERS_TAG = "parameters"
_MODE_LINE = re.compile(r"^MODE\s*=.*$", re.MULTILINE)


def check_mode(mode: str) -> str:
    """`mode`, if it is one of MODES; otherwise a one-line error that lists them, raised before any work starts."""
    if mode not in MODES:
        raise ValueError(f"MODE = {mode!r} is not a notebook mode; use one of: "
                         + "; ".join(f"{name!r} ({meaning})" for name, meaning in MODES.items()))
    return mode


def parameters_cell(notebook) -> dict:
    """The one cell tagged `parameters` of an nbformat notebook (raises if there is none, or several)."""
    tagged = [cell for cell in notebook["cells"] if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(f"a notebook needs exactly one cell tagged {PARAMETERS_TAG!r}, this one has {len(tagged)}")
    return tagged[0]


def with_mode(notebook, mode: str):
    """A copy of `notebook` (nbformat) whose parameters cell sets `MODE = mode`: the line `MODE = ...` is
    replaced, or added when the cell has none. The notebook on disk is never changed, so it stays committed in
    its default mode."""
    check_mode(mode)
    notebook = copy.deepcopy(notebook)
    cell = parameters_cell(notebook)
    line = f'MODE = "{mode}"'
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    if _MODE_LINE.search(source):
        cell["source"] = _MODE_LINE.sub(line, source)
    else:
        cell["source"] = f"{source.rstrip()}\n{line}".lstrip()
    return notebook


def run_notebook(path, mode: str = DEFAULT_MODE, timeout_s: int = 600):
    """Run the notebook at `path` top to bottom in `mode`, from a fresh `python3` kernel, in the notebook's own
    folder (as Jupyter would); returns the executed copy (raises if a cell fails). The tests run every notebook
    this way in smoke mode, `benchmarks/notebooks.py` times them in any mode. Needs the dev extras (nbclient)."""
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    notebook = with_mode(nbformat.read(path, as_version=4), mode)
    return NotebookClient(notebook, timeout=timeout_s, kernel_name="python3",
                          resources={"metadata": {"path": str(path.parent)}}).execute()
