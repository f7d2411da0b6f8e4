"""Shared rules of the benchmarks: time is the median of several runs after one warm-up; work is
the floating-point operations PyTorch counts for one call (matrix products and convolutions,
forward and backward), which bounds what any speed-up of the same arithmetic can reach."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def _sync() -> None:
    """Wait for queued GPU work, so that a timing covers it (nothing to wait for on a CPU)."""
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


def timeit(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time in seconds of ``repeats`` calls of ``fn`` after a warm-up call."""
    fn()
    _sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call of ``fn``, as ``FlopCounterMode`` counts them."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()
