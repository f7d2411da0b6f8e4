"""Localisation metrics against scikit-learn and plain reference implementations."""

import numpy as np
import pytest
import torch
from metric_references import reference_aupro
from sklearn.metrics import roc_auc_score, roc_curve

from vaecam.errors import MetricInputError
from vaecam.metrics.localization import (
    BinnedROCAccumulator,
    LocalizationEvaluator,
    PixelROCAccumulator,
    aupro,
    best_iou,
    image_auroc,
    pixel_auroc,
)


def tied_maps(seed: int, shape=(6, 16, 16), dtype=np.float32, levels: float = 4.0):
    """Maps whose scores take few distinct values (heavy ties) and masks of scattered blobs."""
    rng = np.random.default_rng(seed)
    masks = rng.random(shape) < 0.15
    masks[0] = False  # one normal image
    scores = np.round((rng.standard_normal(shape) + 1.2 * masks) * levels) / levels
    return scores.astype(dtype), masks


def reference_best_iou(scores, masks):
    """Best IoU of scores >= t over every distinct t, highest t first on ties."""
    best, best_t = -1.0, None
    for t in np.unique(scores)[::-1]:
        predicted = scores >= t
        iou = np.sum(predicted & masks) / np.sum(predicted | masks)
        if iou > best:
            best, best_t = iou, t
    return best, best_t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(4))
def test_pixel_auroc_equals_sklearn_with_ties(dtype, seed):
    scores, masks = tied_maps(seed, dtype=dtype, levels=2.0 + seed)
    assert len(np.unique(scores)) < 60
    expected = roc_auc_score(masks.ravel(), scores.ravel())
    assert abs(pixel_auroc(scores, masks) - expected) <= 1e-9


def test_pixel_auroc_keeps_float64_resolution():
    one = np.float64(1.0)
    scores = np.array([[one, np.nextafter(one, 2.0)]])
    masks = np.array([[0, 1]])
    assert pixel_auroc(scores, masks) == roc_auc_score(masks.ravel(), scores.ravel()) == 1.0


