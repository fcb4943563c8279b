"""A run killed with SIGKILL in the middle of an epoch resumes from its last checkpoint and continues the loss
curve of a run that was never interrupted: same batches in the same order, same random draws."""
import csv
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.data.resumable import EpochBatchSampler, ResumableDataLoader
from s2s.data.synth import synthesize
from s2s.training import RandomStateCheckpoint

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "configs" / "lm" / "tiny.yaml")
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 512, "attention_dropout": 0.1}
KILL_AT_STEP = 5  # 6 rows in batches of 2: 3 batches an epoch; step 5 is the second batch of epoch 2
STEPS = 8


class CountingBatches(EpochBatchSampler):
    def __init__(self, n: int, epoch=None):
        super().__init__(epoch)
        self.n = n

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        order = list(range(self.n))
        random.Random(epoch).shuffle(order)
        return [order[i: i + 2] for i in range(0, self.n, 2)]


def test_a_resumed_loader_skips_exactly_the_batches_already_taken():
    loader = ResumableDataLoader(list(range(10)), CountingBatches(10), collate_fn=list)
    whole = [batch for batch in loader]
    it = iter(loader)
    taken = [next(it), next(it)]
    state = loader.state_dict()
    assert state == {"epoch": 0, "batches_taken": 2}
    fresh = ResumableDataLoader(list(range(10)), CountingBatches(10), collate_fn=list)
    fresh.load_state_dict(state)
    assert taken + list(fresh) == whole and len(fresh) == 5
    assert list(fresh) == whole  # the skip applies once; the next pass is a whole epoch
    fresh.load_state_dict({"epoch": 3, "batches_taken": 4})  # saved in another epoch: nothing to skip in this one
    assert list(fresh) == whole


def test_ranks_take_disjoint_equal_shares(monkeypatch):
    sampler = CountingBatches(10)
    whole = sampler.epoch_batches(0)
    shares = []
    for rank in (0, 1):
        monkeypatch.setattr("s2s.data.resumable.rank_and_world", lambda rank=rank: (rank, 2))
        shares.append(list(sampler))
        assert len(sampler) == 2  # 5 batches cut to 4 so that both ranks step the same number of times
    assert shares[0] + shares[1] != whole and sorted(shares[0] + shares[1]) == sorted(whole[:4])


def test_random_state_is_restored_at_the_first_batch_after_resuming():
    callback = RandomStateCheckpoint()
    state = callback.state_dict()
    expected = (torch.rand(3), random.random(), np.random.rand())
    torch.rand(5), random.random(), np.random.rand(2)  # the resumed process has drawn other numbers meanwhile
    restored = RandomStateCheckpoint()
    restored.load_state_dict(torch.load(_saved(state), weights_only=True))
    restored.on_train_batch_start(None, None, None, 0)
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(expected[0], again[0]) and expected[1:] == again[1:]


def _saved(obj) -> "io.BytesIO":  # noqa: F821
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


def _fit_command(workdir: Path, codec: str, extra: list[str], kill_at: int | None = None) -> list[str]:
    args = ["fit", "--config", CONFIG, "--model.init_args.backbone_config", json.dumps(TINY_LLAMA),
            "--model.init_args.codec", codec, "--model.init_args.num_codebooks", "null",
            "--model.init_args.warmup_steps", "2", "--data.init_args.codec", codec,
            "--data.init_args.batch_size", "2", "--data.init_args.val", "null",
            "--trainer.max_steps", str(STEPS), "--trainer.val_check_interval", "null",
            "--trainer.limit_val_batches", "0", "--trainer.log_every_n_steps", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.callbacks.init_args.every_n_train_steps", "2", *extra]
    if kill_at is not None:  # the process kills itself, uncatchably, as the step after a checkpoint starts
        args.append("--trainer.callbacks+=" + json.dumps({"class_path": "s2s.training.KillAtStep",
                                                          "init_args": {"step": kill_at}}))
    return [sys.executable, "-m", "s2s.cli", *args]


def _losses(run: Path) -> dict[int, float]:
    losses = {}
    for metrics in sorted(run.glob("lightning_logs/version_*/metrics.csv")):
        for row in csv.DictReader(metrics.open()):
            if row.get("train/loss"):
                losses[int(row["step"])] = float(row["train/loss"])  # a resumed run's version overwrites
    return losses


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("resume")
    synthesize(root / "data/synth/train", n=6, split="train", workers=1, progress=False)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=2,
                                       codebook_size=16, decoder_dim=16, decoder_layers=1))
    return root, str(save_net(net.eval(), root / "codec"))


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_sigkill_mid_epoch_then_resume_continues_the_same_loss_curve(corpus, tmp_path):
    root, codec = corpus
    (tmp_path / "whole").mkdir()
    (tmp_path / "killed").mkdir()
    for work in ("whole", "killed"):
        (tmp_path / work / "data").symlink_to(root / "data")

    whole = _run(_fit_command(tmp_path / "whole", codec, []), tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr[-2000:]
    reference = _losses(tmp_path / "whole/runs/lm-tiny")
    assert sorted(reference) == list(range(STEPS))

    killed = _run(_fit_command(tmp_path / "killed", codec, [], kill_at=KILL_AT_STEP), tmp_path / "killed")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    checkpoint = tmp_path / "killed/runs/lm-tiny/checkpoints/last.ckpt"
    state = torch.load(checkpoint, weights_only=True)  # resumable checkpoints load as tensors and plain values
    assert state["global_step"] == 4
    loader_state = state["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert loader_state == {"epoch": 1, "batches_taken": 1}  # killed part way through the second epoch

    resumed = _run(_fit_command(tmp_path / "killed", codec, ["--ckpt_path", "last"]), tmp_path / "killed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    continued = _losses(tmp_path / "killed/runs/lm-tiny")
    assert sorted(continued) == list(range(STEPS))
    for step in range(STEPS):
        assert continued[step] == pytest.approx(reference[step], rel=1e-5, abs=1e-6), (step, continued, reference)
