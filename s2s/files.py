"""Writing and checking files safely: a folder appears whole or not at all, a small table is never half
written, a downloaded weight file is the one we expect. Inference and training both need these, so they live
here and not beside the training code."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_folder(out_dir: str | os.PathLike, overwrite: bool = False):
    """Yield a temporary sibling of `out_dir` to write into; it replaces `out_dir` only when the block succeeds."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists; choose another folder or pass overwrite=True")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    tmp.chmod(0o755)  # mkdtemp makes private folders; a saved model is meant to be shared
    for file in tmp.rglob("*"):
        file.chmod(0o755 if file.is_dir() else 0o644)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)


def save_json_gz(path: str | os.PathLike, data: dict, overwrite: bool = False) -> Path:
    """Write `data` as gzipped JSON through a temporary sibling renamed into place (never a half-written file
    under `path`); an existing file is kept unless `overwrite`. The format of the small count tables that sit
    beside weights (a recogniser's text LM, a model's phrase table)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; remove it or pass overwrite=True (--overwrite)")
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
    tmp.replace(path)
    return path


def load_json_gz(path: str | os.PathLike):
    """What `save_json_gz` wrote (raises OSError or ValueError for a missing, corrupt or non-JSON file)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, read a megabyte at a time (weights are hundreds of them)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_init_args(cls: type, init_args: dict, source: str | os.PathLike, ignored: tuple[str, ...] = ()) -> dict:
    """The keys of `init_args` that `cls.__init__` takes, or a ValueError naming the bad keys and the allowed ones: a
    saved model's config.yaml is checked before anything is built, not met as a TypeError deep inside. `ignored`
    keys are dropped without complaint (what a training module added to the configs of older folders)."""
    import inspect

    if not isinstance(init_args, dict):
        raise ValueError(f"{source}: `init_args` must be a mapping of {cls.__name__}'s arguments, got {init_args!r}")
    allowed = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
    unknown = sorted(set(init_args) - set(allowed) - set(ignored))
    if unknown:
        raise ValueError(f"{source}: unknown keys {unknown} for {cls.__name__}; allowed: {allowed}")
    return {k: v for k, v in init_args.items() if k in allowed}
