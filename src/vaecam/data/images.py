"""Image and mask files in and out, as float / bool NumPy arrays.

Every dataset loader and generator reads and writes through these functions so that an
unreadable file always becomes a one-line :class:`DataError` naming the file, and resizing is the
same everywhere: images bilinear (Pillow antialiases when shrinking), masks nearest-neighbour so
that labels stay binary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from vaecam.errors import DataError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
"""File extensions (lower case) that loaders treat as images; every other file is ignored."""

_READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def is_image_file(path: Path) -> bool:
    """True for a visible file with an image extension.

    Hidden files are excluded because macOS copies carry ``._001.tif`` resource forks that have
    an image extension but are not images; ``.DS_Store``, ``Thumbs.db`` and ``.m`` files fail
    the extension test.
    """
    return (
        path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()
    )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _load(path: Path, mode: str | None) -> Image.Image:
    """Decode ``path`` fully, converted to Pillow ``mode`` if given; DataError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} not found")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode.startswith("I;16"):  # 16-bit TIFF/PNG: Pillow's convert would clip
                scaled = np.asarray(img, dtype=np.float32) / 257.0
                img = Image.fromarray(scaled.round().astype(np.uint8), "L")
            return img.convert(mode) if mode else img.copy()
    except _READ_ERRORS as exc:
        raise DataError(
            f"cannot read image {path} ({_one_line(exc)}); replace or delete the file"
        ) from exc


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header only."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"image file {path} not found")
    try:
        with Image.open(path) as img:
            return img.size
    except _READ_ERRORS as exc:
        raise DataError(
            f"cannot read image {path} ({_one_line(exc)}); replace or delete the file"
        ) from exc


def read_image(path: Path, mode: Literal["L", "RGB"] = "L", size: int | None = None) -> np.ndarray:
    """Read an image as float32 in [0, 1]: (H, W) for ``"L"``, (H, W, 3) for ``"RGB"``.

    Grayscale files read as ``"RGB"`` get three equal channels. ``size`` resizes to a
    ``size`` x ``size`` square (bilinear), as the paper does for UCSD (100) and MVTec (256).
    """
    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', not {mode!r}")
    img = _load(path, mode)
    if size is not None:
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def read_mask(path: Path, size: int | None = None) -> np.ndarray:
    """Read a ground-truth mask as a bool (H, W) array: any non-zero pixel is anomalous.

    Colour masks count a pixel as anomalous if any channel is non-zero. ``size`` resizes to a
    ``size`` x ``size`` square with nearest-neighbour sampling.
    """
    img = _load(path, None)
    if img.mode in ("1", "L", "I", "F"):
        mask = np.asarray(img) != 0
    else:  # palette and colour masks: look at the colours, not the palette indices
        mask = np.asarray(img.convert("RGB")).any(axis=2)
    if size is not None and mask.shape != (size, size):
        small = Image.fromarray(mask.astype(np.uint8) * 255, "L")
        mask = np.asarray(small.resize((size, size), Image.Resampling.NEAREST)) > 0
    return mask


def write_image(path: Path, array: np.ndarray) -> None:
    """Write a float [0, 1], bool (0/255) or uint8 array, (H, W) or (H, W, 3), as an image file.

    The format follows the extension (.png, .tif, .bmp, .jpg, ...); parent folders are created.
    """
    arr = np.asarray(array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB").save(path)


def require_empty_dir(path: Path, hint: str) -> None:
    """Refuse to write into an existing non-empty folder; ``hint`` says what to do instead."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"{path} is a file, not a folder; choose another folder")
    if path.is_dir() and any(path.iterdir()):
        raise DataError(f"folder {path} is not empty; {hint}")
