"""The "multi-task" baselines of MAML App. C.1 (Table 2): average 500 regressors.

Finn et al. 2017, App. C.1: to average in parameter space instead of output space,
500 separate regressors were trained one by one on 500 tasks drawn from p(T), each
initialised randomly and trained on a large amount of data from its task until its
error on its sine wave was below 0.02. Their parameters were averaged and the
average fine-tuned on K = 5 points with a tuned step size. Three variants regularise
the individual regressors differently: not at all ("none"), with l2 weight decay
("l2"), or with an l2 penalty towards the mean parameter vector of the regressors
trained so far ("mean"). The regularisation weight was "as high as possible without
significantly deterring performance".

Here the regressors are trained together, vectorised: every parameter carries a
leading regressor axis and one Adam step updates all of them (Adam is elementwise,
so this is the same as training each alone). Each regressor draws fresh inputs from
its own task at every step (an unlimited amount of data). Every `check_every` steps
each regressor's MSE on a dense grid of its sine wave is measured; a regressor below
the target is frozen and leaves the batch, so each one stops as soon as it is below
the target (the remaining ones are trained in a smaller, compiled batch).

"Regularised to the mean thus far" is sequential. `sequential_blocks` keeps that
order while vectorising: regressors are trained in blocks of sizes 1, 1, 2, 4, 8,
..., and each block is pulled towards the mean of all regressors of earlier blocks
(the first regressor, which has no predecessors, is not regularised, as in a
one-by-one run). No block is larger than the number of regressors before it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from maml import networks, optimizer

REGULARISERS = ("none", "l2", "mean")
GRID_POINTS = 1000


def regulariser(
    params: Mapping[str, tf.Tensor],
    kind: str,
    weight: float,
    anchor: Mapping[str, tf.Tensor] | None = None,
) -> tf.Tensor:
    """Per-regressor penalty `[N]` for parameters with a leading regressor axis.

    Args:
        params: `{name: [N, ...]}`.
        kind: "none" (zero), "l2" (`weight * sum(theta^2)`, weight decay) or
            "mean" (`weight * sum((theta - anchor)^2)`).
        weight: The regularisation weight.
        anchor: `{name: [...]}` without the regressor axis; required for "mean".

    Returns:
        `[N]` penalties.
    """
    if kind not in REGULARISERS:
        raise ValueError(f"regulariser must be one of {REGULARISERS}, got {kind!r}")
    first = next(iter(params.values()))
    total = tf.zeros(tf.shape(first)[:1], first.dtype)
    if kind == "none":
        return total
    if kind == "mean" and anchor is None:
        raise ValueError("the 'mean' regulariser needs an anchor")
    for name, p in params.items():
        diff = p if kind == "l2" else p - anchor[name][tf.newaxis]
        total += tf.reduce_sum(
            tf.reshape(tf.square(diff), [tf.shape(p)[0], -1]), axis=1
        )
    return weight * total


def average_parameters(
    params: Mapping[str, tf.Tensor | np.ndarray],
) -> dict[str, tf.Tensor]:
    """The mean over the leading regressor axis of every parameter."""
    return {
        k: tf.reduce_mean(tf.convert_to_tensor(v), axis=0) for k, v in params.items()
    }


def sequential_blocks(num_regressors: int) -> list[tuple[int, int]]:
    """`[start, end)` blocks of sizes 1, 1, 2, 4, ... covering `num_regressors`.

    Each block's size is at most the number of regressors before it (except the
    first), so each block is regularised towards a mean of at least as many
    regressors as it holds.
    """
    if num_regressors <= 0:
        raise ValueError("num_regressors must be positive")
    blocks, start, size = [], 0, 1
    while start < num_regressors:
        end = min(start + size, num_regressors)
        blocks.append((start, end))
        size = max(1, end)  # the next block is as large as all before it
        start = end
    return blocks


def he_normal_params(
    net: networks.MLP, num: int, seed: int, dtype: tf.DType = tf.float32
) -> dict[str, tf.Tensor]:
    """`num` independent random initialisations, `{name: [num, ...]}`.

    Weights are normal with standard deviation sqrt(2 / fan_in) (He et al. 2015),
    biases zero. The paper says only "initialized randomly"; this scale trains a
    ReLU regressor from scratch reliably (the truncated normal 0.01 of the
    official MAML code leaves some regressors stuck at a constant output).
    """
    rng = np.random.default_rng(seed)
    params = {}
    for i, (fan_in, fan_out) in enumerate(
        zip(net.layer_sizes[:-1], net.layer_sizes[1:], strict=True)
    ):
        params[f"w{i}"] = tf.constant(
            rng.normal(size=(num, fan_in, fan_out)) * math.sqrt(2.0 / fan_in), dtype
        )
        params[f"b{i}"] = tf.zeros([num, fan_out], dtype)
    return params


def grid_errors(
    net: networks.FunctionalNetwork,
    params: Mapping[str, tf.Tensor],
    amplitude: tf.Tensor,
    phase: tf.Tensor,
    x_range: tuple[float, float] = (-5.0, 5.0),
) -> np.ndarray:
    """Each regressor's MSE against its sine wave on `GRID_POINTS` even points."""
    n = tf.shape(amplitude)[0]
    grid = tf.linspace(
        tf.constant(x_range[0], amplitude.dtype),
        tf.constant(x_range[1], amplitude.dtype),
        GRID_POINTS,
    )
    x = tf.tile(grid[tf.newaxis, :, tf.newaxis], [n, 1, 1])
    y = amplitude[:, None, None] * tf.sin(x - phase[:, None, None])
    return tf.reduce_mean(tf.square(net.apply(params, x) - y), axis=[1, 2]).numpy()


