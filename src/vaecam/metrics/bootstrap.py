"""Bootstrap confidence intervals and paired verdicts for the localisation metrics.

Test *images* are resampled with replacement (never pixels: the pixels of one image are
strongly correlated, so a pixel bootstrap would give far too narrow intervals). Every resample
yields pixel AUROC, AUPRO (FPR <= ``max_fpr``), best IoU and image AUROC (max of each map); the
95% interval is the percentile interval of the resampled values (Efron & Tibshirani, *An
Introduction to the Bootstrap*, 1993, ch. 13). A setting is compared with a baseline by the
*paired* bootstrap: both are evaluated on the same resamples and the interval is that of the
per-resample difference. By default the resampling is stratified by image label (anomalous
images and normal images are resampled separately, as in pROC's stratified AUROC bootstrap,
Robin et al., BMC Bioinformatics 2011), so every resample has both image classes.

Cost: re-sorting the pixels of every resample would cost 1,000 exact evaluations. Instead each
image is summarised once by histograms over global score bins (positive and negative pixel
counts, and the AUPRO region weights ``1 / region size`` of its anomalous pixels) and by its
number of anomalous regions (8-connected per image, as in
:class:`~vaecam.metrics.localization.PixelROCAccumulator`). A resample's pooled histograms are
then ``counts @ per-image histograms``: one matrix product for all resamples. Image AUROC needs
no binning: it is computed exactly from the per-image maxima, weighted by the resample counts.

Binning error, stated per resample and reported as the largest value over resamples:

* pixel AUROC: only positive/negative pairs in the same bin can be scored differently from the
  exact Mann-Whitney value, so the error is at most ``sum_b pos_b * neg_b / (2 n_pos n_neg)``;
* AUPRO: the binned PRO curve is exact at bin edges and the exact curve is monotone inside each
  bin's box, so the area error is at most ``sum_b dFPR_b * dPRO_b / 2 / max_fpr`` (the bin that
  crosses ``max_fpr`` counts its clipped width times its full height);
* best IoU: the best over bin-edge thresholds is exact at the edges and never above the true
  best, which is at most ``max_b TP_hi_b / (n_pos + FP_lo_b)``; the bound is the gap.

A bin holding a single score value (heavily tied values such as the zeros of ReLU maps get one)
is exact and adds nothing to the bounds. A verdict is ``better`` or ``worse`` only when the
difference interval, widened by both settings' largest bounds, excludes 0; else ``undecided``.

Resampling unit. Images are the unit of still-image sets. The frames of one video clip are
near-copies of their neighbours, so resampling frames would pretend to a sample the size of the
number of frames: ``resample_counts(..., units=clip_of_frame)`` draws whole clips instead (every
frame of a drawn clip counts once per draw).

Over training seeds (:func:`aggregate_seeds`) the interval has two levels: each resample draws
the seeds with replacement, then uses that resample's draw of units for every drawn seed (all
seeds are scored on the same test set, so the test-set variance is shared, not averaged away);
the statistic is averaged over the drawn seeds. The bracket so includes the variance between
training seeds, and the verdicts over seeds come from it (and from every seed's own verdict
agreeing: with three seeds the seed level has only ten distinct draws). Degenerate maps
(:mod:`vaecam.metrics.degenerate`) are left out of every mean.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from vaecam.errors import ConfigError, MetricInputError
from vaecam.metrics.degenerate import degeneracy
from vaecam.metrics.localization import (
    ArrayLike,
    PixelROCAccumulator,
    _as_pair,
    _check_max_fpr,
    _non_finite,
    _structure,
    as_region,
    image_auroc,
)

__all__ = [
    "METRICS",
    "BootstrapResult",
    "Comparison",
    "MapCollector",
    "MetricBootstrap",
    "SettingBootstrap",
    "aggregate_seeds",
    "bootstrap_settings",
    "resample_counts",
]

Verdict = Literal["better", "worse", "undecided", "degenerate"]
METRICS = ("pixel_auroc", "aupro", "best_iou", "image_auroc_max")
PERCENTILES = (2.5, 97.5)
MIN_RESAMPLES = 100
MIN_BINS = 16
_CHUNK_PIXELS = 1 << 21
_ROW_BLOCK = 256
_EDGE_SAMPLE = 1 << 17
SCHEME = "two-level"
AGGREGATE_CI = (
    "two-level bootstrap: each resample draws the training seeds with replacement, then the "
    "test units (the same draw of units for every drawn seed); the binned statistic (or "
    "difference) is averaged over the drawn seeds; percentile 95% interval of that mean"
)
AGGREGATE_STD = "population standard deviation over seeds (ddof=0) of the exact point estimates"
AGGREGATE_VERDICT = (
    "better (worse) when the two-level 95% interval of the difference, widened by the binning "
    "error bounds, lies above (below) 0 and every seed's own verdict agrees, else undecided "
    "(with few seeds the seed level alone cannot reach a 2.5% tail); degenerate when the map is "
    "degenerate on every seed"
)


@dataclass(frozen=True)
class MetricBootstrap:
    """One metric of one setting: exact value, interval, and the binning error behind it.

    ``samples`` holds the (binned) value of every resample, ``bounds`` its error bound.
    """

    point: float
    ci95: tuple[float, float]
    error_bound: float
    samples: np.ndarray
    bounds: np.ndarray


@dataclass(frozen=True)
class Comparison:
    """Paired bootstrap of ``setting - baseline`` for one metric (higher is better)."""

    diff_ci95: tuple[float, float]
    error_bound: float
    verdict: Verdict
    samples: np.ndarray


@dataclass(frozen=True)
class SettingBootstrap:
    """Every metric of one map setting and, unless it is the baseline, its comparisons."""

    metrics: dict[str, MetricBootstrap]
    vs_baseline: dict[str, Comparison]


@dataclass(frozen=True)
class BootstrapResult:
    """Bootstrap of every setting of one training seed on one set of resamples."""

    settings: dict[str, SettingBootstrap]
    baseline: str
    n_images: int
    n_resamples: int
    max_fpr: float
    counts_digest: str
    degenerate: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON summary: per setting and metric, point, ci95, bound and verdict."""
        settings: dict[str, Any] = {}
        for name, setting in self.settings.items():
            settings[name] = {}
            for metric, m in setting.metrics.items():
                cell: dict[str, Any] = {
                    "point": m.point,
                    "ci95": list(m.ci95),
                    "error_bound": m.error_bound,
                }
                if metric in setting.vs_baseline:
                    c = setting.vs_baseline[metric]
                    cell["vs_baseline"] = {
                        "diff_ci95": list(c.diff_ci95),
                        "diff_error_bound": c.error_bound,
                        "verdict": c.verdict,
                    }
                settings[name][metric] = cell
        return {
            "baseline": self.baseline,
            "n_images": self.n_images,
            "n_resamples": self.n_resamples,
            "max_fpr": self.max_fpr,
            "degenerate": dict(self.degenerate),
            "settings": settings,
        }


