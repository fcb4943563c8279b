"""Batches that survive a kill and split across ranks: every sampler of s2s derives from `EpochBatchSampler`.

An epoch's batches are a pure function of (seed, epoch), so

- a run killed in the middle of an epoch resumes where it stopped: `ResumableDataLoader` tells Lightning
  how many batches it has handed out (`state_dict`, saved in every checkpoint), and on resuming the
  sampler skips exactly those, instead of starting the epoch again (the same examples twice) or
  leaving it (examples never seen);
- under DDP each rank takes every world_size-th batch of the same list (the list is cut to a multiple of
  world_size so every rank steps the same number of times). Lightning's own `DistributedSampler` cannot
  be put inside a custom batch sampler, so `s2s fit` turns `use_distributed_sampler` off.

The epoch is asked of a callable (the trainer's `current_epoch`) at the start of every pass: Lightning
builds the loader once, so each epoch still draws a new order, and a resumed run draws the same one.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class EpochBatchSampler(Sampler[list[int]]):
    """Subclasses say what one epoch's batches are (`epoch_batches`); this class shards and skips them."""

    def __init__(self, epoch: Callable[[], int] | None = None):
        self.epoch_source, self.epoch, self.skip = epoch, 0, 0

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        raise NotImplementedError

    def rank_batches(self) -> list[list[int]]:
        """This rank's share of the current epoch's batches."""
        batches = self.epoch_batches(self.epoch)
        rank, world = rank_and_world()
        if world > 1:
            batches = batches[rank: len(batches) // world * world: world]
        return batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        if self.epoch_source is not None:
            self.epoch = self.epoch_source()
        skip, self.skip = self.skip, 0
        return iter(self.rank_batches()[skip:])

    def __len__(self) -> int:
        return len(self.rank_batches())


class ResumableDataLoader(DataLoader):
    """A DataLoader over an `EpochBatchSampler` that knows its place in the epoch.

    Lightning saves `state_dict()` in each checkpoint and hands it back through `load_state_dict` before the
    resumed run iterates (any loader with both methods is "stateful" to Lightning). Batches are counted as
    they are handed out, in the main process, so worker prefetching does not shift the count.
    """

    def __init__(self, dataset, batch_sampler: EpochBatchSampler, **kwargs):
        if not isinstance(batch_sampler, EpochBatchSampler):
            raise TypeError(f"ResumableDataLoader needs an EpochBatchSampler, got {type(batch_sampler).__name__}")
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        self.batches_taken = 0

    def __iter__(self):
        sampler = self.batch_sampler
        self.batches_taken = sampler.skip
        for batch in super().__iter__():
            self.batches_taken += 1
            yield batch

    def state_dict(self) -> dict:
        return {"epoch": self.batch_sampler.epoch, "batches_taken": self.batches_taken}

    def load_state_dict(self, state: dict) -> None:
        sampler = self.batch_sampler
        epoch_now = sampler.epoch_source() if sampler.epoch_source is not None else sampler.epoch
        # A checkpoint from the end of an epoch belongs to the epoch that follows: nothing to skip there.
        sampler.skip = int(state["batches_taken"]) if state["epoch"] == epoch_now else 0


def trainer_epoch(datamodule) -> Callable[[], int]:
    """The epoch source for a datamodule's training sampler: its trainer's current epoch (0 without one)."""
    def epoch() -> int:
        trainer = getattr(datamodule, "trainer", None)
        return trainer.current_epoch if trainer is not None else 0
    return epoch
