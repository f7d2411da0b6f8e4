"""Training data loaders that Lightning can checkpoint in the middle of an epoch.

Lightning stores the ``state_dict()`` of a loader that has one (its "stateful loader" protocol)
in every checkpoint and hands it back to ``load_state_dict()`` before iterating after a resume.
Both loaders here record how many batches of which epoch they have yielded; on resume their
:class:`~vaecam.training.sampler.SeededShuffleSampler` skips the items of those batches, so a run
stopped after any step continues with exactly the batches an uninterrupted run would have seen.

* :class:`ResumableLoader`: a ``DataLoader`` (workers, pinned memory) over any ``Dataset``.
* :class:`TensorBatchLoader`: batches of a dataset held in memory as uint8
  (:mod:`vaecam.data.in_memory`), on the host or on the GPU, cut by index slicing with no
  per-item Python work; it yields the same batches, bit for bit, as :class:`ResumableLoader`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from vaecam.data.in_memory import InMemoryImages, load_in_memory
from vaecam.training.sampler import SeededShuffleSampler


class _MidEpochState:
    """The stateful-loader protocol shared by both loaders: (epoch, batches yielded in it)."""

    batch_size: int
    sampler: SeededShuffleSampler
    _epoch = 0
    _batches = 0

    def _start_pass(self) -> None:
        """Called as a pass begins: record its epoch and the batches a resume skips in it."""
        self._epoch = self.sampler.epoch
        self._batches = self.sampler.pending_skip() // self.batch_size

    def state_dict(self) -> dict[str, int]:
        """Epoch and number of batches yielded so far in it (stored in checkpoints)."""
        return {"epoch": self._epoch, "batches": self._batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Skip, on the next pass over the stored epoch, the batches it had already yielded."""
        self.sampler.resume_at(state["epoch"], state["batches"] * self.batch_size)


class ResumableLoader(_MidEpochState, DataLoader):
    """A ``DataLoader`` over a :class:`SeededShuffleSampler` with mid-epoch resume state."""

    def __init__(self, dataset: Dataset, batch_size: int, sampler: SeededShuffleSampler,
                 num_workers: int = 0, pin_memory: bool = False):
        super().__init__(dataset, batch_size=batch_size, sampler=sampler,
                         num_workers=num_workers, persistent_workers=num_workers > 0,
                         pin_memory=pin_memory)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        self._start_pass()
        for batch in super().__iter__():
            self._batches += 1
            yield batch


class TensorBatchLoader(_MidEpochState):
    """Batches of in-memory images in the order of a :class:`SeededShuffleSampler`.

    Yields float32 (B, C, H, W) batches in [0, 1] on the images' device (``[images]`` when
    ``as_list``, as a ``DataLoader`` collates a dataset of 1-tuples such as ``TensorDataset``),
    ``batch_size`` items each, the last one smaller (no dropping). Lightning sees a plain iterable:
    it calls ``sampler.set_epoch`` every epoch and the state methods for checkpoints, and neither
    wraps nor re-creates it (only ``DataLoader`` instances are). ``__iter__`` is a generator, so
    Lightning's ``iter()`` probe consumes nothing.
    """

    batch_sampler = None  # Lightning inspects ``loader.batch_sampler`` of anything with a sampler

    def __init__(self, images: InMemoryImages, batch_size: int, sampler: SeededShuffleSampler,
                 as_list: bool = False):
        if sampler.n != len(images):
            raise ValueError(f"sampler over {sampler.n} items for {len(images)} images")
        self.images = images
        self.batch_size = batch_size
        self.sampler = sampler
        self.as_list = as_list

    @property
    def dataset(self) -> InMemoryImages:
        return self.images

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        self._start_pass()
        order = torch.tensor(self.sampler.indices(), dtype=torch.long).to(self.images.device)
        for start in range(0, len(order), self.batch_size):
            images = self.images.batch(order[start : start + self.batch_size])
            self._batches += 1
            yield [images] if self.as_list else images


def _yields_tuples(dataset: Dataset) -> bool:
    """Whether the dataset's items are tuples (then a DataLoader yields lists of tensors)."""
    return isinstance(dataset[0], (tuple, list))


def make_loader(dataset: Dataset, batch_size: int, seed: int, shuffle: bool,
                num_workers: int = 0, pin_memory: bool = False, in_memory: bool = False,
                device: torch.device | str = "cpu") -> ResumableLoader | TensorBatchLoader:
    """A loader whose order is a function of (seed, epoch): reproducible and resumable.

    ``in_memory`` reads ``dataset`` once into uint8 on ``device`` (refused with a ConfigError
    when it would not fit, see :func:`vaecam.data.in_memory.load_in_memory`; ``num_workers``
    then only speeds up that reading) and returns a :class:`TensorBatchLoader` yielding the
    batches the ``DataLoader`` path would, on ``device``.
    """
    sampler = SeededShuffleSampler(len(dataset), seed, shuffle=shuffle)  # type: ignore[arg-type]
    if in_memory:
        images = load_in_memory(dataset, device, num_workers)
        return TensorBatchLoader(images, batch_size, sampler, as_list=_yields_tuples(dataset))
    return ResumableLoader(dataset, batch_size, sampler, num_workers, pin_memory)
