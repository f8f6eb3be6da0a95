"""Planar continuous normalizing flow (Chen et al. 2018, sec. 4, eqs. 8-10).

The dynamics are a sum of M gated planar units whose parameters are functions of
time,

    dz/dt = f(z, t) = sum_m sigma_m(t) u_m(t) tanh(w_m(t)^T z + b_m(t)),

and by the instantaneous change of variables (Theorem 1) the log density follows

    d log p(z(t))/dt = -tr(df/dz) = -sum_m sigma_m(t) (u_m(t)^T w_m(t))
                                      (1 - tanh^2(w_m(t)^T z + b_m(t))),

which is exact (each unit's Jacobian is the rank-one matrix
sigma_m u_m h'(.) w_m^T, whose trace is sigma_m h'(.) u_m^T w_m) and costs O(M D).

Time dependence. The paper specifies the flow parameters as a function of t (a
hypernetwork, Ha et al. 2016) and gates every unit by sigma_m(t) in (0, 1). We
follow the paper's reference example (torchdiffeq `examples/cnf.py`): a
hypernetwork t -> tanh(Dense(H)) -> tanh(Dense(H)) -> Dense(M (2 D + 2)) emits
w_m, v_m, b_m and a gate logit g_m, with sigma_m = sigmoid(g_m), one scalar gate
per unit as in the paper (torchdiffeq gates every coordinate of u_m). As in that
example the units are averaged: u_m = v_m / M. This is eq. 10 with u_m rescaled
(the same model class), and keeps the velocity, and the step Adam takes on it,
from growing with M: with a plain sum, M = 64 trained at the same learning rate
as M = 2 produced loss spikes and several times the NFE. The weights are
initialised uniformly in +-1/sqrt(fan_in), PyTorch's `nn.Linear` default, which
the example relies on.

The ODE state is one tensor `[z, a]` of shape `[N, D + 1]`, where `a` accumulates
d log p/dt. Sampling integrates z(0) ~ N(0, I) from 0 to T:
log q(z(T)) = log N(z(0)) + a(T), with a(0) = 0. Density evaluation integrates x
from T back to 0: log q(x) = log N(z(0)) - a(0), with a(T) = 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from neural_ode.solver import OdeintResult, SolverConfig, odeint


def standard_normal_log_prob(z: tf.Tensor) -> tf.Tensor:
    """log N(z; 0, I) summed over the last axis."""
    z = tf.convert_to_tensor(z)
    dim = z.shape[-1]
    return -0.5 * tf.reduce_sum(tf.square(z), axis=-1) - 0.5 * dim * math.log(
        2.0 * math.pi
    )


def hyper_output_size(width: int, dim: int) -> int:
    """Hypernetwork outputs per time: w, u (M x D each), b and gate (M each)."""
    return width * (2 * dim + 2)


def unit_parameters(
    t: tf.Tensor, params: Sequence[tf.Tensor], width: int, dim: int
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """The planar units' parameters at time t, from the hypernetwork weights.

    Args:
        t: Scalar time.
        params: `[k1, b1, k2, b2, k3, b3]`, the hypernetwork's kernels and biases.
        width: Number of units M.
        dim: State dimension D.

    Returns:
        `(w, u, b, gate)`: `[M, D]`, `[M, D]`, `[M]`, `[M]` (gate in (0, 1));
        u already includes the 1/M of the average over units.
    """
    k1, b1, k2, b2, k3, b3 = params
    t = tf.reshape(
        tf.cast(tf.convert_to_tensor(t, dtype_hint=k1.dtype), k1.dtype), [1, 1]
    )
    hidden = tf.tanh(tf.matmul(t, k1) + b1)
    hidden = tf.tanh(tf.matmul(hidden, k2) + b2)
    out = tf.reshape(tf.matmul(hidden, k3) + b3, [-1])
    block = width * dim
    w = tf.reshape(out[:block], [width, dim])
    u = tf.reshape(out[block : 2 * block], [width, dim]) / width
    b = out[2 * block : 2 * block + width]
    gate = tf.sigmoid(out[2 * block + width :])
    return w, u, b, gate


def planar_velocity_and_trace(
    z: tf.Tensor, w: tf.Tensor, u: tf.Tensor, b: tf.Tensor, gate: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """f(z) = sum_m gate_m u_m tanh(w_m^T z + b_m) and the exact tr(df/dz).

    Args:
        z: `[N, D]` points.
        w, u: `[M, D]`.
        b, gate: `[M]`.

    Returns:
        `(velocity [N, D], trace [N])`.
    """
    activation = tf.tanh(tf.matmul(z, w, transpose_b=True) + b)  # [N, M]
    velocity = tf.matmul(activation * gate, u)
    slope = 1.0 - tf.square(activation)
    trace = tf.linalg.matvec(slope, gate * tf.reduce_sum(u * w, axis=-1))
    return velocity, trace


def augmented_dynamics(
    t: tf.Tensor, state: tf.Tensor, params: Sequence[tf.Tensor], width: int, dim: int
) -> tf.Tensor:
    """d[z, a]/dt = [f(z, t), -tr(df/dz)] for the state `[N, D + 1]`."""
    w, u, b, gate = unit_parameters(t, params, width, dim)
    velocity, trace = planar_velocity_and_trace(state[:, :dim], w, u, b, gate)
    return tf.concat([velocity, -trace[:, None]], axis=-1)


@keras.saving.register_keras_serializable(package="neural_ode")
class PlanarCNF(keras.layers.Layer):
    """A planar continuous normalizing flow with a standard-normal base.

    Args:
        width: Number of planar units M.
        dim: Data dimension D.
        hyper_units: Hidden width H of the time hypernetwork.
        end_time: T, the flow maps z(0) ~ N(0, I) to x = z(T).
        solver: Integration method and tolerances (`neural_ode.solver`).

    Example (the density of a sample, computed forwards from z(0) and again
    backwards from x alone, agrees):
        >>> import tensorflow as tf
        >>> from neural_ode import SolverConfig
        >>> flow = PlanarCNF(width=4, solver=SolverConfig(rtol=1e-6, atol=1e-6))
        >>> z0 = tf.random.stateless_normal([5, 2], seed=[0, 1])
        >>> x, log_q, _ = flow.sample_and_log_prob(z0)
        >>> log_q_again, _ = flow.log_prob(x)
        >>> bool(tf.reduce_max(tf.abs(log_q - log_q_again)) < 1e-3)
        True
    """

    def __init__(
        self,
        width: int,
        dim: int = 2,
        hyper_units: int = 32,
        end_time: float = 1.0,
        solver: SolverConfig | dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.width = int(width)
        self.dim = int(dim)
        self.hyper_units = int(hyper_units)
        self.end_time = float(end_time)
        if isinstance(solver, dict):
            solver = SolverConfig(**solver)
        self.solver = solver or SolverConfig()
        self.build(None)

    def build(self, input_shape=None):
        if self.built:
            return
        sizes = [
            1,
            self.hyper_units,
            self.hyper_units,
            hyper_output_size(self.width, self.dim),
        ]
        self.hyper_weights = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            bound = 1.0 / math.sqrt(fan_in)
            init = keras.initializers.RandomUniform(-bound, bound)
            self.hyper_weights.append(
                self.add_weight(
                    shape=(fan_in, fan_out), initializer=init, name=f"kernel{i + 1}"
                )
            )
            self.hyper_weights.append(
                self.add_weight(shape=(fan_out,), initializer=init, name=f"bias{i + 1}")
            )
        self.built = True

    def initialize(self, seed: int) -> None:
        """Re-draws the weights from the initial distribution with a given seed."""
        rng = np.random.default_rng(seed)
        for kernel, bias in zip(
            self.hyper_weights[::2], self.hyper_weights[1::2], strict=True
        ):
            bound = 1.0 / math.sqrt(kernel.shape[0])
            kernel.assign(rng.uniform(-bound, bound, kernel.shape))
            bias.assign(rng.uniform(-bound, bound, bias.shape))

    def params(self) -> list[tf.Tensor]:
        """The hypernetwork weights as tensors, in `unit_parameters` order."""
        return [tf.convert_to_tensor(v) for v in self.hyper_weights]

    def dynamics(
        self, t: tf.Tensor, state: tf.Tensor, params: Sequence[tf.Tensor]
    ) -> tf.Tensor:
        """The augmented dynamics of `[z, a]` (an `odeint` dynamics function)."""
        return augmented_dynamics(t, state, params, self.width, self.dim)

    def velocity_and_trace(
        self, t: float | tf.Tensor, z: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """f(z, t) `[N, D]` and the exact tr(df/dz) `[N]` at the current weights."""
        w, u, b, gate = unit_parameters(t, self.params(), self.width, self.dim)
        return planar_velocity_and_trace(z, w, u, b, gate)

    def unit_parameters(self, t: float | tf.Tensor):
        """`(w, u, b, gate)` of the planar units at time t."""
        return unit_parameters(t, self.params(), self.width, self.dim)

    def integrate(
        self,
        z: tf.Tensor,
        times: tf.Tensor | Sequence[float],
        solver: SolverConfig | None = None,
        backward_nfe_sink: tf.Variable | None = None,
    ) -> OdeintResult:
        """Integrates `[z, 0]` over `times`; states are `[len(times), N, D + 1]`."""
        z = tf.convert_to_tensor(z)
        state = tf.concat([z, tf.zeros_like(z[:, :1])], axis=-1)
        return odeint(
            self.dynamics,
            state,
            tf.cast(times, z.dtype),
            self.params(),
            solver or self.solver,
            backward_nfe_sink=backward_nfe_sink,
        )

    def sample_and_log_prob(
        self,
        z0: tf.Tensor,
        solver: SolverConfig | None = None,
        backward_nfe_sink: tf.Variable | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Pushes base samples z(0) to x = z(T).

        Returns:
            `(x [N, D], log q(x) [N], forward NFE)`.
        """
        result = self.integrate(z0, [0.0, self.end_time], solver, backward_nfe_sink)
        final = result.states[-1]
        log_q = standard_normal_log_prob(z0) + final[:, self.dim]
        return final[:, : self.dim], log_q, result.forward_nfe

    def log_prob(
        self,
        x: tf.Tensor,
        solver: SolverConfig | None = None,
        backward_nfe_sink: tf.Variable | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """log q(x) by integrating x from T back to 0.

        Returns:
            `(log q(x) [N], forward NFE)`.
        """
        result = self.integrate(x, [self.end_time, 0.0], solver, backward_nfe_sink)
        final = result.states[-1]
        log_q = standard_normal_log_prob(final[:, : self.dim]) - final[:, self.dim]
        return log_q, result.forward_nfe

    def trajectory(
        self, z0: tf.Tensor, num_times: int, solver: SolverConfig | None = None
    ) -> tuple[np.ndarray, tf.Tensor]:
        """Samples at `num_times` equally spaced times in [0, T].

        Returns:
            `(times [num_times], states [num_times, N, D + 1])`.
        """
        times = np.linspace(0.0, self.end_time, num_times)
        return times, self.integrate(z0, times, solver).states

    def get_config(self):
        return {
            **super().get_config(),
            "width": self.width,
            "dim": self.dim,
            "hyper_units": self.hyper_units,
            "end_time": self.end_time,
            "solver": {
                k: getattr(self.solver, k)
                for k in (
                    "method",
                    "rtol",
                    "atol",
                    "gradient",
                    "adjoint_norm",
                    "steps_per_interval",
                    "max_num_steps",
                )
            },
        }
