"""Small generated datasets in the official MVTec-AD and UCSD folder layouts, and in the layout of
``vaecam train|localize folder`` (:mod:`vaecam.data.folder`).

For tests and offline demos: they are read by the same loaders as the real data, are
deterministic given a seed, and take well under a second at the default sizes. Anomalies are
high-contrast and cover roughly 8-16% of an image, so that a small VAE trained for a few seconds
localises them (the real datasets are much harder).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.ndimage import gaussian_filter

from vaecam.data.images import IMAGE_EXTENSIONS, write_image
from vaecam.errors import ConfigError, DataError
from vaecam.outputs import OutputFolder

MVTEC_DEFECTS = ("patch", "scratch")
"""Defect types :func:`make_mvtec_like` can draw: a solid square and a thick straight line."""


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (y, x) in pixels."""
    grid = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    return grid[0], grid[1]


def _check_count(name: str, value: int, minimum: int) -> None:
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")


def _check_folder_name(option: str, value: str) -> None:
    """A dataset folder name must stay inside the output folder (it may be deleted on overwrite)."""
    if not value or value in (".", "..") or "/" in value or "\\" in value:
        raise ConfigError(f"{option} must be a plain folder name, not {value!r}")


# --- MVTec-like --------------------------------------------------------------------------------


def _mvtec_normal(rng: np.random.Generator, size: int) -> np.ndarray:
    """A normal object: an orange disk with a dark ring on a fixed bluish wave texture."""
    y, x = _grid(size, size)
    u, v = x / size, y / size
    wave = 0.06 * np.sin(2 * np.pi * (3 * u + 2 * v)) + 0.04 * np.sin(2 * np.pi * 5 * v)
    image = np.stack([0.30 + wave, 0.40 + wave, 0.55 + wave], axis=-1)
    cy, cx = size / 2 + rng.uniform(-1, 1, size=2)
    r = np.hypot(y - cy, x - cx) / size
    image[r < 0.30] = (0.85, 0.55, 0.25)
    image[(r >= 0.20) & (r < 0.23)] = (0.45, 0.25, 0.10)
    image = image * rng.uniform(0.97, 1.03) + rng.normal(0, 0.015, image.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def _defect_mask(rng: np.random.Generator, size: int, defect: str) -> np.ndarray:
    """Where a defect goes: a square of 8-16% of the image, or a thick line of about 10%."""
    y, x = _grid(size, size)
    if defect == "patch":
        side = rng.uniform(0.28, 0.40) * size
        top, left = rng.uniform(0, size - side, size=2)
        return (y >= top) & (y < top + side) & (x >= left) & (x < left + side)
    length, angle = rng.uniform(0.6, 0.8) * size, rng.uniform(0, np.pi)
    cy, cx = size / 2 + rng.uniform(-0.1, 0.1, size=2) * size
    dy, dx = np.sin(angle), np.cos(angle)
    along = (y - cy) * dy + (x - cx) * dx
    across = np.abs(-(y - cy) * dx + (x - cx) * dy)
    return (np.abs(along) <= length / 2) & (across <= size / 14)


def _add_defect(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Paint the mask white on a dark region or black on a bright one (contrast >= 0.5)."""
    fill = 1.0 if image[mask].mean() < 0.5 else 0.0
    out = image.copy()
    out[mask] = fill
    return out


def _save_rgb(path: Path, image: np.ndarray, grayscale: bool) -> None:
    """Write an RGB float image, as one luminance channel when ``grayscale``."""
    write_image(path, image @ np.float32([0.299, 0.587, 0.114]) if grayscale else image)


def make_mvtec_like(
    out_root: Path,
    category: str = "synthetic",
    n_train: int = 20,
    n_test_good: int = 5,
    n_test_defect: int = 5,
    size: int = 64,
    seed: int = 0,
    defects: Sequence[str] = MVTEC_DEFECTS,
    grayscale: bool = False,
) -> Path:
    """Write an MVTec-style category ``out_root/category`` and return that folder.

    ``train/good`` gets ``n_train`` normal images, ``test/good`` ``n_test_good``, and each defect
    type ``n_test_defect`` images in ``test/<defect>`` with 0/255 masks in
    ``ground_truth/<defect>/<stem>_mask.png``. ``grayscale`` writes 1-channel PNGs, as MVTec
    does for some categories (screw, grid, zipper).
    """
    unknown = sorted(set(defects) - set(MVTEC_DEFECTS))
    if unknown or not defects:
        raise ConfigError(
            f"synthetic MVTec defects must be among {', '.join(MVTEC_DEFECTS)}, not {list(defects)}"
        )
    _check_folder_name("category", category)
    _check_count("size", size, 16)
    _check_count("n_train", n_train, 1)
    _check_count("n_test_good", n_test_good, 0)
    _check_count("n_test_defect", n_test_defect, 1)
    rng = np.random.default_rng(seed)
    folder = Path(out_root) / category

    def save(path: Path, image: np.ndarray) -> None:
        _save_rgb(path, image, grayscale)

    for i in range(n_train):
        save(folder / "train" / "good" / f"{i:03d}.png", _mvtec_normal(rng, size))
    for i in range(n_test_good):
        save(folder / "test" / "good" / f"{i:03d}.png", _mvtec_normal(rng, size))
    for defect in defects:
        for i in range(n_test_defect):
            mask = _defect_mask(rng, size, defect)
            image = _add_defect(_mvtec_normal(rng, size), mask)
            save(folder / "test" / defect / f"{i:03d}.png", image)
            write_image(folder / "ground_truth" / defect / f"{i:03d}_mask.png", mask)
    return folder


def make_folder_like(
    out_root: Path,
    n_train: int = 16,
    n_test_normal: int = 4,
    n_test_abnormal: int = 4,
    size: int = 32,
    seed: int = 0,
    grayscale: bool = False,
) -> Path:
    """Write MVTec-like images in the own-images layout under ``out_root`` and return it:
    ``train/``, ``test/normal/``, ``test/abnormal/`` and a 0/255 mask ``masks/<stem>.png`` per
    abnormal image (defects drawn in turn from :data:`MVTEC_DEFECTS`)."""
    _check_count("size", size, 16)
    _check_count("n_train", n_train, 1)
    _check_count("n_test_normal", n_test_normal, 1)
    _check_count("n_test_abnormal", n_test_abnormal, 1)
    rng = np.random.default_rng(seed)
    root = Path(out_root)

    def save(path: Path, image: np.ndarray) -> None:
        _save_rgb(path, image, grayscale)

    for i in range(n_train):
        save(root / "train" / f"{i:03d}.png", _mvtec_normal(rng, size))
    for i in range(n_test_normal):
        save(root / "test" / "normal" / f"{i:03d}.png", _mvtec_normal(rng, size))
    for i in range(n_test_abnormal):
        mask = _defect_mask(rng, size, MVTEC_DEFECTS[i % len(MVTEC_DEFECTS)])
        save(root / "test" / "abnormal" / f"{i:03d}.png", _add_defect(_mvtec_normal(rng, size),
                                                                      mask))
        write_image(root / "masks" / f"{i:03d}.png", mask)
    return root


# --- UCSD-like ---------------------------------------------------------------------------------


def _ellipse(
    y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float
) -> np.ndarray:
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1


def _ucsd_clip(
    rng: np.random.Generator, background: np.ndarray, n_frames: int, cart_from: int | None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames of one clip and the cart masks (empty before ``cart_from``, 1-based, or if None).

    Pedestrians are tall ellipses walking at most 1 px per frame; the "cart" is a wide bright
    rectangle that crosses the scene at several px per frame.
    """
    height, width = background.shape
    y, x = _grid(height, width)
    ry = 0.08 * height
    walkers = [
        (
            rng.uniform(0, height),
            rng.uniform(0, width),
            *rng.uniform(-1, 1, size=2),
            rng.choice([0.1, 0.9]),
        )
        for _ in range(int(rng.integers(3, 6)))
    ]
    cart_h, cart_w = 0.16 * height, 0.3 * width
    cart_top = rng.uniform(0.1, 0.9 - 0.16) * height
    n_cart = n_frames - cart_from + 1 if cart_from else 0
    speed = min(4.0, (width - cart_w - 4) / max(n_cart - 1, 1))
    frames, masks = [], []
    for t in range(n_frames):
        frame = background + rng.normal(0, 0.01, background.shape)
        for cy, cx, vy, vx, level in walkers:
            body = _ellipse(y, x, (cy + vy * t) % height, (cx + vx * t) % width, ry, 0.4 * ry)
            frame[body] = level
        mask = np.zeros_like(background, dtype=bool)
        if cart_from and t + 1 >= cart_from:
            left = 2 + speed * (t + 1 - cart_from)
            mask = (y >= cart_top) & (y < cart_top + cart_h) & (x >= left) & (x < left + cart_w)
            frame[mask] = 0.97
        frames.append(np.clip(frame, 0, 1).astype(np.float32))
        masks.append(mask)
    return frames, masks


def make_ucsd_like(
    out_root: Path,
    name: str = "UCSDped1",
    n_train_clips: int = 2,
    n_test_clips: int = 3,
    frames_per_clip: int = 12,
    size: tuple[int, int] = (120, 80),
    seed: int = 0,
    ext: str = ".tif",
    mask_style: Literal["NNN.bmp", "NNN.png", "frameNNN.png"] = "NNN.bmp",
    n_unlabeled: int = 1,
) -> Path:
    """Write a UCSD-style dataset folder ``out_root/name`` and return it.

    ``size`` is (width, height). Frames are ``NNN<ext>`` (1-based). Every test clip has a cart
    (the anomaly) from a third of the way in to its end; the last ``n_unlabeled`` test clips
    have no ``TestNNN_gt`` folder, the others a mask per frame named by ``mask_style``.
    ``Test/<name>.m`` lists the anomalous frame ranges as in the official release.
    """
    ext = ext if ext.startswith(".") else f".{ext}"
    if ext.lower() not in IMAGE_EXTENSIONS:
        raise ConfigError(f"frame extension must be one of {sorted(IMAGE_EXTENSIONS)}, not {ext}")
    if mask_style not in ("NNN.bmp", "NNN.png", "frameNNN.png"):
        raise ConfigError(
            f"mask_style must be 'NNN.bmp', 'NNN.png' or 'frameNNN.png', not {mask_style!r}"
        )
    _check_folder_name("name", name)
    width, height = size
    _check_count("frame width", width, 16)
    _check_count("frame height", height, 16)
    _check_count("n_train_clips", n_train_clips, 1)
    _check_count("n_test_clips", n_test_clips, 1)
    _check_count("frames_per_clip", frames_per_clip, 3)
    if not 0 <= n_unlabeled <= n_test_clips:
        raise ConfigError(f"n_unlabeled must be between 0 and n_test_clips, not {n_unlabeled}")
    rng = np.random.default_rng(seed)
    folder = Path(out_root) / name
    background = 0.5 + 0.08 * rng.standard_normal((height, width))
    background = gaussian_filter(background, sigma=3) + 0.1 * np.linspace(-1, 1, height)[:, None]
    for c in range(1, n_train_clips + 1):
        frames, _ = _ucsd_clip(rng, background, frames_per_clip, None)
        for t, frame in enumerate(frames, start=1):
            write_image(folder / "Train" / f"Train{c:03d}" / f"{t:03d}{ext}", frame)
    cart_from = frames_per_clip // 3 + 1
    for c in range(1, n_test_clips + 1):
        frames, masks = _ucsd_clip(rng, background, frames_per_clip, cart_from)
        labelled = c <= n_test_clips - n_unlabeled
        for t, (frame, mask) in enumerate(zip(frames, masks, strict=True), start=1):
            write_image(folder / "Test" / f"Test{c:03d}" / f"{t:03d}{ext}", frame)
            if labelled:
                mask_name = mask_style.replace("NNN", f"{t:03d}")
                write_image(folder / "Test" / f"Test{c:03d}_gt" / mask_name, mask)
    ranges = "".join(
        f"TestVideoFile{{end+1}}.gt_frame = [{cart_from}:{frames_per_clip}];\n"
        for _ in range(n_test_clips)
    )
    (folder / "Test" / f"{name}.m").write_text("TestVideoFile = {};\n" + ranges)
    return folder


# --- CLI entry ---------------------------------------------------------------------------------

def make_folder_dataset(out_root: Path, name: str = "images", n_train: int = 16,
                        n_test_normal: int = 4, n_test_abnormal: int = 4, size: int = 32,
                        seed: int = 0, grayscale: bool = False) -> Path:
    """:func:`make_folder_like` into ``out_root/name`` (``vaecam data synth folder``)."""
    return make_folder_like(Path(out_root) / name, n_train=n_train, n_test_normal=n_test_normal,
                            n_test_abnormal=n_test_abnormal, size=size, seed=seed,
                            grayscale=grayscale)


_MAKERS: dict[str, Callable[..., Path]] = {"mvtec": make_mvtec_like, "ucsd": make_ucsd_like,
                                           "folder": make_folder_dataset}


def synthesize(
    kind: Literal["mvtec", "ucsd", "folder"], out: Path, overwrite: bool = False, **options: Any
) -> Path:
    """Generate a synthetic dataset of ``kind`` under ``out`` (``vaecam data synth KIND OUT``).

    ``options`` are the keyword arguments of :func:`make_mvtec_like`, :func:`make_ucsd_like` or
    :func:`make_folder_dataset`. The generated dataset folder (``out/<category>`` or
    ``out/<name>``) is claimed as a vaecam
    output folder: an existing one is replaced only with ``overwrite`` and only if vaecam
    generated it; nothing else in ``out`` is touched. Returns that dataset folder: for MVTec the
    loaders take ``out`` as root and the category.
    """
    if kind not in _MAKERS:
        raise ConfigError(f"unknown synthetic dataset kind {kind!r}; choose mvtec, ucsd or folder")
    maker = _MAKERS[kind]
    params = inspect.signature(maker).parameters
    allowed = [p for p in params if p != "out_root"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for {kind}; valid: {', '.join(allowed)}"
        )
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file, not a folder; choose another folder")
    name_option = "category" if kind == "mvtec" else "name"
    name = options.get(name_option, params[name_option].default)
    _check_folder_name(name_option, name)
    with OutputFolder(out / name, f"data synth {kind}", overwrite=overwrite):
        return maker(out, **options)
