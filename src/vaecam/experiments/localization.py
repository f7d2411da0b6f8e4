"""Anomaly-localisation evaluation shared by MNIST, UCSD and MVTec: every map, every seed.

One streaming pass per trained model (one per seed) computes every anomaly map of
:mod:`vaecam.maps` on each test batch from one shared forward pass: the reconstruction
baselines, the attention grid (encoder layer x method x activation, the papers' ambiguities)
and the methods beyond the papers. Each map is scored exactly (pixel AUROC, best IoU, AUPRO up to
FPR 0.3, image AUROC from the map's maximum) and kept for the bootstrap over test units
(:mod:`vaecam.metrics.bootstrap`; images, or whole clips of a video set): 95% intervals per
seed. Over seeds every number becomes ``mean ± std`` with the two-level interval of the seed
mean (seeds, then test units, resampled), and every map gets two paired verdicts from it:
against the ``recon-abs`` baseline and against the better of the trivial references
``mean-diff`` and ``random`` (chosen per metric), which every run scores. A map is a win only
when both verdicts are ``better``. Degenerate maps (constant over every image, or the same for
every image) are marked and left out of every mean.

Resolution (``resize``): ``upsample-maps`` compares every map with the masks at the image size;
``downscale-masks`` keeps attention maps at their layer's resolution and reduces the masks
there for pixel AUROC and best IoU (the reproduction's alternative), while AUPRO regions and
image labels always come from the full-size masks (the attention map is enlarged by repeating
its cells for them).

Every report also states the latent health of the model it explains: KL, active units and the
spread of ``mu`` on the test images. A model with no active unit has no latent code left; its
attention rows are marked, since gradients of a constant ``mu`` carry no information.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from vaecam.attention import LatentStats
from vaecam.data.transforms import downscale_masks
from vaecam.errors import ConfigError, MetricInputError
from vaecam.experiments.tuning import CRITERION, choose, tuning_set
from vaecam.maps import AnomalyMap, compute_maps, parse_maps
from vaecam.maps.mean_diff import mean_image
from vaecam.maps.registry import build_setting, map_class
from vaecam.maps.setting import Setting, SettingContext
from vaecam.metrics.bootstrap import (
    BootstrapResult,
    MapCollector,
    aggregate_seeds,
    resample_counts,
)
from vaecam.metrics.encoder_health import model_health
from vaecam.metrics.localization import PixelROCAccumulator, image_auroc
from vaecam.report.table import Table

Resize = Literal["upsample-maps", "downscale-masks"]
RESIZE_MODES = ("upsample-maps", "downscale-masks")
BASELINE = "recon-abs"
# Trivial maps every run scores: a map that does not beat them has not shown anything.
REFERENCES = ("mean-diff", "random")
LATENT_SAMPLE = 256  # test images on which the explained model's latent health is measured


@dataclass(frozen=True)
class MapSetting:
    """One row of results: its setting (family, grid point, options) and the map method built
    from it."""

    key: Setting
    method: AnomalyMap

    @property
    def name(self) -> str:
        """The row label (``attention conv3 m2 relu``, ``grad-kl``)."""
        return self.key.label()

    @property
    def family(self) -> str:
        return self.key.family

    @property
    def layer(self) -> str:
        return self.key.layer

    @property
    def is_attention(self) -> bool:
        return self.family == "attention"


@dataclass
class LocalizationConfig:
    """The switches of a localisation run.

    ``maps`` is a ``--maps`` value (names, ``cheap``, ``all``); ``attention`` in it expands to
    the grid ``layers`` x ``methods`` x ``activations``. ``layers`` maps table labels (conv3)
    to module names (encoder.4).
    """

    layers: dict[str, str]
    maps: str = "cheap"
    methods: Sequence[str] = ("1", "2")
    activations: Sequence[str] = ("relu", "abs")
    grad_norm: str = "none"
    activation_order: str = "before"
    resize: Resize = "upsample-maps"
    mask_rule: Literal["majority", "any"] = "majority"
    smooth_sigma: float | None = None
    projection: dict[str, Any] = field(default_factory=dict)
    max_fpr: float = 0.3
    n_resamples: int = 1000
    bootstrap_seed: int = 0
    tune: bool = False
    tune_images: int = 64
    chosen: dict[str, dict[str, Any]] = field(default_factory=dict)
    tuned_attention: str = ""
    region: str = "image"  # evaluation region of the pixel metrics (named by the experiment)

    def __post_init__(self) -> None:
        if self.resize not in RESIZE_MODES:
            raise ConfigError(f"--resize must be one of {', '.join(RESIZE_MODES)}")
        if self.n_resamples < 100:
            raise ConfigError(f"--resamples must be at least 100, not {self.n_resamples}")

    def context(self, stats: LatentStats | None = None,
                mean_training_image: Tensor | None = None) -> SettingContext:
        """What this run fixes for every map family: layers, attention switches, the options
        given on the command line, and the training data's statistics and mean image."""
        options: dict[str, dict[str, Any]] = {}
        if self.smooth_sigma is not None:
            for name in ("grad-elbo", "grad-kl", "grad-recon", "combi"):
                options[name] = {"smooth_sigma": self.smooth_sigma}
        if self.projection:
            options["projection"] = dict(self.projection)
        return SettingContext(self.layers, tuple(self.methods), tuple(self.activations),
                              self.grad_norm, self.activation_order,
                              self.resize == "upsample-maps", options, stats,
                              mean_training_image)

    def settings(self, model: nn.Module, stats: LatentStats | None = None,
                 mean_training_image: Tensor | None = None) -> list[MapSetting]:
        """The baseline and the trivial references first, then every map of ``maps``, each
        expanded by its class (attention into its grid) with the options chosen on training
        data; ``mean_training_image`` is what ``mean-diff`` subtracts."""
        context = self.context(stats, mean_training_image)
        return [MapSetting(key, build_setting(key, context))
                for family in self.families()
                for key in map_class(family).settings(context, self.chosen.get(family))]

    def families(self) -> list[str]:
        """The map families asked for, the baseline and the trivial references first."""
        return [m.name for m in parse_maps(",".join((BASELINE, *REFERENCES, self.maps)))]

    def needs_latent_stats(self) -> bool:
        """True when a map asked for needs latent statistics of the training data."""
        context = self.context()
        return any(map_class(f).needs_latent_stats(context) for f in self.families())

    def candidates(self, stats: LatentStats | None) -> dict[str, list[MapSetting]]:
        """The settings tuning chooses among, per tunable family that was asked for."""
        context = self.context(stats)
        out: dict[str, list[MapSetting]] = {}
        for family in self.families():
            keys = map_class(family).candidates(context)
            if keys:
                out[family] = [MapSetting(key, build_setting(key, context)) for key in keys]
        return out

    def apply_choice(self, family: str, candidates: Sequence[MapSetting], best: int) -> None:
        """Fix ``family`` to its candidate ``best`` (chosen on training data), or for a family
        whose every setting is scored (attention), mark that one."""
        chosen = candidates[best].key
        if map_class(family).tuning_marks_one:
            self.tuned_attention = chosen.label()
        else:
            self.chosen[family] = dict(chosen.options)

    def to_json(self) -> dict[str, Any]:
        return {"maps": self.maps, "layers": self.layers, "methods": list(self.methods),
                "activations": list(self.activations), "grad_norm": self.grad_norm,
                "activation_order": self.activation_order, "resize": self.resize,
                "mask_rule": self.mask_rule, "smooth_sigma": self.smooth_sigma,
                "projection": self.projection, "max_fpr": self.max_fpr,
                "n_resamples": self.n_resamples, "bootstrap_seed": self.bootstrap_seed,
                "region": self.region,
                "baseline": BASELINE, "trivial_references": list(REFERENCES),
                "tune": self.tune, "tune_images": self.tune_images,
                "chosen_on_training_data": self.chosen,
                "attention_chosen_on_training_data": self.tuned_attention}