def resample_counts(
    n_images: int,
    n_resamples: int = 1000,
    seed: int = 0,
    strata: ArrayLike | None = None,
    units: ArrayLike | None = None,
) -> np.ndarray:
    """(n_resamples, n_images) int32 matrix: how often each image is drawn in each resample.

    Each row draws ``n_images`` images with replacement; with ``strata`` (one label per image)
    each stratum is resampled separately and keeps its size. With ``units`` (one id per image,
    such as the clip of each video frame) whole units are drawn instead, as many as there are
    units, and each image counts as often as its unit was drawn; strata then group the units by
    the set of labels of their images. Pass the same matrix to every training seed so that
    seeds are compared on identical resamples.
    """
    _check_resamples(n_resamples)
    if n_images < 1:
        raise MetricInputError(f"n_images is {n_images}; pass at least one image")
    labels = None if strata is None else _per_image(strata, n_images, "strata", "labels")
    if units is not None:
        ids = _per_image(units, n_images, "units", "unit ids")
        _, unit_of_image = np.unique(ids, return_inverse=True)
        unit_strata = None
        if labels is not None:  # a unit's stratum: which labels its images carry
            values, label_index = np.unique(labels, return_inverse=True)
            carries = np.zeros((unit_of_image.max() + 1, values.size), dtype=bool)
            carries[unit_of_image, label_index] = True
            unit_strata = np.unique(carries, axis=0, return_inverse=True)[1].ravel()
        unit_counts = resample_counts(unit_of_image.max() + 1, n_resamples, seed, unit_strata)
        return np.ascontiguousarray(unit_counts[:, unit_of_image])
    rng = np.random.default_rng(seed)
    groups = [np.arange(n_images)]
    if labels is not None:
        groups = [np.flatnonzero(labels == value) for value in np.unique(labels)]
    counts = np.zeros((n_resamples, n_images), dtype=np.int32)
    rows = np.arange(n_resamples)[:, None]
    for members in groups:
        drawn = members[rng.integers(0, members.size, size=(n_resamples, members.size))]
        np.add.at(counts, (rows, drawn), 1)
    return counts


def _per_image(values: ArrayLike, n_images: int, name: str, what: str) -> np.ndarray:
    flat = np.asarray(values).ravel()
    if flat.size != n_images:
        raise MetricInputError(
            f"{name} has {flat.size} {what} for {n_images} images; pass one per image"
        )
    return flat


