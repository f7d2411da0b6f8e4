"""Anomaly-localisation metrics: pixel AUROC, best IoU, AUPRO and image AUROC.

Every metric takes anomaly score maps and binary ground-truth masks of the same shape (numpy
arrays or torch tensors), uses the scores exactly as given (no sigmoid, no rescaling) and raises
:class:`~vaecam.errors.MetricInputError` on degenerate input instead of returning a silent 0.5
or NaN.

Evaluation region: the pixel metrics (pixel AUROC, best IoU, AUPRO) take an optional boolean
``region`` of the maps' shape; only its pixels are scored. Pixels outside it count neither as
normal nor as anomalous: they leave the ROC, the false-positive rate and the IoU, and AUPRO's
anomalous regions are the connected components of the anomalous pixels inside it. Image AUROC
always uses the whole map.

The exact metrics come from a *score table*: for each distinct score value, the number of
anomalous and of normal pixels with that score (and, for AUPRO, their summed per-region
weights). A batch adds to the table after one sort of its own pixels, so evaluations stream
batch by batch and keep memory proportional to the number of distinct scores, which is small for
quantised maps. Tied scores form one ROC step integrated with the trapezoid rule, exactly as
``sklearn.metrics.roc_auc_score`` handles them. Float32 and float64 scores are compared as
given (never rounded), so the results are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy import ndimage
from scipy.integrate import trapezoid

from vaecam.errors import MetricInputError

__all__ = [
    "BinnedROCAccumulator",
    "LocalizationEvaluator",
    "PixelROCAccumulator",
    "as_region",
    "aupro",
    "best_iou",
    "image_auroc",
    "pixel_auroc",
]

ArrayLike = np.ndarray | torch.Tensor


def _to_numpy(x: ArrayLike) -> np.ndarray:
    """A numpy view of an array or tensor (bfloat16 tensors are widened, which is exact)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        return (x.float() if x.dtype == torch.bfloat16 else x).numpy()
    return np.asarray(x)


def _as_scores(scores: ArrayLike) -> np.ndarray:
    """Scores as float32 or float64 without changing any value."""
    s = _to_numpy(scores)
    if s.dtype in (np.float32, np.float64):
        return s
    if s.dtype == np.float16:
        return s.astype(np.float32)
    if s.dtype.kind in "biu":
        return s.astype(np.float64)
    raise MetricInputError(f"scores have dtype {s.dtype}; pass real-valued (float) score maps")


def _as_masks(masks: ArrayLike) -> np.ndarray:
    """Masks as bool, refusing anything but 0/1 values."""
    m = _to_numpy(masks)
    if m.dtype == bool:
        return m
    if m.dtype.kind not in "iuf":
        raise MetricInputError(f"masks have dtype {m.dtype}; pass binary masks (bool or 0/1)")
    positive = m == 1
    if np.count_nonzero(positive) + np.count_nonzero(m == 0) != m.size:
        bad = m[(m != 0) & (m != 1)][0]
        raise MetricInputError(
            f"masks must be binary (bool or 0/1) but contain {bad!r}; binarise them first, "
            "e.g. masks > 0"
        )
    return positive


