"""Degenerate anomaly maps: maps that cannot rank pixels, so their metrics mean nothing.

A map that is constant over every image (an all-zero ReLU attention map, say) ranks no pixel
above another: its pixel AUROC is exactly 0.5 and its image AUROC 0.5 by ties, numbers that look
like chance but are no measurement of the method. A map that is the same for every image (the
maps of a model whose output does not depend on its input) ranks pixels by position only. Both
are marked ``degenerate`` and left out of every mean instead of being averaged in.
"""

from __future__ import annotations

import numpy as np

# Relative to the largest absolute value of the maps: float32 rounding noise is ~1e-7.
TOLERANCE = 1e-6
CONSTANT = "constant over every image"
IDENTICAL = "the same map for every image"


def degeneracy(maps: np.ndarray) -> str | None:
    """Why the (N, H, W) maps are degenerate (:data:`CONSTANT` or :data:`IDENTICAL`), or None.

    Values closer than ``TOLERANCE`` times the maps' largest absolute value count as equal. One
    image alone is never called identical to itself.
    """
    maps = np.asarray(maps)
    flat = maps.reshape(len(maps), -1)
    tolerance = TOLERANCE * float(np.abs(flat).max(initial=0.0))
    spread = flat.max(axis=1) - flat.min(axis=1)
    if (spread <= tolerance).all():
        return CONSTANT
    if len(flat) > 1 and all(np.abs(row - flat[0]).max() <= tolerance for row in flat[1:]):
        return IDENTICAL
    return None
