"""Seed statistics against direct NumPy computations on synthetic per-task arrays."""

import math
import os
import tempfile

import numpy as np
import pytest

from maml.experiments import seed_statistics

THRESHOLD = 1000.0


def _synthetic():
    rng = np.random.default_rng(3)
    seeds = [rng.gamma(2.0, 0.3, size=40) for _ in range(4)]
    seeds[1][5] = np.inf  # diverged: non-finite
    seeds[2][7] = 3.0e6  # diverged: above the threshold
    seeds[2][9] = np.nan  # diverged: nan
    return seeds


def test_statistics_match_numpy():
    seeds = _synthetic()
    stats = seed_statistics.cell_statistics(seeds, THRESHOLD)
    means = np.array([a.mean() for a in seeds])
    ok = [np.isfinite(a) & (np.nan_to_num(a, nan=np.inf) <= THRESHOLD) for a in seeds]
    finite = np.array([a[m].mean() for a, m in zip(seeds, ok, strict=True)])
    assert stats.num_seeds == 4 and stats.num_tasks == 40
    np.testing.assert_array_equal(stats.seed_means, means)
    assert stats.diverged_per_seed == (0, 1, 2, 0)
    assert stats.diverged_total == 3
    np.testing.assert_allclose(stats.finite_means, finite)
    assert stats.finite_mean == pytest.approx(finite.mean())
    assert stats.finite_std == pytest.approx(np.std(finite, ddof=1))
    pooled = np.concatenate(
        [np.where(m, a, np.inf) for a, m in zip(seeds, ok, strict=True)]
    )
    assert stats.pooled_median == pytest.approx(np.median(pooled))
    # Seeds 1 and 2 have non-finite means: mean and spread over seeds follow them.
    assert math.isnan(stats.mean_over_seeds) and math.isnan(stats.seed_means[2])
    assert math.isinf(stats.seed_means[1])
    # For ranking, a nan seed mean counts as +inf (it diverged).
    ranked = np.where(np.isnan(means), np.inf, means)
    assert stats.median_over_seeds == pytest.approx(np.median(ranked))
    assert stats.min_over_seeds == np.min(ranked) == min(means[0], means[3])
    assert math.isinf(stats.max_over_seeds) and math.isinf(stats.median_seed_ci95)


def test_spread_over_seeds_matches_numpy_when_all_finite():
    rng = np.random.default_rng(0)
    seeds = [rng.uniform(0, 2, size=25) for _ in range(5)]
    stats = seed_statistics.cell_statistics(seeds, THRESHOLD)
    means = np.array([a.mean() for a in seeds])
    assert stats.mean_over_seeds == pytest.approx(means.mean())
    assert stats.std_over_seeds == pytest.approx(means.std(ddof=1))
    assert stats.median_over_seeds == pytest.approx(np.median(means))
    assert (stats.min_over_seeds, stats.max_over_seeds) == (means.min(), means.max())
    ci = [1.96 * a.std() / np.sqrt(a.size) for a in seeds]
    np.testing.assert_allclose(stats.seed_ci95, ci)
    assert stats.median_seed_ci95 == pytest.approx(np.median(ci))
    assert stats.diverged_total == 0
    assert stats.finite_mean == pytest.approx(stats.mean_over_seeds)


def test_one_seed_has_zero_spread_and_seed_ci_counting():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    stats = seed_statistics.cell_statistics([a], THRESHOLD)
    assert stats.std_over_seeds == 0.0 and stats.finite_std == 0.0
    ci = 1.96 * a.std() / 2.0
    assert seed_statistics.seeds_containing(stats, 2.5 + 0.99 * ci) == 1
    assert seed_statistics.seeds_containing(stats, 2.5 + 1.01 * ci) == 0


def test_seeds_with_a_diverged_task_never_count_as_containing():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([1.0, 2.0, 3.0, 5.0e6])  # its CI is huge and holds 2.5
    stats = seed_statistics.cell_statistics([a, b], THRESHOLD)
    assert abs(stats.seed_means[1] - 2.5) <= stats.seed_ci95[1]
    assert seed_statistics.seeds_containing(stats, 2.5) == 1


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError):
        seed_statistics.cell_statistics([], THRESHOLD)
    with pytest.raises(ValueError):
        seed_statistics.cell_statistics([np.ones(3), np.ones(4)], THRESHOLD)


def test_per_task_arrays_round_trip():
    arrays = {"maml_k5": np.arange(12.0).reshape(4, 3), "step": np.float64(0.01)}
    with tempfile.TemporaryDirectory() as d:
        path = seed_statistics.save_per_task(os.path.join(d, "sub", "x.npz"), arrays)
        back = seed_statistics.load_per_task(path)
        assert sorted(os.listdir(os.path.dirname(path))) == ["x.npz"]
    np.testing.assert_array_equal(back["maml_k5"], arrays["maml_k5"])
    assert float(back["step"]) == 0.01
