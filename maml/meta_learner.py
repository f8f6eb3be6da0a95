"""MAML: the inner loop, the meta-gradient, and the in-graph meta-training loop.

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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

import tensorflow as tf

from maml import networks, optimizer

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
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels,
                                                            logits=logits)
        return tf.reduce_sum(ce, axis=1) / float(shots)

    loss.__name__ = f"softmax_cross_entropy_over_{shots}_shots"
    return loss


def inner_update(net: networks.FunctionalNetwork, params: networks.Params,
                 x: tf.Tensor, y: tf.Tensor, loss_fn: LossFn, alpha: float,
                 first_order: bool) -> networks.Params:
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
    return {k: params[k] - alpha * grads[k] if k in grads else params[k]
            for k in params}


def _low_rank_inner_update(net: networks.MLP, params: networks.Params, x: tf.Tensor,
                           y: tf.Tensor, loss_fn: LossFn, alpha: float,
                           first_order: bool) -> networks.Params:
    """`inner_update` for an MLP whose first-layer steps are kept factored.

    The step on the first weight, -alpha x^T D (D: the loss gradient at the first
    pre-activations), is stored as one more block of `w0_basis` (x) and `w0_coef`
    (-alpha D) instead of being added to a per-task copy of w0 (see
    `networks.MLP`); every other adapted parameter steps as in `inner_update`.
    """
    keys = [k for k in (net.adapted_keys or tuple(params))
            if k != "w0" and not k.startswith("w0_")]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch([params[k] for k in keys])
        out, first = net.apply_with_first_preactivation(params, x)
        loss = tf.reduce_sum(loss_fn(out, y))
    grads = tape.gradient(loss, {**{k: params[k] for k in keys}, "w0_step": first})
    if first_order:
        grads = {k: tf.stop_gradient(g) for k, g in grads.items()}
    new = {k: params[k] - alpha * grads[k] if k in grads else params[k]
           for k in params}
    basis, coef = net.flat_inputs(x), -alpha * grads["w0_step"]
    if "w0_coef" in params:
        basis = tf.concat([params["w0_basis"], basis], axis=1)
        coef = tf.concat([params["w0_coef"], coef], axis=1)
    new["w0_basis"], new["w0_coef"] = basis, coef
    return new


def adapt(net: networks.FunctionalNetwork, meta_params: Mapping[str, tf.Tensor],
          x: tf.Tensor, y: tf.Tensor, loss_fn: LossFn, alpha: float, num_steps: int,
          first_order: bool = False) -> networks.Params:
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


def maml_objective(net: networks.FunctionalNetwork,
                   meta_params: Mapping[str, tf.Tensor], batch: TaskBatch,
                   loss_fn: LossFn, alpha: float, num_steps: int,
                   first_order: bool) -> Objective:
    """MAML's meta-objective: mean over tasks of the query loss after adaptation."""
    fast = adapt(net, meta_params, batch.support_x, batch.support_y, loss_fn, alpha,
                 num_steps, first_order)
    post = tf.reduce_mean(loss_fn(net.apply(fast, batch.query_x), batch.query_y))
    tiled = networks.tile_params(meta_params, tf.shape(batch.query_x)[0])
    pre = tf.reduce_mean(loss_fn(net.apply(tiled, batch.query_x), batch.query_y))
    return Objective(loss=post, pre_update_query_loss=tf.stop_gradient(pre),
                     post_update_query_loss=post)


def pretrain_objective(net: networks.FunctionalNetwork,
                       meta_params: Mapping[str, tf.Tensor], batch: TaskBatch,
                       loss_fn: LossFn) -> Objective:
    """The "pretrained on all tasks" baseline: the loss at the shared parameters.

    As the official code's pretraining, it trains on the support points of every
    task with the un-adapted parameters (no inner loop).
    """
    tiled = networks.tile_params(meta_params, tf.shape(batch.support_x)[0])
    loss = tf.reduce_mean(loss_fn(net.apply(tiled, batch.support_x), batch.support_y))
    query = tf.reduce_mean(loss_fn(net.apply(tiled, batch.query_x), batch.query_y))
    query = tf.stop_gradient(query)
    return Objective(loss=loss, pre_update_query_loss=query,
                     post_update_query_loss=query)