def resolve_layers(model: nn.Module, requested: Sequence[str]) -> dict[str, str]:
    """Table label -> module name for layers given by label (``conv2``) or dotted name.

    Labels come from the model's ``conv_layers``; a name it does not list is its own label.
    """
    known: dict[str, str] = dict(getattr(model, "conv_layers", {}))
    inverse = {module: label for label, module in known.items()}
    modules = dict(model.named_modules())
    layers = {}
    for name in requested:
        module = known.get(name, name)
        if module not in modules:
            choices = ", ".join(f"{k} ({v})" for k, v in known.items()) or "its conv layers"
            raise ConfigError(f"unknown layer '{name}'; choose among {choices}")
        layers[inverse.get(module, name)] = module
    return layers


# --- one model -----------------------------------------------------------------------------------


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


class _Scorer:
    """Exact streaming metrics of one setting: pixel ROC at the scoring resolution; AUPRO with
    the full-size masks' regions; image AUROC from each map's maximum and the dataset labels.
    The pixel metrics count only the pixels of the evaluation region when one is given."""

    def __init__(self, separate_regions: bool, chunk_pixels: int = 1 << 22):
        self.pixels = PixelROCAccumulator(regions=not separate_regions)
        self.regions = PixelROCAccumulator(regions=True) if separate_regions else self.pixels
        self.image_max: list[np.ndarray] = []
        self.chunk = chunk_pixels
        self._pending: list[tuple[Tensor, ...]] = []

    def update(self, scored: Tensor, masks: Tensor, full: Tensor, full_masks: Tensor,
               region: tuple[Tensor, Tensor] | None = None) -> None:
        """Add a batch; ``region``: the evaluation region at the scoring and at the full size."""
        self._pending.append((scored, masks, full, full_masks, *(region or ())))
        self.image_max.append(scored.flatten(1).amax(dim=1).double().numpy())
        if sum(p[0].numel() for p in self._pending) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        """Merge pending batches at once: a few large updates cost less than many small ones."""
        if not self._pending:
            return
        scored, masks, full, full_masks, *region = (
            torch.cat(parts) for parts in zip(*self._pending, strict=True))
        small_region, full_region = region or (None, None)
        self.pixels.update(scored, masks, small_region)
        if self.regions is not self.pixels:
            self.regions.update(full, full_masks, full_region)
        self._pending = []

    def result(self, labels: np.ndarray, max_fpr: float) -> dict[str, float]:
        self.flush()
        iou, threshold = self.pixels.best_iou()
        result = {"pixel_auroc": self.pixels.auroc(), "best_iou": iou,
                  "best_iou_threshold": threshold, "aupro": self.regions.aupro(max_fpr)}
        if labels.any() and not labels.all():
            maxima = np.concatenate(self.image_max)
            result["image_auroc_max"] = image_auroc(maxima[:, None, None],
                                                    labels[:, None, None].astype(bool))
        return result


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
    scorers = {s.name: _Scorer(separate) for s in settings}
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
            pair = None if inside is None else (_scoring_region(inside, scored, cfg.mask_rule),
                                                inside)
            scorers[s.name].update(scored, small, full, masks, pair)
            collector.update(s.name, scored, small, None if pair is None else pair[0])
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
            metrics[s.name] = scorers[s.name].result(label_array, cfg.max_fpr)
        except MetricInputError as exc:
            raise MetricInputError(f"map '{s.name}': {exc}") from exc
    if counts is None:
        counts = resample_counts(seen, cfg.n_resamples, cfg.bootstrap_seed, strata=label_array)
    boot = collector.result(BASELINE, counts=counts, max_fpr=cfg.max_fpr,
                            point_estimates=metrics)
    if separate:
        boot = _merge_resolutions(boot, full_collector.result(
            BASELINE, counts=counts, max_fpr=cfg.max_fpr, point_estimates=metrics))
    curves = {s.name: scorers[s.name].pixels.roc_curve()[:2] for s in settings}
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


