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

from vaecam.errors import ConfigError, DataError

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
            file_format = img.format
            if img.mode.startswith("I;16"):  # 16-bit TIFF/PNG: Pillow's convert would clip
                scaled = np.asarray(img, dtype=np.float32) / 257.0
                img = Image.fromarray(scaled.round().astype(np.uint8), "L")
            decoded = img.convert(mode) if mode else img.copy()
            decoded.format = file_format  # what the file held, whatever its extension says
            return decoded
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


LOSSY_MASK_EXTENSIONS = frozenset({".jpg", ".jpeg"})
"""Mask formats that are refused: lossy compression blurs the edges of a binary mask."""


def _half_range(mask: np.ndarray, mode: str) -> float:
    """The threshold halfway through a mask's value range: its bit depth, or 0..1."""
    if mode == "F":
        return 0.5
    top = float(mask.max(initial=0))
    full = 1.0 if top <= 1 else 255.0 if top <= 255 else 65535.0
    return full / 2


def read_mask(path: Path, size: int | None = None) -> np.ndarray:
    """Read a ground-truth mask as a bool (H, W) array, thresholded at half its value range.

    8-bit masks are anomalous at >= 128, 16-bit ones at >= 32768, 0/1 masks at 1, float masks
    at >= 0.5. In a colour mask (RGB, RGBA, palette...) a pixel is anomalous when any of its
    colour channels reaches half the range, so a pure red (255, 0, 0) defect counts (its
    luminance, 76, would not); transparency is ignored. JPEG masks are refused: lossy
    compression leaves grey values along every edge. ``size`` resizes to a ``size`` x ``size``
    square with nearest-neighbour sampling.
    """
    path = Path(path)
    if path.suffix.lower() in LOSSY_MASK_EXTENSIONS:
        raise DataError(f"mask {path} is a JPEG, a lossy format that blurs mask edges; save the "
                        "masks as PNG, BMP or TIFF")
    img = _load(path, None)
    if img.format == "JPEG":
        raise DataError(f"mask {path} holds JPEG data, a lossy format that blurs mask edges; "
                        "save the masks as PNG, BMP or TIFF")
    if img.mode == "LA":
        img = img.getchannel("L")
    elif img.mode in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr"):
        img = img.convert("RGB")
    values = np.asarray(img)
    if img.mode == "1":
        mask = values.astype(bool)
    else:
        mask = values >= _half_range(values, img.mode)
    if mask.ndim == 3:  # colour: any channel
        mask = mask.any(axis=2)
    if size is not None and mask.shape != (size, size):
        small = Image.fromarray(mask.astype(np.uint8) * 255, "L")
        mask = np.asarray(small.resize((size, size), Image.Resampling.NEAREST)) > 0
    return mask


def check_square_size(size: int) -> None:
    """Refuse a square side (``--image-size``) below one pixel."""
    if size < 1:
        raise ConfigError(f"image size must be a positive number of pixels, not {size}")


def check_mask_size(mask: Path, image: Path) -> None:
    """Refuse a mask whose pixel size (read from the headers) differs from its image's."""
    if image_size(mask) != image_size(image):
        raise DataError(
            f"mask {mask} is {image_size(mask)} pixels but its image {image} is "
            f"{image_size(image)}; masks must have their image's size"
        )


def read_mask_or_empty(path: Path | None, size: int) -> np.ndarray:
    """:func:`read_mask` at ``size``, or an all-False mask for an image without one (a normal
    test image)."""
    return np.zeros((size, size), bool) if path is None else read_mask(path, size)


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
