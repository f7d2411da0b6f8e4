"""Benchmark: exact pixel AUROC (+ best IoU) against scikit-learn and torchmetrics.

Data: 20,000,000 pixels (500 maps of 200 x 200), float32 scores quantised to 1/256 steps (a few
thousand distinct values, so heavy ties), 5% positive, seeded; every method gets identical data.

Methods, each in its own fresh subprocess:
  ours          vaecam PixelROCAccumulator: one update, then auroc() and best_iou() (one table)
  sklearn       sklearn.metrics.roc_auc_score alone
  torchmetrics  torchmetrics.classification.BinaryAUROC(thresholds=None), the exact variant,
                when importable (it applies a sigmoid to scores outside [0, 1]; AUROC is
                invariant to that up to float32 rounding)

In each child a tiny call first loads lazily imported code. The first full-size call is then the
warm-up, and its peak memory is measured two ways:
  tracemalloc  peak bytes allocated through Python's tracked allocators during the call: numpy
               buffers are included, torch tensors are not (so n/a for torchmetrics);
  RSS          the process's resident high-water mark (VmHWM, reset through
               /proc/self/clear_refs right before the call, after malloc_trim) minus its
               resident size at that moment; this sees every allocator.
The inputs exist before the call and count in neither. Time is the median wall time of REPEATS
further calls. Acceptance: ours at least 4x faster than sklearn, at most half its peak memory
(both measures), AUROC within 1e-9 of sklearn. The last line is ``speedup_vs_sklearn: <x>``.

Run: .venv/bin/python benchmarks/auroc.py
"""

from __future__ import annotations

import ctypes
import gc
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

SHAPE = (500, 200, 200)
POSITIVE_FRACTION = 0.05
STEPS_PER_UNIT = 256
SEED = 0
REPEATS = 3
METHODS = ("ours", "sklearn", "torchmetrics")
MiB = 2**20


def make_data() -> tuple[np.ndarray, np.ndarray]:
    """Seeded float32 score maps with heavy ties and bool masks, 5% positive."""
    rng = np.random.default_rng(SEED)
    masks = rng.random(SHAPE, dtype=np.float32) < POSITIVE_FRACTION
    scores = rng.standard_normal(SHAPE, dtype=np.float32)
    np.add(scores, 1.5, out=scores, where=masks)
    scores *= STEPS_PER_UNIT
    np.round(scores, out=scores)
    scores /= STEPS_PER_UNIT
    return scores, masks


def load(method: str) -> Callable[[np.ndarray, np.ndarray], dict[str, float]]:
    """The method as a call on (scores, masks) returning its AUROC (and extras)."""
    if method == "ours":
        from vaecam.metrics.localization import PixelROCAccumulator

        def ours(scores: np.ndarray, masks: np.ndarray) -> dict[str, float]:
            acc = PixelROCAccumulator()
            acc.update(scores, masks)
            iou, threshold = acc.best_iou()
            return {"auroc": acc.auroc(), "best_iou": iou, "best_iou_threshold": threshold}

        return ours
    if method == "sklearn":
        from sklearn.metrics import roc_auc_score

        return lambda scores, masks: {"auroc": float(roc_auc_score(masks.ravel(), scores.ravel()))}
    import torch
    from torchmetrics.classification import BinaryAUROC

    def torchmetrics_auroc(scores: np.ndarray, masks: np.ndarray) -> dict[str, float]:
        metric = BinaryAUROC(thresholds=None)
        metric.update(torch.from_numpy(scores.ravel()), torch.from_numpy(masks.ravel()))
        return {"auroc": float(metric.compute())}

    return torchmetrics_auroc


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _reset_peak_rss() -> int:
    """Return freed heap to the OS, reset VmHWM to the current RSS and return that RSS (KiB)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return _status_kib("VmRSS")


def child(method: str) -> None:
    """Measure one method and print its figures as one JSON line."""
    try:
        run = load(method)
    except ImportError as error:
        print(json.dumps({"method": method, "skipped": str(error)}))
        return
    scores, masks = make_data()
    run(scores[:2], masks[:2])
    rss_before = _reset_peak_rss()
    tracemalloc.start()
    result = run(scores, masks)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss_peak = _status_kib("VmHWM") - rss_before
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run(scores, masks)
        times.append(time.perf_counter() - start)
    record = {
        "method": method,
        "times_s": times,
        "median_s": statistics.median(times),
        "rss_peak_mib": rss_peak / 1024,
        "tracemalloc_peak_mib": None if method == "torchmetrics" else traced_peak / MiB,
        **result,
    }
    if method == "ours":
        record["distinct_scores"] = int(np.unique(scores).size)
    print(json.dumps(record))


def measure(method: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", method], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    n = int(np.prod(SHAPE))
    print(
        f"data: {n:,} pixels ({' x '.join(map(str, SHAPE))}), float32 scores in 1/"
        f"{STEPS_PER_UNIT} steps, {POSITIVE_FRACTION:.0%} positive, seed {SEED}; "
        f"median of {REPEATS} runs after a warm-up, each method in a fresh process"
    )
    records = {method: measure(method) for method in METHODS}
    sklearn_auroc = records["sklearn"]["auroc"]
    print(f"distinct scores: {records['ours']['distinct_scores']:,}")
    print(
        f"{'method':<13}{'median s':>10}  {'runs s':<22}{'tracemalloc MiB':>16}{'RSS MiB':>10}"
        f"  {'AUROC':<20}{'|AUROC - sklearn|':>18}"
    )
    for method, r in records.items():
        if "skipped" in r:
            print(f"{method:<13}skipped: {r['skipped']}")
            continue
        traced = r["tracemalloc_peak_mib"]
        print(
            f"{method:<13}{r['median_s']:>10.3f}  {' '.join(f'{t:.3f}' for t in r['times_s']):<22}"
            f"{'n/a' if traced is None else f'{traced:.1f}':>16}{r['rss_peak_mib']:>10.1f}"
            f"  {r['auroc']:<20.15f}{abs(r['auroc'] - sklearn_auroc):>18.3e}"
        )
    ours, sklearn = records["ours"], records["sklearn"]
    print(
        f"ours best IoU: {ours['best_iou']:.6f} at threshold {ours['best_iou_threshold']}"
        " (same table and pass as its AUROC)"
    )
    speedup = sklearn["median_s"] / ours["median_s"]
    traced_ratio = ours["tracemalloc_peak_mib"] / sklearn["tracemalloc_peak_mib"]
    rss_ratio = ours["rss_peak_mib"] / sklearn["rss_peak_mib"]
    difference = abs(ours["auroc"] - sklearn_auroc)
    passed = speedup >= 4 and max(traced_ratio, rss_ratio) <= 0.5 and difference <= 1e-9
    print(f"speed: sklearn / ours = {speedup:.2f}x (need >= 4)")
    print(
        f"peak memory ours / sklearn: tracemalloc {traced_ratio:.3f}, RSS {rss_ratio:.3f}"
        " (need <= 0.5)"
    )
    print(f"AUROC difference vs sklearn: {difference:.3e} (need <= 1e-9)")
    print(f"acceptance: {'PASS' if passed else 'FAIL'}")
    print(f"speedup_vs_sklearn: {speedup:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
