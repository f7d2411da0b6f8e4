"""Test sets of images with pixel masks: the shape every localisation loader returns.

Items are ``(image (C, S, S) float in [0, 1], mask (S, S) bool, kind, stem)``, and ``labels``
marks the anomalous images (those with a mask). A loader builds the checked list of samples and
says how to read one image; indexing and labels are shared.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from vaecam.data.images import check_square_size, read_mask_or_empty


@dataclass(frozen=True)
class MaskedSample:
    """One test image: its file, its mask file (None for a normal image), its kind (MVTec: the
    defect type, ``good`` for normal images; own folder: ``normal`` or ``abnormal``) and stem."""

    image: Path
    mask: Path | None
    kind: str
    stem: str


class MaskedTestSet(Dataset[tuple[Tensor, Tensor, str, str]], ABC):
    """Test images with their masks, read at ``size`` x ``size``."""

    def __init__(self, samples: list[MaskedSample], size: int) -> None:
        check_square_size(size)
        self.samples = samples
        self.size = size

    @abstractmethod
    def read(self, path: Path) -> Tensor:
        """The image at ``path`` as a float tensor (C, size, size) in [0, 1]."""

    @property
    def labels(self) -> Tensor:
        """Image-level labels: True for the images that have a mask."""
        return torch.tensor([s.mask is not None for s in self.samples])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, str, str]:
        sample = self.samples[index]
        mask = torch.from_numpy(read_mask_or_empty(sample.mask, self.size))
        return self.read(sample.image), mask, sample.kind, sample.stem
