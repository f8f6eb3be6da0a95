"""MAML on any Keras 3 model: the model's own variables are the meta-parameters.

`MAML(model, loss, inner_lr)` wraps a built Keras model. The inner loop and the
meta-gradient run through `model.stateless_call`, so the model is evaluated at
*fast weights* (tensors that depend on the meta-parameters through the inner
gradient steps) without assigning to its variables, and the outer
`tf.GradientTape` differentiates through the inner steps exactly (second order;
`first_order=True` gives the paper's first-order approximation). The maths is that
of `maml.meta_learner`, which this module reuses through `KerasNetwork`, an adapter
that makes a Keras model a `networks.FunctionalNetwork`.

The explicit-weight networks of `maml.networks` remain the fast path for the
paper's experiments; this wrapper is for users' own models. Per task, the model is
called once with that task's fast weights, vectorised over the tasks with
`tf.vectorized_map` (which loops over the tasks for ops pfor cannot
vectorise).

Example:
    >>> import keras, tensorflow as tf
    >>> from maml import MAML, tasks
    >>> from maml.meta_learner import mse_per_task
    >>> model = keras.Sequential([
    ...     keras.Input((1,)), keras.layers.Dense(40, "relu"),
    ...     keras.layers.Dense(40, "relu"), keras.layers.Dense(1)])
    >>> maml = MAML(model, mse_per_task, inner_lr=0.01)
    >>> opt = keras.optimizers.Adam(1e-3)
    >>> for step in range(3):
    ...     batch = tasks.sample_sinusoid_tasks(tf.constant([0, step]), 25, 10, 10)
    ...     loss = maml.train_step(batch, opt)
    >>> fast = maml.adapt(batch.support_x, batch.support_y)  # per-task weights
    >>> maml.predict(fast, batch.query_x).shape
    TensorShape([25, 10, 1])
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import tensorflow as tf

from maml import meta_learner, networks


def _variable_key(index: int, variable: keras.Variable) -> str:
    """A unique, readable key for a model variable: "003:dense_1/kernel"."""
    return f"{index:03d}:{variable.path}"


class KerasNetwork(networks.FunctionalNetwork):
    """A built Keras model seen as a pure function of explicit weights.

    Args:
        model: A built Keras 3 model (call it once or give it an `Input`).
        training: The `training` argument of the model's calls (for layers such
            as dropout or batch norm; batch norm with `training=True` normalises
            with each task's batch statistics, as MAML's official code does).
            Non-trainable variables (e.g. moving statistics) are read, never
            updated.
        adapted: Which trainable variables the inner loop updates, as a predicate
            on the variable's path (default: all). The others are still
            meta-learned.

    Raises:
        ValueError: The model is not built, has no trainable variables, or
            `adapted` selects none.
    """

    def __init__(
        self, model: keras.Model, training: bool = False, adapted=None
    ) -> None:
        if not model.built or not model.trainable_variables:
            raise ValueError(
                "the Keras model must be built and have trainable variables: give "
                "it a keras.Input or call it once on an example batch"
            )
        self.model = model
        self.training = bool(training)
        self.keys = tuple(
            _variable_key(i, v) for i, v in enumerate(model.trainable_variables)
        )
        self._adapted = (
            None
            if adapted is None
            else tuple(
                k
                for k, v in zip(self.keys, model.trainable_variables, strict=True)
                if adapted(v.path)
            )
        )
        if self._adapted == ():
            paths = [v.path for v in model.trainable_variables]
            raise ValueError(
                "the adapted predicate selects no trainable variable; "
                f"the variables are {paths}"
            )

    @property
    def adapted_keys(self) -> tuple[str, ...] | None:
        return self._adapted

    def init_params(
        self,
        seed: int = 0,
        dtype: tf.DType = tf.float32,
    ) -> networks.Params:
        """The model's current trainable weights (the seed is not used: the model
        was initialised when it was built)."""
        del seed
        return {k: tf.cast(v, dtype) for k, v in self.meta_params().items()}

    def meta_params(self) -> networks.Params:
        """The model's trainable variables' current values, keyed as `apply` reads."""
        return {
            k: tf.convert_to_tensor(v)
            for k, v in zip(self.keys, self.model.trainable_variables, strict=True)
        }

    def _call_one(self, params: Mapping[str, tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        trainable = [params[k] for k in self.keys]
        non_trainable = [
            tf.convert_to_tensor(v) for v in self.model.non_trainable_variables
        ]
        out, _ = self.model.stateless_call(
            trainable, non_trainable, x, training=self.training
        )
        return out

    def apply(self, params: Mapping[str, tf.Tensor], x: tf.Tensor) -> tf.Tensor:
        """The model at each task's weights: params `[T, ...]`, x `[T, N, ...]`."""

        def one(args):
            task_params, task_x = args
            return self._call_one(task_params, task_x)

        # Ops pfor cannot vectorise run in a while loop over the tasks.
        return tf.vectorized_map(
            one, ({k: params[k] for k in self.keys}, x), fallback_to_while_loop=True
        )


