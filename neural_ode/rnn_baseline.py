"""The RNN baselines of the spiral task (Table 2 of the Neural ODE paper).

The paper compares the latent ODE with "an RNN with 25 hidden units", and with a
variant whose inputs also carry the time gaps so that it can cope with irregular
observations. Both are one Keras model, a vanilla tanh RNN cell of 25 units and a
linear readout mapping every hidden state to the predicted next point, with two
time rules (the paper states neither; each is this project's choice, stated in the
reports):

- Plain RNN, regular-grid rule (`grid_estimates`): the RNN runs on the regular
  100-step grid of the spirals, one recurrent step per grid step. At an observed
  step its input is the observation; at an unobserved step it is the RNN's own
  prediction for that step (made at the step before). So one recurrent step always
  means one grid step, in training and at test time, and the RNN can continue past
  the window by feeding its predictions (`grid_rollout`). Training: squared error
  of the prediction of every observed step after the first (`on_grid`,
  `grid_loss`), with gradients through the fed-back predictions too.
- Time-gap RNN: it reads only the observed points, each concatenated with the time
  from it to the next point wanted (`time_gap_features`), trained one step ahead
  with teacher forcing (`one_step_data`). Its estimate at any time `tau` is the
  readout after reading the observations before `tau`, the last of them with the gap
  to `tau` (`RNNBaseline.time_gap_estimates`); after the window it feeds its
  predictions back (`RNNBaseline.extrapolate`).

Before (and at) a sequence's first observation neither RNN has anything to predict
from; both then estimate the first observation itself, as Rubanova's `latent_ode`
code does for its RNN baselines (`lib/rnn_baselines.py`, `utils.shift_outputs`).

Cell choice: the paper names no gated cell, and the reference code's recognition
network is a plain `tanh(W [x, h] + b)` RNN with 25 units, so the baseline uses
`keras.layers.SimpleRNNCell` (same update). The inputs are used as given: callers
that want them in the tanh's sensitive range should standardize the observations
(and predictions come back in the same units).

`make_grid_train_step` and `make_time_gap_train_step` build the full-batch
training steps of the two rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf
from keras import ops


def num_parameters(units: int = 25, obs_dim: int = 2, time_gaps: bool = False) -> int:
    """Trainable parameters of `RNNBaseline`, by hand.

    The cell has an input kernel `[features, units]`, a recurrent kernel
    `[units, units]` and a bias `[units]`; the readout a kernel `[units, obs_dim]`
    and a bias `[obs_dim]`; `features = obs_dim + time_gaps`.
    """
    features = obs_dim + int(time_gaps)
    return units * (features + units + 1) + obs_dim * (units + 1)


def _as_batch_times(times: Any, batch: int) -> np.ndarray:
    """float32 `[batch, n]` from shared `[n]` or per-sequence `[batch, n]` times."""
    times = np.asarray(times, np.float32)
    if times.ndim == 1:
        times = np.broadcast_to(times, (batch, len(times)))
    if times.ndim != 2 or times.shape[0] != batch:
        raise ValueError(f"times must be [n] or [{batch}, n], got shape {times.shape}")
    return times


def time_gap_features(
    observations: Any,
    times: Any,
    next_times: Any,
) -> np.ndarray:
    """Points concatenated with the time to the next wanted point.

    Args:
        observations: `[batch, n, obs_dim]`.
        times: `[n]` or `[batch, n]`, the times of the observations.
        next_times: `[]` or `[batch]`, the time wanted after the last observation.

    Returns:
        float32 `[batch, n, obs_dim + 1]`; feature `obs_dim` of step `i` is
        `times[i + 1] - times[i]`, and of the last step `next_times - times[-1]`.
    """
    observations = np.asarray(observations, np.float32)
    batch = observations.shape[0]
    times = _as_batch_times(times, batch)
    if times.shape[1] != observations.shape[1]:
        raise ValueError(
            f"{times.shape[1]} times for {observations.shape[1]} observations"
        )
    after = np.broadcast_to(np.asarray(next_times, np.float32), (batch,))
    gaps = np.diff(np.concatenate([times, after[:, None]], axis=1), axis=1)
    return np.concatenate([observations, gaps[..., None]], axis=-1)


def one_step_data(
    observations: Any,
    times: Any = None,
    time_gaps: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Teacher-forcing pairs: every observed point but the last, and its successor.

    Args:
        observations: `[batch, n, obs_dim]`, `n >= 2`.
        times: `[n]` or `[batch, n]`; needed with `time_gaps`.
        time_gaps: Build inputs for the time-gap variant.

    Returns:
        `(inputs, targets)`: float32 `[batch, n - 1, obs_dim (+ 1)]` and
        `[batch, n - 1, obs_dim]`.
    """
    observations = np.asarray(observations, np.float32)
    if observations.ndim != 3 or observations.shape[1] < 2:
        raise ValueError(
            f"need observations [batch, n >= 2, dims], got shape {observations.shape}"
        )
    targets = observations[:, 1:]
    if not time_gaps:
        return observations[:, :-1], targets
    if times is None:
        raise ValueError("the time-gap variant needs the observation times")
    times = _as_batch_times(times, observations.shape[0])
    inputs = time_gap_features(observations[:, :-1], times[:, :-1], times[:, -1])
    return inputs, targets


