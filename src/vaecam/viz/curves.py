"""ROC curves and score plots."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from vaecam.viz.overlays import save  # noqa: E402


def roc_figure(path: Path, curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]],
               title: str = "pixel ROC") -> Path:
    """One ROC curve per entry ``name -> (fpr, tpr, auroc)``."""
    fig, ax = plt.subplots(figsize=(4.2, 4))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} ({auc:.3f})", lw=1.2)
    ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    return save(fig, path)


def bar_figure(path: Path, values: Mapping[str, float], ylabel: str, title: str,
               reference: float | None = None) -> Path:
    """Horizontal bars of one score per setting, with an optional reference line."""
    names = list(values)
    fig, ax = plt.subplots(figsize=(5, 0.3 * len(names) + 1.2))
    ax.barh(names, [values[n] for n in names], color="tab:blue")
    if reference is not None:
        ax.axvline(reference, color="gray", ls="--", lw=0.8)
    ax.set_xlabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.invert_yaxis()
    return save(fig, path)
