"""Localisation quality along training: is a short training the reason attention loses?

:class:`LocalizationTracker` is a Lightning callback. Every ``every_n_epochs`` epochs (and after
the last one) it computes the chosen anomaly maps (the reconstruction-error baseline and
attention settings) on a fixed labelled subset, scores each by exact pixel AUROC, appends one
row to ``localization_vs_epoch.csv`` in the run folder, logs the values to every Lightning
logger (CSV and TensorBoard, ``localization/<map>``) with a few overlay images to TensorBoard,
and at the end draws ``localization_vs_epoch.png`` (pixel AUROC per map against epochs).

The labelled subset comes from the data the localise step scores (MNIST: digits with pasted
strokes; UCSD/MVTec: a seeded subset of the masked TEST images). It is recorded in the run's
``train_config.json`` under ``tracking``: it is for watching training, not a clean validation
set, and nothing is chosen on it.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from vaecam.errors import ConfigError
from vaecam.maps import AnomalyMap, compute_maps
from vaecam.metrics.localization import pixel_auroc
from vaecam.viz.curves import metric_vs_epoch_figure

CSV_NAME = "localization_vs_epoch.csv"
FIGURE_NAME = "localization_vs_epoch.png"


def labelled_subset(labels: Tensor, n: int, seed: int) -> list[int]:
    """``n`` seeded indices, anomalous items first (a quarter normal ones where there are)."""
    if n < 1:
        raise ConfigError(f"--track-images must be at least 1, not {n}")
    gen = torch.Generator().manual_seed(seed)
    positive = torch.nonzero(labels).flatten()
    negative = torch.nonzero(~labels).flatten()
    if positive.numel() == 0:
        raise ConfigError("the tracking subset has no anomalous image; localisation cannot be "
                          "scored on it")
    n_neg = min(len(negative), n // 4)
    n_pos = min(len(positive), n - n_neg)
    picks = positive[torch.randperm(len(positive), generator=gen)[:n_pos]].tolist()
    picks += negative[torch.randperm(len(negative), generator=gen)[:n_neg]].tolist()
    return sorted(picks)


class LocalizationTracker(L.Callback):
    """Score ``methods`` on (``images``, ``masks``) every ``every_n_epochs`` epochs."""

    def __init__(self, images: Tensor, masks: Tensor, methods: Sequence[AnomalyMap],
                 out_dir: Path, every_n_epochs: int = 1, batch_size: int = 16,
                 n_overlays: int = 4):
        if every_n_epochs < 1:
            raise ConfigError(f"--track-every must be at least 1, not {every_n_epochs}")
        masks = masks.bool()
        if not masks.any():
            raise ConfigError("the tracking subset has no anomalous pixel; localisation cannot "
                              "be scored on it")
        self.images = images
        self.masks = masks
        self.methods = list(methods)
        self.out_dir = Path(out_dir)
        self.every = every_n_epochs
        self.batch_size = batch_size
        self.n_overlays = n_overlays

    @property
    def csv_path(self) -> Path:
        return self.out_dir / CSV_NAME

    def _maps(self, model: torch.nn.Module, device: torch.device) -> dict[str, Tensor]:
        parts: dict[str, list[Tensor]] = {}
        for start in range(0, len(self.images), self.batch_size):
            batch = self.images[start : start + self.batch_size].to(device)
            for label, maps in compute_maps(model, batch, self.methods).items():
                parts.setdefault(label, []).append(maps.float().cpu())
        return {label: torch.cat(chunks) for label, chunks in parts.items()}

    def evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, float]:
        """Score every map now; append the CSV row and log it."""
        model = getattr(pl_module, "model", pl_module)
        maps = self._maps(model, pl_module.device)
        scores = {label: pixel_auroc(m, self.masks) for label, m in maps.items()}
        epoch, step = trainer.current_epoch + 1, trainer.global_step
        new = not self.csv_path.is_file()
        with self.csv_path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["epoch", "step", *scores])
            writer.writerow([epoch, step, *(f"{v:.6f}" for v in scores.values())])
        for logger in trainer.loggers:
            logger.log_metrics({f"localization/{k}": v for k, v in scores.items()}, step=step)
            self._log_overlays(logger, maps, step)
        return scores

    def _log_overlays(self, logger: Any, maps: dict[str, Tensor], step: int) -> None:
        """TensorBoard: per shown image, input | first attention map | mask, side by side."""
        add_images = getattr(getattr(logger, "experiment", None), "add_images", None)
        if add_images is None or self.n_overlays < 1:
            return
        label = next((k for k in maps if k.startswith("attention")), next(iter(maps)))
        n = min(self.n_overlays, len(self.images))
        images = self.images[:n].float().expand(-1, 3, -1, -1) if self.images.shape[1] == 1 \
            else self.images[:n].float()
        shown = maps[label][:n]
        lo = shown.amin(dim=(1, 2), keepdim=True)
        hi = shown.amax(dim=(1, 2), keepdim=True)
        heat = ((shown - lo) / (hi - lo).clamp_min(1e-12))[:, None].expand(-1, 3, -1, -1)
        mask = self.masks[:n].float()[:, None].expand(-1, 3, -1, -1)
        add_images(f"localization/{label}", torch.cat([images, heat, mask], dim=3),
                   global_step=step)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        last = trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs
        if trainer.is_global_zero and ((trainer.current_epoch + 1) % self.every == 0 or last):
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.csv_path.is_file():
            draw(self.csv_path, self.out_dir / FIGURE_NAME)


def read_rows(path: Path) -> tuple[list[str], np.ndarray]:
    """Map labels and a (rows, 2 + maps) array [epoch, step, aurocs...] of a tracking CSV."""
    with Path(path).open() as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    return header[2:], np.array([[float(v) for v in row] for row in body])


def draw(csv_path: Path, figure: Path) -> Path:
    """``localization_vs_epoch.png`` from a tracking CSV: pixel AUROC per map against epochs."""
    labels, values = read_rows(csv_path)
    curves = {label: (values[:, 0], values[:, 2 + i]) for i, label in enumerate(labels)}
    return metric_vs_epoch_figure(figure, curves, "pixel AUROC on the tracking subset",
                                  highlight=labels[0])
