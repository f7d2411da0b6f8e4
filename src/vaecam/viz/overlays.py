"""Attention overlays and image grids (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch import Tensor  # noqa: E402


def to_display(image: Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) tensor/array in [0, 1] -> (H, W) or (H, W, 3) array for imshow."""
    arr = image.detach().cpu().float().numpy() if isinstance(image, Tensor) else np.asarray(image)
    if arr.ndim == 3:
        arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    return np.clip(arr, 0.0, 1.0)


def show_overlay(ax: plt.Axes, image: Tensor | np.ndarray, attention: Tensor | np.ndarray,
                 alpha: float = 0.5) -> None:
    """Draw ``image`` in gray with ``attention`` as a jet heat map on top.

    The colour scale spans each map's own min..max (display only; the data are not changed).
    """
    img = to_display(image)
    att = attention.detach().cpu().float().numpy() if isinstance(attention, Tensor) else attention
    att = np.asarray(att, dtype=np.float32)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    lo, hi = float(att.min()), float(att.max())
    ax.imshow(att, cmap="jet", alpha=alpha, vmin=lo, vmax=hi if hi > lo else lo + 1e-12)
    ax.set_axis_off()


def show_image(ax: plt.Axes, image: Tensor | np.ndarray, title: str | None = None) -> None:
    img = to_display(image)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)


def explanation_grid(path: Path, images: Tensor, recons: Tensor, maps: Tensor,
                     titles: Sequence[str] | None = None, masks: Tensor | None = None) -> Path:
    """Columns of (input, reconstruction, overlay[, ground-truth mask]) for each image."""
    rows = 3 if masks is None else 4
    n = len(images)
    fig, axes = plt.subplots(rows, n, figsize=(1.6 * n, 1.6 * rows), squeeze=False)
    labels = ["input", "reconstruction", "attention"] + ([] if masks is None else ["mask"])
    for i in range(n):
        show_image(axes[0, i], images[i], titles[i] if titles else None)
        show_image(axes[1, i], recons[i])
        show_overlay(axes[2, i], images[i], maps[i])
        if masks is not None:
            show_image(axes[3, i], masks[i].float())
    for r, label in enumerate(labels):
        axes[r, 0].text(-0.15, 0.5, label, transform=axes[r, 0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=8)
    return save(fig, path)


PALETTE_ABOVE_BYTES = 400_000


def save(fig: plt.Figure, path: Path) -> Path:
    """Save and close a figure, creating the folder.

    A PNG larger than ``PALETTE_ABOVE_BYTES`` (overlays of many maps: noisy heat maps compress
    badly) is stored with a 256-colour palette instead, about 3-5x smaller and alike to the eye,
    so that reports embedding many of them stay a few MB.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    if path.suffix.lower() == ".png" and path.stat().st_size > PALETTE_ABOVE_BYTES:
        from PIL import Image

        with Image.open(path) as image:
            palette = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
        palette.save(path, optimize=True)
    return path


def methods_grid(path: Path, images: Tensor, masks: Tensor, maps: dict[str, Tensor],
                 titles: Sequence[str] | None = None) -> Path:
    """One row per image: input, ground-truth mask, then one overlay column per method.

    Each overlay's colour scale spans that map's own range on that image, so the figure shows
    where each method points, not how its scores compare across images (the tables do that).
    """
    names = list(maps)
    n = len(images)
    cols = 2 + len(names)
    fig, axes = plt.subplots(n, cols, figsize=(1.5 * cols, 1.5 * n + 0.4), squeeze=False)
    for i in range(n):
        show_image(axes[i, 0], images[i], titles[i] if titles else None)
        show_image(axes[i, 1], masks[i].float(), "mask" if i == 0 else None)
        for j, name in enumerate(names):
            show_overlay(axes[i, 2 + j], images[i], maps[name][i])
            if i == 0:
                axes[i, 2 + j].set_title(name, fontsize=6)
    return save(fig, path)
