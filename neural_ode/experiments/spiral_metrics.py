"""Table 2's scores of one model's spiral estimates: RMSE in the window and beyond.

`evaluate` scores the estimates of every test spiral over the 100 window times
(against the noise-free spiral, the Table 2 cell, and against the noisy
observations) and over the 100 grid times after the window (extrapolation): the
RMSE per coordinate pooled over spirals, times and coordinates, in raw and
standardized units, with a bootstrap 95% CI over test spirals, and the mean of the
per-spiral RMSEs.

Example (estimates one unit off in each coordinate):
    >>> import numpy as np
    >>> pooled_rmse(np.ones((3, 5, 2)), np.zeros((3, 5, 2)))
    1.0
"""

from __future__ import annotations

import numpy as np

from common import results
from neural_ode import rnn_baseline
from neural_ode.data import spirals

BOOTSTRAP_SAMPLES = 1000


def per_spiral_rmse(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """RMSE per spiral over its points and coordinates, `[batch]`."""
    diff = np.asarray(prediction, np.float64) - np.asarray(target, np.float64)
    return np.sqrt(np.mean(np.square(diff), axis=(1, 2)))


def pooled_rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    """RMSE per coordinate pooled over every spiral, time and coordinate."""
    return rnn_baseline.rmse(prediction, target)


def bootstrap_ci95(
    prediction: np.ndarray,
    target: np.ndarray,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> float:
    """95% half-width (1.96 bootstrap std) of the pooled RMSE over resampled spirals."""
    squared = np.mean(
        np.square(np.asarray(prediction, np.float64) - np.asarray(target, np.float64)),
        axis=(1, 2),
    )
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(squared), (samples, len(squared)))
    return float(1.96 * np.sqrt(squared[draws].mean(axis=1)).std())


def evaluate(estimates: np.ndarray, test: spirals.Spirals, scale: float) -> dict:
    """Every RMSE of one model's estimates over window + continuation.

    Args:
        estimates: `[batch, 2 T, 2]` from `predict` (data units).
        test: The test spirals (window of `T` points, continuation of `T`).
        scale: The training observations' standard deviation (standardized RMSE
            is raw RMSE / scale).

    Returns:
        `{"window_clean", "window_noisy", "extrapolation"}`, each a dict with the
        pooled RMSE in raw and standardized units, its bootstrap 95% CI (raw), and
        the mean and 95% CI of the per-spiral RMSE (raw).
    """
    length = test.observations.shape[1]
    window, after = estimates[:, :length], estimates[:, length:]
    out = {}
    for key, prediction, target in (
        ("window_clean", window, test.true_trajectories),
        ("window_noisy", window, test.observations),
        ("extrapolation", after, test.extrapolation_trajectories),
    ):
        raw = pooled_rmse(prediction, target)
        per_spiral = results.mean_ci95(per_spiral_rmse(prediction, target))
        out[key] = {
            "raw": raw,
            "standardized": raw / scale,
            "ci95_raw": bootstrap_ci95(prediction, target),
            "per_spiral_mean": per_spiral.mean,
            "per_spiral_ci95": per_spiral.ci95,
        }
    return out
