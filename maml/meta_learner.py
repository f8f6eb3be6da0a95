"""MAML: the inner loop and the meta-gradient (the trainer is `maml.meta_trainer`).

The inner loop takes `num_steps` SGD steps of size `alpha` on each task's support
set. Each inner gradient is taken with a `tf.GradientTape` that is opened *inside*
the outer tape, so the outer tape records the inner gradient computation and the
meta-gradient is the exact second-order MAML gradient. With `first_order=True` the
inner gradients are wrapped in `tf.stop_gradient`: the paper's first-order
approximation, whose meta-gradient is the query-loss gradient at the adapted
weights.

Tasks are batched: the meta-parameters are tiled to `[T, ...]`, and the gradient of
the *sum* of per-task support losses with respect to the tiled copy is, row by row,
each task's own gradient. The outer gradient flows back through the tile, summing
the per-task contributions.

Example:
    >>> import tensorflow as tf
    >>> from maml import networks, tasks
    >>> net = networks.MLP((1, 40, 40, 1))
    >>> theta = net.init_params(seed=0)
    >>> batch = tasks.sample_sinusoid_tasks(tf.constant([0, 0]), 4, 10, 10)
    >>> fast = adapt(net, theta, batch.support_x, batch.support_y, mse_per_task,
    ...              alpha=0.01, num_steps=1)
    >>> fast["w0"].shape  # one adapted copy per task
    TensorShape([4, 1, 40])
    >>> objective, grads = meta_gradient(net, theta, batch, mse_per_task,
    ...                                  alpha=0.01, num_steps=1)
    >>> all(grads[k].shape == theta[k].shape for k in theta)
    True
    >>> # With no inner step, MAML's objective is the query loss at theta.
    >>> objective, _ = meta_gradient(net, theta, batch, mse_per_task, 0.01, 0)
    >>> bool(objective.loss == objective.pre_update_query_loss)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol

import tensorflow as tf

from maml import networks

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
"""(predictions `[T, N, ...]`, targets) -> per-task loss `[T]`."""


class TaskBatch(Protocol):
    """What the meta-learner needs of a batch of tasks."""

    support_x: tf.Tensor
    support_y: tf.Tensor
    query_x: tf.Tensor
    query_y: tf.Tensor


def mse_per_task(predictions: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Mean squared error of each task, averaged over points and outputs: `[T]`."""
    return tf.reduce_mean(tf.square(predictions - targets), axis=[1, 2])


def softmax_cross_entropy_per_task(shots: int) -> LossFn:
    """The official MAML classification loss: per task, sum of CE over examples / K.

    The official code divides each example's softmax cross-entropy by the number of
    shots K (`update_batch_size`) and differentiates the sum, so the inner step
    size alpha is tuned for this scale.

    Args:
        shots: K.

    Returns:
        A loss mapping logits `[T, M, N]` and int labels `[T, M]` to `[T]`.
    """

    def loss(logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits
        )
        return tf.reduce_sum(ce, axis=1) / float(shots)

    loss.__name__ = f"softmax_cross_entropy_over_{shots}_shots"
    return loss


def inner_update(
    net: networks.FunctionalNetwork,
    params: networks.Params,
    x: tf.Tensor,
    y: tf.Tensor,
    loss_fn: LossFn,
    alpha: float,
    first_order: bool,
) -> networks.Params:
    """One SGD step on each task's support set.

    Args:
        net: The network.
        params: Per-task parameters `[T, ...]`.
        x: Support inputs `[T, K, ...]`.
        y: Support targets.
        loss_fn: Per-task loss.
        alpha: Inner step size.
        first_order: Stop gradients through the inner gradient.

    Returns:
        The per-task fast weights after the step.
    """
    if getattr(net, "low_rank_first_layer", False):
        return _low_rank_inner_update(net, params, x, y, loss_fn, alpha, first_order)
    keys = net.adapted_keys or tuple(params)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([params[k] for k in keys])
        loss = tf.reduce_sum(loss_fn(net.apply(params, x), y))
    grads = tape.gradient(loss, {k: params[k] for k in keys})
    if first_order:
        grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
    return {
        k: params[k] - alpha * grads[k] if k in grads else params[k] for k in params
    }


