"""How long each notebook takes from a fresh kernel, in its default mode (the shipped models), against its goal.

A notebook opened in Jupyter runs in its default mode, `MODE = "shipped"`, on the shipped models; the teaching
path promises each one in at most 5 minutes on 2 CPU cores. The test suite runs every notebook in smoke mode
(`tests/test_notebooks.py`), which should stay under 3 minutes. Those are performance figures, so they are
measured here and not asserted in a test. Each notebook runs as the tests run it (`s2s.notebook.run_notebook`):
nbclient, a fresh `python3` kernel, the notebook's own folder as the working directory, and the mode written
into its parameters cell.

    python benchmarks/notebooks.py                                  # every notebook, shipped mode, goal 300 s
    python benchmarks/notebooks.py --mode smoke                     # what the tests run, goal 180 s
    python benchmarks/notebooks.py notebooks/04-reasoning-lm.ipynb --budget 240
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from s2s.notebook import DEFAULT_MODE, MODES, run_notebook

ROOT = Path(__file__).resolve().parents[1]
GOALS_S = {"shipped": 300.0, "smoke": 180.0}  # one notebook on 2 CPU cores; reproduce trains for hours: no goal


def time_notebook(path: Path, mode: str = DEFAULT_MODE, timeout_s: int = 3600) -> float:
    """Seconds to run the notebook at `path` in `mode` top to bottom from a fresh kernel (raises if a cell fails)."""
    start = time.perf_counter()
    run_notebook(path, mode, timeout_s=timeout_s)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to time (default: notebooks/*.ipynb)")
    parser.add_argument("--mode", choices=list(MODES), default=DEFAULT_MODE,
                        help=f"the mode to run them in (default {DEFAULT_MODE})")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds allowed for one notebook (default: 300 in shipped mode, 180 in smoke mode)")
    args = parser.parse_args(argv)
    budget = args.budget if args.budget is not None else GOALS_S.get(args.mode, float("inf"))
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        sys.exit(f"benchmarks/notebooks.py: no notebook at {', '.join(missing)}; give .ipynb files")
    results = []
    print(f"{'notebook':<36} {'seconds':>8} {'goal':>6}  ({args.mode} mode)")
    for path in paths:
        seconds = time_notebook(path, args.mode)
        results.append({"notebook": path.name, "mode": args.mode, "seconds": seconds,
                        "within_budget": seconds <= budget})
        print(f"{path.name:<36} {seconds:>8.1f} {budget:>6g}  {'met' if seconds <= budget else 'NOT met'}", flush=True)
    total = sum(r["seconds"] for r in results)
    over = [r["notebook"] for r in results if not r["within_budget"]]
    verdict = f"over budget: {', '.join(over)}" if over else "each within budget"
    print(f"all {len(results)}: {total:.0f} s; {verdict}")
    return results


if __name__ == "__main__":
    main()
