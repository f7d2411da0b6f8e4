"""Disentanglement against reconstruction error, as in Figure 5b of the reproduction study."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vaecam.viz.figures import save, subplots

MARKERS = ("o", "^", "s", "D", "v", "P")


def disentanglement_scatter(
    path: Path,
    runs: Sequence[Mapping[str, Any]],
    x: str = "recon_error",
    y: str = "factorvae",
    group: str = "model",
    label: str = "gamma",
) -> Path:
    """One point per run: ``y`` (score) against ``x`` (reconstruction error).

    Runs of the same ``group`` share a marker; each point is labelled with its ``label`` value.
    """
    fig, ax = subplots(figsize=(5, 3.8))
    groups = list(dict.fromkeys(str(run[group]) for run in runs))
    for i, name in enumerate(groups):
        members = [run for run in runs if str(run[group]) == name]
        xs = [float(run[x]) for run in members]
        ys = [float(run[y]) for run in members]
        ax.scatter(xs, ys, marker=MARKERS[i % len(MARKERS)], s=36, label=name)
        for run, px, py in zip(members, xs, ys, strict=True):
            ax.annotate(f"{run[label]:g}" if isinstance(run[label], float) else str(run[label]),
                        (px, py), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlabel("reconstruction error (BCE per image)")
    ax.set_ylabel("disentanglement (FactorVAE metric)")
    ax.set_title(f"numbers next to markers: {label}", fontsize=8)
    ax.legend(fontsize=7)
    return save(fig, path)