@dataclasses.dataclass(frozen=True)
class RegressorTraining:
    """How the individual regressors are trained.

    Attributes:
        learning_rate: Adam step size.
        batch_points: Fresh inputs drawn from the task at every step.
        target_mse: A regressor stops once its grid MSE is below this (0.02).
        max_steps: A regressor that never reaches the target stops here.
        check_every: Steps between error checks.
        min_steps: A regressor stops only after at least this many steps (0: as
            soon as it is below the target). The paper says each regressor was
            "trained on a large amount of data" and ended below 0.02; a long
            minimum lets the regulariser act for longer than the few thousand
            steps that reaching 0.02 takes.
        jit_compile: Compile the training loop with XLA (one compile per batch
            size; much faster per step for long runs).
    """

    learning_rate: float = 3e-3
    batch_points: int = 50
    target_mse: float = 0.02
    max_steps: int = 30_000
    check_every: int = 500
    min_steps: int = 0
    jit_compile: bool = True


@dataclasses.dataclass(frozen=True)
class TrainedRegressors:
    """The outcome of `train_regressors`.

    Attributes:
        params: `{name: [N, ...]}` final parameters.
        errors: `[N]` grid MSE of each regressor when it stopped.
        steps: `[N]` Adam steps each regressor took.
        target_mse: The error target they were trained to.
    """

    params: dict[str, np.ndarray]
    errors: np.ndarray
    steps: np.ndarray
    target_mse: float

    @property
    def num_below_target(self) -> int:
        """Regressors whose final grid MSE is below the target."""
        return int(np.sum(self.errors < self.target_mse))


@functools.lru_cache(maxsize=16)
def _chunk_function(
    net: networks.FunctionalNetwork, kind: str, training: RegressorTraining
):
    """A compiled loop of Adam steps for a batch of regressors (one per shape)."""

    @tf.function(jit_compile=training.jit_compile, reduce_retracing=True)
    def chunk(
        params, m, v, count, amplitude, phase, anchor, weight, seed, start, num_steps
    ):
        def body(i, params, m, v, count):
            x = tf.random.stateless_uniform(
                [tf.shape(amplitude)[0], training.batch_points, 1],
                tf.stack([seed, start + i]),
                -5.0,
                5.0,
                dtype=amplitude.dtype,
            )
            y = amplitude[:, None, None] * tf.sin(x - phase[:, None, None])
            with tf.GradientTape() as tape:
                tape.watch(params)
                mse = tf.reduce_mean(tf.square(net.apply(params, x) - y), axis=[1, 2])
                loss = tf.reduce_sum(mse + regulariser(params, kind, weight, anchor))
            grads = tape.gradient(loss, params)
            new, state = optimizer.adam_update(
                params, grads, optimizer.AdamState(m, v, count), training.learning_rate
            )
            return i + 1, new, state.m, state.v, state.count

        _, params, m, v, count = tf.while_loop(
            lambda i, *_: i < num_steps,
            body,
            (tf.constant(0, tf.int64), params, m, v, count),
        )
        return params, m, v, count

    return chunk


