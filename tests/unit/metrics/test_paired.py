"""Across-seed paired test against slow references: scipy's exact Wilcoxon, a sign enumeration
over all 2^n assignments, and a hand-written loop bootstrap on the same random draws."""

import itertools

import numpy as np
import pytest
from scipy import stats

from vaecam.errors import MetricInputError
from vaecam.metrics.paired import (
    bootstrap_mean_ci,
    paired_seed_test,
    smallest_p,
    wilcoxon_exact,
)


def enumerated_wilcoxon(d):
    """Two-sided exact p by listing every sign assignment (mean ranks for ties, zeros dropped)."""
    d = np.asarray([x for x in d if x != 0], dtype=float)
    ranks = stats.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    total = ranks.sum()
    low = min(observed, total - observed)
    sums = [sum(r for r, s in zip(ranks, signs, strict=True) if s)
            for signs in itertools.product([False, True], repeat=len(d))]
    p = 2 * sum(1 for s in sums if s <= low + 1e-9) / len(sums)
    return low, min(1.0, p)


def loop_bootstrap(d, resamples, seed):
    """One resample at a time, mean by hand, percentile by linear interpolation by hand."""
    draws = np.random.default_rng(seed).integers(0, len(d), size=(resamples, len(d)))
    means = sorted(sum(d[i] for i in row) / len(d) for row in draws)

    def percentile(q):
        position = q / 100 * (len(means) - 1)
        below = int(position)
        above = min(below + 1, len(means) - 1)
        return means[below] + (position - below) * (means[above] - means[below])

    return percentile(2.5), percentile(97.5)


@pytest.mark.parametrize("seed", range(6))
def test_wilcoxon_matches_scipy_exact_without_ties(seed):
    rng = np.random.default_rng(seed)
    n = 4 + seed * 2
    d = rng.normal(0.3 * (seed % 3 - 1), 1.0, n)
    statistic, p, n_nonzero = wilcoxon_exact(d)
    expected = stats.wilcoxon(d, method="exact")
    assert n_nonzero == n
    assert statistic == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue, rel=1e-12)


@pytest.mark.parametrize("d", [
    [0.1, 0.1, -0.1, 0.2, 0.3, 0.3, 0.3],
    [0.0, 0.05, -0.05, 0.05, 0.2, 0.0, 0.1, 0.1],
    [1, 2, 2, 3, 3, 3, -1, -4, 5, 5],
    [-0.5, -0.5, -0.5, -0.5],
])
def test_wilcoxon_with_ties_and_zeros_matches_enumeration(d):
    statistic, p, n_nonzero = wilcoxon_exact(d)
    expected_statistic, expected_p = enumerated_wilcoxon(d)
    assert n_nonzero == sum(1 for x in d if x != 0)
    assert statistic == pytest.approx(expected_statistic)
    assert p == pytest.approx(expected_p, rel=1e-12)


def test_smallest_p_is_reached_when_every_seed_agrees():
    for n in (1, 2, 3, 5, 10):
        d = np.arange(1, n + 1) / 10
        _, p, _ = wilcoxon_exact(d)
        assert p == pytest.approx(smallest_p(n))
    assert smallest_p(10) == pytest.approx(0.001953125)
    assert smallest_p(3) == 0.25 and smallest_p(0) is None


@pytest.mark.parametrize("n", [2, 3, 7, 10])
def test_bootstrap_matches_loop_reference(n):
    d = np.random.default_rng(n).normal(0.05, 0.04, n)
    assert bootstrap_mean_ci(d, 500, seed=3) == pytest.approx(loop_bootstrap(d, 500, 3),
                                                               abs=1e-12)


def test_paired_test_better_worse_undecided():
    b = np.array([0.60, 0.55, 0.64, 0.58, 0.61, 0.66, 0.57, 0.59, 0.62, 0.63])
    gain = np.array([0.09, 0.05, 0.11, 0.07, 0.08, 0.06, 0.10, 0.12, 0.04, 0.08])
    better = paired_seed_test(b + gain, b, resamples=2000, seed=1)
    assert better.verdict == "better" and better.ci95[0] > 0 and better.n == 10
    assert better.mean_diff == pytest.approx(gain.mean())
    assert better.std == pytest.approx(np.std(gain, ddof=1))
    assert better.ci95 == pytest.approx(loop_bootstrap(gain, 2000, 1), abs=1e-12)
    assert better.p_value == pytest.approx(smallest_p(10))  # every seed improves
    assert better.wilcoxon_statistic == 0.0 and better.min_p == smallest_p(10)

    worse = paired_seed_test(b, b + gain, resamples=2000)
    assert worse.verdict == "worse" and worse.ci95[1] < 0 and worse.mean_diff < 0

    mixed = np.array([0.05, -0.04, 0.02, -0.06, 0.03, -0.01, 0.04, -0.03, 0.01, -0.02])
    undecided = paired_seed_test(b + mixed, b, resamples=2000)
    assert undecided.verdict == "undecided" and undecided.ci95[0] < 0 < undecided.ci95[1]
    assert "contains 0" in undecided.reason
    # b + mixed - b is not exactly mixed; the ties of mixed must survive the subtraction
    assert undecided.p_value == pytest.approx(enumerated_wilcoxon(mixed)[1])
    assert undecided.wilcoxon_statistic == pytest.approx(enumerated_wilcoxon(mixed)[0])
    assert undecided.to_dict()["ci95"] == list(undecided.ci95)


def test_paired_test_edge_cases():
    same = paired_seed_test([0.6, 0.7, 0.5], [0.6, 0.7, 0.5], resamples=200)
    assert same.verdict == "undecided" and "every seed's difference is 0" in same.reason
    assert same.ci95 == (0.0, 0.0) and same.p_value is None and same.n_nonzero == 0
    assert same.min_p is None

    agreeing = paired_seed_test([0.7, 0.8, 0.75], [0.6, 0.7, 0.6], resamples=200)
    assert agreeing.ci95[0] > 0 and agreeing.p_value == 0.25  # every seed better, yet
    assert agreeing.verdict == "undecided" and "at least 6" in agreeing.reason
    five = paired_seed_test(np.arange(5) + 1.0, np.zeros(5), resamples=200)
    six = paired_seed_test(np.arange(6) + 1.0, np.zeros(6), resamples=200)
    assert (five.verdict, six.verdict) == ("undecided", "better") and six.p_value < 0.05

    one = paired_seed_test([0.7], [0.6], resamples=200)
    assert one.verdict == "undecided" and "at least 2" in one.reason
    assert one.mean_diff == pytest.approx(0.1) and one.ci95 is None and one.p_value is None
    none = paired_seed_test([], [], resamples=200)
    assert none.n == 0 and none.mean_diff is None and none.verdict == "undecided"

    with pytest.raises(MetricInputError, match="one score per seed"):
        paired_seed_test([0.1, 0.2], [0.1], resamples=200)
    with pytest.raises(MetricInputError, match="NaN"):
        paired_seed_test([0.1, float("nan")], [0.1, 0.2], resamples=200)
    with pytest.raises(MetricInputError, match="at least 100"):
        paired_seed_test([0.1, 0.2], [0.1, 0.3], resamples=10)
