"""`ODEBlock`: a Keras layer h(t1) = h(t0) + integral of f(t, h) dt, via `odeint`.

The block owns a dynamics layer `f(t, h)` (see `neural_ode.dynamics`) and a
`SolverConfig`. Its weights reach the solver as explicit tensors through Keras's
`stateless_call`, so the adjoint returns their gradients. After each call the block
holds the function-evaluation counts of the last forward and backward solve in the
int32 variables `forward_nfe` and `backward_nfe` (the backward count is written by
the adjoint pass; fixed-grid methods have no separate backward solve and report 0).
Under a `tf.distribute` strategy the counts are the first replica's (each replica
solves its own share of the batch, with its own adaptive steps).
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from neural_ode.solver import OdeintResult, SolverConfig, odeint


@keras.saving.register_keras_serializable(package="neural_ode")
class ODEBlock(keras.layers.Layer):
    """Integrates its dynamics from `t0` to `t1` (or over `times`).

    Args:
        dynamics: A layer called as `dynamics(t, h)` returning dh/dt.
        t0: Initial time.
        t1: Final time (may be smaller than `t0`: integration backwards).
        solver: Method, tolerances and gradient mode (`neural_ode.solver`).

    Example (an ODE block between two layers of a Keras model):
        >>> import keras, tensorflow as tf
        >>> from neural_ode import MLPODEFunc
        >>> model = keras.Sequential([keras.Input((2,)),
        ...                           ODEBlock(MLPODEFunc(2, (16,)), t1=1.0),
        ...                           keras.layers.Dense(1)])
        >>> model(tf.ones([4, 2])).shape
        TensorShape([4, 1])
        >>> int(model.layers[0].forward_nfe) > 0  # dopri5's evaluations
        True
    """

    def __init__(
        self,
        dynamics: keras.layers.Layer,
        t0: float = 0.0,
        t1: float = 1.0,
        solver: SolverConfig | dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.dynamics = dynamics
        self.t0 = float(t0)
        self.t1 = float(t1)
        if isinstance(solver, dict):
            solver = SolverConfig(**solver)
        self.solver = solver or SolverConfig()

    def build(self, input_shape):
        if not self.dynamics.built:
            self.dynamics.build((), input_shape)
        self.forward_nfe = self.add_weight(
            shape=(),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="forward_nfe",
        )
        self.backward_nfe = self.add_weight(
            shape=(),
            dtype="int32",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
            name="backward_nfe",
        )

    def solve(
        self,
        h0: tf.Tensor,
        times: tf.Tensor,
        rtol: tf.Tensor | None = None,
        atol: tf.Tensor | None = None,
        solver: SolverConfig | None = None,
    ) -> OdeintResult:
        """States at every entry of `times` (the first is the initial time)."""
        solver = solver or self.solver
        params = [tf.convert_to_tensor(v) for v in self.dynamics.trainable_variables]
        frozen = [
            tf.convert_to_tensor(v) for v in self.dynamics.non_trainable_variables
        ]

        def func(t, h, p):
            out, _ = self.dynamics.stateless_call(p, frozen, t, h)
            return out

        result = odeint(
            func,
            h0,
            times,
            params,
            solver,
            rtol=rtol,
            atol=atol,
            backward_nfe_sink=self.backward_nfe.value if solver.adaptive else None,
        )
        self.forward_nfe.assign(result.forward_nfe)
        return result

    def call(self, h0, rtol=None, atol=None):
        times = tf.constant([self.t0, self.t1], dtype=h0.dtype)
        return self.solve(h0, times, rtol, atol).states[-1]

    def get_config(self):
        return {
            **super().get_config(),
            "dynamics": keras.saving.serialize_keras_object(self.dynamics),
            "t0": self.t0,
            "t1": self.t1,
            "solver": dataclasses.asdict(self.solver),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["dynamics"] = keras.saving.deserialize_keras_object(config["dynamics"])
        return cls(**config)
