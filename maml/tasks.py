"""Task samplers: the sinusoid regression task family of MAML section 5.1.

Samplers are pure functions of a seed tensor, built on TensorFlow's stateless random
ops. Meta-training seeds the sampler with `(run_seed, iteration)`, so the tasks of
iteration `i` do not depend on how the run was split into calls or restarted: a
resumed run sees exactly the tasks an uninterrupted one would have seen.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import tensorflow as tf


class RegressionBatch(NamedTuple):
    """A batch of T regression tasks with support and query sets.

    Attributes:
        support_x: `[T, K, 1]` inputs the learner adapts on.
        support_y: `[T, K, 1]` targets of the support inputs.
        query_x: `[T, Q, 1]` inputs the adapted learner is scored on.
        query_y: `[T, Q, 1]` targets of the query inputs.
        amplitude: `[T]` amplitude of each task's sinusoid.
        phase: `[T]` phase of each task's sinusoid.
    """

    support_x: tf.Tensor
    support_y: tf.Tensor
    query_x: tf.Tensor
    query_y: tf.Tensor
    amplitude: tf.Tensor
    phase: tf.Tensor


@dataclasses.dataclass(frozen=True)
class SinusoidDistribution:
    """The sinusoid task family: y = A sin(x - phase), as in the paper.

    Attributes:
        amplitude_range: A is uniform on this interval (paper: [0.1, 5.0]).
        phase_range: The phase is uniform on this interval (paper: [0, pi]).
        x_range: Inputs are uniform on this interval (paper: [-5, 5]).
    """

    amplitude_range: tuple[float, float] = (0.1, 5.0)
    phase_range: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __call__(self, x: tf.Tensor, amplitude: tf.Tensor,
                 phase: tf.Tensor) -> tf.Tensor:
        """Evaluates each task's sinusoid: x `[T, N, 1]`, amplitude/phase `[T]`."""
        return amplitude[:, None, None] * tf.sin(x - phase[:, None, None])


def sample_sinusoid_tasks(seed: tf.Tensor, num_tasks: int, num_support: int,
                          num_query: int,
                          distribution: SinusoidDistribution = SinusoidDistribution(),
                          dtype: tf.DType = tf.float32) -> RegressionBatch:
    """Draws a batch of sinusoid tasks with a single stateless random call.

    Args:
        seed: int32/int64 tensor of shape `[2]`; the batch is a pure function of it.
        num_tasks: T, number of tasks.
        num_support: K, support points per task.
        num_query: Q, query points per task.
        distribution: The task family.
        dtype: Floating dtype of the returned tensors.

    Returns:
        A `RegressionBatch`.
    """
    u = tf.random.stateless_uniform([num_tasks, 2 + num_support + num_query],
                                    seed=seed, dtype=dtype)
    a_lo, a_hi = distribution.amplitude_range
    p_lo, p_hi = distribution.phase_range
    x_lo, x_hi = distribution.x_range
    amplitude = a_lo + (a_hi - a_lo) * u[:, 0]
    phase = p_lo + (p_hi - p_lo) * u[:, 1]
    x = (x_lo + (x_hi - x_lo) * u[:, 2:])[:, :, tf.newaxis]
    y = distribution(x, amplitude, phase)
    return RegressionBatch(
        support_x=x[:, :num_support], support_y=y[:, :num_support],
        query_x=x[:, num_support:], query_y=y[:, num_support:],
        amplitude=amplitude, phase=phase)