class GridData(NamedTuple):
    """Observations placed on the regular grid, shifted to start at the first one.

    Attributes:
        values: float32 `[batch, steps, dims]`; `values[b, j]` is the observation at
            grid step `j + shift[b]` (zero where nothing was observed).
        mask: bool `[batch, steps]`, True where `values` holds an observation;
            `mask[:, 0]` is always True.
        shift: int `[batch]`, the grid step of each sequence's first observation.
    """

    values: np.ndarray
    mask: np.ndarray
    shift: np.ndarray


def on_grid(observations: Any, indices: Any, num_points: int) -> GridData:
    """Places observed points on the regular grid, aligned to the first one.

    Args:
        observations: `[batch, n, dims]`, in time order.
        indices: int `[batch, n]`, increasing: the grid step of each observation.
        num_points: Length of the grid (the window).

    Returns:
        A `GridData` of `num_points` steps (steps past the window are unobserved).
    """
    observations = np.asarray(observations, np.float32)
    indices = np.asarray(indices, np.int64)
    if indices.shape != observations.shape[:2] or indices.ndim != 2:
        raise ValueError(
            f"indices of shape {indices.shape} do not match "
            f"observations of shape {observations.shape}"
        )
    if indices.size and (
        indices.min() < 0
        or indices.max() >= num_points
        or (np.diff(indices, axis=1) <= 0).any()
    ):
        raise ValueError(f"indices must increase within [0, {num_points})")
    batch = observations.shape[0]
    shift = indices[:, 0]
    aligned = indices - shift[:, None]
    values = np.zeros((batch, num_points, observations.shape[-1]), np.float32)
    mask = np.zeros((batch, num_points), bool)
    rows = np.arange(batch)[:, None]
    values[rows, aligned] = observations
    mask[rows, aligned] = True
    return GridData(values, mask, shift)


def grid_rollout(
    step_fn: Callable[[Any, Any], Any],
    readout_fn: Callable[[Any], Any],
    initial_state: Any,
    values: Any,
    mask: Any,
    num_steps: int,
) -> Any:
    """Runs a recurrent model one grid step at a time, filling gaps with predictions.

    At step `k` the input is `values[:, k]` where `mask[:, k]`, else the model's
    prediction for step `k`, `p_k = readout_fn(h_k)`, where `h_k` is the state after
    steps `0 .. k-1` (`h_0 = initial_state`). Steps at or past `values.shape[1]`
    are unobserved.

    Args:
        step_fn: `(input [batch, dims], state) -> new state`.
        readout_fn: `state -> prediction [batch, dims]`.
        initial_state: The state before step 0.
        values: `[batch, T, dims]`.
        mask: bool `[batch, T]`.
        num_steps: Steps to run.

    Returns:
        `[batch, num_steps, dims]`: `p_k` for `k = 0 .. num_steps - 1`; `p_k` depends
        only on the inputs of steps before `k`.
    """
    values = tf.convert_to_tensor(values, tf.float32)
    observed = tf.cast(tf.convert_to_tensor(mask), tf.float32)[..., None]
    length = values.shape[1]
    state = initial_state
    predictions = []
    for k in range(num_steps):
        prediction = readout_fn(state)
        predictions.append(prediction)
        if k < length:
            step_input = observed[:, k] * values[:, k] + (1.0 - observed[:, k]) * (
                prediction
            )
        else:
            step_input = prediction
        state = step_fn(step_input, state)
    return tf.stack(predictions, axis=1)


def grid_loss(predictions: Any, grid: GridData | tuple) -> Any:
    """Mean squared error of the predictions of the observed steps after the first.

    Args:
        predictions: `[batch, T, dims]` from `grid_rollout` on `grid`.
        grid: The aligned observations.

    Returns:
        The mean over observed steps `k >= 1` and coordinates.
    """
    values = tf.convert_to_tensor(grid[0], tf.float32)[:, 1:]
    weight = tf.cast(tf.convert_to_tensor(grid[1]), tf.float32)[:, 1:, None]
    squared = weight * tf.square(predictions[:, 1:] - values)
    count = tf.reduce_sum(weight) * float(values.shape[-1])
    return tf.reduce_sum(squared) / tf.maximum(count, 1.0)


