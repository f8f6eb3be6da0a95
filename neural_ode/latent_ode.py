"""The latent ODE of the Neural ODE paper (Chen et al., 2018, sec. 5 and Fig. 6).

A time series `x(t_1), ..., x(t_n)` is explained by a latent initial state `z0` at a
fixed time `t0` and a learned autonomous ODE `dz/dt = f(z)`: `z(t)` is the ODE
solution from `z0`, and every observation is `x(t_i) ~ N(decoder(z(t_i)), s^2 I)`
with a fixed observation standard deviation `s`. Training is a variational
autoencoder:

- Recognition network: a tanh RNN with 25 units reads the observations backwards
  in time (last to first) and maps its final state linearly to the mean and log
  variance of the Gaussian posterior `q(z0 | x)`. Each input step is the point,
  and by default also its time (`encoder_time_input`), so sequences observed at
  irregular, per-sequence times can be told apart.
- Dynamics: `f` is an MLP `latent -> 20 (ELU) -> latent`
  (`neural_ode.dynamics.MLPODEFunc`), integrated with `neural_ode.solver` (dopri5
  and the adjoint method by default).
- Decoder: an MLP `latent -> 20 (ReLU) -> obs_dim`.
- Loss: the negative ELBO per sequence, `-sum_i log N(x_i; decoder(z(t_i)), s^2)
  + KL(q(z0 | x) || N(0, I))`, one reparameterized sample of `z0`, averaged over
  the batch (the same quantity as the paper's reference code).

Sequences of a batch may be observed at different times (the paper's irregular
subsampling). The ODE is still solved once per batch: on the sorted union of all
times of the batch (`union_time_grid`), from `t0`; every sequence then reads its
own points of that path with a gather. With a shared 100-point base grid the union
has at most 100 entries, and dopri5's output points cost no extra steps (TFP
interpolates them), so irregular sampling costs nothing extra.

Extrapolation (`LatentODE.extrapolate`) encodes the observations, takes the
posterior mean of `z0`, solves the ODE on to the query times and decodes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from neural_ode.dynamics import MLPODEFunc
from neural_ode.ode_block import ODEBlock
from neural_ode.solver import SolverConfig

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_likelihood(
    x: tf.Tensor,
    mean: tf.Tensor,
    std: float | tf.Tensor,
) -> tf.Tensor:
    """Elementwise `log N(x; mean, std^2)`.

    Args:
        x: Observed values.
        mean: Predicted means, broadcastable to `x`.
        std: Standard deviation (scalar or broadcastable), positive.

    Returns:
        `-0.5 * (log(2 pi) + 2 log(std) + (x - mean)^2 / std^2)`, the broadcast shape.
    """
    # A Python float goes straight to x's dtype (tf.cast would round it to float32).
    std = tf.cast(std, x.dtype) if tf.is_tensor(std) else tf.constant(std, x.dtype)
    return -0.5 * (LOG_2PI + 2.0 * tf.math.log(std) + tf.square((x - mean) / std))


def kl_to_standard_normal(mean: tf.Tensor, logvar: tf.Tensor) -> tf.Tensor:
    """Elementwise `KL(N(mean, exp(logvar)) || N(0, 1))`, analytic.

    Returns:
        `0.5 * (exp(logvar) + mean^2 - 1 - logvar)`, the shape of `mean`.
    """
    return 0.5 * (tf.exp(logvar) + tf.square(mean) - 1.0 - logvar)


class TimeGrid(NamedTuple):
    """A sorted time grid shared by a batch, and where each sequence's times sit.

    Attributes:
        grid: float32 `[T]`, strictly increasing, `grid[0] = t0`.
        indices: Tuple of int32 arrays, one per argument of `union_time_grid`,
            each `[batch, n]`: the positions of that argument's times in `grid`.
    """

    grid: np.ndarray
    indices: tuple[np.ndarray, ...]


def _batch_times(times: Any, batch: int) -> np.ndarray:
    """float32 `[batch, n]` from shared `[n]` or per-sequence `[batch, n]` times."""
    times = np.asarray(times, np.float32)
    if times.ndim == 1:
        times = np.broadcast_to(times, (batch, times.shape[0]))
    if times.ndim != 2 or times.shape[0] != batch:
        raise ValueError(f"times must be [n] or [{batch}, n], got shape {times.shape}")
    return times


def union_time_grid(t0: float, batch: int, *times: Any) -> TimeGrid:
    """The sorted union of `t0` and all given times, with each time's position.

    Args:
        t0: The latent initial time; no time may precede it.
        batch: Number of sequences.
        *times: Arrays `[n]` (shared) or `[batch, n]` (per sequence).

    Returns:
        A `TimeGrid`; `grid[indices[k][b, i]] == times[k][b, i]`.

    Raises:
        ValueError: a time before `t0`, or badly shaped times.
    """
    arrays = [_batch_times(t, batch) for t in times]
    for array in arrays:
        if array.size and array.min() < np.float32(t0):
            raise ValueError(f"times must not precede t0 = {t0}, got {array.min()}")
    grid = np.unique(
        np.concatenate([np.asarray([t0], np.float32)] + [a.ravel() for a in arrays])
    )
    indices = tuple(np.searchsorted(grid, a).astype(np.int32) for a in arrays)
    return TimeGrid(grid.astype(np.float32), indices)


@keras.saving.register_keras_serializable(package="neural_ode")
class LatentODE(keras.Model):
    """Latent ODE VAE: backwards RNN encoder, ODE in latent space, MLP decoder.

    Args:
        latent_dim: Dimension of `z` (the paper: 4).
        obs_dim: Dimension of the observations (2 for spirals).
        encoder_units: Units of the recognition RNN (the paper: 25).
        dynamics_units: Hidden widths of the dynamics MLP (the paper: one of 20).
        decoder_units: Hidden widths of the decoder MLP (the paper: one of 20).
        likelihood_std: Fixed standard deviation `s` of the Gaussian likelihood,
            in the units of the observations.
        encoder_time_input: Feed each observation's time to the encoder with it.
        t0: The time of the latent initial state `z0`.
        obs_mean: Per-coordinate offset of a fixed standardization (default 0).
        obs_scale: Its scale. The encoder reads `(x - obs_mean) / obs_scale` and
            the decoder's output is mapped back by `obs_mean + obs_scale * out`,
            so the model takes and returns observations in their own units while
            its networks see values of order one (a tanh RNN saturates on raw
            spiral coordinates of ~10).
        solver: How the latent ODE is solved and differentiated.
        **kwargs: Passed to `keras.Model`.

    Example (3 sequences of 5 observed 2-D points, continued to 7 later times):
        >>> import numpy as np
        >>> model = LatentODE(latent_dim=4, obs_dim=2)
        >>> observations = np.zeros([3, 5, 2], np.float32)
        >>> times, later = np.linspace(0.1, 1.0, 5), np.linspace(1.0, 2.0, 7)
        >>> model.extrapolate(observations, times, later).shape
        TensorShape([3, 7, 2])
    """

    def __init__(
        self,
        latent_dim: int = 4,
        obs_dim: int = 2,
        encoder_units: int = 25,
        dynamics_units: tuple[int, ...] = (20,),
        decoder_units: tuple[int, ...] = (20,),
        likelihood_std: float = 0.3,
        encoder_time_input: bool = True,
        t0: float = 0.0,
        obs_mean: tuple[float, ...] | None = None,
        obs_scale: float = 1.0,
        solver: SolverConfig | dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if likelihood_std <= 0:
            raise ValueError(f"likelihood_std must be positive, got {likelihood_std}")
        if obs_scale <= 0:
            raise ValueError(f"obs_scale must be positive, got {obs_scale}")
        obs_mean = (0.0,) * obs_dim if obs_mean is None else tuple(map(float, obs_mean))
        if len(obs_mean) != obs_dim:
            raise ValueError(f"obs_mean needs {obs_dim} entries, got {obs_mean}")
        self.latent_dim = latent_dim
        self.obs_dim = obs_dim
        self.encoder_units = encoder_units
        self.dynamics_units = tuple(dynamics_units)
        self.decoder_units = tuple(decoder_units)
        self.likelihood_std = float(likelihood_std)
        self.encoder_time_input = encoder_time_input
        self.t0 = float(t0)
        self.obs_mean = obs_mean
        self.obs_scale = float(obs_scale)
        if isinstance(solver, dict):
            solver = SolverConfig(**solver)
        self.solver = solver or SolverConfig()
        self.encoder_rnn = keras.layers.SimpleRNN(
            encoder_units, activation="tanh", go_backwards=True, name="encoder_rnn"
        )
        self.encoder_out = keras.layers.Dense(2 * latent_dim, name="encoder_out")
        self.ode = ODEBlock(
            MLPODEFunc(latent_dim, self.dynamics_units, "elu"),
            solver=self.solver,
            name="ode",
        )
        self.decoder_hidden = [
            keras.layers.Dense(units, activation="relu", name=f"decoder_hidden{i}")
            for i, units in enumerate(self.decoder_units)
        ]
        self.decoder_out = keras.layers.Dense(obs_dim, name="decoder_out")
        self.build()

    @property
    def encoder_input_dim(self) -> int:
        """Features per encoder step: the point, plus its time if enabled."""
        return self.obs_dim + int(self.encoder_time_input)

    def build(self, input_shape: Any = None) -> None:
        self.encoder_rnn.build((None, None, self.encoder_input_dim))
        self.encoder_out.build((None, self.encoder_units))
        self.ode.build((None, self.latent_dim))
        width = self.latent_dim
        for layer in self.decoder_hidden:
            layer.build((None, width))
            width = layer.units
        self.decoder_out.build((None, width))
        self.built = True

    def encode(
        self,
        observations: tf.Tensor,
        times: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Posterior `q(z0 | x)`: mean and log variance, each `[batch, latent]`.

        Args:
            observations: `[batch, n, obs_dim]`, in time order.
            times: `[batch, n]` (or broadcastable), the observation times.
        """
        observations = tf.convert_to_tensor(observations, tf.float32)
        inputs = (observations - tf.constant(self.obs_mean)) / self.obs_scale
        if self.encoder_time_input:
            times = tf.broadcast_to(
                tf.cast(times, tf.float32), tf.shape(observations)[:2]
            )
            inputs = tf.concat([inputs, times[..., None]], axis=-1)
        state = self.encoder_rnn(inputs)
        out = self.encoder_out(state)
        return out[:, : self.latent_dim], out[:, self.latent_dim :]

    def latent_path(self, z0: tf.Tensor, grid: tf.Tensor) -> tf.Tensor:
        """ODE solution `[batch, len(grid), latent]` from `z0` at `grid[0]`."""
        states = self.ode.solve(z0, tf.convert_to_tensor(grid, tf.float32)).states
        return tf.transpose(states, [1, 0, 2])

    def decode(self, z: tf.Tensor) -> tf.Tensor:
        """Decoder means `[..., obs_dim]` of latent states `[..., latent]`, in the
        units of the observations."""
        x = z
        for layer in self.decoder_hidden:
            x = layer(x)
        return tf.constant(self.obs_mean) + self.obs_scale * self.decoder_out(x)

    def loss_terms(
        self,
        observations: tf.Tensor,
        grid: tf.Tensor,
        grid_indices: tf.Tensor,
        times: tf.Tensor,
        noise: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        """The negative ELBO and its two terms, averaged over the batch.

        Args:
            observations: `[batch, n, obs_dim]`.
            grid: `[T]` increasing solve grid, `grid[0] = t0` (`union_time_grid`).
            grid_indices: int `[batch, n]`, the position of each observation's
                time in `grid`.
            times: `[batch, n]`, the observation times (encoder input).
            noise: `[batch, latent]` standard normal draws for the
                reparameterized sample `z0 = mean + exp(logvar / 2) * noise`.

        Returns:
            `{"loss", "neg_log_likelihood", "kl"}`: per-sequence sums (over points
            and coordinates, over latent dimensions), batch means; `loss` is
            their sum, the negative ELBO.
        """
        observations = tf.convert_to_tensor(observations, tf.float32)
        mean, logvar = self.encode(observations, times)
        z0 = mean + tf.exp(0.5 * logvar) * noise
        path = self.latent_path(z0, grid)
        z = tf.gather(path, grid_indices, axis=1, batch_dims=1)
        prediction = self.decode(z)
        log_lik = gaussian_log_likelihood(observations, prediction, self.likelihood_std)
        nll = -tf.reduce_mean(tf.reduce_sum(log_lik, axis=[1, 2]))
        kl = tf.reduce_mean(tf.reduce_sum(kl_to_standard_normal(mean, logvar), -1))
        return {"loss": nll + kl, "neg_log_likelihood": nll, "kl": kl}

    def call(self, observations: tf.Tensor, times: tf.Tensor) -> tf.Tensor:
        """Reconstruction at the observation times from the posterior mean.

        Args:
            observations: `[batch, n, obs_dim]`.
            times: `[n]` or `[batch, n]`, the observation times.
        """
        return self.extrapolate(observations, times, times)

    def extrapolate(
        self,
        observations: Any,
        obs_times: Any,
        query_times: Any,
    ) -> tf.Tensor:
        """Decoded latent path at `query_times` from the posterior mean of `z0`.

        Args:
            observations: `[batch, n, obs_dim]`.
            obs_times: `[n]` or `[batch, n]`, the observation times.
            query_times: `[q]` or `[batch, q]`, any times not before `t0` (each
                row need not be sorted).

        Returns:
            float32 tensor `[batch, q, obs_dim]`.
        """
        observations = tf.convert_to_tensor(observations, tf.float32)
        batch = int(observations.shape[0])
        obs_times = _batch_times(obs_times, batch)
        time_grid = union_time_grid(self.t0, batch, query_times)
        mean, _ = self.encode(observations, obs_times)
        path = self.latent_path(mean, time_grid.grid)
        z = tf.gather(path, time_grid.indices[0], axis=1, batch_dims=1)
        return self.decode(z)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            latent_dim=self.latent_dim,
            obs_dim=self.obs_dim,
            encoder_units=self.encoder_units,
            dynamics_units=list(self.dynamics_units),
            decoder_units=list(self.decoder_units),
            likelihood_std=self.likelihood_std,
            encoder_time_input=self.encoder_time_input,
            t0=self.t0,
            obs_mean=list(self.obs_mean),
            obs_scale=self.obs_scale,
            solver=dataclasses.asdict(self.solver),
        )
        return config


