"""A whole localisation run: every seed's model loaded, the test subset and its bootstrap
resamples fixed once, map options tuned on training data, every seed evaluated and
aggregated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from vaecam.attention import LatentStats
from vaecam.errors import ConfigError
from vaecam.experiments.localization.aggregation import Aggregate, aggregate
from vaecam.experiments.localization.config import LocalizationConfig
from vaecam.experiments.localization.evaluation import evaluate
from vaecam.experiments.tuning import CRITERION, choose, tuning_set
from vaecam.maps.mean_diff import mean_image
from vaecam.metrics.bootstrap import resample_counts


def load_models(path: Path, seeds: Sequence[int] | None, expected: str
                ) -> tuple[dict[int, nn.Module], dict[int, dict[str, Any]], dict[int, Path]]:
    """(model, checkpoint metadata, checkpoint path) per seed of a ``--checkpoint`` value."""
    from vaecam.experiments.seeds import resolve_checkpoints
    from vaecam.training.checkpoints import load_model

    checkpoints = resolve_checkpoints(path, seeds)
    models, metas = {}, {}
    for seed, checkpoint in checkpoints.items():
        models[seed], metas[seed] = load_model(checkpoint, expected=expected)
    return models, metas, checkpoints


def resolve_device(name: str | None) -> torch.device:
    """``auto`` (or None): the GPU when one is visible, else the CPU; otherwise as named."""
    if not name or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} asked for, but no GPU is visible; use --device cpu")
    return torch.device(name)



def sample_images(dataset: Dataset, n: int = 256) -> Tensor:
    """Up to ``n`` evenly spaced items of an image dataset, stacked (the tuning pool)."""
    picks = subset_indices(len(dataset), n)  # type: ignore[arg-type]
    items = [dataset[i] for i in picks]
    return torch.stack([item[0] if isinstance(item, (tuple, list)) else item for item in items])


def subset_indices(n_total: int, max_images: int | None) -> list[int]:
    """All indices, or ``max_images`` evenly spaced ones (a quick run that keeps both classes
    where the full set has them)."""
    if max_images is None or max_images >= n_total:
        return list(range(n_total))
    return sorted(set(np.linspace(0, n_total - 1, max_images).round().astype(int).tolist()))


def overlay_indices(labels: Tensor, n: int) -> list[int]:
    """``n`` evenly spaced anomalous items (all items if none is anomalous)."""
    pool = torch.nonzero(labels).flatten().tolist() or list(range(len(labels)))
    if n <= 0 or not pool:
        return []
    picks = np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int)
    return sorted({pool[i] for i in picks})


def training_mean_image(dataset: Dataset, batch_size: int) -> Tensor:
    """The mean image of a training set (items: an image, or a tuple led by one)."""
    return mean_image(DataLoader(dataset, batch_size=batch_size))  # type: ignore[arg-type]


def tune(cfg: LocalizationConfig, models: Mapping[int, nn.Module],
         stats: Mapping[int, LatentStats | None], train_images: Tensor,
         device: torch.device, batch_size: int) -> dict[str, Any]:
    """Fix every tunable family of ``cfg`` to its best candidate on CutPaste anomalies made from
    ``train_images``; returns the record of what was tried and chosen."""
    data = tuning_set(train_images, cfg.tune_images, cfg.bootstrap_seed)
    per_seed = {seed: cfg.candidates(stats.get(seed)) for seed in models}
    families = next(iter(per_seed.values()))
    for model in models.values():
        model.to(device)
    record = choose({f: {seed: [c.method for c in per_seed[seed][f]] for seed in models}
                     for f in families}, models, data, device, batch_size)
    for family, result in record.items():
        cfg.apply_choice(family, families[family], result["best"])
        result["chosen_setting"] = families[family][result["best"]].name
    return {"data": data.description, "criterion": CRITERION, "families": record}


def evaluate_seeds(
    models: Mapping[int, nn.Module],
    test_set: Dataset,
    labels: Tensor,
    cfg: LocalizationConfig,
    options: Mapping[str, Any],
    stats_sets: Mapping[int, Dataset] | None = None,
    train_images: Tensor | None = None,
    units: tuple[str, Sequence[Any]] | None = None,
    regions: Tensor | None = None,
) -> Aggregate:
    """Evaluate every seed's model on the same test images (same resamples) and aggregate.

    ``options``: ``max_images``, ``eval_batch_size``, ``overlays``, ``device``, ``no_progress``.
    ``stats_sets`` (per seed) are the training data: ``mean-diff`` subtracts their mean image
    (every seed's models see the same training images, so the first seed's set is averaged),
    and they pool latent statistics when normal-difference maps are asked for. With
    ``cfg.tune``, map options are first chosen on CutPaste anomalies made from ``train_images``
    (normal training images; required then). ``units`` (a name such as ``"clip"`` and one id
    per test item) makes the bootstrap resample whole units; default: images. ``regions``
    (bool (N, H, W), one per test item; None: every pixel) is the evaluation region of the
    pixel metrics (see :func:`evaluate`).
    """
    indices = subset_indices(len(test_set), options.get("max_images"))
    labels = labels[indices]
    batch_size = int(options.get("eval_batch_size") or 16)
    device = resolve_device(options.get("device"))
    unit, unit_ids = ("image", None) if units is None else (units[0], [units[1][i]
                                                                       for i in indices])
    counts = resample_counts(len(indices), cfg.n_resamples, cfg.bootstrap_seed,
                             strata=labels.numpy(), units=unit_ids)
    if not stats_sets:
        raise ConfigError("the mean-diff reference needs the training data; pass stats_sets")
    mean = training_mean_image(next(iter(stats_sets.values())), batch_size)
    shown = overlay_indices(labels, int(options.get("overlays", 4)))
    needs_stats = cfg.needs_latent_stats()
    stats: dict[int, LatentStats | None] = {}
    for seed, model in models.items():
        stats[seed] = None
        if needs_stats:
            if not stats_sets or seed not in stats_sets:
                raise ConfigError("normal-difference needs the training data to pool "
                                  "statistics")
            model.to(device)
            loader = DataLoader(stats_sets[seed], batch_size=batch_size)
            stats[seed] = LatentStats.from_batches(model, loader)
    tuning = {}
    if cfg.tune:
        if train_images is None:
            raise ConfigError("--tune needs the training images to make synthetic anomalies")
        tuning = tune(cfg, models, stats, train_images, device, batch_size)
    evaluations = {}
    for seed, model in models.items():
        model.to(device)
        settings = cfg.settings(model, stats[seed], mean)
        loader = DataLoader(Subset(test_set, indices), batch_size=batch_size, shuffle=False)
        evaluations[seed] = evaluate(model, loader, settings, cfg, labels, shown, device,
                                     counts, progress=not options.get("no_progress"),
                                     regions=None if regions is None else regions[indices])
        evaluations[seed].overlays.aspect = getattr(test_set, "display_aspect", None)
        model.cpu()
    n_units = len(indices) if unit_ids is None else len(set(unit_ids))
    result = aggregate(evaluations, unit, n_units, cfg.bootstrap_seed)
    result.tuning = tuning
    return result
