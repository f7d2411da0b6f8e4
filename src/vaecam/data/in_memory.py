"""Training images held in memory (host or accelerator) as uint8, decoded exactly per batch.

Every fixed training set of vaecam is 8-bit: UCSD frames and (un-augmented) MVTec images are
uint8 pixels after Pillow's resize divided by 255 (:func:`vaecam.data.images.read_image`), MNIST
digits are bytes divided by 255, dSprites images are binary. :func:`load_in_memory` reads such a
dataset once, stores the byte codes ``round(255 * x)`` as a uint8 tensor (N, C, H, W) on the
chosen device (a quarter of float32's memory), and checks on every chunk that decoding gives the
original floats bit for bit. The reference decoding is a 256-entry float32 table built with
numpy's float32 division, the datasets' own arithmetic. A batch is decoded by ``float(code) / 255``
on the device when that reproduces the table there (checked once on all 256 codes; true on the
CPU, and 30x faster than a table lookup), else by looking the codes up in the table (a GPU may
divide by multiplying with the reciprocal, which differs in the last bit for 126 of the 256
codes). Either way batches are bitwise identical to the ``Dataset``'s items.

Before anything is read, the size N * C * H * W bytes is compared with the free memory of the
target (``torch.cuda.mem_get_info`` on a GPU, ``MemAvailable`` of ``/proc/meminfo`` on the host)
and a dataset that would not fit is refused with a one-line :class:`~vaecam.errors.ConfigError`.
Data for a GPU is assembled there chunk by chunk, so the host never holds the whole set.

dSprites' training set (``GroundTruthData.torch_dataset()``) is finite and fixed: every one of the
737,280 factor combinations, rendered deterministically, shuffled by the seeded sampler. It
stores as 737280 x 64 x 64 bytes = 2.81 GiB.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from vaecam.errors import ConfigError, DataError

OPTION = "--data-on-device"
"""The command-line option named in errors."""

DATA_FRACTION = 0.8
"""Share of the free memory the data may take; the rest is left to the model and activations."""

# Decode table: code c -> float32(c) / float32(255), numpy's float32 division (as read_image).
_DECODE = torch.from_numpy(np.arange(256, dtype=np.float32) / np.float32(255.0))
_GIB = 1024**3


def _divide(codes: Tensor) -> Tensor:
    """``float32(code) / 255`` with the device's own division."""
    return codes.float().div_(255.0)


class InMemoryImages:
    """uint8 codes (N, C, H, W) on one device; :meth:`batch` decodes rows to float32 in [0, 1]."""

    def __init__(self, codes: Tensor) -> None:
        if codes.dtype != torch.uint8 or codes.dim() != 4:
            raise ValueError(f"codes must be uint8 (N, C, H, W), got {codes.dtype} {codes.shape}")
        self.codes = codes
        self.table = _DECODE.to(codes.device)
        probe = torch.arange(256, dtype=torch.uint8, device=codes.device)
        self.divides_exactly = torch.equal(_divide(probe), self.table)

    @property
    def device(self) -> torch.device:
        return self.codes.device

    def __len__(self) -> int:
        return self.codes.shape[0]

    def batch(self, rows: Tensor) -> Tensor:
        """Float32 images (B, C, H, W) of the given row indices (a long tensor on any device)."""
        codes = self.codes.index_select(0, rows.to(self.device))
        if self.divides_exactly:
            return _divide(codes)
        return self.table.index_select(0, codes.view(-1).int()).view(codes.shape)


def training_device(accelerator: str) -> torch.device:
    """The device a run with Lightning's ``accelerator`` trains on, in this process.

    ``gpu``/``cuda`` (or ``auto`` with a visible GPU) is this process's GPU: ``LOCAL_RANK`` under
    DDP (each rank holds its own copy of the data), else ``cuda:0``.
    """
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if accelerator == "mps":
        return torch.device("mps")
    return torch.device("cpu")