def test_streaming_equals_one_shot():
    scores, masks = tied_maps(0, shape=(9, 12, 12))
    batches = [slice(0, 1), slice(1, 4), slice(4, 9)]  # the first batch has no anomaly
    streamed = PixelROCAccumulator()
    for i, part in enumerate(batches):
        s, m = scores[part], masks[part]
        streamed.update(torch.from_numpy(s) if i == 1 else s.astype(np.float64), m.astype(int))
    one_shot = PixelROCAccumulator()
    one_shot.update(scores.astype(np.float64), masks)
    assert streamed.auroc() == one_shot.auroc()
    assert streamed.best_iou() == one_shot.best_iou()
    for a, b in zip(streamed.roc_curve(), one_shot.roc_curve(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_best_iou_equals_brute_force_sweep():
    for seed in range(3):
        scores, masks = tied_maps(seed)
        iou, threshold = best_iou(scores, masks)
        expected_iou, expected_threshold = reference_best_iou(scores, masks)
        assert iou == pytest.approx(expected_iou, abs=1e-12)
        assert threshold == expected_threshold


def test_roc_curve_matches_sklearn_and_keeps_area():
    scores, masks = tied_maps(1)
    acc = PixelROCAccumulator()
    acc.update(scores, masks)
    expected = roc_curve(masks.ravel(), scores.ravel(), drop_intermediate=False)
    for ours, theirs in zip(acc.roc_curve(drop_intermediate=False), expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    fpr, tpr, thresholds = acc.roc_curve()
    assert len(fpr) < len(expected[0])
    assert set(thresholds) <= set(expected[2])
    assert np.trapezoid(tpr, fpr) == pytest.approx(acc.auroc(), abs=1e-12)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_aupro_equals_reference(connectivity):
    for seed in range(2):
        scores, masks = tied_maps(seed, shape=(4, 12, 12))
        expected = reference_aupro(scores, masks, connectivity)
        assert aupro(scores, masks, connectivity=connectivity) == pytest.approx(expected, abs=1e-9)
    assert aupro(scores, masks, connectivity=4) != aupro(scores, masks, connectivity=8)


def test_aupro_other_limit_and_single_map():
    scores, masks = (a[1:] for a in tied_maps(3, shape=(2, 20, 20)))
    for max_fpr in (0.05, 0.3, 1.0):
        expected = reference_aupro(scores, masks, 8, max_fpr)
        assert aupro(scores[0], masks[0], max_fpr) == pytest.approx(expected, abs=1e-9)


def test_evaluator_streams_every_metric():
    scores, masks = tied_maps(2, shape=(10, 12, 12))
    evaluator = LocalizationEvaluator()
    for part in (slice(0, 3), slice(3, 4), slice(4, 10)):
        evaluator.update(scores[part], masks[part])
    iou, threshold = best_iou(scores, masks)
    expected = {
        "pixel_auroc": pixel_auroc(scores, masks),
        "best_iou": iou,
        "best_iou_threshold": threshold,
        "aupro": aupro(scores, masks),
        "image_auroc_max": image_auroc(scores, masks, "max"),
        "image_auroc_mean": image_auroc(scores, masks, "mean"),
    }
    result = evaluator.result()
    assert result == pytest.approx(expected, abs=1e-12)
    assert all(type(value) is float for value in result.values())
    fpr, tpr, _ = evaluator.roc_curve()
    assert np.trapezoid(tpr, fpr) == pytest.approx(result["pixel_auroc"], abs=1e-12)


def test_image_auroc_equals_sklearn():
    rng = np.random.default_rng(5)
    masks = np.zeros((30, 8, 8), dtype=bool)
    masks[::2, 2:4, 3:6] = True
    scores = rng.random(masks.shape).astype(np.float32) + 0.3 * masks
    labels = masks.reshape(30, -1).any(axis=1)
    flat = scores.reshape(30, -1)
    assert image_auroc(scores, masks) == pytest.approx(
        roc_auc_score(labels, flat.max(axis=1)), abs=1e-9
    )
    assert image_auroc(scores, masks, "mean") == pytest.approx(
        roc_auc_score(labels, flat.mean(axis=1, dtype=np.float64)), abs=1e-9
    )


@pytest.mark.parametrize("n_bins", [1, 8, 64, 1024])
def test_binned_auroc_within_its_bound(n_bins):
    rng = np.random.default_rng(n_bins)
    masks = rng.random((5, 20, 20)) < 0.1
    scores = rng.standard_normal(masks.shape) + masks
    exact = pixel_auroc(scores, masks)
    for lo, hi in ((scores.min(), scores.max()), (-1.0, 1.0)):  # the second range clamps
        binned = BinnedROCAccumulator(lo, hi, n_bins)
        for part in (slice(0, 2), slice(2, 5)):
            binned.update(scores[part], masks[part])
        bound = binned.error_bound()
        assert abs(binned.auroc() - exact) <= bound + 1e-12
        assert bound < 0.5 or n_bins == 1


def test_binned_bound_is_tight_and_exact_on_aligned_bins():
    scores, masks = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 0, 1, 1])
    one_bin = BinnedROCAccumulator(0.0, 1.0, n_bins=1)
    one_bin.update(scores, masks)
    assert pixel_auroc(scores, masks) - one_bin.auroc() == one_bin.error_bound() == 0.5
    integers, masks = tied_maps(0, levels=1.0)  # one bin per integer score
    lo, hi = integers.min(), integers.max()
    aligned = BinnedROCAccumulator(lo - 0.5, hi + 0.5, int(hi - lo) + 1)
    aligned.update(integers, masks)
    assert aligned.auroc() == pytest.approx(pixel_auroc(integers, masks), abs=1e-12)


def _with(scores=None, masks=None, **changes):
    """Small valid maps with one entry changed, e.g. _with(scores={(0, 0, 0): np.nan})."""
    s, m = tied_maps(0, shape=(3, 6, 6))
    m = m.astype(np.float32)
    for index, value in (scores or {}).items():
        s[index] = value
    for index, value in (masks or {}).items():
        m[index] = value
    return s, m


EVERY_METRIC = {
    "pixel_auroc": pixel_auroc,
    "best_iou": best_iou,
    "aupro": aupro,
    "image_auroc": image_auroc,
    "binned": lambda s, m: BinnedROCAccumulator(-5, 5, 32).update(s, m),
    "evaluator": lambda s, m: LocalizationEvaluator().update(s, m),
}


@pytest.mark.parametrize("metric", EVERY_METRIC)
@pytest.mark.parametrize(
    ("case", "match"),
    [
        (_with(scores={(0, 0, 0): np.nan}), "NaN or inf"),
        (_with(scores={(1, 2, 2): np.inf}), "NaN or inf"),
        (_with(scores={(2, 5, 5): -np.inf}), "NaN or inf"),
        (_with(masks={(1, 1, 1): 2.0}), "binary"),
        (_with(masks={(1, 1, 1): 0.5}), "binary"),
        ((np.zeros((2, 4, 4)), np.zeros((2, 4, 5))), "shape"),
        ((np.zeros((0, 4, 4)), np.zeros((0, 4, 4))), "empty"),
        ((np.zeros(3), np.array(["a", "b", "c"])), "binary masks"),
    ],
)
def test_invalid_input_raises(metric, case, match):
    with pytest.raises(MetricInputError, match=match) as error:
        EVERY_METRIC[metric](*case)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("metric", ["pixel_auroc", "best_iou", "aupro", "binned", "evaluator"])
@pytest.mark.parametrize(("fill", "match"), [(0, "no anomalous pixel"), (1, "no normal pixel")])
def test_single_class_pixels_raise(metric, fill, match):
    scores, masks = tied_maps(0, shape=(3, 6, 6))
    masks[:] = fill
    compute = {
        "pixel_auroc": pixel_auroc,
        "best_iou": best_iou,
        "aupro": aupro,
        "binned": lambda s, m: _binned(s, m).auroc(),
        "evaluator": lambda s, m: _evaluator(s, m).result(),
    }[metric]
    with pytest.raises(MetricInputError, match=match):
        compute(scores, masks)


def _binned(scores, masks):
    acc = BinnedROCAccumulator(-5, 5, 32)
    acc.update(scores, masks)
    return acc


def _evaluator(scores, masks):
    evaluator = LocalizationEvaluator()
    evaluator.update(scores, masks)
    return evaluator


def test_single_class_images_raise():
    scores, masks = tied_maps(0, shape=(3, 6, 6))
    masks[:, 0, 0] = True
    with pytest.raises(MetricInputError, match="no normal image"):
        image_auroc(scores, masks)
    with pytest.raises(MetricInputError, match="no normal image"):
        _evaluator(scores, masks).result()
    with pytest.raises(MetricInputError, match="no anomalous image"):
        image_auroc(scores, np.zeros_like(masks))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: PixelROCAccumulator().auroc(), "call update"),
        (lambda: LocalizationEvaluator().result(), "call update"),
        (lambda: aupro(*tied_maps(0, shape=(2, 2, 4, 4))), r"\(H, W\) or \(B, H, W\)"),
        (lambda: aupro(*tied_maps(0), max_fpr=0.0), "max_fpr"),
        (lambda: LocalizationEvaluator(max_fpr=1.5), "max_fpr"),
        (lambda: PixelROCAccumulator(connectivity=6), "connectivity"),
        (lambda: image_auroc(*tied_maps(0), reduce="median"), "reduce"),
        (lambda: BinnedROCAccumulator(1.0, 1.0), "lo < hi"),
        (lambda: BinnedROCAccumulator(0.0, 1.0, n_bins=0), "n_bins"),
        (lambda: _pixels(*tied_maps(0)).pro_curve(), "regions=True"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(MetricInputError, match=match):
        call()


def _pixels(scores, masks):
    acc = PixelROCAccumulator()
    acc.update(scores, masks)
    return acc


def test_rejected_batch_leaves_state_unchanged():
    scores, masks = tied_maps(4)
    evaluator = _evaluator(scores, masks)
    before = evaluator.result()
    bad = scores.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(MetricInputError):
        evaluator.update(bad, masks)
    assert evaluator.result() == before


def test_torch_inputs_match_numpy():
    scores, masks = tied_maps(6)
    half = torch.from_numpy(scores).half()
    expected = pixel_auroc(half.float().numpy(), masks)
    assert pixel_auroc(half, torch.from_numpy(masks)) == expected
    assert aupro(torch.from_numpy(scores), torch.from_numpy(masks).to(torch.uint8)) == aupro(
        scores, masks
    )


def test_evaluator_scores_low_resolution_maps_with_full_size_regions():
    """Pixel AUROC and best IoU from the scored (low-resolution) maps, AUPRO from the maps at
    the image size with the full-size masks, image AUROC from the given labels."""
    scores, masks = tied_maps(4, shape=(6, 8, 8))
    masks[0] = False
    full_scores = np.repeat(np.repeat(scores, 2, axis=1), 2, axis=2)
    full_masks = np.random.default_rng(5).random((6, 16, 16)) > 0.7
    full_masks[0] = False
    labels = np.array([False, True, True, False, True, True])
    evaluator = LocalizationEvaluator(full_size_regions=True, reductions=("max",),
                                      chunk_pixels=100)
    for part in (slice(0, 2), slice(2, 6)):
        evaluator.update(scores[part], masks[part],
                         full=(full_scores[part], full_masks[part], None))
    iou, threshold = best_iou(scores, masks)
    assert evaluator.result(labels) == pytest.approx({
        "pixel_auroc": pixel_auroc(scores, masks), "best_iou": iou,
        "best_iou_threshold": threshold, "aupro": aupro(full_scores, full_masks),
        "image_auroc_max": image_auroc(scores, np.broadcast_to(labels[:, None, None],
                                                               scores.shape)),
    }, abs=1e-12)
    # labels of one class leave image AUROC out instead of raising
    assert "image_auroc_max" not in evaluator.result(np.ones(6, dtype=bool))
    with pytest.raises(MetricInputError, match="one label per image"):
        evaluator.result(labels[:3])
    with pytest.raises(MetricInputError, match="full_size_regions"):
        evaluator.update(scores, masks)


def test_evaluator_counts_do_not_depend_on_the_chunking():
    scores, masks = tied_maps(6, shape=(9, 10, 10))
    results = []
    for chunk in (1, 250, 1 << 22):
        evaluator = LocalizationEvaluator(chunk_pixels=chunk)
        for part in (slice(0, 2), slice(2, 5), slice(5, 9)):
            evaluator.update(scores[part], masks[part])
        results.append(evaluator.result())
    assert results[0] == pytest.approx(results[1], abs=1e-12)
    assert results[0] == pytest.approx(results[2], abs=1e-12)
    assert {k: results[0][k] for k in ("pixel_auroc", "best_iou")} == {
        k: results[2][k] for k in ("pixel_auroc", "best_iou")}
