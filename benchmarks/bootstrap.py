"""Benchmark: 1,000-resample image bootstrap of the localisation metrics against one exact run.

Data: 20,000,000 pixels (500 maps of 200 x 200), seeded. 300 anomalous images carry smooth
blob-shaped anomalies (5% of all pixels, several 8-connected regions per image, so AUPRO has
regions); 200 images are normal. Scores are continuous float32 (every pixel a distinct value):
smoothed noise plus a smoothed response on the anomalies. A second, weaker "baseline" setting
on the same images serves the paired comparison.

Timed (median of REPEATS runs after a warm-up, ``benchmarks/timing.py``):
  exact      ``LocalizationEvaluator.update`` + ``.result()`` of the setting (pixel AUROC, best
             IoU, AUPRO, image AUROC by max and mean) -- what the evaluation already pays;
  bootstrap  ``bootstrap_settings`` of that one setting with 1,000 resamples: bin edges,
             per-image histograms and region counts, all resamples, intervals; the exact point
             estimates are passed in from the exact run (the evaluation has them already);
  paired     the same for setting + baseline with verdicts (two settings' worth of work);
  seeds      ``aggregate_seeds`` of three seeds' paired results: the two-level intervals
             (seeds, then images) and verdicts, on top of the per-seed bootstraps.
Also printed: intervals, the stated binning error bounds (largest over resamples), the
bootstrap's peak traced memory, and a spot check recomputing a few resamples exactly.
Acceptance: bootstrap / exact <= 10. The last line is ``bootstrap_over_exact: <x>``.

Run: .venv/bin/python benchmarks/bootstrap.py [--spot-check K]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from scipy import ndimage
from timing import timeit

from vaecam.metrics.bootstrap import (
    METRICS,
    aggregate_seeds,
    bootstrap_settings,
    resample_counts,
)
from vaecam.metrics.localization import LocalizationEvaluator, aupro, best_iou, image_auroc
from vaecam.metrics.localization import pixel_auroc as exact_pixel_auroc

SHAPE = (500, 200, 200)
N_ANOMALOUS = 300
POSITIVE_FRACTION = 0.05
N_RESAMPLES = 1000
SEED = 0
REPEATS = 3
MiB = 2**20


def make_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (scores, baseline scores, masks): blob anomalies, continuous float32 scores."""
    rng = np.random.default_rng(SEED)
    field = ndimage.gaussian_filter(rng.standard_normal(SHAPE, dtype=np.float32), (0, 6, 6))
    anomalous = np.arange(SHAPE[0]) < N_ANOMALOUS
    level = np.quantile(field[anomalous], 1 - POSITIVE_FRACTION * SHAPE[0] / N_ANOMALOUS)
    masks = (field > level) & anomalous[:, None, None]
    response = ndimage.gaussian_filter(masks.astype(np.float32), (0, 3, 3))
    texture = ndimage.gaussian_filter(rng.standard_normal(SHAPE, dtype=np.float32), (0, 1, 1))
    texture /= texture.std()
    scores = texture + 2.0 * response
    baseline = texture + 1.5 * response + 0.5 * rng.standard_normal(SHAPE, dtype=np.float32)
    return scores, baseline, masks


