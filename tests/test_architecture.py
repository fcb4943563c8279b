"""The walls between the parts of s2s (pyproject.toml's `[tool.importlinter]` contracts), checked with import-linter."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import tomllib

pytest.importorskip("importlinter")
from importlinter.cli import lint_imports  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_every_import_contract_of_s2s_is_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename="pyproject.toml", no_cache=True, no_logo=True) == 0


def test_the_contracts_name_the_walls_we_promise():
    kinds = {(c["type"], tuple(c.get("source_modules", c.get("ancestors", [])))) for c in contracts()}
    assert ("acyclic_siblings", ("s2s",)) in kinds
    assert ("forbidden", ("s2s.codecs",)) in kinds
    assert ("forbidden", ("s2s.eval", "s2s.style")) in kinds
    free = next(c for c in contracts() if c.get("forbidden_modules") == ["lightning"])
    assert {"s2s.pipeline", "s2s.lm.model", "s2s.asr.recognizer", "s2s.style.converter"} <= set(free["source_modules"])


def test_loading_and_running_the_models_imports_no_lightning():
    """What the static contract promises, checked in a fresh interpreter: inference never imports Lightning."""
    import subprocess

    code = ("import sys, s2s.pipeline, s2s.lm.model, s2s.asr.recognizer, s2s.style.converter; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_same_contracts_catch_a_loop_and_a_codec_that_reaches_into_the_lm(tmp_path, monkeypatch):
    """Our contracts, pointed at a small package that breaks them, fail: the test above can fail."""
    package = tmp_path / "walled"
    for name, text in {"__init__.py": "", "codecs/__init__.py": "", "codecs/base.py": "import walled.lm.model\n",
                       "lm/__init__.py": "", "lm/model.py": "import walled.codecs.base\n"}.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    config = ["[importlinter]", "root_package = walled", "",
              "[importlinter:contract:codecs]", "name = codecs", "type = forbidden",
              "source_modules = walled.codecs", "forbidden_modules = walled.lm", "",
              "[importlinter:contract:loops]", "name = loops", "type = acyclic_siblings", "ancestors = walled"]
    (tmp_path / ".importlinter").write_text("\n".join(config) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert lint_imports(config_filename=".importlinter", no_cache=True, no_logo=True) == 1
    for name in [m for m in sys.modules if m.startswith("walled")]:
        del sys.modules[name]


def test_no_function_in_s2s_is_longer_than_80_lines():
    """A function that does not fit on a screen does more than one thing: split it."""
    import ast

    long = []
    for path in (ROOT / "s2s").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not long, long


def test_the_walk_from_a_spoken_question_to_the_written_reply_stays_short(tmp_path):
    """Every file of s2s/ whose code runs while the shipped model answers the bundled question and writes the
    wav (loading excluded), traced: a ceiling, so a reply does not come to wander through more of the package.
    Printed grouped by part, as a reader would follow them."""
    from collections import Counter

    import s2s
    from s2s.pipeline import DEFAULT_MODEL, S2SPipeline

    if not DEFAULT_MODEL.is_dir():
        pytest.skip("the shipped default model is not installed")
    package = Path(s2s.__file__).resolve().parent
    question = package / "assets" / "example_question.wav"
    pipeline = S2SPipeline.from_pretrained()
    pipeline(audio=question)  # first call: lazy loading and warm-up stay out of the walk
    touched: Counter = Counter()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(str(package)):
            touched[str(Path(frame.f_code.co_filename).relative_to(package))] += 1

    sys.setprofile(profile)
    try:
        pipeline(audio=question, out=tmp_path / "reply.wav")
    finally:
        sys.setprofile(None)
    parts = Counter(name.split("/")[0] if "/" in name else name for name in touched)
    print(f"{len(touched)} files in {len(parts)} parts:", dict(parts))
    assert "style/prompt.py" not in touched and not any(name.startswith("eval/") for name in touched)
    assert len(touched) <= 28, sorted(touched)
