"""One trained model scored on the test set: every setting's maps from one shared forward pass
per batch, scored exactly (:class:`vaecam.metrics.localization.LocalizationEvaluator`) and
kept for the bootstrap; costs, overlays and the latent health of the model."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from vaecam.data.transforms import downscale_masks
from vaecam.errors import ConfigError, MetricInputError
from vaecam.experiments.localization.config import BASELINE, LocalizationConfig, MapSetting
from vaecam.maps import compute_maps
from vaecam.metrics.bootstrap import BootstrapResult, MapCollector, resample_counts
from vaecam.metrics.encoder_health import model_health
from vaecam.metrics.localization import LocalizationEvaluator

LATENT_SAMPLE = 256  # test images on which the explained model's latent health is measured

@dataclass
class Overlays:
    """The few test images shown in figures, with every setting's map at the image size."""

    images: list[Tensor] = field(default_factory=list)
    masks: list[Tensor] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    maps: dict[str, list[Tensor]] = field(default_factory=dict)
    aspect: float | None = None  # width / height to show them at (None: as they are)


@dataclass
class SeedEvaluation:
    """Exact metrics, bootstrap, costs and overlays of every setting for one trained model."""

    settings: list[MapSetting]
    metrics: dict[str, dict[str, float]]
    curves: dict[str, tuple[np.ndarray, np.ndarray]]
    ms_per_image: dict[str, float]
    bootstrap: BootstrapResult
    overlays: Overlays
    latent: dict[str, Any]
    n_images: int
    n_anomalous: int