def meta_gradient(net: networks.FunctionalNetwork,
                  meta_params: Mapping[str, tf.Tensor], batch: TaskBatch,
                  loss_fn: LossFn, alpha: float, num_steps: int,
                  first_order: bool = False, objective: str = "maml",
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
            obj = maml_objective(net, meta_params, batch, loss_fn, alpha, num_steps,
                                 first_order)
        elif objective == "pretrain":
            obj = pretrain_objective(net, meta_params, batch, loss_fn)
        else:
            raise ValueError(
                f"objective must be 'maml' or 'pretrain', got {objective!r}")
    grads = tape.gradient(obj.loss, dict(meta_params))
    return obj, grads


class TaskSlice(NamedTuple):
    """The four tensors of a task batch that the meta-gradient reads."""

    support_x: tf.Tensor
    support_y: tf.Tensor
    query_x: tf.Tensor
    query_y: tf.Tensor


def meta_gradient_split(support_net: networks.FunctionalNetwork,
                        query_net: networks.FunctionalNetwork,
                        meta_params: Mapping[str, tf.Tensor], batch: TaskBatch,
                        loss_fn: LossFn, alpha: float, num_steps: int,
                        first_order: bool = False, parallel_iterations: int = 2,
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
        fast = adapt(support_net, params, batch.support_x, batch.support_y, loss_fn,
                     alpha, num_steps, first_order)

    def body(t, arrays, loss_sum):
        task_params = {k: v[t][tf.newaxis] for k, v in fast.items()}
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(list(task_params.values()))
            loss = tf.reduce_sum(loss_fn(query_net.apply(
                task_params, batch.query_x[t][tf.newaxis]),
                batch.query_y[t][tf.newaxis]))
        grads = tape.gradient(loss, task_params)
        arrays = {k: arrays[k].write(t, grads[k][0]) for k in arrays}
        return t + 1, arrays, loss_sum + loss

    dtype = next(iter(params.values())).dtype
    arrays = {k: tf.TensorArray(dtype, size=num_tasks, element_shape=v.shape)
              for k, v in params.items()}
    _, arrays, loss_sum = tf.while_loop(
        lambda t, *_: t < num_tasks, body,
        (tf.constant(0), arrays, tf.zeros([], dtype)),
        parallel_iterations=parallel_iterations)
    scale = 1.0 / num_tasks
    query_grads = {k: arrays[k].stack() * scale for k in params}
    grads = outer.gradient(fast, params, output_gradients=query_grads)
    grads = {k: tf.zeros_like(params[k]) if grads[k] is None else grads[k]
             for k in params}
    post = loss_sum * scale
    nan = tf.constant(float("nan"), dtype)
    return Objective(loss=post, pre_update_query_loss=nan,
                     post_update_query_loss=post), grads


class ChunkStats(NamedTuple):
    """Mean losses over the iterations of one `MetaTrainer.train` call."""

    loss: float
    pre_update_query_loss: float
    post_update_query_loss: float
    iteration: int


class MetaTrainer(tf.Module):
    """Meta-training with the whole loop in one traced graph.

    One call of `train(n)` runs `n` meta-iterations inside a `tf.while_loop`:
    task sampling (stateless, seeded by `(seed, iteration)`), the inner loop, the
    meta-gradient and the Adam update all stay in the graph, and the parameters and
    Adam moments are written back to variables once per call. The function is
    traced once; `n` is a tensor.

    The state (parameters, Adam moments, iteration counter) is held in variables
    and checkpointed as a `tf.train.Checkpoint` of this module.

    Args:
        net: The network.
        init_params: Initial meta-parameters (no task axis).
        sample_tasks: Maps a `[2]` int64 seed to a `TaskBatch` of the meta-batch.
        loss_fn: Per-task loss.
        alpha: Inner step size.
        num_inner_steps: Inner SGD steps at meta-training.
        meta_learning_rate: Adam step size (the paper's beta).
        seed: Seed of the task stream.
        first_order: First-order approximation.
        objective: "maml" or "pretrain".
        grad_clip: If set, meta-gradients are clipped elementwise to
            `[-grad_clip, grad_clip]` (the official code does so for MiniImagenet).
        jit_compile: Compile the training loop with XLA (fastest for the MLP;
            XLA's CPU convolutions are slow, so conv nets run without it).
        query_net: If given, the meta-gradient is computed with
            `meta_gradient_split`: `net` runs the batched inner loop and
            `query_net` (the same function, implemented per task) the query
            gradients. Only for the "maml" objective.
        strategy: If given, the tasks of every meta-batch are split across the
            strategy's replicas (`maml.distributed`); the result is the same
            meta-gradient.
    """

    def __init__(self, net: networks.FunctionalNetwork,
                 init_params: Mapping[str, tf.Tensor],
                 sample_tasks: Callable[[tf.Tensor], Any], loss_fn: LossFn,
                 alpha: float, num_inner_steps: int, meta_learning_rate: float,
                 seed: int, first_order: bool = False, objective: str = "maml",
                 grad_clip: float | None = None, jit_compile: bool = True,
                 query_net: networks.FunctionalNetwork | None = None,
                 strategy: tf.distribute.Strategy | None = None):
        super().__init__(name=f"{objective}_trainer")
        self._net = net
        self._sample_tasks = sample_tasks
        self._loss_fn = loss_fn
        self._alpha = float(alpha)
        self._num_inner_steps = int(num_inner_steps)
        self._meta_lr = float(meta_learning_rate)
        self._seed = int(seed)
        self._first_order = bool(first_order)
        self._objective = objective
        self._grad_clip = grad_clip
        self._query_net = query_net if objective == "maml" else None
        self._strategy = strategy
        self.params = {k: tf.Variable(v, name=k) for k, v in init_params.items()}
        self.adam_m = {k: tf.Variable(tf.zeros_like(v), name=f"m_{k}")
                       for k, v in init_params.items()}
        self.adam_v = {k: tf.Variable(tf.zeros_like(v), name=f"v_{k}")
                       for k, v in init_params.items()}
        self.adam_count = tf.Variable(0.0, name="adam_count")
        self.iteration = tf.Variable(0, dtype=tf.int64, name="iteration")
        self._train = tf.function(self._train_loop, jit_compile=jit_compile,
                                  reduce_retracing=True)

    def current_params(self) -> dict[str, tf.Tensor]:
        """A snapshot of the meta-parameters as tensors."""
        return {k: tf.identity(v) for k, v in self.params.items()}

    def step(self, params, state: optimizer.AdamState, iteration: tf.Tensor):
        """One meta-iteration on tensors: returns new params, state and objective."""
        seed = tf.stack([tf.constant(self._seed, tf.int64), iteration])
        batch = self._sample_tasks(seed)
        if self._strategy is not None:
            from maml import distributed  # noqa: PLC0415 (distributed imports us)

            obj, grads = distributed.distributed_meta_gradient(
                self._strategy, self._net, params, batch, self._loss_fn, self._alpha,
                self._num_inner_steps, self._first_order, self._objective,
                self._query_net)
        elif self._query_net is not None:
            obj, grads = meta_gradient_split(
                self._net, self._query_net, params, batch, self._loss_fn,
                self._alpha, self._num_inner_steps, self._first_order)
        else:
            obj, grads = meta_gradient(self._net, params, batch, self._loss_fn,
                                       self._alpha, self._num_inner_steps,
                                       self._first_order, self._objective)
        if self._grad_clip is not None:
            c = float(self._grad_clip)
            grads = {k: tf.clip_by_value(g, -c, c) for k, g in grads.items()}
        new_params, new_state = optimizer.adam_update(params, grads, state,
                                                      self._meta_lr)
        return new_params, new_state, obj

    def _train_loop(self, num_iterations: tf.Tensor):
        keys = list(self.params)
        params = {k: self.params[k].read_value() for k in keys}
        state = optimizer.AdamState(
            m={k: self.adam_m[k].read_value() for k in keys},
            v={k: self.adam_v[k].read_value() for k in keys},
            count=self.adam_count.read_value())
        start = self.iteration.read_value()
        zero = tf.zeros([3], params[keys[0]].dtype)

        def body(i, params, state, sums):
            new_params, new_state, obj = self.step(params, state, start + i)
            sums = sums + tf.stack([obj.loss, obj.pre_update_query_loss,
                                    obj.post_update_query_loss])
            return i + 1, new_params, new_state, sums

        _, params, state, sums = tf.while_loop(
            lambda i, *_: i < num_iterations, body,
            (tf.constant(0, tf.int64), params, state, zero))
        for k in keys:
            self.params[k].assign(params[k])
            self.adam_m[k].assign(state.m[k])
            self.adam_v[k].assign(state.v[k])
        self.adam_count.assign(state.count)
        self.iteration.assign_add(num_iterations)
        return sums / tf.cast(tf.maximum(num_iterations, 1), sums.dtype)

    def train(self, num_iterations: int) -> ChunkStats:
        """Runs `num_iterations` meta-iterations; returns their mean losses."""
        means = self._train(tf.constant(num_iterations, tf.int64)).numpy()
        return ChunkStats(loss=float(means[0]), pre_update_query_loss=float(means[1]),
                          post_update_query_loss=float(means[2]),
                          iteration=int(self.iteration.numpy()))
