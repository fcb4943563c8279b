"""Pieces every training module shares: the learning-rate schedule, precision on a CPU, and what a resumed run
needs to continue where it stopped. (Saving files lives in `s2s.files`, which inference needs without Lightning.)"""
from __future__ import annotations

import math
import os
import random
import signal
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.plugins.io import TorchCheckpointIO


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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (avx512_bf16 or AMX); without it torch emulates it, ~40x slower."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_precision(precision, accelerator) -> str | int | None:
    """The trainer precision to use: a bf16 precision on a CPU run falls back to 32-true where the CPU lacks native
    bf16 (an AVX2 laptop), and stays as asked where it has it (1.7x faster there for our models)."""
    on_cpu = str(accelerator) == "cpu" or (str(accelerator) == "auto" and not torch.cuda.is_available())
    if on_cpu and "bf16" in str(precision) and not cpu_has_native_bf16():
        return "32-true"
    return precision


def run_progress(trainer: L.Trainer, step: int, warmup_steps: int) -> float:
    """How much of the run is done after warm-up, 0 to 1: by steps, or by wall-clock when `max_time` ends it first.

    A schedule that decays over `max_epochs` worth of steps never decays when a time limit stops the run
    long before (the first reasoner trained at its peak rate to the end). Time matters on a shared CPU,
    where steps per second vary; the Timer's elapsed time survives a resume, so the schedule continues
    where it stopped.
    """
    total = trainer.max_steps if trainer.max_steps > 0 else trainer.estimated_stepping_batches
    done = (step - warmup_steps) / max(1, total - warmup_steps)
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is not None and timer._duration:
        done = max(done, timer.time_elapsed("train") / timer._duration)
    return min(1.0, max(0.0, done)) if math.isfinite(total) else 0.0


def time_aware_scheduler(optimizer, trainer: L.Trainer, warmup_steps: int, floor: float = 0.05) -> dict:
    """Linear warm-up, then cosine decay to `floor` over the run as `run_progress` measures it, stepped per batch."""
    def schedule(step: int) -> float:
        return warmup_cosine(step, warmup_steps, progress=run_progress(trainer, step, warmup_steps), floor=floor)

    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "interval": "step"}


@contextmanager
def own_hyperparameters():
    """Build a module inside another's __init__ with its own hyper-parameters: under LightningCLI, Lightning
    hands the outer module's arguments to every `save_hyperparameters` call made while it is built, so a nested
    model (a frozen recogniser loaded from its folder) would record the outer model's `dim` as its own."""
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

    token = _given_hyperparameters.set(None)
    try:
        yield
    finally:
        _given_hyperparameters.reset(token)


class CheckpointOnStop(L.Callback):
    """Save `last.ckpt` when training ends for any reason (max_time, max_steps, Ctrl-C).

    ModelCheckpoint saves every n steps only, so a run stopped by its time
    limit would lose the steps since the last save; a resumed run then
    repeats them. This saves the exact state the run stopped in.
    """

    def __init__(self, dirpath: str):
        self.dirpath = dirpath

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        trainer.save_checkpoint(Path(self.dirpath) / "last.ckpt", weights_only=False)  # the whole state

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            trainer.save_checkpoint(Path(self.dirpath) / "last.ckpt", weights_only=False)


class RandomStateCheckpoint(L.Callback):
    """Keep the random generators' states (torch, CUDA, Python, NumPy) in every checkpoint and restore them
    when a run resumes, so dropout and SpecAugment draw what they would have drawn: together with the
    resumable samplers (s2s/data/resumable.py) a killed run continues the same loss curve. States are kept
    as tensors and lists, so the checkpoint still loads with `weights_only=True`. `s2s fit` adds it to
    every run.
    """

    def __init__(self):
        self.pending: dict | None = None

    def state_dict(self) -> dict:
        import numpy as np

        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state = {"torch": torch.get_rng_state(), "python": random.getstate(),
                 "numpy": [kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached]}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.pending = state

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int) -> None:
        # Restored here, not at load time: set-up and the sanity check between the two draw numbers of their own.
        if self.pending is None:
            return
        import numpy as np

        state, self.pending = self.pending, None
        torch.set_rng_state(state["torch"])
        random.setstate(_as_tuple(state["python"]))
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class RecordRun(L.Callback):
    """What each rank of a run trained on, saved when training ends as `rank{N}.pt` in `dirpath`: its final
    weights, every batch it took (a batch's `field`, or its repr cut to 2,000 characters when `field` is None),
    the world size and the launcher's rank variables. With it a test, or a reader of notebook 08, checks that
    DDP ranks end with the same weights after training on batches of their own, as the sampler shares them out.
    Add it to any run: `s2s fit ... --trainer.callbacks+='{"class_path": "s2s.training.RecordRun"}'`."""

    LAUNCHER_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                          "MASTER_PORT")

    def __init__(self, dirpath: str = ".", field: str | None = "question_written"):
        self.dirpath, self.field = dirpath, field
        self.batches: list = []

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int) -> None:
        self.batches.append(repr(batch)[:2000] if self.field is None else batch[self.field])

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        Path(self.dirpath).mkdir(parents=True, exist_ok=True)
        torch.save({"weights": {name: value.detach().cpu() for name, value in module.state_dict().items()},
                    "batches": self.batches, "world": trainer.world_size,
                    "env": {key: os.environ.get(key) for key in self.LAUNCHER_VARIABLES}},
                   Path(self.dirpath) / f"rank{trainer.global_rank}.pt")


class KillAtStep(L.Callback):
    """Kill this process with SIGKILL as training step `step` starts, as `kill -9` or a lost node would: no
    handler runs and nothing is saved on the way out. What a test of resuming needs (is the curve after
    `--ckpt_path last` the one an unbroken run draws?), never a part of real training."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def nested_state(state: dict, prefix: str) -> dict:
    """A checkpoint's state dict with the model's weights under `prefix` ("model.", "recognizer.", ...): checkpoints
    written before the model had its own nn.Module inside its training module hold them at the top level.
    Metric states (`val_*`) belong to the training module and stay where they are."""
    if not state or any(k.startswith(prefix) for k in state):
        return state
    return {(k if k.startswith("val_") else prefix + k): v for k, v in state.items()}


def _as_tuple(value):
    """random.setstate wants the tuples it gave back; a checkpoint may hand them back as lists."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary file beside the target and renamed over it: a run killed
    while saving leaves the previous `last.ckpt` whole, never a half-written file under its name. (Lightning's
    own writer stages local files in the system temp folder and moves them, a copy when that is another disk.)
    Remote paths (s3://, ...) keep Lightning's writer. `s2s fit` installs it on every run."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


class RunsOnLoad:
    """A pickle payload that calls `function(*args)` when it is unpickled: what a hostile checkpoint would carry.
    `torch.load(weights_only=True)`, which every load and resume in s2s uses, refuses it; with `weights_only=False`
    it runs. Tests check the refusal with it, and notebook 08 shows both."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args