# --- several seeds -------------------------------------------------------------------------------


@dataclass
class Aggregate:
    """Every seed's evaluation, the cells over seeds (``aggregate_seeds`` JSON) and how map
    options were chosen on training data (empty without tuning)."""

    seeds: dict[int, SeedEvaluation]
    cells: dict[str, Any]
    tuning: dict[str, Any] = field(default_factory=dict)

    @property
    def first(self) -> SeedEvaluation:
        return next(iter(self.seeds.values()))

    def collapsed_seeds(self) -> list[int]:
        return [seed for seed, e in self.seeds.items() if e.latent["collapsed"]]

    def cell(self, setting: str, metric: str) -> dict[str, Any] | None:
        return self.cells["settings"].get(setting, {}).get(metric)

    def ms_per_image(self, setting: str) -> float:
        return float(np.mean([e.ms_per_image[setting] for e in self.seeds.values()]))


def aggregate(evaluations: Mapping[int, SeedEvaluation], unit: str = "image",
              n_units: int | None = None, bootstrap_seed: int = 0) -> Aggregate:
    """Cells over seeds (two-level intervals, verdicts against the baseline and the better
    trivial reference); every seed must have been scored on the same resamples of the test
    ``unit`` (``n_units`` of them; default one per image)."""
    first = next(iter(evaluations.values()))
    cells = aggregate_seeds([e.bootstrap for e in evaluations.values()], seeds=list(evaluations),
                            seed=bootstrap_seed, references=REFERENCES, unit=unit,
                            n_units=first.n_images if n_units is None else n_units)
    return Aggregate(dict(evaluations), cells)


