"""The 2-D spiral dataset of the Neural ODE paper (Chen et al., 2018, sec. 5.1).

Every spiral is a stretch of an Archimedean spiral `r = a + b * theta` traversed at
one radian per time unit, observed at `num_points` equally spaced times with
Gaussian observation noise. Half of the spirals turn clockwise, half
counter-clockwise; each starts at a random point along its curve. The noise-free
spiral at the observed times (`true_trajectories`) is the target of Table 2 as
this project reads it (all 100 window times, see
`neural_ode.experiments.spiral_experiment`); its noise-free continuation at
`num_extrapolate` further times (the same spacing, right after the
window) is the target of the extra extrapolation table.

The geometry follows torchdiffeq's `examples/latent_ode.py` (the paper's reference
code): spirals with `a = 0`, `b = 0.3` on `theta` in `[0, 6 pi]` sampled on a
1000-point grid (so the time step is `6 pi / 999`), a start point no closer to the
centre than 100 grid steps, counter-clockwise spirals centred at `(5, 0)` running
outwards and clockwise ones centred at `(-5, 0)` running inwards. Unlike that code,
the clockwise spirals are Archimedean too (the time reversal of the
counter-clockwise ones) and start points are drawn continuously with room for the
extrapolation window.

Noise: the paper states no observation noise level. The default 0.3 is the value in
torchdiffeq's example, whose author wrote when contributing it that the noise
"wasn't included in the paper"; it is that example's choice, not the paper's.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

DEFAULT_TIME_STEP = 6 * np.pi / 999
"""Time (and angle) between consecutive points: a 1000-point grid on [0, 6 pi]."""


@dataclasses.dataclass(frozen=True)
class Spirals:
    """A set of spirals, observed and continued.

    Attributes:
        times: float32 `[num_points]`, the observation times, `0, dt, 2 dt, ...`.
        observations: float32 `[num_spirals, num_points, 2]`, noisy positions.
        true_trajectories: float32 `[num_spirals, num_points, 2]`, noise-free
            positions at `times`.
        extrapolation_times: float32 `[num_extrapolate]`, the times after the
            observed window, continuing the same spacing.
        extrapolation_trajectories: float32 `[num_spirals, num_extrapolate, 2]`,
            noise-free positions at `extrapolation_times`.
        clockwise: bool `[num_spirals]`, the direction of rotation.
        start_angles: float32 `[num_spirals]`, the spiral angle `theta` at time 0.
        noise_std: The observation noise standard deviation.
    """

    times: np.ndarray
    observations: np.ndarray
    true_trajectories: np.ndarray
    extrapolation_times: np.ndarray
    extrapolation_trajectories: np.ndarray
    clockwise: np.ndarray
    start_angles: np.ndarray
    noise_std: float

    def __len__(self) -> int:
        return len(self.observations)

    def take(self, indices: np.ndarray) -> Spirals:
        """The spirals at `indices`, in that order."""
        indices = np.asarray(indices)
        return dataclasses.replace(
            self,
            observations=self.observations[indices],
            true_trajectories=self.true_trajectories[indices],
            extrapolation_trajectories=self.extrapolation_trajectories[indices],
            clockwise=self.clockwise[indices],
            start_angles=self.start_angles[indices],
        )


class Subsample(NamedTuple):
    """Randomly chosen observations of every spiral, in time order.

    Attributes:
        observations: `[num_spirals, num_observed, dims]`.
        times: `[num_spirals, num_observed]`, increasing along axis 1.
        indices: int `[num_spirals, num_observed]`, the chosen positions in the
            full sequence, increasing along axis 1.
    """

    observations: np.ndarray
    times: np.ndarray
    indices: np.ndarray


def spiral_positions(
    angles: np.ndarray,
    clockwise: np.ndarray,
    a: float = 0.0,
    b: float = 0.3,
    center_offset: float = 5.0,
) -> np.ndarray:
    """Points of the spirals at the given spiral angles.

    Args:
        angles: `[..., n]` angles `theta`, one row per spiral.
        clockwise: bool `[...]`, per spiral.
        a: Spiral offset, `r = a + b * theta`.
        b: Spiral growth per radian.
        center_offset: Counter-clockwise spirals are centred at
            `(center_offset, 0)`, clockwise ones at `(-center_offset, 0)`.

    Returns:
        float64 `[..., n, 2]`.
    """
    angles = np.asarray(angles, np.float64)
    radius = a + b * angles
    center_x = np.where(np.asarray(clockwise), -center_offset, center_offset)
    return np.stack(
        [radius * np.cos(angles) + center_x[..., None], radius * np.sin(angles)],
        axis=-1,
    )


def generate_spirals(
    num_spirals: int = 1000,
    num_points: int = 100,
    num_extrapolate: int = 100,
    *,
    noise_std: float = 0.3,
    a: float = 0.0,
    b: float = 0.3,
    time_step: float = DEFAULT_TIME_STEP,
    min_angle: float = 100 * DEFAULT_TIME_STEP,
    max_angle: float = 6 * np.pi,
    center_offset: float = 5.0,
    seed: int = 0,
) -> Spirals:
    """Generates noisy spirals and their noise-free continuations.

    Each spiral covers the angle interval `[lo, lo + (num_points + num_extrapolate
    - 1) * time_step]`, with `lo` uniform such that the interval lies in
    `[min_angle, max_angle]`. A counter-clockwise spiral runs through it with
    increasing angle (outwards), a clockwise one with decreasing angle (inwards);
    both at one radian per time unit. Exactly `num_spirals // 2` spirals are
    clockwise, in random positions.

    Args:
        num_spirals: Number of spirals.
        num_points: Observed points per spiral.
        num_extrapolate: Noise-free points after the observed window.
        noise_std: Standard deviation of the Gaussian noise added to each
            coordinate of the observations (not stated in the paper; 0.3 is
            torchdiffeq `examples/latent_ode.py`'s choice).
        a: Spiral offset, `r = a + b * theta`.
        b: Spiral growth per radian.
        time_step: Time between consecutive points.
        min_angle: Smallest angle any spiral reaches (keeps away from the centre).
        max_angle: Largest angle any spiral reaches.
        center_offset: Distance of the two spiral centres from the origin.
        seed: Seed of the NumPy generator; the result depends on nothing else.

    Returns:
        The spirals; see `Spirals`.

    Raises:
        ValueError: non-positive sizes or step, negative noise, or an angle range
            too short for the windows.

    Example (4 spirals of 10 observed points and 5 more to extrapolate, half of
    them clockwise):
        >>> data = generate_spirals(num_spirals=4, num_points=10, num_extrapolate=5)
        >>> data.observations.shape, data.extrapolation_trajectories.shape
        ((4, 10, 2), (4, 5, 2))
        >>> int(data.clockwise.sum())
        2
    """
    if num_spirals < 1 or num_points < 1 or num_extrapolate < 0:
        raise ValueError(
            f"need num_spirals >= 1, num_points >= 1 and "
            f"num_extrapolate >= 0, got {num_spirals}, {num_points}, "
            f"{num_extrapolate}"
        )
    if time_step <= 0 or noise_std < 0:
        raise ValueError(
            f"need time_step > 0 and noise_std >= 0, got {time_step}, {noise_std}"
        )
    total = num_points + num_extrapolate
    span = (total - 1) * time_step
    if max_angle - min_angle < span:
        raise ValueError(
            f"angle range [{min_angle:.4g}, {max_angle:.4g}] is "
            f"shorter than the {total} points' span {span:.4g}"
        )
    rng = np.random.default_rng(seed)
    clockwise = rng.permutation(np.arange(num_spirals) < num_spirals // 2)
    lo = rng.uniform(min_angle, max_angle - span, num_spirals)
    steps = np.arange(total) * time_step
    # theta(t) = lo + t (counter-clockwise) or lo + span - t (clockwise).
    angles = np.where(
        clockwise[:, None], lo[:, None] + span - steps, lo[:, None] + steps
    )
    true = spiral_positions(angles, clockwise, a, b, center_offset)
    noise = rng.normal(0.0, noise_std, (num_spirals, num_points, 2))
    return Spirals(
        times=steps[:num_points].astype(np.float32),
        observations=(true[:, :num_points] + noise).astype(np.float32),
        true_trajectories=true[:, :num_points].astype(np.float32),
        extrapolation_times=steps[num_points:].astype(np.float32),
        extrapolation_trajectories=true[:, num_points:].astype(np.float32),
        clockwise=clockwise,
        start_angles=angles[:, 0].astype(np.float32),
        noise_std=float(noise_std),
    )


def subsample(
    observations: np.ndarray,
    times: np.ndarray,
    num_observed: int,
    seed: int = 0,
    per_sequence: bool = True,
) -> Subsample:
    """Picks `num_observed` points of every sequence without replacement.

    Args:
        observations: `[num_sequences, num_points, dims]`.
        times: `[num_points]` (shared) or `[num_sequences, num_points]`.
        num_observed: Points to keep, `1 <= num_observed <= num_points`.
        seed: Seed of the NumPy generator.
        per_sequence: Draw the points independently for every sequence (the
            paper's irregular sampling); False draws one set for all.

    Returns:
        The chosen points in time order; see `Subsample`.

    Raises:
        ValueError: mismatched shapes or `num_observed` out of range.
    """
    observations = np.asarray(observations)
    if observations.ndim != 3:
        raise ValueError(
            f"observations must be [sequences, points, dims], got "
            f"shape {observations.shape}"
        )
    n, p = observations.shape[:2]
    times = np.asarray(times)
    if times.ndim == 1 and times.shape == (p,):
        times = np.broadcast_to(times, (n, p))
    if times.shape != (n, p):
        raise ValueError(
            f"times of shape {times.shape} do not match observations "
            f"of shape {observations.shape}"
        )
    if not 1 <= num_observed <= p:
        raise ValueError(f"num_observed must be in [1, {p}], got {num_observed}")
    rng = np.random.default_rng(seed)
    if per_sequence:
        chosen = np.argsort(rng.random((n, p)), axis=1)[:, :num_observed]
    else:
        chosen = np.broadcast_to(rng.permutation(p)[:num_observed], (n, num_observed))
    indices = np.sort(chosen, axis=1)
    return Subsample(
        observations=np.take_along_axis(observations, indices[..., None], axis=1),
        times=np.take_along_axis(times, indices, axis=1),
        indices=indices,
    )


def train_test_split(
    data: Spirals, test_fraction: float = 0.2, seed: int = 0
) -> tuple[Spirals, Spirals]:
    """Splits the spirals at random into disjoint train and test sets.

    Args:
        data: The spirals.
        test_fraction: Fraction of spirals for the test set, rounded to the
            nearest count, at least one spiral on each side.
        seed: Seed of the NumPy generator.

    Returns:
        `(train, test)`, each keeping the original order of its spirals.

    Raises:
        ValueError: `test_fraction` outside (0, 1) or fewer than two spirals.
    """
    if not 0 < test_fraction < 1 or len(data) < 2:
        raise ValueError(
            f"need 0 < test_fraction < 1 and at least two spirals, "
            f"got {test_fraction} and {len(data)}"
        )
    num_test = min(max(round(test_fraction * len(data)), 1), len(data) - 1)
    order = np.random.default_rng(seed).permutation(len(data))
    return data.take(np.sort(order[num_test:])), data.take(np.sort(order[:num_test]))
