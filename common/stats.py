"""Confidence intervals shared by the reports (95%).

Over many evaluations (test tasks, test images) the intervals are normal
approximations; over a few independent training runs (seeds) they use Student's t
(`mean_t_ci`).

Example:
    >>> round(mean_ci95([1.0, 2.0, 3.0]).ci95, 3)  # 1.96 * sqrt(2/3) / sqrt(3)
    0.924
    >>> round(proportion_ci95(0.5, 100), 4)  # 1.96 * sqrt(p (1 - p) / n)
    0.098
    >>> round(mean_t_ci([1.0, 2.0, 3.0])[1], 3)  # t(0.975, 2) * 1 / sqrt(3)
    2.484
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A mean over n independent evaluations with its 95% confidence half-width.

    The half-width is 1.96 * std / sqrt(n) with the population standard deviation,
    as the official MAML evaluation computes it.
    """

    mean: float
    ci95: float
    n: int


def mean_ci95(values: Sequence[float] | np.ndarray) -> Estimate:
    """Mean and 95% CI half-width (1.96 std / sqrt(n)) of per-task values."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError("mean_ci95 needs at least one value")
    with np.errstate(invalid="ignore", over="ignore"):  # inf/nan: a diverged run
        return Estimate(
            mean=float(arr.mean()),
            ci95=float(1.96 * arr.std() / math.sqrt(arr.size)),
            n=int(arr.size),
        )


def proportion_ci95(p: float, n: int) -> float:
    """95% half-width of a proportion `p` measured on `n` examples (Wald).

    The variance is floored at 1/n^2 so that a proportion of exactly 0 or 1 still
    gets a non-zero width.
    """
    if n <= 0:
        raise ValueError(f"proportion_ci95 needs n > 0, got {n}")
    return 1.96 * math.sqrt(max(p * (1.0 - p), 1.0 / n**2) / n)


def binomial_ci95(errors: int, n: int) -> float:
    """95% half-width, in percent, of an error rate of `errors` out of `n`."""
    return 100.0 * proportion_ci95(errors / n, n)


T_975 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
}
"""Student-t 97.5% quantiles by degrees of freedom (scipy is not installed); more
than 10 degrees of freedom fall back to the normal 1.96."""


def mean_t_ci(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and 95% Student-t half-width over seeds (NaN width for one value)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2:
        return float(arr.mean()) if arr.size else float("nan"), float("nan")
    t = T_975.get(arr.size - 1, 1.96)
    return float(arr.mean()), float(t * arr.std(ddof=1) / math.sqrt(arr.size))
