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


def metric_vs_epoch_figure(path: Path, curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                           ylabel: str, highlight: str | None = None) -> Path:
    """One line per entry ``name -> (epochs, values)``; ``highlight`` (the baseline) in black."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (epochs, values) in curves.items():
        style = {"color": "black", "lw": 2.0} if name == highlight else {"lw": 1.0}
        ax.plot(epochs, values, marker="o", ms=3, label=name, **style)
    ax.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6, loc="best")
    return save(fig, path)
