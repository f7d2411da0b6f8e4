"""Two-level intervals (seeds, then test units), clip resampling, degenerate maps and the
verdict against the better trivial reference, each against a slow, obvious reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from vaecam.metrics.bootstrap import aggregate_seeds, bootstrap_settings, resample_counts
from vaecam.metrics.degenerate import CONSTANT, IDENTICAL, degeneracy
from vaecam.metrics.localization import pixel_auroc
from vaecam.report.localization import cell_text, is_win


def blobs(seed, n, size=20, anomalous=None):
    """Blob masks (about 12% of each anomalous image) and a unit-variance noise field."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal((n, size, size)), (0, 2, 2))
    masks = field > np.quantile(field.reshape(n, -1), 0.88, axis=1)[:, None, None]
    masks[~(np.ones(n, bool) if anomalous is None else anomalous)] = False
    return masks, rng.standard_normal((n, size, size)).astype(np.float32)


def labels_of(masks):
    return masks.reshape(len(masks), -1).any(axis=1)


def test_seed_variance_widens_the_two_level_bracket():
    """Three seeds whose maps differ far more than the test set varies: the one-level bracket
    (seeds averaged, then images resampled) is narrow around the mean; the two-level one
    reaches out to the weakest and the strongest seed."""
    masks, noise = blobs(0, n=60, anomalous=np.arange(60) < 40)
    counts = resample_counts(60, 1000, seed=1, strata=labels_of(masks))
    strengths = (0.3, 1.0, 2.5)
    per_seed = [bootstrap_settings({"base": noise, "s": noise + k * masks}, masks, "base",
                                   counts=counts) for k in strengths]
    cell = aggregate_seeds(per_seed)["settings"]["s"]["pixel_auroc"]
    samples = np.stack([r.settings["s"].metrics["pixel_auroc"].samples for r in per_seed])
    one_level = np.percentile(samples.mean(axis=0), [2.5, 97.5])
    points = cell["per_seed"]
    lo, hi = cell["ci95"]
    assert hi - lo > 5 * (one_level[1] - one_level[0])
    spread = max(points) - min(points)
    assert lo < min(points) + spread / 4 and hi > max(points) - spread / 4
    assert lo <= one_level[0] and hi >= one_level[1]
    one_seed = aggregate_seeds(per_seed[:1])["settings"]["s"]["pixel_auroc"]  # no seed level
    assert one_seed["ci95"] == pytest.approx(list(per_seed[0].settings["s"].metrics[
        "pixel_auroc"].ci95))


def clip_data():
    """Six clips of 3-6 frames; each clip's map quality is its own (frames of a clip are
    alike), clips 4 and 5 are normal only."""
    sizes = (4, 6, 3, 5, 4, 3)
    clip = np.repeat(np.arange(6), sizes)
    anomalous = (clip < 4) & (np.arange(clip.size) % 3 != 0)
    masks, noise = blobs(3, n=clip.size, anomalous=anomalous)
    quality = np.array([0.2, 1.5, 0.5, 2.0, 0.0, 0.0])[clip]
    scores = noise + quality[:, None, None] * masks
    return scores, masks, clip


def test_clip_resampling_equals_resampling_whole_clips_exactly():
    scores, masks, clip = clip_data()
    labels = labels_of(masks)
    counts = resample_counts(len(clip), 200, seed=4, strata=labels, units=clip)
    result = bootstrap_settings({"s": scores}, masks, "s", counts=counts)
    cell = result.settings["s"].metrics["pixel_auroc"]
    frames_of = {c: np.flatnonzero(clip == c) for c in range(6)}
    for r, row in enumerate(counts[:40]):
        drawn = [c for c in range(6) for _ in range(row[frames_of[c][0]])]
        for c in range(6):  # every frame of a clip is drawn as often as the clip
            assert (row[frames_of[c]] == row[frames_of[c][0]]).all()
        # strata of clips: mixed clips (0-3) and normal-only clips (4, 5) keep their numbers
        assert sum(c < 4 for c in drawn) == 4 and sum(c >= 4 for c in drawn) == 2
        frames = np.concatenate([frames_of[c] for c in drawn])
        exact = pixel_auroc(scores[frames], masks[frames])
        assert abs(cell.samples[r] - exact) <= cell.bounds[r] + 1e-12
    # each clip is drawn once per resample on average
    per_clip = np.stack([counts[:, frames_of[c][0]] for c in range(6)], axis=1)
    assert np.abs(per_clip.mean(axis=0) - 1).max() < 0.2
    frame_level = bootstrap_settings({"s": scores}, masks, "s", n_resamples=200, seed=4)
    width = np.diff(cell.ci95)[0]
    assert width > 1.5 * np.diff(frame_level.settings["s"].metrics["pixel_auroc"].ci95)[0]


