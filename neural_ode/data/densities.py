"""2-D densities of the normalizing-flow experiments (Chen et al. 2018, sec. 4.1).

Density matching (Fig. 4) fits a flow to a target known up to a constant,
`p(z) ∝ exp(-U(z))`. The energies `U` are the four test energies of Rezende &
Mohamed (2015), Table 1, with `w1(z) = sin(2 pi z1 / 4)`,
`w2(z) = 3 exp(-((z1 - 1) / 0.6)^2 / 2)` and `w3(z) = 3 sigmoid((z1 - 1) / 0.3)`:

* "ring" (U1): `((|z| - 2) / 0.4)^2 / 2 - log(e^{-((z1 - 2) / 0.6)^2 / 2}
  + e^{-((z1 + 2) / 0.6)^2 / 2})`, a ring with two lobes.
* "wave" (U2): `((z2 - w1) / 0.4)^2 / 2`, a sine-shaped band.
* "split_wave" (U3): `-log(e^{-((z2 - w1) / 0.35)^2 / 2}
  + e^{-((z2 - w1 + w2) / 0.35)^2 / 2})`, the band with a second branch near z1 = 1.
* "step_wave" (U4): `-log(e^{-((z2 - w1) / 0.4)^2 / 2}
  + e^{-((z2 - w1 + w3) / 0.35)^2 / 2})`, two bands, the second stepping down.

Rezende & Mohamed show them on the box [-4, 4]^2. U2-U4 are periodic along z1, so
`exp(-U)` is not integrable over the plane and KL(q || p) would be unbounded below
(q could spread along the band forever). Outside the box we therefore add a wall
`((|z1| - 4) / 0.4)^2 / 2` to U2-U4; inside the box the energies are exactly the
published ones. U1 is integrable as it stands.

Maximum-likelihood training (Fig. 5) fits samples of Two Circles and Two Moons,
generated here with NumPy in the geometry of scikit-learn's `make_circles` and
`make_moons`, but with uniformly random angles instead of a regular grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

BOX = 4.0
"""Half-width of Rezende & Mohamed's plotting box; the wall starts beyond it."""

_WALL_SCALE = 0.4


def _half_square(x: tf.Tensor, scale: float) -> tf.Tensor:
    return 0.5 * tf.square(x / scale)


def _w1(z1: tf.Tensor) -> tf.Tensor:
    return tf.sin(2.0 * math.pi * z1 / 4.0)


def _w2(z1: tf.Tensor) -> tf.Tensor:
    return 3.0 * tf.exp(-_half_square(z1 - 1.0, 0.6))


def _w3(z1: tf.Tensor) -> tf.Tensor:
    return 3.0 * tf.sigmoid((z1 - 1.0) / 0.3)