class RNNBaseline(keras.Model):
    """A tanh RNN with a linear readout predicting the next point.

    `call` maps input sequences `[batch, steps, input_dim]` to the predicted next
    points `[batch, steps, obs_dim]`, where `input_dim = obs_dim + time_gaps`.
    """

    def __init__(
        self, units: int = 25, obs_dim: int = 2, time_gaps: bool = False, **kwargs: Any
    ) -> None:
        """Initializes the model.

        Args:
            units: Hidden units of the RNN (the paper: 25).
            obs_dim: Dimension of the observed points.
            time_gaps: Feed the time to the next point as an extra input feature.
            **kwargs: Passed to `keras.Model`.
        """
        super().__init__(**kwargs)
        self.units = units
        self.obs_dim = obs_dim
        self.time_gaps = time_gaps
        self.rnn = keras.layers.SimpleRNN(
            units,
            activation="tanh",
            return_sequences=True,
            return_state=True,
            name="rnn",
        )
        self.readout = keras.layers.Dense(obs_dim, name="readout")
        self.build((None, None, self.input_dim))

    @property
    def input_dim(self) -> int:
        """Features per input step: the point, plus the time gap if enabled."""
        return self.obs_dim + int(self.time_gaps)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.rnn.build(input_shape)
        self.readout.build((None, self.units))
        self.built = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        """One-step-ahead predictions `[batch, steps, obs_dim]`."""
        sequence, _ = self.rnn(inputs, training=training)
        return self.readout(sequence)

    def extrapolate(self, observations: Any, times: Any, query_times: Any) -> Any:
        """Predicts the points at `query_times`, after the observations.

        Reads the observations, then feeds every prediction back as the next
        input. The plain variant ignores all times (it assumes each query is one
        more step of the observed spacing); the time-gap variant receives the
        gap to each next query time.

        Args:
            observations: `[batch, n, obs_dim]`.
            times: `[n]` or `[batch, n]`, times of the observations.
            query_times: `[q]` or `[batch, q]`, increasing, after `times`.

        Returns:
            float32 tensor `[batch, q, obs_dim]`.
        """
        observations = np.asarray(observations, np.float32)
        batch = observations.shape[0]
        queries = _as_batch_times(query_times, batch)
        if self.time_gaps:
            inputs = time_gap_features(observations, times, queries[:, 0])
            gaps = np.diff(queries, axis=1)
        else:
            inputs = observations
        _, state = self.rnn(inputs)
        prediction = self.readout(state)
        predictions = [prediction]
        for j in range(queries.shape[1] - 1):
            step = prediction
            if self.time_gaps:
                step = ops.concatenate([prediction, gaps[:, j : j + 1]], axis=-1)
            state, _ = self.rnn.cell(step, state)
            prediction = self.readout(state)
            predictions.append(prediction)
        return ops.stack(predictions, axis=1)

    def _cell_step(self, step_input: Any, state: Any) -> Any:
        new_state, _ = self.rnn.cell(step_input, state)
        return new_state

    def grid_predictions(self, values: Any, mask: Any, num_steps: int) -> Any:
        """`grid_rollout` of this (plain) RNN from a zero state.

        Args:
            values: `[batch, T, obs_dim]` aligned observations (`GridData.values`).
            mask: bool `[batch, T]`.
            num_steps: Steps to predict.

        Returns:
            `[batch, num_steps, obs_dim]`, the prediction of each aligned step.
        """
        if self.time_gaps:
            raise ValueError(
                "the regular-grid rule is for the plain RNN; the "
                "time-gap RNN uses time_gap_estimates"
            )
        values = tf.convert_to_tensor(values, tf.float32)
        state = tf.zeros([tf.shape(values)[0], self.units], values.dtype)
        return grid_rollout(
            self._cell_step, self.readout, state, values, mask, num_steps
        )

    def grid_estimates(
        self, observations: Any, indices: Any, num_points: int, num_steps: int
    ) -> np.ndarray:
        """The plain RNN's estimate at every grid step `0 .. num_steps - 1`.

        Steps up to a sequence's first observation get that observation; every
        later step `k` gets the prediction made after the grid steps before `k`
        (observations where observed, the RNN's own predictions elsewhere, and
        predictions only after the window).

        Args:
            observations: `[batch, n, obs_dim]`.
            indices: int `[batch, n]`: the grid step of each observation.
            num_points: Steps of the observed window.
            num_steps: Steps to estimate (`> num_points` continues past it).

        Returns:
            float32 `[batch, num_steps, obs_dim]`.
        """
        grid = on_grid(observations, indices, num_points)
        predictions = np.asarray(
            self.grid_predictions(grid.values, grid.mask, num_steps)
        )
        steps = np.arange(num_steps)[None, :] - grid.shift[:, None]
        out = np.take_along_axis(
            predictions, np.clip(steps, 0, None)[..., None], axis=1
        )
        first = np.asarray(observations, np.float32)[:, :1]
        return np.where((steps <= 0)[..., None], first, out).astype(np.float32)

    def time_gap_estimates(
        self,
        observations: Any,
        times: Any,
        query_times: Any,
    ) -> np.ndarray:
        """The time-gap RNN's estimate at query times inside the observed span.

        For a query `tau` after the first observation: the readout after reading
        the observations before `tau`, each with the gap to the next one and the
        last with the gap to `tau`. At or before the first observation: that
        observation.

        Args:
            observations: `[batch, n, obs_dim]`.
            times: `[n]` or `[batch, n]`, increasing.
            query_times: `[q]` or `[batch, q]`.

        Returns:
            float32 `[batch, q, obs_dim]`.
        """
        if not self.time_gaps:
            raise ValueError("time_gap_estimates needs the time-gap RNN")
        observations = np.asarray(observations, np.float32)
        batch, n = observations.shape[:2]
        times = _as_batch_times(times, batch)
        queries = _as_batch_times(query_times, batch)
        # States before reading observation j: zero, then after 0 .. j-1.
        features = (
            time_gap_features(observations[:, :-1], times[:, :-1], times[:, -1])
            if n > 1
            else None
        )
        states = [np.zeros((batch, self.units), np.float32)]
        if features is not None:
            sequence, _ = self.rnn(features)
            states = np.concatenate([states[0][:, None], np.asarray(sequence)], axis=1)
        else:
            states = states[0][:, None]
        # Last observation strictly before each query.
        last = np.stack(
            [
                np.searchsorted(times[b], queries[b], side="left") - 1
                for b in range(batch)
            ]
        )
        before = last < 0
        last = np.clip(last, 0, n - 1)
        h = np.take_along_axis(states, last[..., None], axis=1)
        x = np.take_along_axis(observations, last[..., None], axis=1)
        gap = queries - np.take_along_axis(times, last, axis=1)
        step = np.concatenate([x, gap[..., None]], axis=-1).reshape(-1, self.input_dim)
        new_state, _ = self.rnn.cell(step, h.reshape(-1, self.units))
        out = keras.ops.convert_to_numpy(self.readout(new_state)).reshape(
            batch, queries.shape[1], self.obs_dim
        )
        return np.where(before[..., None], observations[:, :1], out).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(units=self.units, obs_dim=self.obs_dim, time_gaps=self.time_gaps)
        return config


