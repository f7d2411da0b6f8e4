"""A shuffling sampler whose order depends only on (seed, epoch, rank).

Resuming from a checkpoint at an epoch boundary then replays exactly the batches an
uninterrupted run would have seen. Under DDP each process takes every ``world_size``-th index of
the same permutation (padded by wrapping so all ranks get equal counts), so Lightning's own
distributed sampler is not needed.
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

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    @staticmethod
    def _rank_and_world() -> tuple[int, int]:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=gen).tolist()
        else:
            order = list(range(self.n))
        rank, world = self._rank_and_world()
        if world > 1:
            per_rank = -(-self.n // world)
            order = (order * 2)[: per_rank * world][rank::world]
        return iter(order)

    def __len__(self) -> int:
        _, world = self._rank_and_world()
        return -(-self.n // world)
