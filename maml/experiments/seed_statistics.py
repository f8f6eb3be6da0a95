"""Statistics of one table cell over several training seeds, from per-task errors.

A seed's run evaluates its model on the same held-out tasks and keeps the error of
every task (`save_per_task` writes them, `load_per_task` reads them back), so any
statistic can be recomputed later. For one cell (a row of the table at one number
of fine-tuning steps), `cell_statistics` takes one array of per-task errors per seed
and returns:

- the mean over tasks of each seed (the statistic the paper prints for its one
  model: the official code averages the MSE of its 600 test tasks, diverged or
  not), and their mean, sample standard deviation, median, minimum and maximum
  over seeds;
- the number of diverged tasks per seed: a task diverged when its error is not
  finite or exceeds `threshold`;
- the mean over the tasks that did not diverge, per seed and averaged over seeds;
- the median of the per-task errors pooled over all seeds (a diverged task counts
  as +inf, so the median stays defined).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from common import files, results


@dataclasses.dataclass(frozen=True)
class CellStatistics:
    """One cell summarised over seeds.

    Attributes:
        num_seeds: Number of seeds.
        num_tasks: Tasks evaluated per seed.
        seed_means: Mean over all tasks, per seed.
        seed_ci95: 95% CI half-width over tasks (1.96 std / sqrt(n)), per seed.
        mean_over_seeds: Mean of `seed_means`.
        std_over_seeds: Sample standard deviation (ddof = 1) of `seed_means`
            (0 with one seed).
        median_over_seeds: Median of `seed_means`, a nan mean (a task's error was
            nan) counting as +inf: a diverged seed ranks above every finite one.
        min_over_seeds: Smallest of `seed_means` (nan counted as +inf).
        max_over_seeds: Largest of `seed_means` (nan counted as +inf).
        median_seed_ci95: Median of `seed_ci95` (nan as +inf): the CI of a
            typical seed.
        diverged_per_seed: Diverged tasks per seed.
        diverged_total: Diverged tasks summed over seeds.
        finite_means: Mean over the non-diverged tasks, per seed.
        finite_mean: Mean of `finite_means` over seeds.
        finite_std: Sample standard deviation of `finite_means` (0 with one seed).
        pooled_median: Median of every task's error over all seeds (diverged
            tasks count as +inf).
        threshold: Errors above this (or non-finite) count as diverged.
    """

    num_seeds: int
    num_tasks: int
    seed_means: tuple[float, ...]
    seed_ci95: tuple[float, ...]
    mean_over_seeds: float
    std_over_seeds: float
    median_over_seeds: float
    min_over_seeds: float
    max_over_seeds: float
    median_seed_ci95: float
    diverged_per_seed: tuple[int, ...]
    diverged_total: int
    finite_means: tuple[float, ...]
    finite_mean: float
    finite_std: float
    pooled_median: float
    threshold: float


def diverged_mask(errors: np.ndarray, threshold: float) -> np.ndarray:
    """True where a task's error is non-finite or above `threshold`."""
    errors = np.asarray(errors, np.float64)
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(errors) | (errors > threshold)


def _std(values: np.ndarray) -> float:
    if values.size < 2:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        return float(np.std(values, ddof=1))


def cell_statistics(per_seed: Sequence[np.ndarray], threshold: float) -> CellStatistics:
    """Summarises one cell over seeds.

    Args:
        per_seed: One 1-D array of per-task errors per seed (equal lengths).
        threshold: Errors above this, or non-finite, mark a diverged task.

    Returns:
        A `CellStatistics`.

    Raises:
        ValueError: no seeds, or seeds with different numbers of tasks.
    """
    arrays = [np.asarray(a, np.float64).ravel() for a in per_seed]
    if not arrays:
        raise ValueError("cell_statistics needs at least one seed")
    if len({a.size for a in arrays}) != 1 or arrays[0].size == 0:
        raise ValueError("every seed must have the same, non-zero number of tasks")
    estimates = [results.mean_ci95(a) for a in arrays]
    means = np.array([e.mean for e in estimates])
    masks = [diverged_mask(a, threshold) for a in arrays]
    finite = np.array(
        [
            a[~m].mean() if (~m).any() else math.nan
            for a, m in zip(arrays, masks, strict=True)
        ]
    )
    ranked = np.where(np.isnan(means), np.inf, means)
    cis = np.array([e.ci95 for e in estimates])
    cis = np.where(np.isnan(cis), np.inf, cis)
    pooled = np.concatenate(
        [np.where(m, np.inf, a) for a, m in zip(arrays, masks, strict=True)]
    )
    with np.errstate(invalid="ignore", over="ignore"):
        return CellStatistics(
            num_seeds=len(arrays),
            num_tasks=int(arrays[0].size),
            seed_means=tuple(float(v) for v in means),
            seed_ci95=tuple(e.ci95 for e in estimates),
            mean_over_seeds=float(np.mean(means)),
            std_over_seeds=_std(means),
            median_over_seeds=float(np.median(ranked)),
            min_over_seeds=float(np.min(ranked)),
            max_over_seeds=float(np.max(ranked)),
            median_seed_ci95=float(np.median(cis)),
            diverged_per_seed=tuple(int(m.sum()) for m in masks),
            diverged_total=int(sum(int(m.sum()) for m in masks)),
            finite_means=tuple(float(v) for v in finite),
            finite_mean=float(np.mean(finite)),
            finite_std=_std(finite),
            pooled_median=float(np.median(pooled)),
            threshold=float(threshold),
        )


def seeds_containing(stats: CellStatistics, value: float) -> int:
    """How many seeds without a diverged task have a 95% CI containing `value`.

    A seed with a diverged task has so wide a CI that it contains any value, so
    it is not counted.
    """
    return sum(
        abs(m - value) <= c
        for m, c, d in zip(
            stats.seed_means, stats.seed_ci95, stats.diverged_per_seed, strict=True
        )
        if d == 0 and math.isfinite(m) and math.isfinite(c)
    )


def save_per_task(path: str, arrays: Mapping[str, np.ndarray]) -> str:
    """Writes named per-task arrays to a compressed `.npz`, atomically.

    Returns:
        `path`.
    """
    with files.atomic_open(path, binary=True) as f:
        np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()})
    return path


def load_per_task(path: str) -> dict[str, np.ndarray]:
    """Reads the arrays `save_per_task` wrote."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}