def _bucket(n: int) -> int:
    """The next power of two >= n (batch sizes are padded to limit recompiles)."""
    return 1 << max(0, (n - 1).bit_length())


def _rows(
    arrays: Mapping[str, np.ndarray],
    index: np.ndarray,
) -> dict[str, tf.Tensor]:
    return {k: tf.constant(a[index]) for k, a in arrays.items()}


def train_regressors(
    net: networks.MLP,
    init: Mapping[str, tf.Tensor],
    amplitude: np.ndarray,
    phase: np.ndarray,
    kind: str,
    weight: float,
    training: RegressorTraining,
    seed: int,
    anchor: Mapping[str, tf.Tensor] | None = None,
) -> TrainedRegressors:
    """Trains N regressors, one per task, each until its grid MSE is below target
    (and it has trained `training.min_steps` steps).

    Args:
        net: The regressor network (the same for all).
        init: `{name: [N, ...]}` initial parameters.
        amplitude: `[N]` amplitudes of the regressors' tasks.
        phase: `[N]` phases.
        kind: Regulariser ("none", "l2", "mean").
        weight: Regularisation weight (ignored for "none").
        training: Optimiser, data and stopping settings.
        seed: Seed of the input stream.
        anchor: The mean parameters to regularise towards ("mean").

    Returns:
        The trained regressors.
    """
    params = {k: np.array(v) for k, v in init.items()}
    dtype = next(iter(init.values())).dtype
    amplitude = np.asarray(amplitude, dtype.as_numpy_dtype)
    phase = np.asarray(phase, dtype.as_numpy_dtype)
    n = amplitude.shape[0]
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v_ = {k: np.zeros_like(v) for k, v in params.items()}
    steps = np.zeros(n, np.int64)
    errors = grid_errors(net, params, tf.constant(amplitude), tf.constant(phase))
    active = np.flatnonzero((errors >= training.target_mse) | (training.min_steps > 0))
    anchor_t = (
        {k: tf.constant(a, dtype) for k, a in anchor.items()}
        if anchor is not None
        else {k: tf.zeros(v.shape[1:], dtype) for k, v in params.items()}
    )
    chunk = _chunk_function(net, kind, training)
    done_steps = 0
    while active.size and done_steps < training.max_steps:
        padded = np.concatenate(
            [active, np.repeat(active[:1], _bucket(active.size) - active.size)]
        )
        num = min(training.check_every, training.max_steps - done_steps)
        p, mm, vv, _ = chunk(
            _rows(params, padded),
            _rows(m, padded),
            _rows(v_, padded),
            tf.constant(float(done_steps)),
            tf.constant(amplitude[padded]),
            tf.constant(phase[padded]),
            anchor_t,
            tf.constant(weight, dtype),
            tf.constant(seed, tf.int64),
            tf.constant(done_steps, tf.int64),
            tf.constant(num, tf.int64),
        )
        k = active.size
        for name in params:
            params[name][active] = p[name].numpy()[:k]
            m[name][active] = mm[name].numpy()[:k]
            v_[name][active] = vv[name].numpy()[:k]
        done_steps += num
        steps[active] = done_steps
        errors[active] = grid_errors(
            net,
            {name: tf.constant(params[name][active]) for name in params},
            tf.constant(amplitude[active]),
            tf.constant(phase[active]),
        )
        active = active[
            (errors[active] >= training.target_mse) | (done_steps < training.min_steps)
        ]
    return TrainedRegressors(
        params=params, errors=errors, steps=steps, target_mse=training.target_mse
    )


