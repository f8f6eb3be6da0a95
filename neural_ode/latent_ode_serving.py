"""TF Serving export of a trained latent ODE (spirals run).

Signature `serving_default(observation_times [n], observations [batch, n, 2],
query_times [q])` -> `trajectory [batch, q, 2]`: the recognition RNN encodes the
observations into the posterior mean of z(t0), the ODE is solved from t0 to every
query time (any strictly increasing times >= t0, also beyond the observations, so
the same call interpolates and extrapolates) and the decoder maps the latent path
back to data space. `latent_z0` is returned too.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from common import export
from neural_ode import spiral_experiment


class LatentODEServer(tf.Module):
    """Wraps a trained `LatentODE` for serving."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        # Raw tf.Variables, tracked so TF1-style loaders restore them (see
        # `neural_ode.serving.ODENetServer`).
        self.tf_variables = [v.value for v in model.variables]
        self.t0 = tf.constant(model.t0, tf.float32)
        self.serving_default = tf.function(
            self._predict,
            input_signature=[
                tf.TensorSpec([None], tf.float32, name="observation_times"),
                tf.TensorSpec([None, None, 2], tf.float32, name="observations"),
                tf.TensorSpec([None], tf.float32, name="query_times"),
            ],
        )

    def _predict(self, observation_times, observations, query_times):
        tf.debugging.assert_greater_equal(
            query_times[0], self.t0, message="query_times must start at or after t0"
        )
        mean, _ = self.model.encode(observations, observation_times[None, :])
        starts_at_t0 = tf.equal(query_times[0], self.t0)

        def from_t0():
            return self.model.latent_path(mean, query_times)

        def after_t0():
            grid = tf.concat([self.t0[None], query_times], axis=0)
            return self.model.latent_path(mean, grid)[:, 1:]

        path = tf.cond(starts_at_t0, from_t0, after_t0)
        return {"trajectory": self.model.decode(path), "latent_z0": mean}


def export_latent_ode(
    run_dir: str,
    export_dir: str,
    model_name: str = "neural_ode_latent_ode",
    version: int | None = None,
    num_observed: int | None = None,
) -> str:
    """Exports the run's latent ODE (default: trained on the most points)."""
    model = spiral_experiment.restore_model(run_dir, "latent_ode", num_observed)
    server = LatentODEServer(model)
    times = np.linspace(0.5, 5.0, 10).astype(np.float32)
    warmup = [
        (
            "serving_default",
            {
                "observation_times": times,
                "observations": np.zeros((1, 10, 2), np.float32),
                "query_times": np.linspace(5.0, 10.0, 20).astype(np.float32),
            },
        )
    ]
    return export.export_for_serving(
        server,
        export_dir,
        model_name,
        {"serving_default": server.serving_default},
        warmup,
        version,
    )
