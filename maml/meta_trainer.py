"""The in-graph MAML meta-training loop: sampling, meta-gradient, Adam, in one graph.

The maths (inner loop, meta-gradient) is in `maml.meta_learner`; splitting the
meta-batch over replicas is in `maml.distributed`. This module only drives them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import tensorflow as tf

from maml import distributed, meta_learner, networks, optimizer


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

    Example:
        >>> import functools
        >>> from maml import meta_learner, networks, tasks
        >>> net = networks.MLP((1, 40, 40, 1))
        >>> sample = functools.partial(tasks.sample_sinusoid_tasks, num_tasks=5,
        ...                            num_support=10, num_query=10)
        >>> trainer = MetaTrainer(net, net.init_params(0), sample,
        ...                       meta_learner.mse_per_task, alpha=0.01,
        ...                       num_inner_steps=1, meta_learning_rate=1e-3,
        ...                       seed=0, jit_compile=False)
        >>> trainer.train(3).iteration  # three meta-iterations in one traced call
        3
        >>> sorted(trainer.current_params()) == sorted(net.init_params(0))
        True
    """

    def __init__(
        self,
        net: networks.FunctionalNetwork,
        init_params: Mapping[str, tf.Tensor],
        sample_tasks: Callable[[tf.Tensor], Any],
        loss_fn: meta_learner.LossFn,
        alpha: float,
        num_inner_steps: int,
        meta_learning_rate: float,
        seed: int,
        first_order: bool = False,
        objective: str = "maml",
        grad_clip: float | None = None,
        jit_compile: bool = True,
        query_net: networks.FunctionalNetwork | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ):
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
        self.adam_m = {
            k: tf.Variable(tf.zeros_like(v), name=f"m_{k}")
            for k, v in init_params.items()
        }
        self.adam_v = {
            k: tf.Variable(tf.zeros_like(v), name=f"v_{k}")
            for k, v in init_params.items()
        }
        self.adam_count = tf.Variable(0.0, name="adam_count")
        self.iteration = tf.Variable(0, dtype=tf.int64, name="iteration")
        self._train = tf.function(
            self._train_loop, jit_compile=jit_compile, reduce_retracing=True
        )

    def current_params(self) -> dict[str, tf.Tensor]:
        """A snapshot of the meta-parameters as tensors."""
        return {k: tf.identity(v) for k, v in self.params.items()}

    def step(self, params, state: optimizer.AdamState, iteration: tf.Tensor):
        """One meta-iteration on tensors: returns new params, state and objective."""
        seed = tf.stack([tf.constant(self._seed, tf.int64), iteration])
        batch = self._sample_tasks(seed)
        if self._strategy is not None:
            obj, grads = distributed.distributed_meta_gradient(
                self._strategy,
                self._net,
                params,
                batch,
                self._loss_fn,
                self._alpha,
                self._num_inner_steps,
                self._first_order,
                self._objective,
                self._query_net,
            )
        elif self._query_net is not None:
            obj, grads = meta_learner.meta_gradient_split(
                self._net,
                self._query_net,
                params,
                batch,
                self._loss_fn,
                self._alpha,
                self._num_inner_steps,
                self._first_order,
            )
        else:
            obj, grads = meta_learner.meta_gradient(
                self._net,
                params,
                batch,
                self._loss_fn,
                self._alpha,
                self._num_inner_steps,
                self._first_order,
                self._objective,
            )
        if self._grad_clip is not None:
            c = float(self._grad_clip)
            grads = {k: tf.clip_by_value(g, -c, c) for k, g in grads.items()}
        new_params, new_state = optimizer.adam_update(
            params, grads, state, self._meta_lr
        )
        return new_params, new_state, obj

    def _train_loop(self, num_iterations: tf.Tensor):
        keys = list(self.params)
        params = {k: self.params[k].read_value() for k in keys}
        state = optimizer.AdamState(
            m={k: self.adam_m[k].read_value() for k in keys},
            v={k: self.adam_v[k].read_value() for k in keys},
            count=self.adam_count.read_value(),
        )
        start = self.iteration.read_value()
        zero = tf.zeros([3], params[keys[0]].dtype)

        def body(i, params, state, sums):
            new_params, new_state, obj = self.step(params, state, start + i)
            sums = sums + tf.stack(
                [obj.loss, obj.pre_update_query_loss, obj.post_update_query_loss]
            )
            return i + 1, new_params, new_state, sums

        _, params, state, sums = tf.while_loop(
            lambda i, *_: i < num_iterations,
            body,
            (tf.constant(0, tf.int64), params, state, zero),
        )
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
        return ChunkStats(
            loss=float(means[0]),
            pre_update_query_loss=float(means[1]),
            post_update_query_loss=float(means[2]),
            iteration=int(self.iteration.numpy()),
        )
