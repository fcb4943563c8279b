"""Pieces every training module and exporter shares: the learning-rate schedule and atomic folders."""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import lightning as L


def warmup_cosine(step: int, warmup_steps: int, total_steps: float = math.inf, floor: float = 0.1,
                  progress: float | None = None) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to `floor` at `total_steps` (inf: no decay).

    `progress` (0 to 1), when given, replaces the step count as the measure of how far the decay has
    gone: the codec measures it in wall-clock time.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if progress is None:
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


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


class CheckpointOnStop(L.Callback):
    """Save `last.ckpt` when training ends for any reason (max_time, max_steps, Ctrl-C).

    ModelCheckpoint saves every n steps only, so a run stopped by its time
    limit would lose the steps since the last save; a resumed run then
    repeats them. This saves the exact state the run stopped in.
    """

    def __init__(self, dirpath: str):
        self.dirpath = dirpath

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        trainer.save_checkpoint(Path(self.dirpath) / "last.ckpt")

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            trainer.save_checkpoint(Path(self.dirpath) / "last.ckpt")
