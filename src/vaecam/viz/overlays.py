"""Attention overlays and image grids (matplotlib, no display needed)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from torch import Tensor

from vaecam.viz.figures import save, subplots


def to_display(image: Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) tensor/array in [0, 1] -> (H, W) or (H, W, 3) array for imshow."""
    arr = image.detach().cpu().float().numpy() if isinstance(image, Tensor) else np.asarray(image)
    if arr.ndim == 3:
        arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    return np.clip(arr, 0.0, 1.0)


HEAT_CMAP = "inferno"  # perceptually uniform: equal steps in value look like equal steps
MASK_COLOR = "#00e5ff"  # the ground-truth contour: cyan stands out on gray and on inferno
SCALE_LABEL = "map scaled to its own range on each image (0 = min, 1 = max)"


def scaled(attention: Tensor | np.ndarray) -> np.ndarray:
    """A map rescaled to [0, 1] by its own min..max (a constant map is all 0), for display."""
    att = attention.detach().cpu().float().numpy() if isinstance(attention, Tensor) else attention
    att = np.asarray(att, dtype=np.float32)
    lo, hi = float(att.min()), float(att.max())
    return (att - lo) / (hi - lo) if hi > lo else np.zeros_like(att)


def pixel_aspect(shape: Sequence[int], aspect: float | None) -> float:
    """imshow's ``aspect`` (height / width of one pixel on screen) that shows an ``(H, W)``
    image at the display ratio ``aspect`` = width / height (None: square pixels), so that
    frames resized to a square for the model are shown at their true shape."""
    height, width = shape[-2], shape[-1]
    return 1.0 if aspect is None else width / (height * aspect)


def show_overlay(ax: Axes, image: Tensor | np.ndarray, attention: Tensor | np.ndarray,
                 alpha: float = 0.55, mask: Tensor | np.ndarray | None = None,
                 aspect: float | None = None) -> AxesImage:
    """Draw ``image`` in gray with ``attention`` on top in a perceptually uniform colour map,
    and the ground-truth ``mask`` (if given) as a contour; returns the heat layer for a
    colour bar (:func:`add_scale`).

    The colour scale spans each map's own min..max on that image (display only; the data are
    not changed): the figure shows where each map points, the tables how they compare.
    """
    img = to_display(image)
    ratio = pixel_aspect(img.shape[:2], aspect)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1, aspect=ratio)
    heat = ax.imshow(scaled(attention), cmap=HEAT_CMAP, alpha=alpha, vmin=0, vmax=1,
                     aspect=ratio)
    if mask is not None:
        draw_mask(ax, mask)
    ax.set_axis_off()
    return heat


def draw_mask(ax: Axes, mask: Tensor | np.ndarray) -> None:
    """The ground-truth region as a thin contour (nothing for an empty mask)."""
    arr = mask.detach().cpu().float().numpy() if isinstance(mask, Tensor) else np.asarray(mask)
    arr = np.asarray(arr, dtype=np.float32).squeeze()
    if arr.max() > arr.min():
        ax.contour(arr, levels=[0.5], colors=MASK_COLOR, linewidths=0.9)


def add_scale(fig: Figure, axes: Any, heat: AxesImage) -> None:
    """One colour bar for every overlay of the figure, saying what the colours mean."""
    bar = fig.colorbar(heat, ax=axes, fraction=0.025, pad=0.02, ticks=[0, 0.5, 1])
    bar.set_label(SCALE_LABEL, fontsize=7)
    bar.ax.tick_params(labelsize=7)


def show_image(ax: Axes, image: Tensor | np.ndarray, title: str | None = None,
               mask: Tensor | np.ndarray | None = None, aspect: float | None = None) -> None:
    img = to_display(image)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1,
              aspect=pixel_aspect(img.shape[:2], aspect))
    if mask is not None:
        draw_mask(ax, mask)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)


def explanation_grid(path: Path, images: Tensor, recons: Tensor, maps: Tensor,
                     titles: Sequence[str] | None = None, masks: Tensor | None = None) -> Path:
    """Columns of (input, reconstruction, overlay) for each image; a ground-truth mask is
    drawn as a contour on the overlay; one colour bar states the scale."""
    n = len(images)
    fig, axes = subplots(3, n, figsize=(1.6 * n + 1.2, 1.6 * 3), squeeze=False,
                         layout="constrained")
    heat = None
    for i in range(n):
        show_image(axes[0, i], images[i], titles[i] if titles else None)
        show_image(axes[1, i], recons[i])
        heat = show_overlay(axes[2, i], images[i], maps[i],
                            mask=None if masks is None else masks[i])
    for r, label in enumerate(["input", "reconstruction", "attention"]):
        axes[r, 0].text(-0.15, 0.5, label, transform=axes[r, 0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=8)
    if heat is not None:
        add_scale(fig, axes, heat)
    return save(fig, path)


def methods_grid(path: Path, images: Tensor, masks: Tensor, maps: dict[str, Tensor],
                 titles: Sequence[str] | None = None, aspect: float | None = None) -> Path:
    """One row per image: the input, then one overlay column per method; the ground-truth mask
    is a contour on every panel, ``aspect`` (width / height) restores frames that were resized
    to a square, and one colour bar states the scale.

    Each overlay's colour scale spans that map's own range on that image, so the figure shows
    where each method points, not how its scores compare across images (the tables do that).
    """
    names = list(maps)
    n = len(images)
    cols = 1 + len(names)
    width = 1.5 * (aspect or 1.0)
    fig, axes = subplots(n, cols, figsize=(width * cols + 1.0, 1.5 * n + 0.5),
                         squeeze=False, layout="constrained")
    heat = None
    for i in range(n):
        show_image(axes[i, 0], images[i], titles[i] if titles else None, mask=masks[i],
                   aspect=aspect)
        for j, name in enumerate(names):
            heat = show_overlay(axes[i, 1 + j], images[i], maps[name][i], mask=masks[i],
                                aspect=aspect)
            if i == 0:
                axes[i, 1 + j].set_title(wrap_title(name, width), fontsize=6)
    if heat is not None:
        add_scale(fig, axes, heat)
    fig.suptitle("ground truth: cyan contour", fontsize=7, color="0.3")
    return save(fig, path)


def wrap_title(text: str, inches: float, points: float = 6.0) -> str:
    """``text`` broken at spaces, commas and '=' into lines that fit ``inches`` of width at a
    font of ``points`` (about 0.6 em per character)."""
    per_line = max(8, int(inches * 72 / (0.6 * points)))
    return "\n".join(textwrap.wrap(text.replace(",", ", "), per_line, break_on_hyphens=False))
