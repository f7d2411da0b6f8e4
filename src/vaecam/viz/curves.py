"""ROC curves and score plots.

Every curve gets its own colour (no colour is used twice in a figure), the baseline is drawn
last in black so that no other curve hides it, and legends sit outside the axes so that they
never cover the data.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes

from vaecam.viz.figures import save, subplots

BASELINE_STYLE = {"color": "black", "lw": 2.2, "zorder": 10}
# tab10 without its grey (kept for the chance line) and without a black: 9 colours, then the
# lighter tab20 shades; beyond 18 curves colours repeat with a dashed line instead.
_PALETTE = [c for i, c in enumerate(matplotlib.colormaps["tab10"].colors) if i != 7] + [
    c for i, c in enumerate(matplotlib.colormaps["tab20"].colors) if i % 2 == 1 and i != 15]


def curve_styles(names: Sequence[str], baseline: str | None = None) -> dict[str, dict]:
    """A distinct colour per curve (the baseline black), in the order the curves are drawn:
    every other curve first, the baseline last."""
    others = [n for n in names if n != baseline]
    styles = {}
    for i, name in enumerate(others):
        styles[name] = {"color": _PALETTE[i % len(_PALETTE)], "lw": 1.2,
                        "ls": "-" if i < len(_PALETTE) else "--"}
    if baseline in names:
        styles[baseline] = dict(BASELINE_STYLE)
    return styles


def fitted_title(text: str, width_inches: float, points: float = 9.0) -> str:
    """``text`` wrapped at spaces into lines that fit a figure ``width_inches`` wide."""
    per_line = max(20, int(width_inches * 72 / (0.55 * points)))
    return "\n".join(textwrap.wrap(text, per_line))


def _legend_outside(ax: Axes) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              frameon=False)


def roc_figure(path: Path, curves: Mapping[str, tuple[np.ndarray, np.ndarray, float]],
               title: str = "pixel ROC", baseline: str | None = "recon-abs") -> Path:
    """One ROC curve per entry ``name -> (fpr, tpr, auroc)``; ``baseline`` in black, on top."""
    fig, ax = subplots(figsize=(6.6, 4.0), layout="constrained")
    styles = curve_styles(list(curves), baseline)
    for name, style in styles.items():  # the baseline is last, so drawn above the others
        fpr, tpr, auc = curves[name]
        ax.plot(fpr, tpr, label=f"{name} ({auc:.3f})", **style)
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--", label="chance (0.500)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(fitted_title(title, 4.2), fontsize=9)
    _legend_outside(ax)
    return save(fig, path)


def metric_vs_epoch_figure(path: Path, curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
                           ylabel: str, highlight: str | None = None) -> Path:
    """One line per entry ``name -> (epochs, values)``; ``highlight`` (the baseline) in black,
    drawn last."""
    fig, ax = subplots(figsize=(8.5, 4), layout="constrained")
    for name, style in curve_styles(list(curves), highlight).items():
        epochs, values = curves[name]
        ax.plot(epochs, values, marker="o", ms=3, label=name, **style)
    ax.axhline(0.5, color="0.6", lw=0.8, ls="--")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    _legend_outside(ax)
    return save(fig, path)
