"""Loaders for a folder of the user's own images (``vaecam train|localize folder``).

Layout::

    <root>/train/*.png            normal images to train on
    <root>/test/normal/*.png      normal test images
    <root>/test/abnormal/*.png    anomalous test images
    <root>/masks/<stem>.png       one mask per abnormal test image, named by its image's stem

Images may have any size; they are resized to ``size`` x ``size`` squares. Channels are kept:
when every training image is grayscale the model sees 1 channel, otherwise 3 (grayscale files
then get three equal channels). Masks must be single-channel (grayscale or binary, or RGB with
three equal channels) and have their image's pixel size; a pixel above half the mask's value
range is anomalous. Localisation needs ``masks/``; training does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from vaecam.data.images import (
    check_mask_size,
    check_square_size,
    image_size,
    is_image_file,
    read_image,
)
from vaecam.data.masked_test_set import MaskedSample, MaskedTestSet
from vaecam.errors import DataError

LAYOUT = ("expected layout: <root>/train/*.png (normal images), <root>/test/normal/*.png, "
          "<root>/test/abnormal/*.png, <root>/masks/<stem>.png (one mask per abnormal test "
          "image, same stem and pixel size)")
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


def _images_in(root: Path, relative: str) -> list[Path]:
    """The image files of ``root/relative``; DataError (with the layout) when the folder is
    missing or holds no image."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} not found; {LAYOUT}")
    folder = root / relative
    if not folder.is_dir():
        raise DataError(f"{folder} not found; {LAYOUT}")
    files = sorted(p for p in folder.iterdir() if is_image_file(p))
    if not files:
        raise DataError(f"no images (.png, .jpg, .tif, .bmp) in {folder}; {LAYOUT}")
    return files


def _mode_of(path: Path) -> str:
    """Pillow mode of an image file, from its header; DataError naming an unreadable file."""
    image_size(path)  # one-line error for a missing or unreadable file
    with Image.open(path) as img:
        return img.mode


def folder_channels(root: Path) -> int:
    """1 when every training image is grayscale, else 3: the channels the model sees."""
    modes = {_mode_of(p) for p in _images_in(root, "train")}
    return 1 if modes <= GRAY_MODES else 3


def _to_tensor(path: Path, channels: int, size: int) -> Tensor:
    image = read_image(path, "L" if channels == 1 else "RGB", size)
    image = image[None] if channels == 1 else image.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(image))


class FolderTrain(Dataset[Tensor]):
    """The normal images of ``train/`` as float tensors (C, size, size) in [0, 1]."""

    def __init__(self, root: Path, size: int, channels: int | None = None) -> None:
        check_square_size(size)
        self.files = _images_in(root, "train")
        self.channels = channels or folder_channels(root)
        self.size = size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor:
        return _to_tensor(self.files[index], self.channels, self.size)


def _check_mask(mask: Path, image: Path) -> None:
    """A mask must have its image's pixel size and one channel (grey RGB is accepted)."""
    check_mask_size(mask, image)
    with Image.open(mask) as img:
        if img.mode in GRAY_MODES:
            return
        rgb = np.asarray(img.convert("RGB"))
    if not ((rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])).all():
        raise DataError(f"mask {mask} is a colour image; masks must be single-channel "
                        "(grayscale or binary): anomalous pixels bright, the rest black")


def _test_samples(root: Path) -> list[MaskedSample]:
    """Normal and abnormal test images, every abnormal one paired with its checked mask."""
    normal = _images_in(root, "test/normal")
    abnormal = _images_in(root, "test/abnormal")
    mask_dir = Path(root) / "masks"
    if not mask_dir.is_dir():
        raise DataError(f"no masks folder {mask_dir}; localisation needs one mask per abnormal "
                        f"test image, masks/<stem>.png; {LAYOUT}")
    masks = {p.stem: p for p in mask_dir.iterdir() if is_image_file(p)}
    missing = [p.name for p in abnormal if p.stem not in masks]
    if missing:
        raise DataError(f"abnormal test image(s) without a mask in {mask_dir}: "
                        f"{', '.join(missing)}; add masks/<stem>.png for each")
    stems = {p.stem for p in abnormal}
    unmatched = sorted(name.name for stem, name in masks.items() if stem not in stems)
    if unmatched:
        raise DataError(f"mask(s) in {mask_dir} match no abnormal test image: "
                        f"{', '.join(unmatched)}; rename or remove them")
    for path in normal:
        image_size(path)  # one-line error naming an unreadable file, before evaluation
    for path in abnormal:
        _check_mask(masks[path.stem], path)
    return ([MaskedSample(p, None, "normal", p.stem) for p in normal]
            + [MaskedSample(p, masks[p.stem], "abnormal", p.stem) for p in abnormal])


class FolderTest(MaskedTestSet):
    """Test images: (image (C, S, S), mask (S, S) bool, "normal"/"abnormal", stem).

    The layout and every mask (size, single channel) are checked when the dataset is built, so
    a broken folder fails before evaluation.
    """

    def __init__(self, root: Path, size: int, channels: int | None = None) -> None:
        super().__init__(_test_samples(root), size)
        self.channels = channels or folder_channels(root)

    def read(self, path: Path) -> Tensor:
        return _to_tensor(path, self.channels, self.size)
