"""Serving a meta-learned model: plain prediction and few-shot adaptation in-graph.

`FewShotModule` carries the meta-learned weights and two functions, exported as
serving signatures:

- `predict(x)`: outputs with the meta-learned weights.
- `adapt_and_predict(support_x, support_y, query_x, num_steps)`: runs MAML's inner
  loop (`num_steps` SGD steps of size alpha on the support set, inside the graph,
  as a `tf.while_loop`) and returns the adapted model's outputs on the query set.
  This is served few-shot adaptation: one request carries one task.

Every request is validated inside the graph before any computation
(`common.serving_checks`); a rejected request fails with InvalidArgumentError whose
message starts with the input's name and states the rule:

- every input with the shape of the signature (checked again in the graph: a
  loaded signature can run on tensors its input spec does not describe);
- `num_steps` in `[0, max_num_steps]` (default 100), so one request's work is
  bounded;
- `support_x` with 1 to `max_support_size` rows (default 1000) and `support_y`
  with as many rows; `query_x` (and `predict`'s `x`) with 1 to `max_query_size`
  rows (default 1000);
- every float input finite; images within the pixel range the model was trained
  on (`[0, 1]` for classification);
- classification labels in `[0, N)` for an N-way model.

The limits are `FewShotLimits`, fixed at export (`export_few_shot_model`; for a
run directory `maml.experiments.export.export_run(..., limits=...)` or
`python -m maml.export --limit max_num_steps=200`) and written to
`assets.extra/serving_limits.json`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from common import export, serving_checks
from maml import meta_learner, networks


@dataclasses.dataclass(frozen=True)
class FewShotLimits:
    """Per-request limits of a served few-shot model, fixed at export.

    Attributes:
        max_num_steps: `adapt_and_predict`'s `num_steps` must lie in
            `[0, max_num_steps]`; it bounds the inner-loop work of one request
            (issue 15's default, 100, is 10x the paper's most test-time steps).
        max_support_size: Most support examples (rows) per request.
        max_query_size: Most query examples (rows) per request, also for `predict`.
    """

    max_num_steps: int = 100
    max_support_size: int = 1000
    max_query_size: int = 1000

    def __post_init__(self) -> None:
        serving_checks.check_limits(self)


class FewShotModule(tf.Module):
    """A meta-learned model with in-graph adaptation, ready for `tf.saved_model`.

    Args:
        net: The network.
        params: Meta-learned parameters (no task axis).
        loss_fn: Per-task loss used by the inner loop.
        alpha: Inner step size.
        example_shape: Shape of one input example, e.g. `(1,)`.
        target_shape: Shape of one support target, e.g. `(1,)`; `()` for labels.
        target_dtype: dtype of support targets.
        output_fn: Maps network outputs to served outputs (identity, softmax).
        limits: Per-request limits enforced by the signatures.
        num_classes: For integer labels: they must lie in `[0, num_classes)`.
        input_range: If set, every input value must lie in this closed interval
            (the pixel range of image models).

    Example:
        >>> from maml import tasks
        >>> net = networks.MLP((1, 40, 40, 1))
        >>> module = FewShotModule(net, net.init_params(0),
        ...                        meta_learner.mse_per_task, alpha=0.01,
        ...                        example_shape=(1,))
        >>> task = tasks.sample_sinusoid_tasks(tf.constant([0, 0]), 1, 5, 7)
        >>> out = module.adapt_and_predict(task.support_x[0], task.support_y[0],
        ...                                task.query_x[0], tf.constant(2))
        >>> out["outputs"].shape  # the query predictions after two inner steps
        TensorShape([7, 1])
    """

    def __init__(
        self,
        net: networks.FunctionalNetwork,
        params: Mapping[str, tf.Tensor],
        loss_fn: meta_learner.LossFn,
        alpha: float,
        example_shape: Sequence[int],
        target_shape: Sequence[int] = (1,),
        target_dtype: tf.DType = tf.float32,
        output_fn: Callable[[tf.Tensor], tf.Tensor] = tf.identity,
        limits: FewShotLimits = FewShotLimits(),
        num_classes: int | None = None,
        input_range: tuple[float, float] | None = None,
    ):
        super().__init__(name="few_shot_module")
        if target_dtype.is_integer and not (num_classes and num_classes >= 1):
            raise ValueError(
                f"integer targets need num_classes >= 1, got {num_classes!r}"
            )
        self._net = net
        self._loss_fn = loss_fn
        self._output_fn = output_fn
        self.limits = limits
        self._num_classes = num_classes
        self._input_range = input_range
        self._example_shape = tuple(int(d) for d in example_shape)
        self._target_shape = tuple(int(d) for d in target_shape)
        self.alpha = tf.Variable(float(alpha), trainable=False, name="alpha")
        self.params = {
            k: tf.Variable(v, trainable=False, name=k) for k, v in params.items()
        }
        x_spec = tf.TensorSpec([None, *example_shape], tf.float32)
        y_spec = tf.TensorSpec([None, *target_shape], target_dtype)
        self.predict = tf.function(
            self._predict,
            input_signature=[tf.TensorSpec(x_spec.shape, x_spec.dtype, name="x")],
        )
        self.adapt_and_predict = tf.function(
            self._adapt_and_predict,
            input_signature=[
                tf.TensorSpec(x_spec.shape, x_spec.dtype, name="support_x"),
                tf.TensorSpec(y_spec.shape, y_spec.dtype, name="support_y"),
                tf.TensorSpec(x_spec.shape, x_spec.dtype, name="query_x"),
                tf.TensorSpec([], tf.int32, name="num_steps"),
            ],
        )

    def _tiled(self) -> networks.Params:
        return networks.tile_params(
            {k: v.read_value() for k, v in self.params.items()}, 1
        )

    def _check_inputs(
        self,
        checks: serving_checks.RequestChecks,
        x: tf.Tensor,
        name: str,
        max_rows: int,
        limit_name: str,
    ) -> None:
        checks.shape(x, name, ("rows", *self._example_shape))
        checks.rows(x, name, 1, max_rows, limit_name)
        checks.finite(x, name)
        if self._input_range is not None:
            checks.values_in(
                x,
                name,
                *self._input_range,
                why="the input range the model was trained on",
            )

    def _predict(self, x):
        checks = serving_checks.RequestChecks()
        self._check_inputs(checks, x, "x", self.limits.max_query_size, "max_query_size")
        (x,) = checks.gate(x)
        out = self._net.apply(self._tiled(), x[tf.newaxis])[0]
        return {"outputs": self._output_fn(out)}

    def _adapt_and_predict(self, support_x, support_y, query_x, num_steps):
        checks = serving_checks.RequestChecks()
        checks.shape(num_steps, "num_steps", ())
        checks.values_in(
            num_steps,
            "num_steps",
            0,
            self.limits.max_num_steps,
            why="max_num_steps is fixed at export",
        )
        self._check_inputs(
            checks,
            support_x,
            "support_x",
            self.limits.max_support_size,
            "max_support_size",
        )
        checks.shape(support_y, "support_y", ("rows", *self._target_shape))
        checks.same_size(support_y, "support_y", 0, support_x, "support_x", 0)
        if support_y.dtype.is_integer:
            checks.values_in(
                support_y,
                "support_y",
                0,
                self._num_classes - 1,
                why=f"labels of a {self._num_classes}-way model",
            )
        else:
            checks.finite(support_y, "support_y")
        self._check_inputs(
            checks, query_x, "query_x", self.limits.max_query_size, "max_query_size"
        )
        support_x, support_y, query_x, num_steps = checks.gate(
            support_x, support_y, query_x, num_steps
        )
        sx, sy = support_x[tf.newaxis], support_y[tf.newaxis]
        alpha = self.alpha.read_value()

        def body(i, params):
            return i + 1, meta_learner.inner_update(
                self._net, params, sx, sy, self._loss_fn, alpha, first_order=True
            )

        _, fast = tf.while_loop(
            lambda i, _: i < num_steps, body, (tf.constant(0), self._tiled())
        )
        out = self._net.apply(fast, query_x[tf.newaxis])[0]
        return {"outputs": self._output_fn(out)}

    def signatures(self) -> dict:
        """The serving signatures, keyed by signature name."""
        return {
            "serving_default": self.predict.get_concrete_function(),
            "predict": self.predict.get_concrete_function(),
            "adapt_and_predict": self.adapt_and_predict.get_concrete_function(),
        }


def export_few_shot_model(
    module: FewShotModule,
    export_dir: str,
    model_name: str,
    warmup_support_x: np.ndarray,
    warmup_support_y: np.ndarray,
    warmup_query_x: np.ndarray,
    warmup_steps: int,
    version: int | None = None,
) -> str:
    """Exports `module` for TF Serving with one warm-up request per signature.

    Returns:
        The SavedModel version directory.

    Raises:
        ValueError: `warmup_steps` exceeds the module's `max_num_steps`.
    """
    if not 0 <= warmup_steps <= module.limits.max_num_steps:
        raise ValueError(
            f"warm-up num_steps {warmup_steps} is outside [0, "
            f"{module.limits.max_num_steps}]: raise max_num_steps "
            "(--limit max_num_steps=N)"
        )
    requests = [
        ("predict", {"x": warmup_query_x.astype(np.float32)}),
        (
            "adapt_and_predict",
            {
                "support_x": warmup_support_x.astype(np.float32),
                "support_y": warmup_support_y,
                "query_x": warmup_query_x.astype(np.float32),
                "num_steps": np.int32(warmup_steps),
            },
        ),
    ]
    return export.export_for_serving(
        module,
        export_dir,
        model_name,
        module.signatures(),
        requests,
        version,
        limits=dataclasses.asdict(module.limits),
    )


def restore_meta_params(
    run_dir: str, net: networks.FunctionalNetwork, phase: str = "maml"
) -> dict[str, tf.Tensor]:
    """Loads the latest meta-parameters of a run's training phase.

    Raises:
        FileNotFoundError: the run has no checkpoint for `phase`.
    """
    ckpt_dir = os.path.join(run_dir, "checkpoints", phase)
    latest = tf.train.latest_checkpoint(ckpt_dir)
    if latest is None:
        raise FileNotFoundError(
            f"no checkpoint in {ckpt_dir}: train first with python -m maml.main "
            f"--output_dir={run_dir}"
        )
    holder = tf.Module()
    holder.params = {k: tf.Variable(v, name=k) for k, v in net.init_params(0).items()}
    tf.train.Checkpoint(trainer=holder).restore(latest).expect_partial()
    return {k: tf.identity(v) for k, v in holder.params.items()}


def classification_module(
    net: networks.FunctionalNetwork,
    params: Mapping[str, tf.Tensor],
    shots: int,
    alpha: float,
    limits: FewShotLimits = FewShotLimits(),
) -> FewShotModule:
    """A serving module for N-way classification.

    Support images (pixels in [0, 1], as `maml.tasks` makes them) with int labels
    in `[0, N)` and query images in; class probabilities of the query images out.
    """
    if isinstance(net, networks.Conv4):
        shape, ways = (net.image_size, net.image_size, net.channels), net.num_classes
    else:
        shape, ways = (28, 28, 1), net.layer_sizes[-1]
    loss = meta_learner.softmax_cross_entropy_per_task(shots)
    return FewShotModule(
        net,
        params,
        loss,
        alpha,
        example_shape=shape,
        target_shape=(),
        target_dtype=tf.int32,
        output_fn=tf.nn.softmax,
        limits=limits,
        num_classes=ways,
        input_range=(0.0, 1.0),
    )
