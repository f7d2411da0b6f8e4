"""MVTec-AD loaders: training images (optionally augmented on the fly) and test images with masks.

Official layout, one folder per category::

    <root>/<category>/train/good/*.png
    <root>/<category>/test/<defect>/*.png          (including test/good)
    <root>/<category>/ground_truth/<defect>/<stem>_mask.png

Good test images have no mask file and get an empty mask. Grayscale categories (e.g. screw) are
converted to 3-channel RGB so every category fits the same model. MVTec's licence requires a
form on its website, so there is no download function: errors point to the page instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from vaecam.data import transforms
from vaecam.data.images import (
    check_mask_size,
    check_square_size,
    is_image_file,
    read_image,
)
from vaecam.data.masked_test_set import MaskedSample, MaskedTestSet
from vaecam.data.transforms import AugmentConfig
from vaecam.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

MVTEC_URL = "https://www.mvtec.com/company/research/datasets/mvtec-ad"
_LAYOUT = (
    "expected layout: <root>/<category>/train/good/*.png, <root>/<category>/test/<defect>/*.png, "
    f"<root>/<category>/ground_truth/<defect>/<stem>_mask.png; download from {MVTEC_URL}"
)


def _category_dir(root: Path, category: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"MVTec folder {root} not found; {_LAYOUT}")
    folder = root / category
    if not folder.is_dir():
        if (root / "train" / "good").is_dir():
            raise DataError(
                f"{root} is itself a category folder; pass its parent {root.parent} as the root"
            )
        found = sorted(p.name for p in root.iterdir() if (p / "train").is_dir())
        listing = ", ".join(found) if found else "none"
        raise DataError(
            f"MVTec category {category!r} not found in {root} (categories found: {listing}); "
            f"{_LAYOUT}"
        )
    return folder


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def _to_tensor(image: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


class MVTecTrain(Dataset[Tensor]):
    """Training images of one category as RGB float tensors (3, size, size) in [0, 1].

    Without ``augment`` the dataset has one item per file in ``train/good``. With ``augment`` it
    has ``num_augmented`` items (default: as many as training files); item ``i`` is training
    image ``i % n_train`` rotated and flipped as drawn for ``(seed, i)``, so it is the same in
    every run and worker.
    """

    def __init__(
        self,
        root: Path,
        category: str,
        size: int = 256,
        augment: AugmentConfig | None = None,
        num_augmented: int | None = None,
        seed: int = 0,
    ) -> None:
        check_square_size(size)
        folder = _category_dir(root, category) / "train" / "good"
        self.files = _images_in(folder) if folder.is_dir() else []
        if not self.files:
            raise DataError(f"no training images in {folder}; {_LAYOUT}")
        if num_augmented is not None and augment is None:
            raise ConfigError("num_augmented needs an augmentation config (augment=...)")
        if num_augmented is not None and num_augmented < 1:
            raise ConfigError(f"num_augmented must be at least 1, not {num_augmented}")
        self.size = size
        self.augment = augment
        self.seed = seed
        self._length = num_augmented or len(self.files)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> Tensor:
        if not 0 <= index < self._length:
            raise IndexError(index)
        path = self.files[index % len(self.files)]
        image = _to_tensor(read_image(path, "RGB", self.size))
        if self.augment is None:
            return image
        return transforms.augment(image, self.augment, self.seed, index)


class MVTecTest(MaskedTestSet):
    """Test images of one category: (image (3, S, S), mask (S, S) bool, defect type, stem).

    Every defect image must have its ``<stem>_mask.png`` of the same pixel size; this is checked
    when the dataset is built (file headers only), so a broken layout fails before evaluation.
    """

    def __init__(self, root: Path, category: str, size: int = 256) -> None:
        folder = _category_dir(root, category)
        test_dir = folder / "test"
        defects = sorted(p for p in test_dir.iterdir() if p.is_dir()) if test_dir.is_dir() else []
        samples = [s for d in defects for s in _samples_of(d, folder / "ground_truth")]
        if not samples:
            raise DataError(f"no test images in {test_dir}; {_LAYOUT}")
        super().__init__(samples, size)

    def read(self, path: Path) -> Tensor:
        return _to_tensor(read_image(path, "RGB", self.size))


def _samples_of(defect_dir: Path, gt_root: Path) -> list[MaskedSample]:
    """The test images of one defect folder paired with their masks, checked for size."""
    defect = defect_dir.name
    images = _images_in(defect_dir)
    if defect == "good":
        return [MaskedSample(p, None, defect, p.stem) for p in images]
    gt_dir = gt_root / defect
    masks = {p.stem: p for p in _images_in(gt_dir)} if gt_dir.is_dir() else {}
    samples = []
    for path in images:
        mask = masks.pop(f"{path.stem}_mask", None)
        if mask is None:
            raise DataError(
                f"test image {path} has no mask {gt_dir / (path.stem + '_mask.png')}; "
                "every defect image needs ground_truth/<defect>/<stem>_mask.png"
            )
        check_mask_size(mask, path)
        samples.append(MaskedSample(path, mask, defect, path.stem))
    if masks:
        logger.warning(
            "MVTec: ignoring %d mask(s) in %s without a test image (e.g. %s)",
            len(masks),
            gt_dir,
            next(iter(masks.values())).name,
        )
    return samples