def test_degenerate_maps_are_marked_and_left_out_of_means():
    masks, noise = blobs(5, n=10, anomalous=np.arange(10) < 6)
    counts = resample_counts(10, 100, seed=0, strata=labels_of(masks))
    flat = np.zeros_like(noise)
    same = np.broadcast_to(noise[0], noise.shape).copy()
    assert degeneracy(flat) == CONSTANT and degeneracy(flat + 3.0) == CONSTANT
    assert degeneracy(same) == IDENTICAL and degeneracy(noise) is None
    assert degeneracy(noise[:1]) is None  # one image is not "the same for every image"
    good = noise + 2 * masks
    per_seed = [
        bootstrap_settings({"base": noise, "flat": flat, "part": part, "same": same}, masks,
                           "base", counts=counts)
        for part in (flat, good, noise + masks)
    ]
    assert per_seed[0].degenerate == {"flat": CONSTANT, "part": CONSTANT, "same": IDENTICAL}
    assert per_seed[0].to_json()["degenerate"]["flat"] == CONSTANT
    summary = aggregate_seeds(per_seed, seeds=[10, 11, 12])
    part = summary["settings"]["part"]["pixel_auroc"]
    exact = [pixel_auroc(good, masks), pixel_auroc(noise + masks, masks)]
    assert part["per_seed"][0] is None and part["per_seed"][1:] == pytest.approx(exact)
    assert part["degenerate_seeds"] == [10]
    assert part["mean"] == pytest.approx(np.mean(exact))  # 0.5 of seed 10 left out
    assert part["vs_baseline"]["per_seed_verdicts"][0] == "degenerate"
    assert "degenerate on seed 10, left out" in cell_text(part)
    flat_cell = summary["settings"]["flat"]["pixel_auroc"]
    assert "mean" not in flat_cell and flat_cell["degenerate"] == CONSTANT
    assert flat_cell["vs_baseline"]["verdict"] == "degenerate"
    assert cell_text(flat_cell) == f"degenerate ({CONSTANT})"
    assert summary["settings"]["same"]["aupro"]["degenerate"] == IDENTICAL


def test_second_verdict_is_against_the_better_trivial_reference_per_metric():
    masks, noise = blobs(6, n=24, anomalous=np.arange(24) < 16)
    rng = np.random.default_rng(7)
    counts = resample_counts(24, 200, seed=0, strata=labels_of(masks))
    settings = {
        "base": noise + 0.5 * masks,
        "chance": rng.random(masks.shape).astype(np.float32),
        "ink": noise + 1.0 * masks,
        "strong": noise + 3.0 * masks,
        "middling": noise + 0.8 * masks,
    }
    per_seed = [bootstrap_settings(settings, masks, "base", counts=counts) for _ in range(2)]
    summary = aggregate_seeds(per_seed, references=("chance", "ink"))
    cells = summary["settings"]
    for metric in ("pixel_auroc", "aupro"):
        assert cells["strong"][metric]["vs_trivial"]["reference"] == "ink"
        assert cells["strong"][metric]["vs_trivial"]["verdict"] == "better"
        assert cells["middling"][metric]["vs_trivial"]["verdict"] == "worse"
        assert cells["middling"][metric]["vs_baseline"]["verdict"] == "better"
        assert cells["chance"][metric]["vs_trivial"]["reference"] == "ink"
        assert "vs_trivial" not in cells["ink"][metric]
        assert cells["base"][metric]["vs_trivial"]["verdict"] == "worse"
    assert summary["trivial_references"] == ["chance", "ink"]
    assert is_win({"metrics": cells["strong"]})
    assert not is_win({"metrics": cells["middling"]})  # beats the baseline, not the reference
    assert not is_win({"metrics": cells["ink"]})  # a reference is never its own win