def best_attention(agg: Aggregate, metric: str = "pixel_auroc") -> dict[str, MapSetting]:
    """Per layer label, the attention setting with the highest mean ``metric``."""
    best: dict[str, MapSetting] = {}
    for s in agg.first.settings:
        if not s.is_attention:
            continue
        value = (agg.cell(s.name, metric) or {}).get("mean", -1.0)
        current = best.get(s.layer)
        if current is None or value > (agg.cell(current.name, metric) or {}).get("mean", -1.0):
            best[s.layer] = s
    return best


# --- a whole localisation run ---------------------------------------------------------------------


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


def config_from_options(model: nn.Module, options: Mapping[str, Any],
                        default_layers: Sequence[str]) -> LocalizationConfig:
    """The switches of a run from merged preset + command-line options.

    ``--no-upsample`` (shared attention option) means ``--resize downscale-masks`` here.
    """
    resize = "downscale-masks" if options.get("no_upsample") else options.get("resize")
    projection = {key: options[f"projection_{key}"]
                  for key in ("steps", "step_size", "distance_weight")
                  if options.get(f"projection_{key}") is not None}
    return LocalizationConfig(
        layers=resolve_layers(model, options.get("layer") or default_layers),
        maps=str(options.get("maps") or "cheap"),
        methods=[str(m) for m in options.get("method") or ("1", "2")],
        activations=list(options.get("activation") or ("relu", "abs")),
        grad_norm=options.get("grad_norm") or "none",
        activation_order=options.get("activation_order") or "before",
        resize=resize or "upsample-maps",
        mask_rule=options.get("mask_rule") or "majority",
        smooth_sigma=options.get("smooth_sigma"),
        projection=projection,
        n_resamples=int(options.get("resamples") or 1000),
        tune=bool(options.get("tune", False)),
        tune_images=int(options.get("tune_images") or 64),
    )


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


# --- outputs -------------------------------------------------------------------------------------


