"""Factor traversals of a ground-truth dataset: one row per factor, its values along the row."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from vaecam.data.ground_truth import GroundTruthData


def traversal_figure(
    data: GroundTruthData,
    path: Path,
    reference: Sequence[int] | None = None,
    max_columns: int = 8,
) -> Path:
    """Save a grid: one row per non-constant factor, its values (evenly spaced) along columns.

    Every other factor stays at ``reference`` (default: the middle value of each factor).
    """
    reference = np.asarray(
        [size // 2 for size in data.factor_sizes] if reference is None else reference, np.int64
    )
    varied = [i for i, size in enumerate(data.factor_sizes) if size > 1]
    figure = Figure(figsize=(1.0 + 0.8 * max_columns, 0.85 * len(varied)))
    axes = figure.subplots(len(varied), max_columns, squeeze=False)
    for row, factor in enumerate(varied):
        size = data.factor_sizes[factor]
        values = np.unique(np.linspace(0, size - 1, min(size, max_columns)).round().astype(int))
        factors = np.repeat(reference[None], len(values), axis=0)
        factors[:, factor] = values
        images = data.observations_from_factors(factors)[:, 0]
        for column, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if column < len(values):
                ax.imshow(images[column], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(str(values[column]), fontsize=7, pad=2)
            else:
                ax.axis("off")
        axes[row, 0].set_ylabel(data.factor_names[factor], fontsize=9)
    figure.subplots_adjust(left=0.08, right=0.99, top=0.95, bottom=0.01, wspace=0.05, hspace=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    return path
