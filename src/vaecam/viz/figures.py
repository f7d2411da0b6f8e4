"""Making and saving figures without pyplot: no display, no global backend, no figure registry.

A :class:`matplotlib.figure.Figure` built directly renders through Agg when it is saved, so
importing vaecam never changes the caller's matplotlib backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
             layout: str | None = None, squeeze: bool = True) -> tuple[Figure, Any]:
    """A new figure and its grid of axes, as :func:`matplotlib.pyplot.subplots` returns them."""
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


PALETTE_ABOVE_BYTES = 400_000


def save(fig: Figure, path: Path) -> Path:
    """Save a figure, creating the folder.

    A PNG larger than ``PALETTE_ABOVE_BYTES`` (overlays of many maps: noisy heat maps compress
    badly) is stored with a 256-colour palette instead, about 3-5x smaller and alike to the eye,
    so that reports embedding many of them stay a few MB.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    if path.suffix.lower() == ".png" and path.stat().st_size > PALETTE_ABOVE_BYTES:
        from PIL import Image

        with Image.open(path) as image:
            palette = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
        palette.save(path, optimize=True)
    return path
