"""Neural ODEs (Chen et al. 2018): ODE solvers with adjoint gradients in Keras 3.

Public names: `odeint` (solve dy/dt = f(t, y, params) with adjoint or
backpropagated gradients) with `SolverConfig`, `OdeintResult` and `OdeintError`;
`ODEBlock` (a Keras layer integrating its dynamics) with the dynamics layers
`ConvODEFunc` and `MLPODEFunc`; `LatentODE` (the latent ODE VAE of Table 2) and
`RNNBaseline` (its RNN baselines); `PlanarCNF` (continuous normalizing flow) and
`PlanarFlow` (the discrete planar flow it is compared with); `ODENetServer` and
`LatentODEServer` (TF Serving wrappers). They are resolved on first use, so
importing a submodule does not load the others. Data live in `neural_ode.data`;
the paper's experiments in `neural_ode.experiments` (run by
`python -m neural_ode.main`).

Example (dy/dt = -y from y(0) = 1, so y(1) = exp(-1)):
    >>> import tensorflow as tf
    >>> from neural_ode import SolverConfig, odeint
    >>> result = odeint(lambda t, y, params: -y, tf.constant([1.0]), [0.0, 1.0],
    ...                 config=SolverConfig(rtol=1e-6, atol=1e-6))
    >>> round(float(result.states[-1][0]), 4)
    0.3679
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "odeint": "neural_ode.solver",
    "SolverConfig": "neural_ode.solver",
    "OdeintResult": "neural_ode.solver",
    "OdeintError": "neural_ode.solver",
    "ODEBlock": "neural_ode.ode_block",
    "ConvODEFunc": "neural_ode.dynamics",
    "MLPODEFunc": "neural_ode.dynamics",
    "LatentODE": "neural_ode.latent_ode",
    "RNNBaseline": "neural_ode.rnn_baseline",
    "PlanarCNF": "neural_ode.cnf",
    "PlanarFlow": "neural_ode.planar_flow",
    "ODENetServer": "neural_ode.serving",
    "LatentODEServer": "neural_ode.latent_ode_serving",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'neural_ode' has no attribute {name!r}")
