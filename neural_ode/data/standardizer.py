"""A fixed affine map of coordinates, fitted on training observations.

The sequence models of the spirals experiment see standardized coordinates: the
RNN baselines through `Standardizer.apply` / `invert`, the latent ODE through its
`obs_mean` / `obs_scale` arguments.

Example (one scale over all coordinates, a mean per coordinate):
    >>> import numpy as np
    >>> s = Standardizer.fit(np.array([[0.0, 10.0], [2.0, 14.0]]))
    >>> s.mean, round(s.scale, 4)
    ((1.0, 12.0), 5.7228)
    >>> s.invert(s.apply([[2.0, 14.0]])).round(4)
    array([[ 2., 14.]], dtype=float32)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Standardizer:
    """A fixed affine map of the coordinates: `(x - mean) / scale`.

    Attributes:
        mean: Per-coordinate mean of the training observations.
        scale: One standard deviation over all training coordinates.
    """

    mean: tuple[float, ...]
    scale: float

    @classmethod
    def fit(cls, observations: np.ndarray) -> Standardizer:
        """From observations `[..., dims]`."""
        observations = np.asarray(observations, np.float64)
        mean = observations.reshape(-1, observations.shape[-1]).mean(0)
        return cls(tuple(float(m) for m in mean), float(observations.std()))

    def apply(self, x: Any) -> np.ndarray:
        """`(x - mean) / scale` as float32."""
        return (np.asarray(x, np.float32) - np.float32(self.mean)) / np.float32(
            self.scale
        )

    def invert(self, x: Any) -> np.ndarray:
        """`x * scale + mean` as float32 (undoes `apply`)."""
        return np.asarray(x, np.float32) * np.float32(self.scale) + np.float32(
            self.mean
        )