def _neg_logaddexp(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """-log(exp(-a) + exp(-b)), computed stably."""
    return -tf.reduce_logsumexp(tf.stack([-a, -b], axis=-1), axis=-1)


def _wall(z1: tf.Tensor) -> tf.Tensor:
    return _half_square(tf.nn.relu(tf.abs(z1) - BOX), _WALL_SCALE)


def _split(z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    z = tf.convert_to_tensor(z)
    if z.dtype not in (tf.float32, tf.float64):
        z = tf.cast(z, tf.float32)
    return z[..., 0], z[..., 1]


def energy_ring(z: tf.Tensor) -> tf.Tensor:
    """U1 of Rezende & Mohamed (2015): a ring of radius 2 with two lobes.

    Args:
        z: `[..., 2]` points.

    Returns:
        `[...]` energies.
    """
    z1, z2 = _split(z)
    radius = tf.sqrt(tf.square(z1) + tf.square(z2))
    return _half_square(radius - 2.0, 0.4) + _neg_logaddexp(
        _half_square(z1 - 2.0, 0.6), _half_square(z1 + 2.0, 0.6)
    )


def energy_wave(z: tf.Tensor) -> tf.Tensor:
    """U2 of Rezende & Mohamed (2015), a sine band, walled beyond |z1| = 4."""
    z1, z2 = _split(z)
    return _half_square(z2 - _w1(z1), 0.4) + _wall(z1)


def energy_split_wave(z: tf.Tensor) -> tf.Tensor:
    """U3 of Rezende & Mohamed (2015), a sine band with a branch, walled."""
    z1, z2 = _split(z)
    upper = _half_square(z2 - _w1(z1), 0.35)
    lower = _half_square(z2 - _w1(z1) + _w2(z1), 0.35)
    return _neg_logaddexp(upper, lower) + _wall(z1)


def energy_step_wave(z: tf.Tensor) -> tf.Tensor:
    """U4 of Rezende & Mohamed (2015), two sine bands with a step, walled."""
    z1, z2 = _split(z)
    upper = _half_square(z2 - _w1(z1), 0.4)
    lower = _half_square(z2 - _w1(z1) + _w3(z1), 0.35)
    return _neg_logaddexp(upper, lower) + _wall(z1)


ENERGIES: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "ring": energy_ring,
    "wave": energy_wave,
    "split_wave": energy_split_wave,
    "step_wave": energy_step_wave,
}
"""Target energies by name (Rezende & Mohamed's U1, U2, U3, U4)."""


def grid(half_width: float, points_per_axis: int) -> tuple[np.ndarray, float]:
    """Cell centres of a square grid on [-half_width, half_width]^2.

    Returns:
        `(points, cell_area)`: float64 `[points_per_axis**2, 2]` (x varies fastest)
        and the area of one cell.
    """
    step = 2.0 * half_width / points_per_axis
    axis = -half_width + step * (np.arange(points_per_axis) + 0.5)
    xx, yy = np.meshgrid(axis, axis)
    return np.stack([xx.ravel(), yy.ravel()], axis=-1), step * step


def log_normalizer(
    name: str, half_width: float = 8.0, points_per_axis: int = 1600
) -> float:
    """log Z = log of the integral of exp(-U) over the plane, by midpoint quadrature.

    The default grid (spacing 0.01 on [-8, 8]^2) holds all but a negligible part of
    every target's mass; KL(q || p) = E_q[log q + U] + log Z.
    """
    points, area = grid(half_width, points_per_axis)
    energy = ENERGIES[name](tf.constant(points, tf.float64)).numpy()
    neg = -energy
    top = neg.max()
    return float(top + np.log(np.exp(neg - top).sum() * area))


def two_circles(
    num_samples: int,
    rng: np.random.Generator,
    radius: float = 3.0,
    factor: float = 0.5,
    noise: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """Points on two concentric circles with Gaussian noise ("Two Circles").

    Args:
        num_samples: Number of points; `num_samples // 2` on the outer circle.
        rng: NumPy generator.
        radius: Radius of the outer circle.
        factor: Inner radius / outer radius, in (0, 1).
        noise: Standard deviation of the isotropic noise added to every point.

    Returns:
        `(points, labels)`: float32 `[num_samples, 2]` and int `[num_samples]`,
        0 for the outer circle and 1 for the inner one.
    """
    if num_samples < 1 or radius <= 0 or not 0 < factor < 1 or noise < 0:
        raise ValueError(
            "need num_samples >= 1, radius > 0, 0 < factor < 1, "
            f"noise >= 0; got {num_samples}, {radius}, {factor}, {noise}"
        )
    labels = (np.arange(num_samples) >= num_samples // 2).astype(np.int64)
    angles = rng.uniform(0.0, 2.0 * np.pi, num_samples)
    radii = np.where(labels == 0, radius, factor * radius)
    points = radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    points += noise * rng.standard_normal((num_samples, 2))
    order = rng.permutation(num_samples)
    return points[order].astype(np.float32), labels[order]


MOON_CENTERS = np.array([[-0.5, -0.25], [0.5, 0.25]])
"""Centres of the two moons' circles, before scaling (the moons are centred)."""


def two_moons(
    num_samples: int, rng: np.random.Generator, scale: float = 2.0, noise: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles with Gaussian noise ("Two Moons").

    scikit-learn's `make_moons` geometry (unit half circles, the upper one centred
    at (0, 0), the lower one at (1, 0.5)), shifted by (-0.5, -0.25) so the data
    are centred, then multiplied by `scale`; noise is added after scaling.

    Args:
        num_samples: Number of points; `num_samples // 2` on the upper moon.
        rng: NumPy generator.
        scale: Radius of the moons.
        noise: Standard deviation of the isotropic noise added to every point.

    Returns:
        `(points, labels)`: float32 `[num_samples, 2]` and int `[num_samples]`,
        0 for the upper moon (centre `scale * MOON_CENTERS[0]`, y >= centre) and
        1 for the lower one.
    """
    if num_samples < 1 or scale <= 0 or noise < 0:
        raise ValueError(
            "need num_samples >= 1, scale > 0, noise >= 0; got "
            f"{num_samples}, {scale}, {noise}"
        )
    labels = (np.arange(num_samples) >= num_samples // 2).astype(np.int64)
    angles = rng.uniform(0.0, np.pi, num_samples)
    direction = np.where(labels == 0, 1.0, -1.0)[:, None]
    unit = np.stack([np.cos(angles), np.sin(angles)], axis=-1) * direction
    points = scale * (MOON_CENTERS[labels] + unit)
    points += noise * rng.standard_normal((num_samples, 2))
    order = rng.permutation(num_samples)
    return points[order].astype(np.float32), labels[order]


def _curve_log_prob(
    x: np.ndarray,
    centers: np.ndarray,
    signs: np.ndarray,
    radius: float,
    arc: float,
    noise: float,
    num_angles: int,
) -> np.ndarray:
    """log density of an equal mixture of noisy arcs with uniform angles.

    Arc c is `centers[c] + signs[c] * radius * (cos a, sin a)`, a ~ U[0, arc];
    the integral over a is a midpoint rule with `num_angles` nodes.
    """
    angles = (np.arange(num_angles) + 0.5) * arc / num_angles
    unit = np.stack([np.cos(angles), np.sin(angles)], axis=-1)  # [A, 2]
    means = centers[:, None] + signs[:, None, None] * radius * unit  # [C, A, 2]
    x = np.asarray(x, np.float64)
    out = np.empty(len(x))
    for start in range(0, len(x), 512):  # bounded memory: 512 x C x A x 2
        chunk = x[start : start + 512]
        sq = np.sum((chunk[:, None, None] - means) ** 2, axis=-1)
        log_kernel = -0.5 * sq / noise**2 - np.log(2 * np.pi * noise**2)
        top = log_kernel.max(axis=(1, 2), keepdims=True)
        mean = np.exp(log_kernel - top).mean(axis=(1, 2))
        out[start : start + 512] = np.log(mean) + top[:, 0, 0]
    return out


def two_circles_log_prob(
    x: np.ndarray,
    radius: float = 3.0,
    factor: float = 0.5,
    noise: float = 0.2,
    num_angles: int = 1024,
) -> np.ndarray:
    """The exact log density of `two_circles` data (for even sample counts).

    Args:
        x: `[N, 2]` points.
        radius, factor, noise: As in `two_circles`.
        num_angles: Quadrature nodes over the angle.

    Returns:
        float64 `[N]`.
    """
    log_outer = _curve_log_prob(
        x, np.zeros((1, 2)), np.ones(1), radius, 2 * np.pi, noise, num_angles
    )
    log_inner = _curve_log_prob(
        x, np.zeros((1, 2)), np.ones(1), factor * radius, 2 * np.pi, noise, num_angles
    )
    return np.logaddexp(log_outer, log_inner) - np.log(2.0)


def two_moons_log_prob(
    x: np.ndarray, scale: float = 2.0, noise: float = 0.2, num_angles: int = 1024
) -> np.ndarray:
    """The exact log density of `two_moons` data (for even sample counts)."""
    return _curve_log_prob(
        x, scale * MOON_CENTERS, np.array([1.0, -1.0]), scale, np.pi, noise, num_angles
    )


DATA_LOG_PROBS: dict[str, Callable[..., np.ndarray]] = {
    "two_circles": two_circles_log_prob,
    "two_moons": two_moons_log_prob,
}
"""The true log density of each maximum-likelihood dataset (the NLL floor)."""


DATASETS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "two_circles": two_circles,
    "two_moons": two_moons,
}
"""Maximum-likelihood datasets by name."""
