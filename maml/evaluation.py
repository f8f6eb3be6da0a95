"""Meta-test evaluation: adapt on K points for 0..N steps on held-out tasks.

The meta-test protocol: from the meta-learned (or pretrained) parameters, take
0, 1, ..., N SGD steps of size alpha on each held-out task's K support points, and
score the query points after every step. Per-task losses are returned so callers
can form the mean and 95% CI (`common.stats.mean_ci95`).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from common import stats
from maml import meta_learner, networks


def adaptation_curve(
    net: networks.FunctionalNetwork,
    meta_params: Mapping[str, tf.Tensor],
    batch: meta_learner.TaskBatch,
    loss_fn: meta_learner.LossFn,
    alpha: float,
    max_steps: int,
) -> np.ndarray:
    """Query loss of every task after 0..max_steps inner steps.

    Args:
        net: The network.
        meta_params: Parameters to adapt from (no task axis).
        batch: Held-out tasks.
        loss_fn: Per-task loss.
        alpha: Inner step size.
        max_steps: Largest number of steps.

    Returns:
        `[num_tasks, max_steps + 1]` array; column s is the loss after s steps.

    Example:
        >>> from maml import tasks
        >>> net = networks.MLP((1, 40, 40, 1))
        >>> theta = net.init_params(seed=0)
        >>> test = tasks.sample_sinusoid_tasks(tf.constant([7, 5]), 6, 5, 5)
        >>> curve = adaptation_curve(net, theta, test, meta_learner.mse_per_task,
        ...                          alpha=0.01, max_steps=3)
        >>> curve.shape  # 6 tasks, after 0..3 steps
        (6, 4)
        >>> before = meta_learner.mse_per_task(
        ...     net.apply(networks.tile_params(theta, 6), test.query_x), test.query_y)
        >>> bool(np.allclose(curve[:, 0], before, rtol=1e-5))  # 0 steps: theta
        True
    """
    curve = _curve_function(net, loss_fn, max_steps)
    dtype = next(iter(meta_params.values())).dtype
    return curve(
        dict(meta_params),
        batch.support_x,
        batch.support_y,
        batch.query_x,
        batch.query_y,
        tf.constant(alpha, dtype),
    ).numpy()


@functools.lru_cache(maxsize=32)
def _curve_function(
    net: networks.FunctionalNetwork, loss_fn: meta_learner.LossFn, max_steps: int
):
    """One traced function per (network, loss, steps); alpha is a tensor input."""

    @tf.function(reduce_retracing=True)
    def curve(params, support_x, support_y, query_x, query_y, alpha):
        fast = networks.tile_params(params, tf.shape(support_x)[0])
        losses = [loss_fn(net.apply(fast, query_x), query_y)]
        for _ in range(max_steps):
            fast = meta_learner.inner_update(
                net, fast, support_x, support_y, loss_fn, alpha, first_order=True
            )
            losses.append(loss_fn(net.apply(fast, query_x), query_y))
        return tf.stack(losses, axis=1)

    return curve


def curve_estimates(curve: np.ndarray) -> list[stats.Estimate]:
    """Mean and 95% CI over tasks for every column of an adaptation curve."""
    return [stats.mean_ci95(curve[:, s]) for s in range(curve.shape[1])]


def adapted_predictions(
    net: networks.FunctionalNetwork,
    meta_params: Mapping[str, tf.Tensor],
    support_x: tf.Tensor,
    support_y: tf.Tensor,
    eval_x: tf.Tensor,
    loss_fn: meta_learner.LossFn,
    alpha: float,
    steps: Sequence[int],
) -> dict[int, np.ndarray]:
    """Predictions at `eval_x` after each number of steps in `steps`.

    Args:
        net: The network.
        meta_params: Parameters to adapt from.
        support_x: `[T, K, ...]` support inputs.
        support_y: Support targets.
        eval_x: `[T, M, ...]` inputs to predict.
        loss_fn: Per-task loss.
        alpha: Inner step size.
        steps: Step counts to report, e.g. `(0, 1, 10)`.

    Returns:
        `{steps: predictions [T, M, ...]}`.
    """
    out = {}
    fast = networks.tile_params(meta_params, tf.shape(support_x)[0])
    for s in range(max(steps) + 1):
        if s in steps:
            out[s] = net.apply(fast, eval_x).numpy()
        if s < max(steps):
            fast = meta_learner.inner_update(
                net, fast, support_x, support_y, loss_fn, alpha, first_order=True
            )
    return out


def tune_step_size(
    net: networks.FunctionalNetwork,
    params: Mapping[str, tf.Tensor],
    batch: meta_learner.TaskBatch,
    loss_fn: meta_learner.LossFn,
    candidates: Sequence[float],
    max_steps: int,
) -> tuple[float, dict[float, float]]:
    """Picks the fine-tuning step size with the lowest mean query loss.

    The score of a step size is the query loss averaged over tasks and over
    1..max_steps steps, measured on `batch`, which must be validation tasks
    distinct from the test tasks.

    Returns:
        `(best step size, {step size: score})`.
    """
    scores = {}
    for step_size in candidates:
        curve = adaptation_curve(net, params, batch, loss_fn, step_size, max_steps)
        score = float(np.mean(curve[:, 1:])) if max_steps else float(curve.mean())
        scores[float(step_size)] = score if np.isfinite(score) else float("inf")
    best = min(scores, key=scores.get)
    return best, scores


def classification_curve(
    net: networks.FunctionalNetwork,
    meta_params: Mapping[str, tf.Tensor],
    batch: meta_learner.TaskBatch,
    loss_fn: meta_learner.LossFn,
    alpha: float,
    max_steps: int,
    chunk: int = 50,
    support_statistics: bool = False,
) -> np.ndarray:
    """Query accuracy of every task after 0..max_steps inner steps.

    Tasks are processed `chunk` at a time (all tasks of a chunk batched).

    Args:
        net: The network (tasks batched).
        meta_params: Parameters to adapt from.
        batch: Held-out episodes.
        loss_fn: Per-task loss.
        alpha: Inner step size.
        max_steps: Largest number of steps.
        chunk: Tasks evaluated together.
        support_statistics: Normalise query examples with the support set's batch
            statistics (non-transductive) instead of the query batch's own.

    Returns:
        `[num_tasks, max_steps + 1]` accuracies in [0, 1].
    """
    fn = _accuracy_function(net, loss_fn, max_steps, support_statistics)
    dtype = next(iter(meta_params.values())).dtype
    out = []
    num_tasks = batch.support_x.shape[0]
    for start in range(0, num_tasks, chunk):
        sl = slice(start, min(start + chunk, num_tasks))
        out.append(
            fn(
                dict(meta_params),
                batch.support_x[sl],
                batch.support_y[sl],
                batch.query_x[sl],
                batch.query_y[sl],
                tf.constant(alpha, dtype),
            ).numpy()
        )
    return np.concatenate(out)


@functools.lru_cache(maxsize=32)
def _accuracy_function(
    net: networks.FunctionalNetwork,
    loss_fn: meta_learner.LossFn,
    max_steps: int,
    support_statistics: bool,
):
    """One traced function per (network, loss, steps, normalisation)."""

    def accuracy(params, support_x, query_x, query_y):
        if support_statistics:
            stats_net = copy.copy(net)
            stats_net.bn_stats_examples = support_x.shape[1]
            x = tf.concat([support_x, query_x], axis=1)
            logits = stats_net.apply(params, x)[:, support_x.shape[1] :]
        else:
            logits = net.apply(params, query_x)
        pred = tf.argmax(logits, axis=-1, output_type=query_y.dtype)
        return tf.reduce_mean(tf.cast(tf.equal(pred, query_y), tf.float32), axis=1)

    @tf.function(reduce_retracing=True)
    def curve(params, support_x, support_y, query_x, query_y, alpha):
        fast = networks.tile_params(params, tf.shape(support_x)[0])
        accs = [accuracy(fast, support_x, query_x, query_y)]
        for _ in range(max_steps):
            fast = meta_learner.inner_update(
                net, fast, support_x, support_y, loss_fn, alpha, first_order=True
            )
            accs.append(accuracy(fast, support_x, query_x, query_y))
        return tf.stack(accs, axis=1)

    return curve