def bootstrap_settings(
    scores: Mapping[str, ArrayLike],
    masks: ArrayLike | Mapping[str, ArrayLike],
    baseline: str,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    counts: np.ndarray | None = None,
    stratify: bool = True,
    max_fpr: float = 0.3,
    n_bins: int = 4096,
    connectivity: Literal[4, 8] = 8,
    point_estimates: Mapping[str, Mapping[str, float]] | None = None,
    regions: ArrayLike | Mapping[str, ArrayLike] | None = None,
) -> BootstrapResult:
    """Intervals of every setting's metrics and paired verdicts against ``baseline``.

    ``scores`` maps setting names to (N, H, W) maps of the same N test images; ``masks`` is
    one (N, H, W) mask array shared by all settings, or one per setting (maps of another
    resolution). ``counts`` (from :func:`resample_counts`) overrides ``n_resamples``, ``seed``
    and ``stratify``. ``point_estimates`` (e.g. ``LocalizationEvaluator.result()`` per setting)
    saves recomputing the exact values. Image AUROC is included when the images include both
    anomalous and normal ones. At most ``n_bins`` score bins are used per setting. To reuse
    the default (stratified) resamples across training seeds, pass every seed
    ``counts=resample_counts(N, n_resamples, seed, strata=image_labels)``. ``regions`` (bool,
    shaped like ``masks``, one array or one per setting) restricts the pixel metrics to the
    evaluation region, as in :mod:`vaecam.metrics.localization`; image AUROC uses whole maps.
    """
    max_fpr = _check_max_fpr(max_fpr)
    if baseline not in scores:
        raise ConfigError(
            f"baseline {baseline!r} is not among the settings {sorted(scores)}; "
            "pass one of their names"
        )
    if n_bins < MIN_BINS:
        raise ConfigError(f"n_bins is {n_bins}; pass at least {MIN_BINS} (4096 recommended)")
    pairs = {name: _validated(name, s, _mask_of(masks, name),
                              None if regions is None else _mask_of(regions, name))
             for name, s in scores.items()}
    n_images = {len(s) for s, *_ in pairs.values()}
    if len(n_images) > 1:
        raise MetricInputError(
            f"settings have maps of different numbers of images {sorted(n_images)}; "
            "pass maps of the same test images to every setting"
        )
    degenerate = {name: reason for name, (s, *_) in pairs.items()
                  if (reason := degeneracy(s))}
    base_masks = pairs[baseline][1]
    labels = base_masks.reshape(len(base_masks), -1).any(axis=1)
    if counts is None:
        counts = resample_counts(len(labels), n_resamples, seed, labels if stratify else None)
    counts = _checked_counts(counts, len(labels))
    with_image = bool(labels.any() and not labels.all())
    samples = {
        name: _setting_samples(s, m, counts, max_fpr, n_bins, connectivity, with_image, r)
        for name, (s, m, r) in pairs.items()
    }
    results = {}
    for name, (s, m, r) in pairs.items():
        points = (point_estimates or {}).get(name)
        if points is None:
            points = _points(s, m, max_fpr, connectivity, with_image, r)
        elif missing := [metric for metric in samples[name] if metric not in points]:
            raise MetricInputError(
                f"point estimates of setting {name!r} lack {missing}; pass "
                "LocalizationEvaluator.result() or leave point_estimates out"
            )
        metrics = {
            metric: MetricBootstrap(
                float(points[metric]), _ci95(values), float(bounds.max()), values, bounds
            )
            for metric, (values, bounds) in samples[name].items()
        }
        vs = {} if name == baseline else {
            metric: _compare(values - samples[baseline][metric][0],
                             float((bounds + samples[baseline][metric][1]).max()))
            for metric, (values, bounds) in samples[name].items()
        }
        results[name] = SettingBootstrap(metrics, vs)
    return BootstrapResult(
        results, baseline, len(labels), len(counts), max_fpr, _digest(counts), degenerate
    )


