"""The RNN baseline of the spiral extrapolation task (Table 2 of the Neural ODE paper).

The paper compares the latent ODE with "an RNN with 25 hidden units", and with a
variant whose inputs also carry the time gaps so that it can cope with irregular
observations. This module implements both as one Keras model:

- A vanilla tanh RNN cell with 25 units reads one point per step. In the time-gap
  variant each input is the point concatenated with the time from it to the next
  point wanted (the next observation, or the next query time), so the input has
  `obs_dim + 1` features instead of `obs_dim`.
- A linear readout maps every hidden state to the predicted next point.

Training is one-step-ahead prediction on the observed points with teacher forcing
(`one_step_data`), a mean squared error, which is the Gaussian negative
log-likelihood with a fixed variance up to constants. Prediction at future times
(`RNNBaseline.extrapolate`) first reads all observations, then runs
autoregressively: each predicted point is fed back as the next input.

Cell choice: the paper names no gated cell, and the reference code's recognition
network is a plain `tanh(W [x, h] + b)` RNN with 25 units, so the baseline uses
`keras.layers.SimpleRNNCell` (same update). The inputs are used as given: callers
that want them in the tanh's sensitive range should standardize the observations
(and predictions come back in the same units).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops


def num_parameters(units: int = 25, obs_dim: int = 2,
                   time_gaps: bool = False) -> int:
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
        raise ValueError(f"times must be [n] or [{batch}, n], got shape "
                         f"{times.shape}")
    return times


def time_gap_features(observations: Any, times: Any, next_times: Any,
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
        raise ValueError(f"{times.shape[1]} times for {observations.shape[1]} "
                         "observations")
    after = np.broadcast_to(np.asarray(next_times, np.float32), (batch,))
    gaps = np.diff(np.concatenate([times, after[:, None]], axis=1), axis=1)
    return np.concatenate([observations, gaps[..., None]], axis=-1)


def one_step_data(observations: Any, times: Any = None, time_gaps: bool = False,
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
        raise ValueError(f"need observations [batch, n >= 2, dims], got shape "
                         f"{observations.shape}")
    targets = observations[:, 1:]
    if not time_gaps:
        return observations[:, :-1], targets
    if times is None:
        raise ValueError("the time-gap variant needs the observation times")
    times = _as_batch_times(times, observations.shape[0])
    inputs = time_gap_features(observations[:, :-1], times[:, :-1], times[:, -1])
    return inputs, targets


class RNNBaseline(keras.Model):
    """A tanh RNN with a linear readout predicting the next point.

    `call` maps input sequences `[batch, steps, input_dim]` to the predicted next
    points `[batch, steps, obs_dim]`, where `input_dim = obs_dim + time_gaps`.
    """

    def __init__(self, units: int = 25, obs_dim: int = 2, time_gaps: bool = False,
                 **kwargs: Any) -> None:
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
        self.rnn = keras.layers.SimpleRNN(units, activation="tanh",
                                          return_sequences=True, return_state=True,
                                          name="rnn")
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
                step = ops.concatenate([prediction, gaps[:, j:j + 1]], axis=-1)
            state, _ = self.rnn.cell(step, state)
            prediction = self.readout(state)
            predictions.append(prediction)
        return ops.stack(predictions, axis=1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(units=self.units, obs_dim=self.obs_dim,
                      time_gaps=self.time_gaps)
        return config


def rmse(prediction: Any, target: Any) -> float:
    """Root mean squared error over all points and coordinates.

    Per coordinate, not per point: `sqrt(mean((prediction - target) ** 2))` over
    every element (a per-point Euclidean RMSE is `sqrt(obs_dim)` times larger).
    """
    prediction = np.asarray(prediction, np.float64)
    target = np.asarray(target, np.float64)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {prediction.shape} != target shape "
                         f"{target.shape}")
    return float(np.sqrt(np.mean((prediction - target) ** 2)))