def make_train_step(
    model: LatentODE,
    optimizer: keras.optimizers.Optimizer,
    observations: Any,
    times: Any,
    seed: int = 0,
    jit_compile: bool = False,
    clip_norm: float | None = None,
):
    """A compiled full-batch training step on fixed data.

    The solve grid and gather indices are computed once; the reparameterization
    noise of step `k` is a stateless draw from `(seed, k)`, so a resumed run
    draws the same noise as an uninterrupted one.

    Args:
        model: The latent ODE.
        optimizer: Applied to all trainable weights.
        observations: `[batch, n, obs_dim]`.
        times: `[n]` or `[batch, n]`.
        seed: Seed of the noise stream.
        jit_compile: Compile the step with XLA.
        clip_norm: If set, the gradient is rescaled to at most this global norm
            (`tf.clip_by_global_norm`) before the optimizer sees it.

    Returns:
        `step_fn(step) -> {"loss", "neg_log_likelihood", "kl", "grad_norm"}`;
        `grad_norm` is the global norm before clipping.
    """
    observations = tf.constant(observations, tf.float32)
    batch = int(observations.shape[0])
    batch_times = _batch_times(times, batch)
    time_grid = union_time_grid(model.t0, batch, batch_times)
    grid = tf.constant(time_grid.grid)
    indices = tf.constant(time_grid.indices[0])
    batch_times = tf.constant(batch_times)
    variables = model.trainable_variables

    @tf.function(jit_compile=jit_compile)
    def train(step):
        noise = tf.random.stateless_normal(
            [batch, model.latent_dim], tf.stack([tf.cast(seed, tf.int64), step])
        )
        with tf.GradientTape() as tape:
            terms = model.loss_terms(observations, grid, indices, batch_times, noise)
        grads = tape.gradient(terms["loss"], variables)
        norm = tf.linalg.global_norm(grads)
        if clip_norm is not None:
            grads, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=norm)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return {**terms, "grad_norm": norm}

    def step_fn(step: int) -> dict[str, tf.Tensor]:
        return train(tf.constant(step, tf.int64))

    return step_fn