def _as_pair(
    scores: ArrayLike, masks: ArrayLike, *, maps: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Validated (scores, bool masks); with ``maps`` also shaped (B, H, W)."""
    s, m = _as_scores(scores), _as_masks(masks)
    if s.shape != m.shape:
        raise MetricInputError(
            f"scores have shape {tuple(s.shape)} but masks have shape {tuple(m.shape)}; "
            "pass one mask per score map with the same shape"
        )
    if s.size == 0:
        raise MetricInputError("scores and masks are empty; pass at least one pixel")
    if maps:
        if s.ndim not in (2, 3):
            raise MetricInputError(
                f"maps must have shape (H, W) or (B, H, W), got {tuple(s.shape)}; "
                "squeeze or drop channel axes first"
            )
        if s.ndim == 2:
            s, m = s[None], m[None]
    return s, m


def as_region(region: ArrayLike | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """A boolean evaluation region of ``shape`` (None: every pixel), refusing anything else."""
    if region is None:
        return None
    r = _to_numpy(region)
    if r.dtype != bool:
        raise MetricInputError(f"the evaluation region has dtype {r.dtype}; pass a bool mask")
    if r.shape != shape:
        raise MetricInputError(
            f"the evaluation region has shape {tuple(r.shape)} but the maps have shape "
            f"{shape}; pass one region mask per score map"
        )
    return r


def _non_finite() -> MetricInputError:
    return MetricInputError(
        "scores contain NaN or inf; replace non-finite scores (e.g. np.nan_to_num) first"
    )


_MISSING_CLASS = {
    ("pixel", True): "no anomalous pixel (every mask is all zero)",
    ("pixel", False): "no normal pixel (every mask is all one)",
    ("image", True): "no anomalous image (no mask has a positive pixel)",
    ("image", False): "no normal image (every mask has a positive pixel)",
}


def _check_classes(pos: np.ndarray, neg: np.ndarray, unit: str) -> tuple[int, int]:
    """Total positives and negatives of ``unit`` (pixel or image), refusing a single class."""
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    for missing_positive, count in ((True, n_pos), (False, n_neg)):
        if count == 0:
            raise MetricInputError(
                f"{_MISSING_CLASS[unit, missing_positive]}; the metric needs both classes, "
                f"so include {'anomalous' if missing_positive else 'normal'} samples"
            )
    return n_pos, n_neg


@dataclass(frozen=True)
class _Table:
    """Per distinct score (ascending): positives, negatives and summed region weights."""

    values: np.ndarray
    pos: np.ndarray
    neg: np.ndarray
    region: np.ndarray


def _runs(sorted_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of sorted scores and where each run of equal values starts.

    NaN sorts last and infinities sit at the ends, so checking both ends finds any of them.
    """
    n = sorted_scores.size
    if n and not (np.isfinite(sorted_scores[0]) and np.isfinite(sorted_scores[-1])):
        raise _non_finite()
    new = np.empty(n, dtype=bool)
    new[:1] = True
    np.not_equal(sorted_scores[1:], sorted_scores[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return sorted_scores[starts], starts


def _merge(*tables: _Table) -> _Table:
    """One table holding the summed counts of several tables."""
    values = np.unique(np.concatenate([t.values for t in tables]))
    pos = np.zeros(values.size, dtype=np.int64)
    neg = np.zeros(values.size, dtype=np.int64)
    region = np.zeros(values.size, dtype=np.float64)
    for t in tables:
        at = np.searchsorted(values, t.values)
        pos[at] += t.pos
        neg[at] += t.neg
        region[at] += t.region
    return _Table(values, pos, neg, region)


def _class_table(
    sorted_scores: np.ndarray, positive: bool, sorted_weights: np.ndarray | None = None
) -> _Table:
    """Score table of one class's sorted scores; ``sorted_weights`` are summed into region."""
    values, starts = _runs(sorted_scores)
    counts = np.diff(starts, append=sorted_scores.size)
    other = np.zeros(values.size, dtype=np.int64)
    if sorted_weights is not None and starts.size:
        region = np.add.reduceat(sorted_weights, starts)
    else:
        region = np.zeros(values.size)
    return _Table(values, counts if positive else other, other if positive else counts, region)


def _table(s: np.ndarray, m: np.ndarray, weights: np.ndarray | None = None) -> _Table:
    """Score table of one batch; ``weights`` (one per positive pixel, ``s[m]`` order) go to region.

    The two classes are sorted separately, which avoids an argsort over all pixels.
    """
    neg = s[~m]
    neg.sort()
    pos = s[m]
    if weights is None:
        pos.sort()
    else:
        order = np.argsort(pos)
        pos, weights = pos[order], weights[order]
    return _merge(
        _class_table(neg, positive=False),
        _class_table(pos, positive=True, sorted_weights=weights),
    )


def _auroc(pos: np.ndarray, neg: np.ndarray, n_pos: int, n_neg: int) -> float:
    """Trapezoid ROC area from per-score counts (ascending scores).

    Equals the Mann-Whitney statistic: each positive scores 1 per lower negative and 1/2 per
    tied one. Sums run in float64: exact while 2 * n_pos * n_neg < 2**53, rounded beyond.
    """
    below = np.cumsum(neg) - neg
    twice_u = np.dot(pos.astype(np.float64), (2 * below + neg).astype(np.float64))
    return float(twice_u / (2.0 * n_pos * n_neg))


def _corners(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mask of a polyline's ends and the points where its direction changes.

    Integer coordinates make the collinearity test exact; dropping the other points leaves the
    curve (and its area) unchanged.
    """
    dx, dy = np.diff(x), np.diff(y)
    keep = np.ones(x.size, dtype=bool)
    keep[1:-1] = dx[:-1] * dy[1:] != dy[:-1] * dx[1:]
    return keep


def _partial_area(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under y(x) on [x[0], x_max]; x ascending, y interpolated at x_max."""
    k = int(np.searchsorted(x, x_max, side="right"))
    area = float(trapezoid(y[:k], x[:k]))
    if k < x.size and x[k - 1] < x_max:
        y_end = y[k - 1] + (y[k] - y[k - 1]) * (x_max - x[k - 1]) / (x[k] - x[k - 1])
        area += 0.5 * (y[k - 1] + y_end) * (x_max - x[k - 1])
    return float(area)


def _check_max_fpr(max_fpr: float) -> float:
    if not 0.0 < max_fpr <= 1.0:
        raise MetricInputError(f"max_fpr is {max_fpr}; pass a false-positive rate in (0, 1]")
    return float(max_fpr)


def _structure(connectivity: int) -> np.ndarray:
    """Labelling structure for (B, H, W) masks: 2-D neighbours only, never across images."""
    if connectivity not in (4, 8):
        raise MetricInputError(f"connectivity is {connectivity}; pass 4 or 8")
    plane = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = plane
    return structure


class PixelROCAccumulator:
    """Exact, streaming pixel ROC: AUROC, best IoU, ROC curve and (with regions) AUPRO.

    ``update`` adds a batch to the score table; the metrics read the table, so AUROC, best IoU
    and AUPRO all come from one pass over the pixels. With ``regions=True`` each batch must be
    (H, W) or (B, H, W) and every connected anomalous region of every map is tracked for the
    per-region overlap (PRO); ``connectivity`` 8 (default) matches the MVTec-AD reference code,
    which labels with a full 3x3 structuring element, 4 joins only edge neighbours. Memory is
    O(distinct scores); anomalous pixels need no more than normal ones.
    """

    def __init__(self, regions: bool = False, connectivity: Literal[4, 8] = 8) -> None:
        self._regions = regions
        self._structure = _structure(connectivity)
        self._table: _Table | None = None
        self._n_regions = 0

    def update(self, scores: ArrayLike, masks: ArrayLike, region: ArrayLike | None = None
               ) -> None:
        """Add a batch of score maps and their binary masks (same shape); with ``region`` (bool,
        same shape) only the pixels inside it are scored."""
        s, m = _as_pair(scores, masks, maps=self._regions)
        inside = as_region(region, tuple(scores.shape))
        if inside is not None:
            inside = inside.reshape(s.shape)
            m = m & inside
        weights, n_regions = self._region_weights(m) if self._regions else (None, 0)
        if inside is not None:
            s, m = s[inside], m[inside]  # row-major, so ``weights`` keep the order of s[m]
        batch = _table(s, m, weights)
        self._table = batch if self._table is None else _merge(self._table, batch)
        self._n_regions += n_regions

    def _region_weights(self, m: np.ndarray) -> tuple[np.ndarray, int]:
        """1 / (size of its region) for each anomalous pixel, and the number of regions."""
        labels, n_regions = ndimage.label(m, structure=self._structure)
        region_of_pixel = labels[m]
        sizes = np.bincount(region_of_pixel)
        return 1.0 / sizes[region_of_pixel], int(n_regions)

    def _checked(self) -> tuple[_Table, int, int]:
        if self._table is None:
            raise MetricInputError("no scores accumulated; call update() with a batch first")
        return self._table, *_check_classes(self._table.pos, self._table.neg, "pixel")

    def auroc(self) -> float:
        """Exact pixel AUROC (ties as in scikit-learn)."""
        t, n_pos, n_neg = self._checked()
        return _auroc(t.pos, t.neg, n_pos, n_neg)

    def best_iou(self) -> tuple[float, float]:
        """Highest IoU of ``score >= t`` with the masks over all thresholds t, and that t.

        Among equally good thresholds the highest is returned.
        """
        t, n_pos, _ = self._checked()
        tp = np.cumsum(t.pos[::-1])
        fp = np.cumsum(t.neg[::-1])
        iou = tp / (n_pos + fp)
        k = int(np.argmax(iou))
        return float(iou[k]), float(t.values[::-1][k])

    def roc_curve(
        self, drop_intermediate: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fpr, tpr, thresholds) for decreasing thresholds, as ``sklearn.metrics.roc_curve``.

        The first point is (0, 0) at threshold +inf; each next one predicts ``score >= t``.
        ``drop_intermediate`` keeps only the points where the curve bends, which leaves its
        shape and area unchanged and keeps plots small.
        """
        t, n_pos, n_neg = self._checked()
        tp = np.concatenate(([0], np.cumsum(t.pos[::-1])))
        fp = np.concatenate(([0], np.cumsum(t.neg[::-1])))
        thresholds = np.concatenate(([np.inf], t.values[::-1]))
        if drop_intermediate:
            keep = _corners(fp, tp)
            tp, fp, thresholds = tp[keep], fp[keep], thresholds[keep]
        return fp / n_neg, tp / n_pos, thresholds

    def pro_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(fpr, pro, thresholds) for decreasing thresholds, starting at (0, 0) for +inf.

        PRO at t is the mean over all anomalous regions of the fraction of the region with
        ``score >= t``; FPR counts every normal pixel, as in MVTec-AD.
        """
        if not self._regions:
            raise MetricInputError(
                "this accumulator does not track regions; create it with regions=True for PRO"
            )
        t, _, n_neg = self._checked()
        fpr = np.concatenate(([0], np.cumsum(t.neg[::-1]))) / n_neg
        pro = np.concatenate(([0.0], np.cumsum(t.region[::-1]))) / self._n_regions
        thresholds = np.concatenate(([np.inf], t.values[::-1]))
        return fpr, np.minimum(pro, 1.0), thresholds

    def aupro(self, max_fpr: float = 0.3) -> float:
        """Area under the PRO curve for FPR in [0, max_fpr], divided by max_fpr (MVTec-AD).

        The curve is linear between thresholds, so PRO at ``max_fpr`` is interpolated.
        """
        max_fpr = _check_max_fpr(max_fpr)
        fpr, pro, _ = self.pro_curve()
        return _partial_area(fpr, pro, max_fpr) / max_fpr


class BinnedROCAccumulator:
    """Streaming AUROC from ``n_bins`` equal-width score bins over [lo, hi]: O(n_bins) memory.

    Scores in one bin count as tied. Binning preserves order, so a positive/negative pair is
    scored differently from the exact AUROC only when both fall in the same bin: 1/2 here
    versus 0, 1/2 or 1 there. Hence ``|auroc() - exact| <= error_bound()``, which is
    ``sum_b pos_b * neg_b / (2 * n_pos * n_neg)`` and is computed from the same counts. Scores
    outside [lo, hi] are clamped into the end bins; the bound still holds, it only grows.
    """

    def __init__(self, lo: float, hi: float, n_bins: int = 65536) -> None:
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise MetricInputError(f"score range [{lo}, {hi}] is empty; pass finite lo < hi")
        if n_bins < 1:
            raise MetricInputError(f"n_bins is {n_bins}; pass at least 1")
        self._lo = float(lo)
        self._scale = n_bins / (float(hi) - float(lo))
        self._pos = np.zeros(n_bins, dtype=np.int64)
        self._neg = np.zeros(n_bins, dtype=np.int64)

    def update(self, scores: ArrayLike, masks: ArrayLike) -> None:
        """Add a batch of score maps and their binary masks (same shape)."""
        s, m = _as_pair(scores, masks)
        if not np.isfinite(s).all():
            raise _non_finite()
        n_bins = self._pos.size
        position = (s - self._lo) * self._scale
        np.clip(position, 0, n_bins - 1, out=position)
        bins = position.astype(np.intp).ravel()
        pos = np.bincount(bins[m.ravel()], minlength=n_bins)
        self._pos += pos
        self._neg += np.bincount(bins, minlength=n_bins) - pos

    def auroc(self) -> float:
        """AUROC with every bin treated as one tied score."""
        return _auroc(self._pos, self._neg, *_check_classes(self._pos, self._neg, "pixel"))

    def error_bound(self) -> float:
        """Upper bound on ``|auroc() - exact AUROC|``: half the same-bin pair fraction."""
        n_pos, n_neg = _check_classes(self._pos, self._neg, "pixel")
        same_bin = np.dot(self._pos.astype(np.float64), self._neg.astype(np.float64))
        return float(same_bin / (2.0 * n_pos * n_neg))


def _image_scores(s: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per map of a (B, H, W) batch: max score, mean score (float64) and anomalous label."""
    flat = s.reshape(s.shape[0], -1)
    return flat.max(axis=1), flat.mean(axis=1, dtype=np.float64), m.reshape(len(m), -1).any(1)


def _image_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    t = _table(scores, labels)
    return _auroc(t.pos, t.neg, *_check_classes(t.pos, t.neg, "image"))


class LocalizationEvaluator:
    """Streams batches of maps once and reports every localisation metric.

    ``result()`` gives pixel AUROC, best IoU and its threshold, AUPRO up to ``max_fpr`` (all
    from one exact score table) and image AUROC with each map reduced by each of ``reductions``
    (max, mean); an image counts as anomalous when its mask has any positive pixel, unless
    ``result`` is given the images' labels.

    With ``full_size_regions`` the maps are scored at a lower resolution than their images (an
    attention map against masks reduced to its grid): pixel AUROC and best IoU come from the
    scored maps, but AUPRO from the maps at the image size with the full-size masks, since
    reducing a mask merges or drops small defects; ``update`` then takes those as ``full``.

    Batches wait and enter the score tables ``chunk_pixels`` at a time: a few large updates
    cost less than many small ones. The counts do not depend on the chunking; AUPRO's summed
    region weights can differ in the last bits, so a run that must repeat its numbers exactly
    keeps the default.
    """

    def __init__(
        self,
        max_fpr: float = 0.3,
        connectivity: Literal[4, 8] = 8,
        *,
        full_size_regions: bool = False,
        reductions: tuple[Literal["max", "mean"], ...] = ("max", "mean"),
        chunk_pixels: int = 1 << 22,
    ) -> None:
        if not set(reductions) <= {"max", "mean"}:
            raise MetricInputError(f"reductions are {reductions!r}; pass 'max' and/or 'mean'")
        self._max_fpr = _check_max_fpr(max_fpr)
        self._pixels = PixelROCAccumulator(regions=not full_size_regions,
                                           connectivity=connectivity)
        self._regions = (PixelROCAccumulator(regions=True, connectivity=connectivity)
                         if full_size_regions else self._pixels)
        self._full_size = full_size_regions
        self._reductions = reductions
        self._chunk = chunk_pixels
        self._pending: list[tuple[np.ndarray | None, ...]] = []
        self._image_values: dict[str, list[np.ndarray]] = {r: [] for r in reductions}
        self._image_label: list[np.ndarray] = []

    def update(self, scores: ArrayLike, masks: ArrayLike, region: ArrayLike | None = None,
               full: tuple[ArrayLike, ArrayLike, ArrayLike | None] | None = None) -> None:
        """Add a batch of (H, W) or (B, H, W) score maps and binary masks of the same shape;
        with ``region`` (same shape) the pixel metrics score only its pixels. ``full`` (maps,
        masks, region or None at the image size) is required with ``full_size_regions``."""
        if (full is not None) != self._full_size:
            raise MetricInputError("pass full=(maps, masks, region) at the image size exactly "
                                   "when the evaluator has full_size_regions=True")
        batch = _checked_batch(scores, masks, region)
        if full is not None:
            batch += _checked_batch(*full)
        self._pending.append(batch)
        image_max, image_mean, label = _image_scores(batch[0], batch[1])  # type: ignore[arg-type]
        for reduction, values in self._image_values.items():
            values.append(image_max if reduction == "max" else image_mean)
        self._image_label.append(label)
        if sum(p[0].size for p in self._pending) >= self._chunk:  # type: ignore[union-attr]
            self._flush()

    def _flush(self) -> None:
        """Merge the waiting batches into the score tables at once."""
        if not self._pending:
            return
        parts: list[np.ndarray | None] = []
        for column in zip(*self._pending, strict=True):
            given = [c for c in column if c is not None]
            if given and len(given) != len(column):
                raise MetricInputError("pass an evaluation region with every batch or with none")
            parts.append(np.concatenate(given) if given else None)
        self._pending = []
        self._pixels.update(*parts[:3])  # type: ignore[arg-type]
        if self._regions is not self._pixels:
            self._regions.update(*parts[3:])  # type: ignore[arg-type]

    def result(self, labels: ArrayLike | None = None) -> dict[str, float]:
        """pixel_auroc, best_iou, best_iou_threshold, aupro, image_auroc_<reduction>.

        ``labels`` (one per image in stream order) replace the masks' image labels; when they
        hold one class only, image AUROC is left out (a set of anomalous frames only asks no
        image-level question), while masks of one class raise.
        """
        self._flush()
        iou, threshold = self._pixels.best_iou()
        result = {
            "pixel_auroc": self._pixels.auroc(),
            "best_iou": iou,
            "best_iou_threshold": threshold,
            "aupro": self._regions.aupro(self._max_fpr),
        }
        image_labels = np.concatenate(self._image_label)
        if labels is not None:
            given = _to_numpy(labels).astype(bool).reshape(-1)
            if given.shape != image_labels.shape:
                raise MetricInputError(f"{given.size} labels for {image_labels.size} images; "
                                       "pass one label per image")
            if not given.any() or given.all():
                return result
            image_labels = given
        for reduction, values in self._image_values.items():
            result[f"image_auroc_{reduction}"] = _image_auroc(np.concatenate(values),
                                                              image_labels)
        return result

    def roc_curve(
        self, drop_intermediate: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel ROC curve (fpr, tpr, thresholds); see :meth:`PixelROCAccumulator.roc_curve`."""
        self._flush()
        return self._pixels.roc_curve(drop_intermediate)

    def pro_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PRO curve (fpr, pro, thresholds); see :meth:`PixelROCAccumulator.pro_curve`."""
        self._flush()
        return self._regions.pro_curve()


def _checked_batch(scores: ArrayLike, masks: ArrayLike, region: ArrayLike | None
                   ) -> tuple[np.ndarray | None, ...]:
    """(scores, masks, region or None) of a batch as validated (B, H, W) arrays."""
    s, m = _as_pair(scores, masks, maps=True)
    if not np.isfinite(s).all():  # refused now, not when the batch enters the score table
        raise _non_finite()
    inside = as_region(region, tuple(scores.shape))
    return s, m, None if inside is None else inside.reshape(s.shape)


def pixel_auroc(scores: ArrayLike, masks: ArrayLike, region: ArrayLike | None = None) -> float:
    """Exact pixel AUROC of score maps against binary masks of the same shape (only the pixels
    of ``region`` when given)."""
    acc = PixelROCAccumulator()
    acc.update(scores, masks, region)
    return acc.auroc()


def best_iou(scores: ArrayLike, masks: ArrayLike, region: ArrayLike | None = None
             ) -> tuple[float, float]:
    """(IoU, threshold): the best IoU of ``scores >= threshold`` with the masks (only the
    pixels of ``region`` when given)."""
    acc = PixelROCAccumulator()
    acc.update(scores, masks, region)
    return acc.best_iou()


def image_auroc(
    scores: ArrayLike, masks: ArrayLike, reduce: Literal["max", "mean"] = "max"
) -> float:
    """Exact AUROC of per-map scores (max or mean of each map) against per-map labels.

    Maps are (H, W) or (B, H, W); a map is anomalous when its mask has any positive pixel.
    """
    if reduce not in ("max", "mean"):
        raise MetricInputError(f"reduce is {reduce!r}; pass 'max' or 'mean'")
    s, m = _as_pair(scores, masks, maps=True)
    if not np.isfinite(s).all():
        raise _non_finite()
    image_max, image_mean, labels = _image_scores(s, m)
    return _image_auroc(image_max if reduce == "max" else image_mean, labels)


def aupro(
    scores: ArrayLike,
    masks: ArrayLike,
    max_fpr: float = 0.3,
    connectivity: Literal[4, 8] = 8,
    region: ArrayLike | None = None,
) -> float:
    """Normalised area under the PRO curve up to ``max_fpr`` (MVTec-AD AUPRO).

    Maps are (H, W) or (B, H, W); see :class:`PixelROCAccumulator` for ``connectivity``.
    With ``region``, only its pixels are scored (the module docstring says how).
    """
    max_fpr = _check_max_fpr(max_fpr)
    acc = PixelROCAccumulator(regions=True, connectivity=connectivity)
    acc.update(scores, masks, region)
    return acc.aupro(max_fpr)