def aggregate_seeds(
    per_seed: Sequence[BootstrapResult],
    *,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    references: Sequence[str] = (),
    unit: str = "image",
    n_units: int | None = None,
) -> dict[str, Any]:
    """JSON cells over training seeds: mean/std/per_seed of the exact values, the two-level
    interval (see ``AGGREGATE_CI``) and two paired verdicts per metric.

    ``vs_baseline`` compares each setting with the baseline; ``vs_trivial`` with the better of
    the ``references`` (trivial maps such as ``mean-diff`` and ``random``) on that metric: the
    one with the higher mean. A setting degenerate on a seed is left out of that seed's means
    and comparisons (``degenerate_seeds``; ``per_seed`` holds null there); degenerate on every
    seed, its cell has no mean and its verdicts are ``degenerate``. ``seeds`` names the seeds
    (default their positions), ``seed`` seeds the draws of seeds, ``unit`` and ``n_units``
    name what the test set was resampled by. Every seed must have been bootstrapped on the same
    resample counts and settings.
    """
    if not per_seed:
        raise ConfigError("no seeds given; pass one bootstrap result per training seed")
    first = per_seed[0]
    for other in per_seed[1:]:
        if other.n_images != first.n_images:
            raise MetricInputError(
                f"seeds have maps of {first.n_images} and {other.n_images} images; evaluate "
                "every seed on the same test images"
            )
        if other.counts_digest != first.counts_digest:
            raise ConfigError(
                "seeds were bootstrapped on different resamples; pass the same "
                "counts=resample_counts(...) to bootstrap_settings for every seed"
            )
        if other.baseline != first.baseline or list(other.settings) != list(first.settings):
            raise ConfigError(
                "seeds have different settings or baselines; bootstrap the same settings "
                "against the same baseline for every seed"
            )
    names = list(range(len(per_seed))) if seeds is None else [int(s) for s in seeds]
    if len(names) != len(per_seed):
        raise ConfigError(f"{len(names)} seed names for {len(per_seed)} seeds; name each once")
    pool = _SeedPool(per_seed, names, seed)
    settings: dict[str, Any] = {
        name: {metric: pool.metric_cell(name, metric) for metric in setting.metrics}
        for name, setting in first.settings.items()
    }
    for metric in METRICS:
        trivial = _better_reference(settings, references, metric)
        for name, cells in settings.items():
            if metric not in cells:
                continue
            if name != first.baseline:
                cells[metric]["vs_baseline"] = pool.comparison(name, first.baseline, metric)
            if trivial is not None and name != trivial:
                cells[metric]["vs_trivial"] = pool.comparison(name, trivial, metric)
    return {
        "baseline": first.baseline,
        "trivial_references": list(references),
        "n_seeds": len(per_seed),
        "n_images": first.n_images,
        "n_resamples": first.n_resamples,
        "max_fpr": first.max_fpr,
        "bootstrap": {"unit": unit, "n_units": n_units, "scheme": SCHEME,
                      "levels": ["training seeds", f"test {unit}s within each seed"],
                      "seed": seed},
        "ci95_method": AGGREGATE_CI,
        "std_method": AGGREGATE_STD,
        "verdict_rule": AGGREGATE_VERDICT,
        "settings": settings,
    }


def _better_reference(settings: Mapping[str, Any], references: Sequence[str], metric: str
                      ) -> str | None:
    """The reference with the highest mean ``metric`` (degenerate ones left out), or None."""
    means = {r: settings[r][metric]["mean"] for r in references
             if metric in settings.get(r, {}) and "mean" in settings[r][metric]}
    return max(means, key=lambda r: means[r]) if means else None


class _SeedPool:
    """Every seed's bootstrap of the same settings, and the two-level resamples over them."""

    def __init__(self, per_seed: Sequence[BootstrapResult], names: Sequence[int], seed: int):
        self.per_seed = per_seed
        self.names = list(names)
        self.seed = seed
        self.n_resamples = per_seed[0].n_resamples
        self._draws: dict[tuple[int, ...], np.ndarray] = {}

    def usable(self, *settings: str) -> list[int]:
        """Positions of the seeds on which none of ``settings`` is degenerate."""
        return [k for k, r in enumerate(self.per_seed)
                if not any(name in r.degenerate for name in settings)]

    def two_level(self, values: np.ndarray, used: Sequence[int]) -> np.ndarray:
        """Per resample, the mean of ``values`` (used seeds x resamples) over seeds drawn with
        replacement from ``used`` (the same draws for every statistic on these seeds)."""
        key = tuple(used)
        if key not in self._draws:
            rng = np.random.default_rng([self.seed, len(key), *key])
            self._draws[key] = rng.integers(0, len(key), size=(self.n_resamples, len(key)))
        draws = self._draws[key]
        return values[draws, np.arange(self.n_resamples)[:, None]].mean(axis=1)

    def metric_cell(self, name: str, metric: str) -> dict[str, Any]:
        cells = [r.settings[name].metrics[metric] for r in self.per_seed]
        used = self.usable(name)
        dropped = [self.names[k] for k in range(len(cells)) if k not in used]
        cell: dict[str, Any] = {
            "per_seed": [cells[k].point if k in used else None for k in range(len(cells))],
            "degenerate_seeds": dropped,
            "per_seed_ci95": [list(c.ci95) if k in used else None
                              for k, c in enumerate(cells)],
        }
        if not used:
            reasons = sorted({r.degenerate[name] for r in self.per_seed})
            return {**cell, "degenerate": "; ".join(reasons)}
        points = np.array([cells[k].point for k in used])
        samples = np.stack([cells[k].samples for k in used])
        return {
            "mean": float(points.mean()),
            "std": float(points.std()),
            "ci95": list(_ci95(self.two_level(samples, used))),
            "error_bound": float(max(cells[k].error_bound for k in used)),
            **cell,
        }

    def comparison(self, name: str, reference: str, metric: str) -> dict[str, Any]:
        """Paired two-level comparison of ``name`` with ``reference`` on the usable seeds."""
        used = self.usable(name, reference)
        cell: dict[str, Any] = {"reference": reference}
        per_seed: list[Comparison | None] = [None] * len(self.per_seed)
        for k in used:
            a = self.per_seed[k].settings[name].metrics[metric]
            b = self.per_seed[k].settings[reference].metrics[metric]
            per_seed[k] = _compare(a.samples - b.samples, float((a.bounds + b.bounds).max()))
        if not used:
            verdict: Verdict = "degenerate" if not self.usable(name) else "undecided"
            return {**cell, "verdict": verdict,
                    "per_seed_verdicts": ["degenerate"] * len(per_seed)}
        diffs = np.stack([per_seed[k].samples for k in used])  # type: ignore[union-attr]
        bound = max(per_seed[k].error_bound for k in used)  # type: ignore[union-attr]
        overall = _compare(self.two_level(diffs, used), bound)
        agree = all(per_seed[k].verdict == overall.verdict for k in used)  # type: ignore[union-attr]
        return {
            **cell,
            "diff_ci95": list(overall.diff_ci95),
            "diff_error_bound": bound,
            "verdict": overall.verdict if agree else "undecided",
            "per_seed_verdicts": [c.verdict if c else "degenerate" for c in per_seed],
            "per_seed_diff_ci95": [list(c.diff_ci95) if c else None for c in per_seed],
        }


