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

    def __call__(
        self, x: tf.Tensor, amplitude: tf.Tensor, phase: tf.Tensor
    ) -> tf.Tensor:
        """Evaluates each task's sinusoid: x `[T, N, 1]`, amplitude/phase `[T]`."""
        return amplitude[:, None, None] * tf.sin(x - phase[:, None, None])


def sample_sinusoid_tasks(
    seed: tf.Tensor,
    num_tasks: int,
    num_support: int,
    num_query: int,
    distribution: SinusoidDistribution = SinusoidDistribution(),
    dtype: tf.DType = tf.float32,
) -> RegressionBatch:
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

    Example:
        >>> batch = sample_sinusoid_tasks(tf.constant([0, 1]), num_tasks=25,
        ...                               num_support=10, num_query=10)
        >>> batch.support_x.shape, batch.query_y.shape
        (TensorShape([25, 10, 1]), TensorShape([25, 10, 1]))
        >>> truth = SinusoidDistribution()(batch.query_x, batch.amplitude,
        ...                                batch.phase)
        >>> float(tf.reduce_max(tf.abs(batch.query_y - truth))) < 1e-5  # A sin(x - p)
        True
        >>> again = sample_sinusoid_tasks(tf.constant([0, 1]), 25, 10, 10)
        >>> bool(tf.reduce_all(again.support_x == batch.support_x))  # seeded
        True
    """
    u = tf.random.stateless_uniform(
        [num_tasks, 2 + num_support + num_query], seed=seed, dtype=dtype
    )
    a_lo, a_hi = distribution.amplitude_range
    p_lo, p_hi = distribution.phase_range
    x_lo, x_hi = distribution.x_range
    amplitude = a_lo + (a_hi - a_lo) * u[:, 0]
    phase = p_lo + (p_hi - p_lo) * u[:, 1]
    x = (x_lo + (x_hi - x_lo) * u[:, 2:])[:, :, tf.newaxis]
    y = distribution(x, amplitude, phase)
    return RegressionBatch(
        support_x=x[:, :num_support],
        support_y=y[:, :num_support],
        query_x=x[:, num_support:],
        query_y=y[:, num_support:],
        amplitude=amplitude,
        phase=phase,
    )


class EpisodeBatch(NamedTuple):
    """A batch of T N-way classification episodes.

    Attributes:
        support_x: `[T, N*K, H, W, C]` float images in [0, 1], class-major.
        support_y: `[T, N*K]` int32 labels in [0, N).
        query_x: `[T, N*Q, H, W, C]`.
        query_y: `[T, N*Q]` int32.
        classes: `[T, N]` dataset class of each label (label i = classes[:, i]).
        rotations: `[T, N]` multiples of 90 degrees applied to each class.
    """

    support_x: tf.Tensor
    support_y: tf.Tensor
    query_x: tf.Tensor
    query_y: tf.Tensor
    classes: tf.Tensor
    rotations: tf.Tensor


def _rot90(x: tf.Tensor, k: int) -> tf.Tensor:
    """Rotates `[..., H, W, C]` images by k * 90 degrees counter-clockwise."""
    rank = len(x.shape)
    swap = list(range(rank - 3)) + [rank - 2, rank - 3, rank - 1]
    for _ in range(k % 4):
        x = tf.reverse(tf.transpose(x, swap), axis=[rank - 3])
    return x


def sample_episodes(
    seed: tf.Tensor,
    images: tf.Tensor,
    num_tasks: int,
    ways: int,
    shots: int,
    queries: int,
    rotate: bool = False,
) -> EpisodeBatch:
    """Draws N-way K-shot episodes from a class-indexed image array, in the graph.

    Each task draws `ways` distinct classes in random order (so the label of a
    class is a fresh permutation per task), `shots + queries` distinct examples of
    each, and, with `rotate`, one random multiple of 90 degrees per class applied to
    all its images (the rotation augmentation of the paper, as the official code).
    The batch is a pure function of `seed`.

    Args:
        seed: `[2]` int seed.
        images: uint8 `[classes, examples, H, W]` or `[classes, examples, H, W, C]`;
            a variable or tensor (values / 255 become the float images).
        num_tasks: T.
        ways: N.
        shots: K, support examples per class.
        queries: Q, query examples per class.
        rotate: Apply the per-class rotation augmentation (square images only).

    Returns:
        An `EpisodeBatch`.
    """
    num_classes, per_class = images.shape[0], images.shape[1]
    if ways > num_classes or shots + queries > per_class:
        raise ValueError(
            f"cannot draw {ways}-way {shots}+{queries}-example episodes "
            f"from {num_classes} classes of {per_class} examples"
        )
    s_class, s_example, s_rot = tf.unstack(
        tf.random.experimental.stateless_split(seed, 3)
    )
    classes = tf.math.top_k(
        tf.random.stateless_uniform([num_tasks, num_classes], s_class), ways
    ).indices
    examples = tf.math.top_k(
        tf.random.stateless_uniform([num_tasks, ways, per_class], s_example),
        shots + queries,
    ).indices
    flat = tf.reshape(images, [num_classes * per_class, *images.shape[2:]])
    x = tf.gather(flat, classes[:, :, None] * per_class + examples)
    x = tf.cast(x, tf.float32) / 255.0
    if len(x.shape) == 5:  # [T, N, K+Q, H, W] -> channel axis
        x = x[..., tf.newaxis]
    rotations = tf.random.stateless_uniform(
        [num_tasks, ways], s_rot, minval=0, maxval=4, dtype=tf.int32
    )
    if rotate:
        choice = tf.one_hot(rotations, 4, dtype=x.dtype)
        choice = choice[:, :, None, None, None, None, :]
        rotated = tf.stack([_rot90(x, k) for k in range(4)], axis=-1)
        x = tf.reduce_sum(rotated * choice, axis=-1)
    else:
        rotations = tf.zeros_like(rotations)
    labels = tf.broadcast_to(
        tf.range(ways)[None, :, None], [num_tasks, ways, shots + queries]
    )
    size = x.shape[3:]

    def part(a, start, count):
        return tf.reshape(
            a[:, :, start : start + count], [num_tasks, ways * count, *a.shape[3:]]
        )

    return EpisodeBatch(
        support_x=tf.ensure_shape(part(x, 0, shots), [num_tasks, ways * shots, *size]),
        support_y=part(labels, 0, shots),
        query_x=tf.ensure_shape(
            part(x, shots, queries), [num_tasks, ways * queries, *size]
        ),
        query_y=part(labels, shots, queries),
        classes=classes,
        rotations=rotations,
    )