def train_multitask(
    net: networks.MLP,
    amplitude: np.ndarray,
    phase: np.ndarray,
    kind: str,
    weight: float,
    training: RegressorTraining,
    seed: int,
) -> TrainedRegressors:
    """All regressors of one variant, in the order App. C.1 implies.

    "none" and "l2" regressors do not depend on each other and are trained in one
    batch; "mean" regressors are trained in `sequential_blocks`, each block
    regularised towards the mean of all earlier regressors.

    Args:
        net: The regressor network.
        amplitude: `[N]` task amplitudes.
        phase: `[N]` task phases.
        kind: "none", "l2" or "mean".
        weight: Regularisation weight.
        training: Regressor training settings.
        seed: Seed of the initialisations and the input streams.

    Returns:
        The trained regressors, in task order.
    """
    n = len(amplitude)
    init = he_normal_params(net, n, seed)
    if kind != "mean":
        return train_regressors(
            net, init, amplitude, phase, kind, weight, training, seed
        )
    parts: list[TrainedRegressors] = []
    for b, (start, end) in enumerate(sequential_blocks(n)):
        if start == 0:
            block_kind, anchor = "none", None
        else:
            block_kind = "mean"
            anchor = {
                k: np.concatenate([p.params[k] for p in parts]).mean(axis=0)
                for k in init
            }
        parts.append(
            train_regressors(
                net,
                {k: v[start:end] for k, v in init.items()},
                amplitude[start:end],
                phase[start:end],
                block_kind,
                weight,
                training,
                seed * 1000 + b,
                anchor,
            )
        )
    return TrainedRegressors(
        params={k: np.concatenate([p.params[k] for p in parts]) for k in init},
        errors=np.concatenate([p.errors for p in parts]),
        steps=np.concatenate([p.steps for p in parts]),
        target_mse=training.target_mse,
    )


def select_weight(
    net: networks.MLP,
    amplitude: np.ndarray,
    phase: np.ndarray,
    kind: str,
    candidates: Sequence[float],
    training: RegressorTraining,
    seed: int,
) -> tuple[float, dict[float, dict[str, float]]]:
    """The largest weight at which every pilot regressor still reaches the target.

    App. C.1 sets the weight "as high as possible without significantly deterring
    performance". Here: the pilot tasks are trained with each candidate, largest
    first, and the first candidate whose regressors all reach the target MSE
    within `training.max_steps` is chosen. For "mean" the pilot regressors are
    pulled towards the mean of the same number of unregularised regressors
    trained on other pilot tasks (a harder pull than in the sequential run, whose
    earlier regressors are themselves regularised, so the choice is cautious).

    Args:
        net: The regressor network.
        amplitude: Pilot task amplitudes (separate from the 500 tasks).
        phase: Pilot task phases.
        kind: "l2" or "mean".
        candidates: Weights to try.
        training: Regressor training settings.
        seed: Seed of the pilot.

    Returns:
        `(chosen weight, {weight: {"reached": fraction, "median_steps": ...}})`;
        the smallest candidate if none qualifies.
    """
    if kind not in ("l2", "mean"):
        raise ValueError("select_weight is for the 'l2' and 'mean' regularisers")
    n = len(amplitude)
    anchor = None
    if kind == "mean":
        free = train_regressors(
            net,
            he_normal_params(net, n, seed + 1),
            amplitude[::-1],
            phase[::-1],
            "none",
            0.0,
            training,
            seed + 1,
        )
        anchor = {k: v.mean(axis=0) for k, v in free.params.items()}
    scores = {}
    ordered = sorted(candidates, reverse=True)
    for weight in ordered:
        trained = train_regressors(
            net,
            he_normal_params(net, n, seed),
            amplitude,
            phase,
            kind,
            weight,
            training,
            seed,
            anchor,
        )
        reached = float(np.mean(trained.errors < training.target_mse))
        scores[float(weight)] = {
            "reached": reached,
            "median_steps": float(np.median(trained.steps)),
        }
        if reached == 1.0:
            return float(weight), scores
    return float(ordered[-1]), scores
