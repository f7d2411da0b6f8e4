"""A shuffling sampler whose order depends only on (seed, epoch, rank), resumable mid-epoch.

Resuming from a checkpoint then replays exactly the batches an uninterrupted run would have
seen: at an epoch boundary because the order is a function of the epoch, and in the middle of an
epoch because :meth:`SeededShuffleSampler.resume_at` skips the items already trained on (the
loaders of :mod:`vaecam.training.loaders` call it from the state Lightning stores in checkpoints).
Under DDP each process takes every ``world_size``-th index of the same permutation (padded by
wrapping so all ranks get equal counts), so Lightning's own distributed sampler is not needed.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


class SeededShuffleSampler(Sampler[int]):
    """Permutation of ``range(n)`` drawn from ``seed + epoch``; sharded by rank under DDP."""

    def __init__(self, n: int, seed: int, shuffle: bool = True):
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def resume_at(self, epoch: int, items: int) -> None:
        """Make the next pass over ``epoch`` skip its first ``items`` indices (this rank's)."""
        self._resume = (int(epoch), int(items))

    def pending_skip(self) -> int:
        """Items the next pass over the current epoch will skip (0 when none)."""
        if self._resume is not None and self._resume[0] == self.epoch:
            return self._resume[1]
        return 0

    @staticmethod
    def _rank_and_world() -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def indices(self) -> list[int]:
        """This rank's indices of the current epoch, after any pending mid-epoch skip."""
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=gen).tolist()
        else:
            order = list(range(self.n))
        rank, world = self._rank_and_world()
        if world > 1:
            per_rank = -(-self.n // world)
            order = (order * 2)[: per_rank * world][rank::world]
        if self._resume is not None:
            epoch, items = self._resume
            self._resume = None
            if epoch == self.epoch:
                order = order[items:]
        return order

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        _, world = self._rank_and_world()
        return -(-self.n // world)
