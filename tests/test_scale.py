"""s2s/scale.py: parameter counts, model state per GPU under DDP and FSDP, and the torchrun rendezvous check."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from s2s.scale import GIB, parameter_count, state_gib_per_gpu

ROOT = Path(__file__).resolve().parents[1]


def test_parameter_count_counts_a_tied_table_once_and_works_on_the_meta_device():
    with torch.device("meta"):
        embed = torch.nn.Embedding(100, 8)
        head = torch.nn.Linear(8, 100, bias=False)
    head.weight = embed.weight  # tied, as Qwen2.5-0.5B's input and output embeddings
    assert parameter_count(torch.nn.ModuleList([embed, head])) == 800
    assert parameter_count(torch.nn.Linear(3, 2)) == 8


def test_ddp_holds_the_whole_state_on_every_gpu_fsdp_a_share_plus_what_is_gathered():
    params = 500_000_000
    assert state_gib_per_gpu(params) == state_gib_per_gpu(params, gpus=8) == pytest.approx(16 * params / GIB)
    assert state_gib_per_gpu(params, gpus=8, sharded=True) == pytest.approx(2 * params / GIB)
    gathered = 50_000_000  # in bf16: 2 bytes each, on top of the share
    assert state_gib_per_gpu(params, 8, sharded=True, gathered=gathered) == pytest.approx((2 * params + 1e8) / GIB)
    assert state_gib_per_gpu(params, 1, sharded=True) == state_gib_per_gpu(params)


def test_two_processes_of_a_torchrun_launch_meet_and_sum_their_ranks():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "s2s.scale"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = sorted(line for line in done.stdout.splitlines() if "all_reduce" in line)
    assert len(lines) == 2 and all(line.endswith("all_reduce(rank + 1) = 3") for line in lines)
    assert "RANK=0 " in lines[0] and "RANK=1 " in lines[1] and all("WORLD_SIZE=2" in line for line in lines)