class MapCollector:
    """Keeps what the bootstrap needs while an evaluation streams batch by batch.

    ``update(name, scores, masks, region)`` stores a float32 copy of a setting's (B, H, W)
    maps; masks (and evaluation regions) are stored once per map size and every other
    setting's masks are checked against them, so all settings must be fed the same images in
    the same batches. ``result`` runs :func:`bootstrap_settings` on everything collected.
    """

    def __init__(self) -> None:
        self._scores: dict[str, list[np.ndarray]] = {}
        self._masks: dict[tuple[int, ...], list[np.ndarray]] = {}
        self._regions: dict[tuple[int, ...], list[np.ndarray]] = {}
        self._size: dict[str, tuple[int, ...]] = {}

    def update(self, name: str, scores: ArrayLike, masks: ArrayLike,
               region: ArrayLike | None = None) -> None:
        """Add one batch of one setting's maps and their binary masks (same shape); ``region``
        (bool, same shape) is the evaluation region of the pixel metrics."""
        inside = as_region(region, tuple(scores.shape))
        s, m = _as_pair(scores, masks, maps=True)
        size = s.shape[1:]
        if self._size.setdefault(name, size) != size:
            raise MetricInputError(
                f"setting {name!r} had maps of size {self._size[name]}, now {size}; "
                "keep one map size per setting"
            )
        batches = self._scores.setdefault(name, [])
        stored = self._masks.setdefault(size, [])
        position = len(batches)
        if position < len(stored):
            if not np.array_equal(stored[position], m):
                raise MetricInputError(
                    f"masks of batch {position} of setting {name!r} differ from another "
                    "setting's; feed every setting the same images in the same batches"
                )
        else:
            stored.append(m.copy())
            if inside is not None:
                self._regions.setdefault(size, []).append(inside.reshape(s.shape).copy())
        batches.append(np.array(s, dtype=np.float32))

    def result(self, baseline: str, **options: Any) -> BootstrapResult:
        """:func:`bootstrap_settings` of the collected maps; ``options`` are passed on."""
        if not self._scores:
            raise MetricInputError("nothing collected; call update() with a batch first")
        masks = {size: np.concatenate(parts) for size, parts in self._masks.items()}
        regions = {size: np.concatenate(parts) for size, parts in self._regions.items()}
        if regions and any(len(regions.get(size, ())) != len(m) for size, m in masks.items()):
            raise MetricInputError("some batches had an evaluation region and some had none; "
                                   "pass a region with every batch or with none")
        scores = {}
        for name, parts in self._scores.items():
            self._scores[name] = [np.concatenate(parts)]
            scores[name] = self._scores[name][0]
        return bootstrap_settings(
            scores, {name: masks[size] for name, size in self._size.items()}, baseline,
            regions={name: regions[size] for name, size in self._size.items()} if regions
            else None, **options
        )


# --- validation --------------------------------------------------------------------------------


def _check_resamples(n_resamples: int) -> None:
    if n_resamples < MIN_RESAMPLES:
        raise ConfigError(
            f"n_resamples is {n_resamples}; pass at least {MIN_RESAMPLES} (1000 recommended) "
            "for a 95% interval"
        )