def _low_rank_inner_update(
    net: networks.MLP,
    params: networks.Params,
    x: tf.Tensor,
    y: tf.Tensor,
    loss_fn: LossFn,
    alpha: float,
    first_order: bool,
) -> networks.Params:
    """`inner_update` for an MLP whose first-layer steps are kept factored.

    The step on the first weight, -alpha x^T D (D: the loss gradient at the first
    pre-activations), is stored as one more block of `w0_basis` (x) and `w0_coef`
    (-alpha D) instead of being added to a per-task copy of w0 (see
    `networks.MLP`); every other adapted parameter steps as in `inner_update`.
    """
    keys = [
        k
        for k in (net.adapted_keys or tuple(params))
        if k != "w0" and not k.startswith("w0_")
    ]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([params[k] for k in keys])
        out, first = net.apply_with_first_preactivation(params, x)
        loss = tf.reduce_sum(loss_fn(out, y))
    grads = tape.gradient(loss, {**{k: params[k] for k in keys}, "w0_step": first})
    if first_order:
        grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
    new = {k: params[k] - alpha * grads[k] if k in grads else params[k] for k in params}
    basis, coef = net.flat_inputs(x), -alpha * grads["w0_step"]
    if "w0_coef" in params:
        basis = tf.concat([params["w0_basis"], basis], axis=1)
        coef = tf.concat([params["w0_coef"], coef], axis=1)
    new["w0_basis"], new["w0_coef"] = basis, coef
    return new


def adapt(
    net: networks.FunctionalNetwork,
    meta_params: Mapping[str, tf.Tensor],
    x: tf.Tensor,
    y: tf.Tensor,
    loss_fn: LossFn,
    alpha: float,
    num_steps: int,
    first_order: bool = False,
) -> networks.Params:
    """Runs the inner loop from the meta-parameters on a batch of tasks.

    Args:
        net: The network.
        meta_params: Parameters without a task axis (shared initialisation).
        x: Support inputs `[T, K, ...]`.
        y: Support targets.
        loss_fn: Per-task loss.
        alpha: Inner step size.
        num_steps: Number of inner SGD steps (0 returns the tiled meta-parameters).
        first_order: Use the first-order approximation.

    Returns:
        Per-task fast weights `[T, ...]`.
    """
    params = networks.tile_params(meta_params, tf.shape(x)[0])
    for _ in range(num_steps):
        params = inner_update(net, params, x, y, loss_fn, alpha, first_order)
    return params


class Objective(NamedTuple):
    """Losses of one meta-batch, each averaged over the tasks."""

    loss: tf.Tensor  # what the meta-optimiser minimises
    pre_update_query_loss: tf.Tensor  # query loss at the meta-parameters
    post_update_query_loss: tf.Tensor  # query loss after the inner loop


def maml_objective(
    net: networks.FunctionalNetwork,
    meta_params: Mapping[str, tf.Tensor],
    batch: TaskBatch,
    loss_fn: LossFn,
    alpha: float,
    num_steps: int,
    first_order: bool,
) -> Objective:
    """MAML's meta-objective: mean over tasks of the query loss after adaptation."""
    fast = adapt(
        net,
        meta_params,
        batch.support_x,
        batch.support_y,
        loss_fn,
        alpha,
        num_steps,
        first_order,
    )
    post = tf.reduce_mean(loss_fn(net.apply(fast, batch.query_x), batch.query_y))
    tiled = networks.tile_params(meta_params, tf.shape(batch.query_x)[0])
    pre = tf.reduce_mean(loss_fn(net.apply(tiled, batch.query_x), batch.query_y))
    return Objective(
        loss=post,
        pre_update_query_loss=tf.stop_gradient(pre),
        post_update_query_loss=post,
    )


def pretrain_objective(
    net: networks.FunctionalNetwork,
    meta_params: Mapping[str, tf.Tensor],
    batch: TaskBatch,
    loss_fn: LossFn,
) -> Objective:
    """The "pretrained on all tasks" baseline: the loss at the shared parameters.

    As the official code's pretraining, it trains on the support points of every
    task with the un-adapted parameters (no inner loop).
    """
    tiled = networks.tile_params(meta_params, tf.shape(batch.support_x)[0])
    loss = tf.reduce_mean(loss_fn(net.apply(tiled, batch.support_x), batch.support_y))
    query = tf.reduce_mean(loss_fn(net.apply(tiled, batch.query_x), batch.query_y))
    query = tf.stop_gradient(query)
    return Objective(
        loss=loss, pre_update_query_loss=query, post_update_query_loss=query
    )