def results_json(agg: Aggregate, cfg: LocalizationConfig, record: Mapping[str, Any]
                 ) -> dict[str, Any]:
    """The plain results of a run: every setting's cells, costs and switches, latent health
    per seed, and ``record`` (data, model, checkpoints, references)."""
    cells = agg.cells
    first = agg.first
    settings = []
    tuned = {r["chosen_setting"] for r in agg.tuning.get("families", {}).values()}
    for s in first.settings:
        chosen = s.name in tuned or (not map_class(s.family).tuning_marks_one and s.family in
                                     agg.tuning.get("families", {}))
        settings.append({
            "name": s.name, "family": s.family, "label": s.method.label, "layer": s.layer,
            "tuned": chosen,
            "method": s.key.method, "activation": s.key.activation,
            "ms_per_image": agg.ms_per_image(s.name),
            "degenerate_seeds": {str(seed): e.bootstrap.degenerate[s.name]
                                 for seed, e in agg.seeds.items()
                                 if s.name in e.bootstrap.degenerate},
            "metrics": cells["settings"][s.name],
            "exact_per_seed": {str(seed): e.metrics[s.name] for seed, e in agg.seeds.items()},
        })
    return {
        **record,
        "seeds": list(agg.seeds),
        "n_images": first.n_images,
        "n_anomalous_images": first.n_anomalous,
        "switches": {**cfg.to_json(), **record.get("switches", {})},
        "baseline": BASELINE,
        "trivial_references": cells["trivial_references"],
        "bootstrap": cells["bootstrap"],
        "n_resamples": cells["n_resamples"],
        "ci95_method": cells["ci95_method"],
        "std_method": cells["std_method"],
        "verdict_rule": cells["verdict_rule"],
        "latent": {str(seed): e.latent for seed, e in agg.seeds.items()},
        "collapsed_seeds": agg.collapsed_seeds(),
        "tuning": agg.tuning,
        "settings": settings,
    }


def write_figures(agg: Aggregate, out: Path, title: str, results: Mapping[str, Any]
                  ) -> list[Path]:
    """ROC curves (first seed, one setting per map family: chosen on training data when tuned,
    else the best on the test images) and the overlay figure with one column per map family
    on the same test images, at the images' display aspect ratio."""
    from vaecam.report.localization import best_per_family
    from vaecam.viz.curves import roc_figure
    from vaecam.viz.overlays import methods_grid

    first = agg.first
    best = [s["name"] for s in best_per_family(results)]
    curves = {name: (*first.curves[name], first.metrics[name]["pixel_auroc"]) for name in best}
    seed = next(iter(agg.seeds))
    picked = "chosen on training data" if results.get("tuning") else "best on test images"
    paths = [roc_figure(out / "roc.png", curves,
                        title=f"{title}: pixel ROC, seed {seed}, one setting per map "
                              f"({picked})")]
    ov = first.overlays
    if ov.images:
        maps = {name: torch.stack(ov.maps[name]) for name in best}
        paths.append(methods_grid(out / "overlays_methods.png", torch.stack(ov.images),
                                  torch.stack(ov.masks), maps, ov.titles, aspect=ov.aspect))
    return paths


def write_outputs(out: Path, agg: Aggregate, results: Mapping[str, Any], title: str,
                  extra_tables: Sequence[str | Table] = ()) -> dict[str, Any]:
    """Write ``results.json`` (``results`` from :func:`results_json`), ``table.md`` and the
    figures into ``out``; returns the results with the files added."""
    from vaecam.outputs import atomic_write_text
    from vaecam.outputs.portable import PortablePaths
    from vaecam.report.localization import table_markdown
    from vaecam.report.tables import write_json

    figures = write_figures(agg, out, title, results)
    text = table_markdown(results, title, extra_tables)
    data = results.get("data")
    portable = PortablePaths(out, data.get("root") if isinstance(data, Mapping) else None,
                             parents=2)  # the file names no folder of this machine
    write_json(out / "results.json", portable({**results, "table_md": text,
                                               "figures": [str(p) for p in figures]}))
    atomic_write_text(out / "table.md", text)
    return {**results, "figures": [str(p) for p in figures], "table_md": text}