def exact_evaluation(scores: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    evaluator = LocalizationEvaluator(max_fpr=0.3)
    evaluator.update(scores, masks)
    return evaluator.result()


def spot_check(scores: np.ndarray, masks: np.ndarray, counts: np.ndarray, result, k: int) -> None:
    """Recompute the first ``k`` resamples exactly and compare with the binned values."""
    cells = result.settings["setting"].metrics
    for r in range(k):
        drawn = np.repeat(np.arange(len(scores)), counts[r])
        s, m = scores[drawn], masks[drawn]
        exact = {
            "pixel_auroc": exact_pixel_auroc(s, m),
            "aupro": aupro(s, m, 0.3),
            "best_iou": best_iou(s, m)[0],
            "image_auroc_max": image_auroc(s, m, "max"),
        }
        parts = []
        for metric in METRICS:
            error = abs(cells[metric].samples[r] - exact[metric])
            bound = cells[metric].bounds[r]
            parts.append(f"{metric} |binned-exact| {error:.2e} <= bound {bound:.2e}: "
                         f"{'ok' if error <= bound + 1e-12 else 'VIOLATED'}")
        print(f"spot check resample {r}: " + "; ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spot-check", type=int, default=2, help="resamples checked exactly")
    args = parser.parse_args()
    start = time.perf_counter()
    scores, baseline, masks = make_data()
    n = scores.size
    labels = masks.reshape(len(masks), -1).any(1)
    print(
        f"data: {n:,} pixels ({' x '.join(map(str, SHAPE))}), float32 continuous scores, "
        f"{masks.mean():.1%} positive pixels, {int(labels.sum())} anomalous + "
        f"{int((~labels).sum())} normal images, seed {SEED} (made in "
        f"{time.perf_counter() - start:.1f} s)"
    )
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = True
    print(f"anomalous 8-connected regions: {ndimage.label(masks, structure=structure)[1]:,}; "
          f"distinct scores: {np.unique(scores[:50]).size:,} in the first 50 maps")

    exact = exact_evaluation(scores, masks)
    exact_base = exact_evaluation(baseline, masks)
    t_exact = timeit(lambda: exact_evaluation(scores, masks), REPEATS)
    print(f"exact evaluation (update + result), median of {REPEATS}: {t_exact:.3f} s")

    counts = resample_counts(len(masks), N_RESAMPLES, SEED, strata=labels)
    points = {"setting": exact, "baseline": exact_base}

    def one_setting():
        return bootstrap_settings({"setting": scores}, masks, "setting", counts=counts,
                                  point_estimates=points)

    def paired():
        return bootstrap_settings({"setting": scores, "baseline": baseline}, masks, "baseline",
                                  counts=counts, point_estimates=points)

    t_boot = timeit(one_setting, REPEATS)
    print(f"bootstrap, 1 setting, {N_RESAMPLES} resamples (incl. per-image statistics), "
          f"median of {REPEATS}: {t_boot:.3f} s")
    t_paired = timeit(paired, REPEATS)
    print(f"bootstrap, setting + baseline with paired verdicts, median of {REPEATS}: "
          f"{t_paired:.3f} s")
    tracemalloc.start()
    one_setting()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"bootstrap peak traced memory (1 setting, beyond the inputs): {peak / MiB:.0f} MiB "
          f"(scores alone: {scores.nbytes / MiB:.0f} MiB)")

    result = paired()
    print(f"{'metric':<17}{'exact':>10}  {'95% CI (setting)':<20}{'error bound':>12}"
          f"  {'diff vs baseline 95% CI':<24}{'diff bound':>11}  verdict")
    for metric in METRICS:
        cell = result.settings["setting"].metrics[metric]
        comparison = result.settings["setting"].vs_baseline[metric]
        print(
            f"{metric:<17}{cell.point:>10.5f}  [{cell.ci95[0]:.5f}, {cell.ci95[1]:.5f}]  "
            f"{cell.error_bound:>11.2e}  [{comparison.diff_ci95[0]:+.5f}, "
            f"{comparison.diff_ci95[1]:+.5f}]  {comparison.error_bound:>10.2e}  "
            f"{comparison.verdict}"
        )
    for metric in METRICS:
        base = result.settings["baseline"].metrics[metric]
        print(f"baseline {metric}: exact {base.point:.5f}, 95% CI [{base.ci95[0]:.5f}, "
              f"{base.ci95[1]:.5f}], error bound {base.error_bound:.2e}")
    spot_check(scores, masks, counts, result, args.spot_check)
    t_seeds = timeit(lambda: aggregate_seeds([result] * 3), REPEATS)
    print(f"two-level aggregation over 3 seeds (2 settings, both verdicts), median of "
          f"{REPEATS}: {t_seeds:.3f} s ({t_seeds / t_exact:.3f} of one exact evaluation)")

    ratio = t_boot / t_exact
    print(f"paired (2 settings) / exact: {t_paired / t_exact:.3f}")
    print(f"if the bootstrap also computed its own exact point estimates: about "
          f"{(t_boot + t_exact) / t_exact:.2f}x one exact evaluation")
    print(f"acceptance (bootstrap / exact <= 10): {'PASS' if ratio <= 10 else 'FAIL'}")
    print(f"bootstrap_over_exact: {ratio:.3f}")


if __name__ == "__main__":
    main()
