"""Image bootstrap of the localisation metrics against a slow, exact per-resample reference."""

import json
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage

from vaecam.errors import ConfigError, MetricInputError
from vaecam.metrics.bootstrap import (
    METRICS,
    MapCollector,
    _bin_index,
    aggregate_seeds,
    bootstrap_settings,
    resample_counts,
)
from vaecam.metrics.localization import aupro, best_iou, image_auroc, pixel_auroc

N_RESAMPLES = 100


def blob_data(seed, n=12, size=24, n_anomalous=8):
    """Masks of smooth blobs (~12% of each anomalous image) and a noise field per image."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((n, size, size)), (0, 2, 2))
    threshold = np.quantile(field.reshape(n, -1), 0.88, axis=1)[:, None, None]
    masks = field > threshold
    masks[n_anomalous:] = False
    noise = rng.standard_normal((n, size, size)).astype(np.float32)
    return masks, noise


def stratified(masks, n_resamples=N_RESAMPLES, seed=0):
    """Resample counts stratified by image label, as bootstrap_settings draws by default."""
    labels = masks.reshape(len(masks), -1).any(axis=1)
    return resample_counts(len(masks), n_resamples, seed, strata=labels)


def reference_samples(scores, masks, counts, max_fpr=0.3):
    """Every metric of every resample, recomputed exactly on the concatenated drawn images."""
    out = {metric: [] for metric in METRICS}
    for row in counts:
        drawn = np.repeat(np.arange(len(scores)), row)
        s, m = scores[drawn], masks[drawn]
        out["pixel_auroc"].append(pixel_auroc(s, m))
        out["aupro"].append(aupro(s, m, max_fpr))
        out["best_iou"].append(best_iou(s, m)[0])
        out["image_auroc_max"].append(image_auroc(s, m, "max"))
    return {metric: np.array(values) for metric, values in out.items()}


def test_bin_index_equals_searchsorted():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        s = rng.standard_normal((3, 500)).astype(dtype)
        edges = np.unique(np.quantile(s[0], np.linspace(0.1, 0.9, 40)).astype(dtype))
        probes = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf),
                                 np.array([-1e30, 1e30, 0.0, -0.0], dtype=dtype)])
        for x in (s, probes[None]):
            expected = np.searchsorted(edges, x, side="right")
            np.testing.assert_array_equal(_bin_index(x, edges), expected)
    one_edge = np.array([2.0], dtype=np.float32)
    x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    np.testing.assert_array_equal(_bin_index(x, one_edge), [[0, 1, 1]])
    wide = np.array([-1e308, 0.0, 1e308])
    x = np.array([[-np.finfo(float).max, -1.0, 0.0, 5.0, np.finfo(float).max]])
    np.testing.assert_array_equal(_bin_index(x, wide), np.searchsorted(wide, x, side="right"))


def test_bin_index_on_a_tiny_float32_range_is_exact_and_silent():
    # maps of a collapsed latent can span ~1e-40: the cell scale overflows float32
    tiny = np.array([0.0, 1e-41, 2e-41], dtype=np.float32)
    x = np.array([[0.0, 5e-42, 1e-41, 3e-41]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(_bin_index(x, tiny), np.searchsorted(tiny, x, side="right"))


@pytest.mark.parametrize("kind", ["continuous", "tied-coarse", "tied-few"])
def test_binned_resamples_within_bound_of_exact_reference(kind):
    masks, noise = blob_data(1)
    scores = noise + 1.2 * masks
    if kind == "tied-coarse":  # a few hundred distinct values: ties inside multi-value bins
        scores = np.round(scores * 16) / 16
    if kind == "tied-few":  # 4 distinct values, each >= 4/n_bins of the pixels: exact bins
        scores = np.clip(np.round(scores), -1, 2)
    n_bins = 64 if kind == "tied-few" else 32
    other = (noise + 0.6 * masks).astype(np.float32)
    counts = stratified(masks, seed=3)
    result = bootstrap_settings({"s": scores, "o": other}, masks, "o", counts=counts,
                                n_bins=n_bins)
    exact = reference_samples(scores, masks, counts)
    exact_other = reference_samples(other, masks, counts)
    setting = result.settings["s"]
    for metric in METRICS:
        cell = setting.metrics[metric]
        error = np.abs(cell.samples - exact[metric])
        assert np.all(error <= cell.bounds + 1e-12), metric
        assert cell.error_bound == cell.bounds.max()
        exact_ci = np.percentile(exact[metric], [2.5, 97.5])
        assert np.all(np.abs(np.array(cell.ci95) - exact_ci) <= cell.error_bound + 1e-12)
        diff = setting.vs_baseline[metric]
        exact_diff = exact[metric] - exact_other[metric]
        bound = cell.bounds + result.settings["o"].metrics[metric].bounds
        assert np.all(np.abs(diff.samples - exact_diff) <= bound + 1e-12), metric
        assert diff.error_bound == pytest.approx(bound.max())
    assert setting.metrics["image_auroc_max"].error_bound == 0.0
    assert setting.metrics["pixel_auroc"].point == pixel_auroc(scores, masks)
    assert setting.metrics["aupro"].point == aupro(scores, masks)
    if kind == "tied-few":
        for metric in METRICS:
            assert setting.metrics[metric].error_bound == 0.0
            np.testing.assert_allclose(setting.metrics[metric].samples, exact[metric], atol=1e-12)
    else:  # the binning is coarse enough to err, and the bounds stay informative
        for metric in ("pixel_auroc", "aupro", "best_iou"):
            cell = setting.metrics[metric]
            assert np.abs(cell.samples - exact[metric]).max() > 1e-6, metric
            assert 0 < cell.error_bound < 0.1, metric


def test_aupro_other_max_fpr_within_bound():
    masks, noise = blob_data(2)
    scores = noise + masks
    counts = stratified(masks)
    result = bootstrap_settings({"s": scores}, masks, "s", counts=counts, n_bins=64, max_fpr=0.05)
    exact = reference_samples(scores, masks, counts, max_fpr=0.05)["aupro"]
    cell = result.settings["s"].metrics["aupro"]
    assert np.all(np.abs(cell.samples - exact) <= cell.bounds + 1e-12)


def test_resample_counts_draws_images_and_keeps_strata():
    labels = np.array([1] * 3 + [0] * 7)
    counts = resample_counts(10, 200, seed=1, strata=labels)
    assert counts.shape == (200, 10)
    np.testing.assert_array_equal(counts[:, :3].sum(1), 3)
    np.testing.assert_array_equal(counts[:, 3:].sum(1), 7)
    plain = resample_counts(10, 200, seed=1)
    np.testing.assert_array_equal(plain.sum(1), 10)
    assert (plain[:, :3].sum(1) != 3).any()
    np.testing.assert_array_equal(plain, resample_counts(10, 200, seed=1))


def test_map_equal_to_baseline_is_undecided():
    masks, noise = blob_data(3)
    scores = noise + masks
    result = bootstrap_settings({"a": scores, "copy": scores.copy()}, masks, "a",
                                n_resamples=N_RESAMPLES)
    for comparison in result.settings["copy"].vs_baseline.values():
        assert comparison.verdict == "undecided"
        assert comparison.diff_ci95 == (0.0, 0.0)
    assert result.settings["a"].vs_baseline == {}


def test_clearly_better_and_worse_maps():
    masks, noise = blob_data(4, n=16, n_anomalous=10)
    rng = np.random.default_rng(5)
    baseline = rng.standard_normal(masks.shape).astype(np.float32)
    normal_image = ~masks.reshape(len(masks), -1).any(1)
    settings = {
        "baseline": baseline,
        "good": masks + 0.3 * noise,
        "bad": 2.0 * normal_image[:, None, None] - masks + 0.3 * noise,
    }
    result = bootstrap_settings(settings, masks, "baseline", n_resamples=200)
    for metric in METRICS:
        assert result.settings["good"].vs_baseline[metric].verdict == "better", metric
        assert result.settings["bad"].vs_baseline[metric].verdict == "worse", metric
    cell = result.to_json()["settings"]["good"]["pixel_auroc"]
    assert cell["vs_baseline"]["verdict"] == "better"
    assert cell["ci95"][0] <= cell["point"] <= cell["ci95"][1]


def test_same_seed_same_intervals_other_seed_others():
    masks, noise = blob_data(6)
    settings = {"base": noise, "s": noise + masks}
    first = bootstrap_settings(settings, masks, "base", n_resamples=N_RESAMPLES, seed=7)
    again = bootstrap_settings(settings, masks, "base", n_resamples=N_RESAMPLES, seed=7)
    other = bootstrap_settings(settings, masks, "base", n_resamples=N_RESAMPLES, seed=8)
    assert first.to_json() == again.to_json()
    assert first.to_json() != other.to_json()


def test_seed_aggregation_values_and_two_level_verdicts():
    masks, noise = blob_data(7)
    rng = np.random.default_rng(8)
    counts = stratified(masks)
    base = rng.standard_normal(masks.shape).astype(np.float32)
    strengths = (1.0, 1.5, 2.5)
    per_seed = [
        bootstrap_settings({"base": base, "s": noise + k * masks, "tie": base + k * masks},
                           masks, "base", counts=counts)
        for k in strengths
    ]
    per_seed[0] = bootstrap_settings(  # seed 0: "tie" equals the baseline -> undecided
        {"base": base, "s": noise + strengths[0] * masks, "tie": base}, masks, "base",
        counts=counts)
    summary = aggregate_seeds(per_seed)
    cell = summary["settings"]["s"]["pixel_auroc"]
    exact = [pixel_auroc(noise + k * masks, masks) for k in strengths]
    assert cell["per_seed"] == pytest.approx(exact, abs=1e-15)
    assert cell["mean"] == pytest.approx(np.mean(exact))
    assert cell["std"] == pytest.approx(np.std(exact))
    assert len(set(exact)) == 3
    # slow reference of the two-level interval: per resample, 3 seeds drawn with replacement
    # (the documented draws of seed 0 over seeds 0, 1, 2), each read on that resample
    samples = np.stack([r.settings["s"].metrics["pixel_auroc"].samples for r in per_seed])
    draws = np.random.default_rng([0, 3, 0, 1, 2]).integers(0, 3, size=(N_RESAMPLES, 3))
    slow = [np.mean([samples[k, r] for k in draws[r]]) for r in range(N_RESAMPLES)]
    assert cell["ci95"] == pytest.approx(list(np.percentile(slow, [2.5, 97.5])))
    assert cell["vs_baseline"]["verdict"] == "better"
    assert cell["vs_baseline"]["per_seed_verdicts"] == ["better"] * 3
    tie = summary["settings"]["tie"]["pixel_auroc"]["vs_baseline"]
    assert tie["per_seed_verdicts"] == ["undecided", "better", "better"]
    assert tie["verdict"] == "undecided"  # seed 0 does not agree
    assert "vs_baseline" not in summary["settings"]["base"]["pixel_auroc"]
    assert json.loads(json.dumps(summary)) == summary
    assert "ddof=0" in summary["std_method"]


def test_collector_matches_direct_call_and_keeps_masks_per_size():
    masks, noise = blob_data(9)
    small = masks[:, ::2, ::2]
    collector = MapCollector()
    for part in (slice(0, 5), slice(5, 12)):
        collector.update("base", noise[part], masks[part])
        collector.update("s", torch.from_numpy(noise[part] + masks[part]),
                         masks[part].astype(np.uint8))
        collector.update("low", (noise + masks)[part, ::2, ::2], small[part])
    collected = collector.result("base", n_resamples=N_RESAMPLES)
    direct = bootstrap_settings(
        {"base": noise, "s": noise + masks, "low": (noise + masks)[:, ::2, ::2]},
        {"base": masks, "s": masks, "low": small}, "base", n_resamples=N_RESAMPLES)
    assert collected.to_json() == direct.to_json()
    with pytest.raises(MetricInputError, match="differ"):
        collector.update("s", noise[:5], ~masks[:5])


def test_bad_inputs_raise_one_line_errors():
    masks, noise = blob_data(10)
    good = {"base": noise, "s": noise + masks}
    cases = [
        (ConfigError, lambda: bootstrap_settings(good, masks, "base", n_resamples=50)),
        (ConfigError, lambda: bootstrap_settings(good, masks, "nope", n_resamples=100)),
        (MetricInputError, lambda: bootstrap_settings(good, masks[:, :5], "base")),
        (MetricInputError, lambda: bootstrap_settings(good, np.zeros_like(masks), "base")),
        (MetricInputError, lambda: bootstrap_settings(good, np.ones_like(masks), "base")),
        (MetricInputError, lambda: bootstrap_settings({"base": noise, "s": noise[:6]},
                                                      {"base": masks, "s": masks[:6]}, "base")),
        (MetricInputError, lambda: bootstrap_settings(  # one anomalous image, unstratified
            good, np.where(np.arange(12)[:, None, None] == 0, masks, False), "base",
            n_resamples=100, stratify=False)),
        (ConfigError, lambda: resample_counts(12, 99)),
    ]
    for error, call in cases:
        with pytest.raises(error) as info:
            call()
        assert "\n" not in str(info.value)
    one = bootstrap_settings(good, masks, "base", counts=stratified(masks))
    fewer = bootstrap_settings({k: v[:10] for k, v in good.items()}, masks[:10], "base",
                               counts=stratified(masks[:10]))
    other_draws = bootstrap_settings(good, masks, "base", counts=stratified(masks, seed=1))
    with pytest.raises(MetricInputError, match="different numbers of images|images"):
        aggregate_seeds([one, fewer])
    with pytest.raises(ConfigError, match="resamples"):
        aggregate_seeds([one, other_draws])
