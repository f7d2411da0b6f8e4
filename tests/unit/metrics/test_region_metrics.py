"""Localisation metrics restricted to an evaluation region, against slow, obvious references:
scikit-learn on the selected pixels, and AUPRO threshold by threshold on the region only."""

import numpy as np
import pytest
import torch
from metric_references import reference_aupro
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from vaecam.errors import MetricInputError
from vaecam.metrics.bootstrap import MapCollector, bootstrap_settings, resample_counts
from vaecam.metrics.localization import (
    LocalizationEvaluator,
    PixelROCAccumulator,
    aupro,
    best_iou,
    pixel_auroc,
)


def region_maps(seed: int, shape=(6, 16, 16)):
    """Tied scores, masks of scattered blobs (some cut by the region) and a box region per
    image; image 0 is normal."""
    rng = np.random.default_rng(seed)
    masks = ndimage.binary_dilation(rng.random(shape) < 0.04, np.ones((1, 3, 3), bool))
    masks[0] = False
    scores = np.round((rng.standard_normal(shape) + 1.2 * masks) * 4) / 4
    region = np.zeros(shape, dtype=bool)
    for i in range(shape[0]):
        top, left = rng.integers(0, 5, size=2)
        region[i, top : top + 10, left : left + 11] = True
    return scores.astype(np.float32), masks, region


def reference_region_best_iou(scores, masks, region):
    """Best IoU of scores >= t counted inside the region, over every distinct t."""
    s, m = scores[region], masks[region]
    return max(np.sum((s >= t) & m) / np.sum((s >= t) | m) for t in np.unique(s))


@pytest.mark.parametrize("seed", range(4))
def test_region_pixel_auroc_equals_sklearn_on_the_selected_pixels(seed):
    scores, masks, region = region_maps(seed)
    expected = roc_auc_score(masks[region], scores[region])
    assert pixel_auroc(scores, masks, region) == pytest.approx(expected, abs=1e-12)
    assert pixel_auroc(scores, masks, region) != pytest.approx(pixel_auroc(scores, masks))
    assert best_iou(scores, masks, region)[0] == pytest.approx(
        reference_region_best_iou(scores, masks, region), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_region_aupro_equals_reference_and_outside_is_not_normal(seed):
    scores, masks, region = region_maps(seed)
    expected = reference_aupro(scores, masks, region=region)
    assert aupro(scores, masks, region=region) == pytest.approx(expected, abs=1e-12)
    # excluded, not normal: raising every outside score changes nothing
    louder = np.where(region, scores, 100.0).astype(np.float32)
    assert aupro(louder, masks, region=region) == pytest.approx(expected, abs=1e-12)
    assert pixel_auroc(louder, masks, region) == pixel_auroc(scores, masks, region)


def test_whole_image_region_changes_nothing_and_streaming_agrees():
    scores, masks, region = region_maps(7)
    everything = np.ones_like(masks)
    assert pixel_auroc(scores, masks, everything) == pixel_auroc(scores, masks)
    assert aupro(scores, masks, region=everything) == aupro(scores, masks)
    acc = PixelROCAccumulator(regions=True)
    for part in (slice(0, 2), slice(2, 6)):
        acc.update(torch.from_numpy(scores[part]), masks[part], torch.from_numpy(region[part]))
    assert acc.auroc() == pixel_auroc(scores, masks, region)
    assert acc.aupro() == aupro(scores, masks, region=region)
    evaluator = LocalizationEvaluator()
    evaluator.update(scores, masks, region)
    result = evaluator.result()
    assert result["pixel_auroc"] == pixel_auroc(scores, masks, region)
    assert result["aupro"] == aupro(scores, masks, region=region)


@pytest.mark.parametrize("bad, match", [
    (lambda r: r[:, :8], "shape"),
    (lambda r: r.astype(np.uint8), "bool"),
])
def test_bad_regions_raise_one_line_errors(bad, match):
    scores, masks, region = region_maps(1)
    with pytest.raises(MetricInputError, match=match) as info:
        pixel_auroc(scores, masks, bad(region))
    assert "\n" not in str(info.value)


def test_bootstrap_in_a_region_is_within_bound_of_the_exact_region_metrics():
    scores, masks, region = region_maps(3, shape=(12, 16, 16))
    other = (scores + np.random.default_rng(0).standard_normal(scores.shape)).astype(np.float32)
    labels = masks.reshape(len(masks), -1).any(axis=1)
    counts = resample_counts(len(masks), 100, 0, strata=labels)
    result = bootstrap_settings({"s": scores, "o": other}, masks, "o", counts=counts,
                                regions=region, n_bins=32)
    cell = result.settings["s"].metrics
    assert cell["pixel_auroc"].point == pixel_auroc(scores, masks, region)
    assert cell["aupro"].point == aupro(scores, masks, region=region)
    for row, (auroc, bound) in enumerate(zip(cell["pixel_auroc"].samples,
                                             cell["pixel_auroc"].bounds, strict=True)):
        drawn = np.repeat(np.arange(len(scores)), counts[row])
        exact = pixel_auroc(scores[drawn], masks[drawn], region[drawn])
        assert abs(auroc - exact) <= bound + 1e-12
        exact_pro = aupro(scores[drawn], masks[drawn], region=region[drawn])
        assert abs(cell["aupro"].samples[row] - exact_pro) <= cell["aupro"].bounds[row] + 1e-12
    collector = MapCollector()
    for part in (slice(0, 5), slice(5, 12)):
        collector.update("s", scores[part], masks[part], region[part])
        collector.update("o", other[part], masks[part], region[part])
    collected = collector.result("o", counts=counts, n_bins=32)
    assert collected.to_json() == result.to_json()