def make_time_gap_train_step(
    model: RNNBaseline,
    optimizer: keras.optimizers.Optimizer,
    inputs: np.ndarray,
    targets: np.ndarray,
):
    """A full-batch step of one-step-ahead squared error (teacher forcing).

    Args:
        model: The RNN (with `time_gaps=True` for the time-gap rule).
        optimizer: Applied to all trainable weights.
        inputs: `[batch, n, input_dim]` from `one_step_data`.
        targets: `[batch, n, obs_dim]` from `one_step_data`.

    Returns:
        `step_fn(step) -> {"loss"}` (the step number is not used).
    """
    inputs = tf.constant(inputs, tf.float32)
    targets = tf.constant(targets, tf.float32)
    variables = model.trainable_variables

    @tf.function(jit_compile=False)
    def train():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(inputs, training=True) - targets))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return {"loss": loss}

    return lambda step: train()


def make_grid_train_step(
    model: RNNBaseline, optimizer: keras.optimizers.Optimizer, grid: GridData
):
    """A full-batch step of the plain RNN under the regular-grid rule (`grid_loss`).

    Steps after every sequence's last observation carry no loss and are not run.

    Args:
        model: The RNN (`time_gaps=False`).
        optimizer: Applied to all trainable weights.
        grid: The observations on the regular grid (`on_grid`).

    Returns:
        `step_fn(step) -> {"loss"}` (the step number is not used).
    """
    steps = int(np.max(np.flatnonzero(grid.mask.any(axis=0)))) + 1
    values = tf.constant(grid.values[:, :steps], tf.float32)
    mask = tf.constant(grid.mask[:, :steps])
    variables = model.trainable_variables

    @tf.function(jit_compile=False)
    def train():
        with tf.GradientTape() as tape:
            predictions = model.grid_predictions(values, mask, steps)
            loss = grid_loss(predictions, (values, mask))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return {"loss": loss}

    return lambda step: train()


def rmse(prediction: Any, target: Any) -> float:
    """Root mean squared error over all points and coordinates.

    Per coordinate, not per point: `sqrt(mean((prediction - target) ** 2))` over
    every element (a per-point Euclidean RMSE is `sqrt(obs_dim)` times larger).
    """
    prediction = np.asarray(prediction, np.float64)
    target = np.asarray(target, np.float64)
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction shape {prediction.shape} != target shape {target.shape}"
        )
    return float(np.sqrt(np.mean((prediction - target) ** 2)))