def _checked_counts(counts: np.ndarray, n_images: int) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != n_images:
        raise MetricInputError(
            f"counts have shape {counts.shape} for {n_images} images; pass "
            "resample_counts(n_images, ...) of these images"
        )
    _check_resamples(counts.shape[0])
    return counts


def _mask_of(masks: ArrayLike | Mapping[str, ArrayLike], name: str) -> ArrayLike:
    if not isinstance(masks, Mapping):
        return masks
    if name not in masks:
        raise MetricInputError(f"no masks for setting {name!r}; pass masks for every setting")
    return masks[name]


def _validated(name: str, scores: ArrayLike, masks: ArrayLike, region: ArrayLike | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(N, H, W) finite float scores, bool masks and evaluation region (None: every pixel),
    refusing a set missing a pixel class inside the region."""
    try:
        s, m = _as_pair(scores, masks, maps=True)
        inside = as_region(region, tuple(np.shape(scores)))
        if inside is not None:
            inside = inside.reshape(s.shape)
        if not np.isfinite(s).all():
            raise _non_finite()
        n_pos = int(np.count_nonzero(m if inside is None else m & inside))
        if n_pos in (0, m.size if inside is None else int(np.count_nonzero(inside))):
            missing = "anomalous" if n_pos == 0 else "normal"
            raise MetricInputError(f"no {missing} pixel; include {missing} pixels")
    except MetricInputError as exc:
        raise MetricInputError(f"setting {name!r}: {exc}") from exc
    return s, m, inside


def _digest(counts: np.ndarray) -> str:
    data = np.ascontiguousarray(counts, dtype=np.int64)
    return hashlib.blake2b(data.tobytes() + str(data.shape).encode(), digest_size=8).hexdigest()


# --- per-setting statistics ---------------------------------------------------------------------


def _points(
    s: np.ndarray, m: np.ndarray, max_fpr: float, connectivity: Literal[4, 8], with_image: bool,
    region: np.ndarray | None = None,
) -> dict[str, float]:
    """Exact metrics of all images, from the existing exact implementations."""
    acc = PixelROCAccumulator(regions=True, connectivity=connectivity)
    acc.update(s, m, region)
    points = {
        "pixel_auroc": acc.auroc(),
        "aupro": acc.aupro(max_fpr),
        "best_iou": acc.best_iou()[0],
    }
    if with_image:
        points["image_auroc_max"] = image_auroc(s, m, "max")
    return points


def _sample_class(flat_s: np.ndarray, flat_m: np.ndarray, positive: bool,
                  rng: np.random.Generator) -> np.ndarray:
    """Up to about ``_EDGE_SAMPLE`` scores of one class, drawn at random."""
    n_class = int(np.count_nonzero(flat_m)) if positive else flat_m.size - int(
        np.count_nonzero(flat_m))
    if n_class <= 4 * _EDGE_SAMPLE:
        chosen = flat_s[flat_m == positive]
        return chosen if chosen.size <= _EDGE_SAMPLE else rng.choice(chosen, _EDGE_SAMPLE)
    draws = rng.integers(0, flat_s.size, size=4 * _EDGE_SAMPLE)
    return flat_s[draws[flat_m[draws] == positive]]


def _bin_edges(
    s: np.ndarray, m: np.ndarray, n_bins: int, max_fpr: float, region: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Ascending edges (bin b holds ``edges[b-1] <= score < edges[b]``) and single-value bins.

    A third of the edges are quantiles of the negative scores, a third quantiles of the top
    ``max_fpr`` of them (where AUPRO and best IoU are decided) and a third quantiles of the
    positive scores, all from a seeded subsample (of the region's pixels, when given). A value
    holding at least 4/n_bins of the subsample gets a bin of its own, ``[v, nextafter(v))``,
    which is exact.
    """
    rng = np.random.default_rng(0)
    flat_s, flat_m = (s.reshape(-1), m.reshape(-1)) if region is None else (s[region], m[region])
    pos = _sample_class(flat_s, flat_m, True, rng)
    neg = _sample_class(flat_s, flat_m, False, rng)
    both = np.concatenate([pos, neg])
    values, counts = np.unique(both, return_counts=True)
    tied = values[counts * n_bins >= 4 * both.size]
    k = max((n_bins - 1 - 2 * tied.size) // 3, 2)
    quantiles = np.concatenate([
        np.quantile(neg, np.linspace(0.0, 1.0, k)),
        np.quantile(neg, np.linspace(1.0 - max_fpr, 1.0, k)),
        np.quantile(pos, np.linspace(0.0, 1.0, k)),
    ]).astype(s.dtype)
    edges = np.unique(np.concatenate([quantiles, tied, np.nextafter(tied, np.inf)]))
    single = np.zeros(edges.size + 1, dtype=bool)
    single[1:-1] = edges[1:] == np.nextafter(edges[:-1], np.inf)
    return edges, single


def _bin_index(s: np.ndarray, edges: np.ndarray, cells_per_edge: int = 64) -> np.ndarray:
    """``searchsorted(edges, s, side="right")``, mostly by a table lookup (same result).

    Scores and edges go through the same monotone float map to one of
    ``cells_per_edge * len(edges)`` uniform cells over [edges[0], edges[-1]] (out-of-range
    scores clipped into the end cells). Monotone means: an edge in a lower cell than a score
    is below it, one in a higher cell is above it. So a score whose cell holds no edge has as
    bin the number of edges in lower cells; only scores sharing a cell with an edge are
    searched.
    """
    n_cells = cells_per_edge * edges.size
    lo, span = edges[0], float(edges[-1]) - float(edges[0])
    with np.errstate(over="ignore"):  # a range below ~1e-38 overflows float32: caught below
        scale = s.dtype.type(n_cells / span if span > 0 else 1.0)
    if not 0 < scale < np.inf:  # extreme score ranges: plain search
        return np.searchsorted(edges, s, side="right")

    def cell(x: np.ndarray) -> np.ndarray:
        position = (x - lo) * scale
        return np.clip(position, 0, n_cells - 1, out=position).astype(np.intp)

    edge_cells = np.bincount(cell(edges), minlength=n_cells)
    below = np.cumsum(edge_cells) - edge_cells
    table = np.where(edge_cells > 0, -1, below)
    index = table[cell(s)]
    flat, scores = index.reshape(-1), s.reshape(-1)
    shared = np.flatnonzero(flat < 0)
    flat[shared] = np.searchsorted(edges, scores[shared], side="right")
    return index


def _setting_samples(
    s: np.ndarray,
    m: np.ndarray,
    counts: np.ndarray,
    max_fpr: float,
    n_bins: int,
    connectivity: Literal[4, 8],
    with_image: bool,
    region: np.ndarray | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per metric: (value, error bound) of every resample; the pixel metrics count only the
    pixels of ``region`` (anomalous pixels outside it are left out too), image AUROC whole maps."""
    scored = m if region is None else m & region
    edges, single = _bin_edges(s, scored, n_bins, max_fpr, region)
    n_bins = edges.size + 1
    structure = _structure(connectivity)
    n_images, pixels = len(s), s[0].size
    pooled = np.zeros((len(counts), 3 * n_bins))
    regions = np.zeros(n_images)
    chunk = max(1, _CHUNK_PIXELS // pixels)
    for start in range(0, n_images, chunk):
        part = slice(start, min(start + chunk, n_images))
        histograms, regions[part] = _image_histograms(
            s[part], scored[part], edges, structure, None if region is None else region[part])
        pooled += counts[:, part].astype(np.float64) @ histograms
    n_regions = counts @ regions
    pos, every, weight = np.split(pooled, 3, axis=1)
    out = _binned_metrics(pos, every - pos, weight, n_regions, single, max_fpr)
    if with_image:
        values = _image_auroc_max(s, m, counts)
        out["image_auroc_max"] = (values, np.zeros_like(values))
    return out


def _image_histograms(
    s: np.ndarray, m: np.ndarray, edges: np.ndarray, structure: np.ndarray,
    inside: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per image: [positive counts | all counts | region weights] per bin, and region count;
    with ``inside`` (the evaluation region, holding every positive of ``m``) only its pixels
    are counted."""
    n, n_bins = len(s), edges.size + 1
    keys = _bin_index(s.reshape(n, -1), edges)
    keys += (np.arange(n) * n_bins)[:, None]
    labels, _ = ndimage.label(m, structure=structure)
    region_of_pixel = labels[m]
    sizes = np.bincount(region_of_pixel)
    positive_keys = keys.reshape(m.shape)[m]
    length = n * n_bins
    histograms = np.concatenate([
        np.bincount(positive_keys, minlength=length).reshape(n, n_bins),
        np.bincount(keys.ravel() if inside is None else keys[inside.reshape(n, -1)],
                    minlength=length).reshape(n, n_bins),
        np.bincount(positive_keys, 1.0 / sizes[region_of_pixel], length).reshape(n, n_bins),
    ], axis=1).astype(np.float64)
    image_of_region = np.zeros(sizes.size, dtype=np.intp)
    image_of_region[region_of_pixel] = np.nonzero(m)[0]
    return histograms, np.bincount(image_of_region[1:], minlength=n).astype(np.float64)


def _check_rows(n_pos: np.ndarray, n_neg: np.ndarray, unit: str) -> None:
    for count, kind in ((n_pos, "anomalous"), (n_neg, "normal")):
        if not count.all():
            raise MetricInputError(
                f"resample {int(np.argmin(count))} has no {kind} {unit}; resample with "
                "stratify=True (the default) or use more test images"
            )


def _auroc_rows(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Row-wise trapezoid AUROC from per-score(-bin) counts in ascending order."""
    below = np.cumsum(neg, axis=1) - neg
    return (pos * (2.0 * below + neg)).sum(axis=1) / (2.0 * pos.sum(1) * neg.sum(1))


def _binned_metrics(
    pos: np.ndarray,
    neg: np.ndarray,
    weight: np.ndarray,
    n_regions: np.ndarray,
    single: np.ndarray,
    max_fpr: float,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pixel AUROC, AUPRO and best IoU with their bounds, block by block of resamples."""
    _check_rows(pos.sum(1), neg.sum(1), "pixel")
    names = ("pixel_auroc", "aupro", "best_iou")
    out = {name: (np.empty(len(pos)), np.empty(len(pos))) for name in names}
    for start in range(0, len(pos), _ROW_BLOCK):
        rows = slice(start, start + _ROW_BLOCK)
        block = _metrics_block(pos[rows], neg[rows], weight[rows], n_regions[rows], single,
                               max_fpr)
        for name, (value, bound) in zip(names, block, strict=True):
            out[name][0][rows], out[name][1][rows] = value, bound
    return out


def _metrics_block(
    pos: np.ndarray,
    neg: np.ndarray,
    weight: np.ndarray,
    n_regions: np.ndarray,
    single: np.ndarray,
    max_fpr: float,
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    n_pos, n_neg = pos.sum(1), neg.sum(1)
    coarse = ~single
    auroc = _auroc_rows(pos, neg)
    auroc_bound = (pos[:, coarse] * neg[:, coarse]).sum(1) / (2.0 * n_pos * n_neg)

    def from_top(x: np.ndarray) -> np.ndarray:
        """Cumulative sums from the highest bin down, starting at 0 (threshold +inf)."""
        return np.concatenate([np.zeros((len(x), 1)), np.cumsum(x[:, ::-1], axis=1)], axis=1)

    coarse_down = coarse[::-1]
    tp, fp = from_top(pos), from_top(neg)
    iou = (tp / (n_pos[:, None] + fp)).max(axis=1)
    upper = (tp[:, 1:] / (n_pos[:, None] + fp[:, :-1]))[:, coarse_down]
    iou_bound = np.maximum(upper.max(axis=1, initial=0.0) - iou, 0.0)

    fpr = fp / n_neg[:, None]
    pro = np.minimum(from_top(weight) / n_regions[:, None], 1.0)
    x0, x1, y0, y1 = fpr[:, :-1], fpr[:, 1:], pro[:, :-1], pro[:, 1:]
    inside = x1 <= max_fpr
    crossing = (x0 < max_fpr) & (x1 > max_fpr)
    width = np.where(inside, x1 - x0, 0.0)
    clipped = np.where(crossing, max_fpr - x0, 0.0)
    y_end = y0 + (y1 - y0) * clipped / np.where(crossing, x1 - x0, 1.0)
    area = (width * (y0 + y1) + clipped * (y0 + y_end)).sum(axis=1) / 2.0
    box = ((width / 2.0 + clipped) * (y1 - y0))[:, coarse_down].sum(axis=1)
    return (auroc, auroc_bound), (area / max_fpr, box / max_fpr), (iou, iou_bound)


def _image_auroc_max(s: np.ndarray, m: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Exact image AUROC (max of each map) of every resample, ties counted as 1/2."""
    n = len(s)
    score = s.reshape(n, -1).max(axis=1)
    label = m.reshape(n, -1).any(axis=1)
    order = np.argsort(score, kind="stable")
    _, starts = np.unique(score[order], return_index=True)
    weights = counts[:, order].astype(np.float64)
    pos = np.add.reduceat(weights * label[order], starts, axis=1)
    neg = np.add.reduceat(weights * ~label[order], starts, axis=1)
    _check_rows(pos.sum(1), neg.sum(1), "image")
    return _auroc_rows(pos, neg)


# --- intervals and verdicts --------------------------------------------------------------------


def _ci95(samples: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(samples, PERCENTILES)
    return float(lo), float(hi)


def _compare(diff: np.ndarray, error_bound: float) -> Comparison:
    """Verdict from the difference interval widened by the binning error of both settings."""
    lo, hi = _ci95(diff)
    verdict: Verdict = "undecided"
    if lo - error_bound > 0:
        verdict = "better"
    elif hi + error_bound < 0:
        verdict = "worse"
    return Comparison((lo, hi), error_bound, verdict, diff)