def _scoring_pair(maps: Tensor, masks: Tensor, size: tuple[int, int], rule: str
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """(scored maps, their masks, maps at the image size for regions)."""
    if maps.shape[-2:] == masks.shape[-2:]:
        return maps, masks, maps
    small = downscale_masks(masks, maps.shape[-2], maps.shape[-1], rule)  # type: ignore[arg-type]
    full = F.interpolate(maps[:, None], size=size, mode="nearest")[:, 0]
    return maps, small, full


def _scoring_region(region: Tensor, scored: Tensor, rule: str) -> Tensor:
    """The evaluation region at the resolution of the scored maps."""
    if region.shape[-2:] == scored.shape[-2:]:
        return region
    return downscale_masks(region, scored.shape[-2], scored.shape[-1], rule)  # type: ignore[arg-type]


def _compute(settings: Sequence[MapSetting], model: nn.Module, images: Tensor
             ) -> dict[str, Tensor]:
    """Every setting's maps of one batch, keyed by setting name, from one shared forward pass."""
    maps = compute_maps(model, images, [s.method for s in settings])
    return {s.name: maps[s.method.label].float() for s in settings}


def time_per_image(settings: Sequence[MapSetting], model: nn.Module, images: Tensor
                   ) -> dict[str, float]:
    """Milliseconds per image of each setting computed alone on ``images`` (its own forward
    pass included), the second of two runs so that one-time work is not counted."""
    times = {}
    for s in settings:
        for _ in range(2):
            start = time.perf_counter()
            compute_maps(model, images, [s.method])
            elapsed = time.perf_counter() - start
        times[s.name] = 1000.0 * elapsed / len(images)
    return times


def evaluate(
    model: nn.Module,
    batches: Iterable[Sequence[Any]],
    settings: Sequence[MapSetting],
    cfg: LocalizationConfig,
    labels: Tensor,
    overlay_indices: Iterable[int] = (),
    device: torch.device | str = "cpu",
    counts: np.ndarray | None = None,
    progress: bool = True,
    regions: Tensor | None = None,
) -> SeedEvaluation:
    """Score every setting over ``batches`` of (images, masks, name, name) in one pass.

    ``labels`` are the dataset's image labels in stream order; ``counts`` the bootstrap
    resamples (shared by all seeds); ``overlay_indices`` positions whose maps are kept for
    figures; ``regions`` (bool, one (H, W) evaluation region per image in stream order; None:
    every pixel) restricts pixel AUROC, best IoU and AUPRO to those pixels (at the scoring
    resolution the region is reduced like the masks, by ``cfg.mask_rule``). Maps are computed
    on ``device`` (where ``model`` must be) and scored on the CPU.
    """
    separate = cfg.resize == "downscale-masks"
    scorers = {s.name: LocalizationEvaluator(cfg.max_fpr, full_size_regions=separate,
                                             reductions=("max",)) for s in settings}
    collector = MapCollector()
    full_collector = MapCollector() if separate else collector
    timings: dict[str, float] = {}
    keep = set(overlay_indices)
    overlays = Overlays(maps={s.name: [] for s in settings})
    seen = n_anomalous = 0
    health_images: list[Tensor] = []  # the first LATENT_SAMPLE test images
    for images, masks, first, second in tqdm(batches, desc="localisation", leave=False,
                                             disable=not progress):
        size = (images.shape[-2], images.shape[-1])
        masks = masks.bool()
        if not timings:
            timings = time_per_image(settings, model, images.to(device))
        maps = _compute(settings, model, images.to(device))
        inside = None if regions is None else regions[seen : seen + images.shape[0]]
        for s in settings:
            scored, small, full = _scoring_pair(maps[s.name].cpu(), masks, size, cfg.mask_rule)
            small_region = (None if inside is None
                            else _scoring_region(inside, scored, cfg.mask_rule))
            scorers[s.name].update(scored, small, small_region,
                                   full=(full, masks, inside) if separate else None)
            collector.update(s.name, scored, small, small_region)
            if separate:
                full_collector.update(s.name, full, masks, inside)
        for i in range(images.shape[0]):
            if seen + i in keep:
                overlays.images.append(images[i].cpu())
                overlays.masks.append(masks[i])
                second_i = second[i].item() if torch.is_tensor(second[i]) else second[i]
                overlays.titles.append(f"{first[i]}/{second_i}")
                for s in settings:
                    shown = maps[s.name][i : i + 1]
                    if shown.shape[-2:] != size:
                        shown = F.interpolate(shown[:, None], size=size, mode="bilinear",
                                              align_corners=False)[:, 0]
                    overlays.maps[s.name].append(shown[0].cpu())
        if seen < LATENT_SAMPLE:
            health_images.append(images[: LATENT_SAMPLE - seen])
        seen += images.shape[0]
        n_anomalous += int(masks.flatten(1).any(dim=1).sum())
    if seen == 0:
        raise ConfigError("the test set is empty; check --data and --max-images")
    label_array = labels.numpy().astype(bool)
    metrics = {}
    for s in settings:
        try:
            metrics[s.name] = scorers[s.name].result(label_array)
        except MetricInputError as exc:
            raise MetricInputError(f"map '{s.name}': {exc}") from exc
    if counts is None:
        counts = resample_counts(seen, cfg.n_resamples, cfg.bootstrap_seed, strata=label_array)
    boot = collector.result(BASELINE, counts=counts, max_fpr=cfg.max_fpr,
                            point_estimates=metrics)
    if separate:
        boot = _merge_resolutions(boot, full_collector.result(
            BASELINE, counts=counts, max_fpr=cfg.max_fpr, point_estimates=metrics))
    curves = {s.name: scorers[s.name].roc_curve()[:2] for s in settings}
    latent = model_health(model, torch.cat(health_images).to(device))
    return SeedEvaluation(
        settings=list(settings), metrics=metrics, curves=curves,
        ms_per_image=timings, bootstrap=boot,
        overlays=overlays, latent=latent, n_images=seen, n_anomalous=n_anomalous,
    )


def _merge_resolutions(low: BootstrapResult, full: BootstrapResult) -> BootstrapResult:
    """Pixel AUROC and best IoU from the scoring resolution, AUPRO and image AUROC from the
    full-size masks (downscale-masks mode)."""
    settings = {}
    for name, setting in low.settings.items():
        other = full.settings[name]
        metrics = {m: (other.metrics[m] if m in ("aupro", "image_auroc_max") else v)
                   for m, v in setting.metrics.items()}
        vs = {m: (other.vs_baseline[m] if m in ("aupro", "image_auroc_max") else v)
              for m, v in setting.vs_baseline.items()}
        settings[name] = type(setting)(metrics, vs)
    return type(low)(settings, low.baseline, low.n_images, low.n_resamples, low.max_fpr,
                     low.counts_digest, low.degenerate)