def item_shape(dataset: Dataset) -> tuple[int, ...]:
    """Shape (C, H, W) of one image of ``dataset``, without reading the dataset.

    Known datasets answer from their attributes; any other one reads its first item only.
    """
    if isinstance(dataset, TensorDataset):
        return tuple(dataset.tensors[0].shape[1:])
    data = getattr(dataset, "data", None)
    if data is not None and hasattr(data, "observation_shape"):  # GroundTruthDataset
        return tuple(data.observation_shape)
    first = dataset[0]
    image = first[0] if isinstance(first, (tuple, list)) else first
    return tuple(image.shape)


def dataset_bytes(dataset: Dataset) -> int:
    """Bytes of ``dataset`` as uint8 codes: N * C * H * W."""
    return len(dataset) * int(np.prod(item_shape(dataset)))  # type: ignore[arg-type]


def available_memory(device: torch.device) -> int | None:
    """Free bytes on ``device``: the GPU's free memory, or the host's ``MemAvailable``.

    None where it cannot be told (then no check is made).
    """
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _size(nbytes: float) -> str:
    if nbytes >= _GIB / 10:
        return f"{nbytes / _GIB:.2f} GiB"
    return f"{nbytes / 1024**2:.2f} MiB"


def check_fits(nbytes: int, device: torch.device,
               available: Callable[[torch.device], int | None] = available_memory) -> None:
    """Refuse (one-line ConfigError) data of ``nbytes`` beyond :data:`DATA_FRACTION` of the free
    memory of ``device``; ``available`` tells the free bytes (injectable for tests)."""
    free = available(device)
    if free is None or nbytes <= DATA_FRACTION * free:
        return
    where = f"on {device}" if device.type != "cpu" else "in host memory (MemAvailable)"
    raise ConfigError(
        f"{OPTION}: dataset of {_size(nbytes)} does not fit in the {_size(free)} free {where} "
        f"(the data may use {DATA_FRACTION:.0%} of it); train without {OPTION}, or free memory"
    )


def _chunks(dataset: Dataset, chunk: int, num_workers: int):
    """Consecutive float image chunks of ``dataset`` in index order."""
    if isinstance(dataset, TensorDataset):
        images = dataset.tensors[0]
        for start in range(0, len(images), chunk):
            yield images[start : start + chunk]
        return
    loader = DataLoader(dataset, batch_size=chunk, shuffle=False, num_workers=num_workers)
    for batch in loader:
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def encode_exact(images: Tensor) -> Tensor:
    """uint8 codes of float images that are exactly ``code / 255``; DataError otherwise."""
    codes = images.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    decoded = _DECODE.index_select(0, codes.view(-1).int()).view(codes.shape)
    if images.dtype != torch.float32 or not torch.equal(decoded, images):
        raise DataError(
            f"{OPTION}: the training images are not 8-bit values (float32 k/255), so they cannot "
            f"be held as bytes without changing them; train without {OPTION}"
        )
    return codes


def load_in_memory(
    dataset: Dataset,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    chunk: int = 1024,
    available: Callable[[torch.device], int | None] = available_memory,
) -> InMemoryImages:
    """Read every image of ``dataset`` once into uint8 codes on ``device``.

    The size is checked against the free memory first (:func:`check_fits`); reading goes through
    a ``DataLoader`` with ``num_workers`` processes, ``chunk`` items at a time.
    """
    device = torch.device(device)
    shape = item_shape(dataset)
    n = len(dataset)  # type: ignore[arg-type]
    check_fits(n * int(np.prod(shape)), device, available)
    codes = torch.empty((n, *shape), dtype=torch.uint8, device=device)
    start = 0
    for images in _chunks(dataset, chunk, num_workers):
        codes[start : start + len(images)].copy_(encode_exact(images))
        start += len(images)
    if start != n:
        raise DataError(f"{OPTION}: the dataset yielded {start} images, not its length {n}")
    return InMemoryImages(codes)
