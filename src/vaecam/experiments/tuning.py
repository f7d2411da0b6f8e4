"""Choose each map method's options on training data, never on test masks.

Normal training images get CutPaste anomalies (:func:`vaecam.data.anomalies.cut_paste`); every
candidate setting of a map family is scored on them by the mean of pixel AUROC and AUPRO, averaged
over the seeds' models, and the best candidate of each family is kept. The test evaluation then
uses exactly that setting, so a method table row is a method with options fixed before the test
set was looked at. Each map class names its candidates
(:meth:`vaecam.maps.base.AnomalyMap.candidates`): the smoothing of the gradient maps, combi and
``recon-smooth``; the projection's steps and distance weight; for attention (and
attention-x-recon) the grid of layers x methods x activations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vaecam.data.anomalies import cut_paste
from vaecam.maps import compute_maps
from vaecam.metrics.localization import aupro, pixel_auroc

CRITERION = "mean of pixel AUROC and AUPRO (FPR<=0.3), averaged over the seeds' models"


@dataclass
class TuningSet:
    """Normal training images with CutPaste anomalies, and how they were made."""

    images: Tensor
    masks: Tensor
    description: str


def tuning_set(train_images: Tensor, n: int = 64, seed: int = 0) -> TuningSet:
    """``n`` CutPaste anomalies made from ``train_images`` (a sample of the training split)."""
    images, masks = cut_paste(train_images, n, seed)
    return TuningSet(images, masks, f"{n} CutPaste anomalies made from {len(train_images)} "
                                    f"training images (seed {seed})")


def _score(models: Mapping[int, nn.Module], candidates: Mapping[int, Sequence[Any]],
           data: TuningSet, device: torch.device, batch_size: int) -> np.ndarray:
    """(candidates, seeds) criterion values; ``candidates`` per seed, aligned by position."""
    n_candidates = len(next(iter(candidates.values())))
    scores = np.zeros((n_candidates, len(models)))
    masks = data.masks
    for j, (seed, model) in enumerate(models.items()):
        parts: dict[str, list[Tensor]] = {}
        for start in range(0, len(data.images), batch_size):
            batch = data.images[start : start + batch_size].to(device)
            for label, m in compute_maps(model, batch, list(candidates[seed])).items():
                parts.setdefault(label, []).append(m.float().cpu())
        for i, method in enumerate(candidates[seed]):
            maps = torch.cat(parts[method.label])
            if maps.shape[-2:] != masks.shape[-2:]:
                maps = torch.nn.functional.interpolate(maps[:, None], size=masks.shape[-2:],
                                                       mode="nearest")[:, 0]
            scores[i, j] = 0.5 * (pixel_auroc(maps, masks) + aupro(maps, masks))
    return scores


def choose(families: Mapping[str, Mapping[int, Sequence[Any]]],
           models: Mapping[int, nn.Module], data: TuningSet, device: torch.device | str = "cpu",
           batch_size: int = 16) -> dict[str, dict[str, Any]]:
    """For each family, the position of the best candidate and every candidate's scores.

    ``families`` maps a family name to, per seed, its candidate AnomalyMap instances (one
    setting each, in the same order for every seed).
    """
    device = torch.device(device)
    chosen = {}
    for family, per_seed in families.items():
        scores = _score(models, per_seed, data, device, batch_size)
        best = int(np.argmax(scores.mean(axis=1)))
        labels = [c.label for c in next(iter(per_seed.values()))]
        chosen[family] = {
            "best": best,
            "chosen": labels[best],
            "candidates": [{"setting": label, "per_seed": scores[i].tolist(),
                            "mean": float(scores[i].mean())} for i, label in enumerate(labels)],
        }
    return chosen
