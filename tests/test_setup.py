"""The README's two quick-start commands are the ones CI and the Makefile run, with torch pinned as a pair."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick_start.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "make test"


def test_torch_and_torchaudio_are_pinned_to_the_same_release():
    pyproject = (ROOT / "pyproject.toml").read_text()
    torch_pin = re.search(r'"torch==([\d.]+)"', pyproject).group(1)
    torchaudio_pin = re.search(r'"torchaudio==([\d.]+)"', pyproject).group(1)
    assert torch_pin == torchaudio_pin
    environment = (ROOT / "environment.yml").read_text()
    assert f"torch=={torch_pin}" in environment and f"torchaudio=={torchaudio_pin}" in environment


def test_installed_torch_matches_the_pin():
    import torch
    import torchaudio

    pin = re.search(r'"torch==([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert torch.__version__.split("+")[0] == pin and torchaudio.__version__.split("+")[0] == pin