class MAML:
    """Model-agnostic meta-learning of a Keras model (Finn et al. 2017, Alg. 1-2).

    Args:
        model: A built Keras 3 model; its trainable variables are the
            meta-parameters theta.
        loss: Per-task loss, (predictions `[T, N, ...]`, targets) -> `[T]`, e.g.
            `maml.meta_learner.mse_per_task` or
            `meta_learner.softmax_cross_entropy_per_task(K)`.
        inner_lr: alpha, the inner SGD step size.
        num_inner_steps: Inner SGD steps at meta-training (and the default of
            `adapt`).
        first_order: The paper's first-order approximation (no second
            derivatives through the inner steps).
        training: Passed to the model's calls (see `KerasNetwork`).
        adapted: Predicate on a variable's path choosing what the inner loop
            adapts (default: everything).
    """

    def __init__(
        self,
        model: keras.Model,
        loss: meta_learner.LossFn,
        inner_lr: float,
        num_inner_steps: int = 1,
        first_order: bool = False,
        training: bool = False,
        adapted=None,
    ) -> None:
        if not inner_lr > 0:
            raise ValueError(f"inner_lr must be > 0, got {inner_lr}")
        if int(num_inner_steps) != num_inner_steps or num_inner_steps < 0:
            raise ValueError(
                f"num_inner_steps must be an integer >= 0, got {num_inner_steps}"
            )
        self.model = model
        self.net = KerasNetwork(model, training=training, adapted=adapted)
        self.loss = loss
        self.inner_lr = float(inner_lr)
        self.num_inner_steps = int(num_inner_steps)
        self.first_order = bool(first_order)

    def adapt(
        self, support_x: tf.Tensor, support_y: tf.Tensor, num_steps: int | None = None
    ) -> networks.Params:
        """Fast weights of each task after the inner loop from the current theta.

        Args:
            support_x: Support inputs `[T, K, ...]`.
            support_y: Support targets `[T, K, ...]`.
            num_steps: Inner steps (default `num_inner_steps`).

        Returns:
            Per-task weights `[T, ...]`, keyed like `net.keys`.
        """
        steps = self.num_inner_steps if num_steps is None else int(num_steps)
        return meta_learner.adapt(
            self.net,
            self.net.meta_params(),
            support_x,
            support_y,
            self.loss,
            self.inner_lr,
            steps,
            self.first_order,
        )

    def predict(self, params: networks.Params, x: tf.Tensor) -> tf.Tensor:
        """The model's outputs at per-task weights `params` for inputs `[T, N, ...]`."""
        return self.net.apply(params, x)

    def compute_gradients(
        self,
        batch: meta_learner.TaskBatch,
    ) -> tuple[meta_learner.Objective, list[tf.Tensor]]:
        """The meta-objective and its gradient, one per `model.trainable_variables`."""
        obj, grads = meta_learner.meta_gradient(
            self.net,
            self.net.meta_params(),
            batch,
            self.loss,
            self.inner_lr,
            self.num_inner_steps,
            self.first_order,
        )
        return obj, [grads[k] for k in self.net.keys]

    def train_step(
        self, batch: meta_learner.TaskBatch, optimizer: keras.optimizers.Optimizer
    ) -> tf.Tensor:
        """One meta-update of the model's variables; returns the meta-loss.

        Wrap it in `tf.function` (optionally `jit_compile=True`) for speed.
        """
        obj, grads = self.compute_gradients(batch)
        optimizer.apply_gradients(
            zip(grads, self.model.trainable_variables, strict=True)
        )
        return obj.loss
