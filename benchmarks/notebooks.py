"""How long each notebook takes in smoke mode, from a fresh kernel, against the 3-minute budget per notebook.

The test suite runs every notebook in smoke mode (`tests/test_notebooks.py`), and
the teaching path promises each one in at most 3 minutes on 2 CPU cores; that
is a performance figure, so it is measured here and not asserted in a test. Each
notebook runs as the tests run it: nbclient, a fresh `python3` kernel, the
notebook's own folder as the working directory, its committed parameters (smoke).

    python benchmarks/notebooks.py                    # every notebook in notebooks/
    python benchmarks/notebooks.py notebooks/04-reasoning-lm.ipynb --budget 180
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 180.0  # the teaching path's limit for one notebook in smoke mode


def run_notebook(path: Path, timeout: int = 600) -> float:
    """Seconds to run the notebook at `path` top to bottom from a fresh kernel (raises if a cell fails)."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to time (default: notebooks/*.ipynb)")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds allowed for one notebook (180)")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        sys.exit(f"benchmarks/notebooks.py: no notebook at {', '.join(missing)}; give .ipynb files")
    results = []
    print(f"{'notebook':<36} {'seconds':>8}  budget {args.budget:g} s")
    for path in paths:
        seconds = run_notebook(path)
        results.append({"notebook": path.name, "seconds": seconds, "within_budget": seconds <= args.budget})
        print(f"{path.name:<36} {seconds:>8.1f}  {'met' if seconds <= args.budget else 'NOT met'}", flush=True)
    total = sum(r["seconds"] for r in results)
    over = [r["notebook"] for r in results if not r["within_budget"]]
    verdict = f"over budget: {', '.join(over)}" if over else "each within budget"
    print(f"all {len(results)}: {total:.0f} s; {verdict}")
    return results


if __name__ == "__main__":
    main()
