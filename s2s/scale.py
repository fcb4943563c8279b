"""Sizes and checks for scaling up: how many parameters a model has, how much model state each GPU then holds
under DDP and under FSDP, and whether the processes of a torchrun launch find each other.

Run on every node, the same line but `--node_rank`, to check a cluster before a long job:

    python -m torch.distributed.run --nnodes 2 --node_rank R --nproc_per_node 1 \
        --master_addr HOST0 --master_port 29500 -m s2s.scale
"""
from __future__ import annotations

import os
import sys

import torch

# Adam in mixed precision: fp32 weights (4 bytes; Lightning's bf16-mixed keeps them), their fp32 gradients (4)
# and Adam's two fp32 moments (8). ZeRO's bookkeeping (bf16 weights and gradients, fp32 master copy and
# moments: 2 + 2 + 12) comes to the same.
BYTES_PER_PARAMETER = 16
GIB = 2**30
LAUNCHER_VARIABLES = ("GROUP_RANK", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def parameter_count(module: torch.nn.Module) -> int:
    """Parameters of `module`, shared ones once (tied input and output embeddings are one table); works on the
    `meta` device, where a model has shapes and no memory."""
    return sum(p.numel() for p in module.parameters())


def state_gib_per_gpu(parameters: int, gpus: int = 1, sharded: bool = False, gathered: int = 0) -> float:
    """GiB of model state (weights, gradients, Adam moments) each of `gpus` GPUs holds: all of it under DDP, a
    1/`gpus` share under FSDP (`sharded`) plus the `gathered` parameters of the units all-gathered at the moment,
    in bf16 (2 bytes each). Activations come on top."""
    if not sharded:
        return BYTES_PER_PARAMETER * parameters / GIB
    return (BYTES_PER_PARAMETER * parameters / gpus + 2 * gathered) / GIB


def rendezvous() -> str:
    """Join the process group torchrun set up (gloo: any machine), all-reduce rank + 1, and return one line: what
    this process was told, and the sum, which every rank gets alike (1 + 2 = 3 for two) when they found each other.
    """
    import torch.distributed as dist

    dist.init_process_group("gloo")
    try:
        total = torch.tensor([dist.get_rank() + 1.0])
        dist.all_reduce(total)
    finally:
        dist.destroy_process_group()
    told = " ".join(f"{key}={os.environ.get(key)}" for key in LAUNCHER_VARIABLES)
    return f"{told} | all_reduce(rank + 1) = {total.item():g}"


if __name__ == "__main__":
    # One write of the whole line: the ranks share torchrun's stdout, and print's separate write of the newline
    # would let two ranks' lines run together.
    sys.stdout.write(rendezvous() + "\n")
    sys.stdout.flush()
