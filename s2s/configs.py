"""What a stack of `--config` files composes to, and what each overlay changed.

`s2s fit` is LightningCLI: every `--config` is laid over the ones before it (mappings merge key by key, a value
or a list is replaced whole). So a strategy, a shrunk test run or this machine's paths each live in a small
overlay, and the model config never learns how many GPUs there are. These helpers show the result without
building anything: no weights load, so they work offline, on any machine.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import yaml


def merged_config(*configs: str | os.PathLike, args: tuple = (), subcommand: str = "fit") -> dict:
    """The config `s2s fit --config A --config B ... ARGS` would run with, as a dict: what `--print_config`
    prints. A config that does not parse raises ValueError with LightningCLI's one-line message."""
    from s2s.cli import main

    argv = [subcommand, *[arg for config in configs for arg in ("--config", str(config))], *map(str, args),
            "--print_config"]
    out, err = io.StringIO(), io.StringIO()
    saved_argv, sys.argv = sys.argv, ["s2s"]  # LightningCLI also reads sys.argv (a notebook kernel's is its own)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(argv)
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise ValueError(f"s2s {' '.join(argv)}: {err.getvalue().strip() or out.getvalue().strip()}") from None
    finally:
        sys.argv = saved_argv
    return yaml.safe_load(out.getvalue())


def flat(tree, prefix: str = "") -> dict:
    """A nested config as one level of dotted keys: {"a": {"b": [x, y]}} -> {"a.b.0": x, "a.b.1": y}. An empty
    mapping or list stays a value of its own, so removing every item of a list is still a change."""
    if isinstance(tree, (dict, list)) and tree:
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
        return {key: value for name, sub in items for key, value in flat(sub, f"{prefix}{name}.").items()}
    return {prefix.rstrip("."): tree}


def config_changes(before: dict, after: dict) -> dict[str, tuple]:
    """{dotted key: (value before, value after)} for every key an overlay added, removed or changed (a key
    that is missing on one side has None there), in key order."""
    a, b = flat(before), flat(after)
    return {key: (a.get(key), b.get(key)) for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)}


def write_overlay(path: str | os.PathLike, overlay: dict) -> Path:
    """Write `overlay` as a YAML config file for `--config`, keys in the order given; returns its path."""
    path = Path(path)
    path.write_text(yaml.safe_dump(overlay, sort_keys=False))
    return path
