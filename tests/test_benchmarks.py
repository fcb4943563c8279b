"""Benchmarks, smoke-run at a tiny size: they run and print their figures."""
import importlib.util
import math
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_benchmark_prints_frames_per_second_and_ttfa_for_ours_and_generate(capsys):
    benchmark = load_benchmark("generate")
    rows = benchmark.main(["--dim", "32", "--layers", "1", "--heads", "2", "--codebooks", "2", "--text-vocab", "300",
                           "--frames", "4", "--thought", "4", "--reply", "2", "--prompt-frames", "8",
                           "--repeats", "1", "--moshi-eager"])
    printed = capsys.readouterr().out
    timed = ["ours", "generate()"] + (["moshi"] if "error" not in rows["moshi"] else [])
    for name in timed:
        row = rows[name]
        assert row["frames"] == 4, name
        for figure in ("ttfa_ms", "frames_per_s", "total_ms", "ids_per_s", "params_m"):
            assert math.isfinite(row[figure]) and row[figure] > 0, (name, figure, row[figure])
        assert any(line.startswith(name) and f"{row['ttfa_ms']:.1f}" in line for line in printed.splitlines()), name
    assert any(line.startswith("moshi") for line in printed.splitlines())  # its figures, or why it did not run