def meta_gradient(
    net: networks.FunctionalNetwork,
    meta_params: Mapping[str, tf.Tensor],
    batch: TaskBatch,
    loss_fn: LossFn,
    alpha: float,
    num_steps: int,
    first_order: bool = False,
    objective: str = "maml",
) -> tuple[Objective, dict[str, tf.Tensor]]:
    """The gradient of the meta-objective with respect to the meta-parameters.

    Args:
        net: The network.
        meta_params: Parameters without a task axis.
        batch: A batch of tasks.
        loss_fn: Per-task loss.
        alpha: Inner step size.
        num_steps: Inner SGD steps.
        first_order: First-order approximation (stop gradients through the inner
            gradients).
        objective: "maml" or "pretrain" (the pretrained-on-all-tasks baseline).

    Returns:
        `(objective, gradients)` with gradients keyed like `meta_params`.
    """
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(list(meta_params.values()))
        if objective == "maml":
            obj = maml_objective(
                net, meta_params, batch, loss_fn, alpha, num_steps, first_order
            )
        elif objective == "pretrain":
            obj = pretrain_objective(net, meta_params, batch, loss_fn)
        else:
            raise ValueError(
                f"objective must be 'maml' or 'pretrain', got {objective!r}"
            )
    grads = tape.gradient(obj.loss, dict(meta_params))
    return obj, grads


class TaskSlice(NamedTuple):
    """The four tensors of a task batch that the meta-gradient reads."""

    support_x: tf.Tensor
    support_y: tf.Tensor
    query_x: tf.Tensor
    query_y: tf.Tensor


def meta_gradient_split(
    support_net: networks.FunctionalNetwork,
    query_net: networks.FunctionalNetwork,
    meta_params: Mapping[str, tf.Tensor],
    batch: TaskBatch,
    loss_fn: LossFn,
    alpha: float,
    num_steps: int,
    first_order: bool = False,
    parallel_iterations: int = 2,
) -> tuple[Objective, dict[str, tf.Tensor]]:
    """`meta_gradient` by the chain rule in two parts, for conv nets on CPU.

    The MAML meta-gradient is the vector-Jacobian product of the inner loop with
    the query-loss gradients at the fast weights:

        dL/dtheta = sum_t (d theta'_t / d theta)^T  dL_q,t/d theta'_t  / T.

    1. The inner loop (small support sets) runs for all tasks at once under an
       outer tape, with `support_net` (tasks batched; nested tapes, so second
       order unless `first_order`).
    2. The query gradients `dL_q,t/d theta'_t` are ordinary first-order gradients
       at fixed weights, computed one task at a time in a `tf.while_loop` with
       `query_net`, where TF's fastest CPU kernels apply (4-D convolutions, fused
       batch norm).
    3. The outer tape's VJP with those gradients gives the meta-gradient.

    The result equals `meta_gradient` (same maths, other evaluation order); the
    tests check this. `support_net` and `query_net` must compute the same function.

    Returns:
        `(objective, gradients)`; the objective's pre-update loss is not computed
        (NaN) because it would cost a second query pass.
    """
    params = dict(meta_params)
    num_tasks = batch.query_x.shape[0]
    with tf.GradientTape(watch_accessed_variables=False) as outer:
        outer.watch(list(params.values()))
        fast = adapt(
            support_net,
            params,
            batch.support_x,
            batch.support_y,
            loss_fn,
            alpha,
            num_steps,
            first_order,
        )

    def body(t, arrays, loss_sum):
        task_params = {k: v[t][tf.newaxis] for k, v in fast.items()}
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(list(task_params.values()))
            loss = tf.reduce_sum(
                loss_fn(
                    query_net.apply(task_params, batch.query_x[t][tf.newaxis]),
                    batch.query_y[t][tf.newaxis],
                )
            )
        grads = tape.gradient(loss, task_params)
        arrays = {k: arrays[k].write(t, grads[k][0]) for k in arrays}
        return t + 1, arrays, loss_sum + loss

    dtype = next(iter(params.values())).dtype
    arrays = {
        k: tf.TensorArray(dtype, size=num_tasks, element_shape=v.shape)
        for k, v in params.items()
    }
    _, arrays, loss_sum = tf.while_loop(
        lambda t, *_: t < num_tasks,
        body,
        (tf.constant(0), arrays, tf.zeros([], dtype)),
        parallel_iterations=parallel_iterations,
    )
    scale = 1.0 / num_tasks
    query_grads = {k: arrays[k].stack() * scale for k in params}
    grads = outer.gradient(fast, params, output_gradients=query_grads)
    grads = {
        k: tf.zeros_like(params[k]) if grads[k] is None else grads[k] for k in params
    }
    post = loss_sum * scale
    nan = tf.constant(float("nan"), dtype)
    return Objective(
        loss=post, pre_update_query_loss=nan, post_update_query_loss=post
    ), grads
