"""TF Serving export of a trained latent ODE (spirals run).

Signature `serving_default(observation_times [n], observations [batch, n, 2],
query_times [q])` -> `trajectory [batch, q, 2]`: the recognition RNN encodes the
observations into the posterior mean of z(t0), the ODE is solved from t0 to every
query time (any strictly increasing times >= t0, also beyond the observations, so
the same call interpolates and extrapolates) and the decoder maps the latent path
back to data space. `latent_z0` is returned too.

Every request is validated inside the graph before the model runs
(`common.serving_checks`); a rejected request fails with InvalidArgumentError whose
message starts with the input's name and states the rule (limits
`LatentODELimits`):

- `observations` of shape `[batch, n, 2]`, 1 to `max_batch_size` (256)
  sequences, finite;
- `observation_times` of shape `[n]` (as many as observations per sequence), 1 to
  `max_observations` (1000) times, finite and strictly increasing (the
  recognition RNN reads them in time order);
- `query_times` 1 to `max_query_times` (1000) times, finite, strictly
  increasing and `>= t0`;
- the solve to the query times takes at most `max_solver_steps` (500) dopri5
  steps: a request needing more (e.g. times far beyond the data) fails with
  TFP's "max_num_steps exceeded" at a node named
  `query_times_solve_within_max_solver_steps_<N>/...`.

The limits are fixed at export (`export_latent_ode_model(..., limits=...)`,
`python -m neural_ode.export --experiment=spirals --limit max_query_times=N`)
and written to `assets.extra/serving_limits.json`. A finished `spirals` run's
model is exported by `neural_ode.experiments.run_export.export_latent_ode`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from common import export, serving_checks


@dataclasses.dataclass(frozen=True)
class LatentODELimits:
    """Per-request limits of the served latent ODE, fixed at export.

    Attributes:
        max_batch_size: Most sequences per request.
        max_observations: Most observed points per sequence.
        max_query_times: Most query times per request.
        max_solver_steps: Most dopri5 steps of one request's solve (rejected
            steps included).
    """

    max_batch_size: int = 256
    max_observations: int = 1000
    max_query_times: int = 1000
    max_solver_steps: int = 500

    def __post_init__(self) -> None:
        serving_checks.check_limits(self)


class LatentODEServer(tf.Module):
    """Wraps a trained `LatentODE` for serving.

    Args:
        model: The trained `neural_ode.latent_ode.LatentODE`.
        limits: Per-request limits enforced by the signature.
    """

    def __init__(self, model, limits: LatentODELimits = LatentODELimits()):
        super().__init__()
        self.model = model
        self.limits = limits
        self._solver = dataclasses.replace(
            model.ode.solver, max_num_steps=limits.max_solver_steps
        )
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

    def _latent_path(self, z0, grid):
        # The scope names the input in TFP's "max_num_steps exceeded".
        scope = (
            f"query_times_solve_within_max_solver_steps_{self.limits.max_solver_steps}"
        )
        with tf.name_scope(scope):
            states = self.model.ode.solve(z0, grid, solver=self._solver).states
        return tf.transpose(states, [1, 0, 2])

    def _predict(self, observation_times, observations, query_times):
        limits = self.limits
        checks = serving_checks.RequestChecks()
        checks.shape(observations, "observations", ("batch", "n", 2))
        checks.shape(observation_times, "observation_times", ("n",))
        checks.shape(query_times, "query_times", ("q",))
        checks.rows(
            observations, "observations", 1, limits.max_batch_size, "max_batch_size"
        )
        checks.same_size(
            observation_times,
            "observation_times",
            0,
            observations,
            "observations",
            1,
            what="entries (n)",
        )
        checks.rows(
            observation_times,
            "observation_times",
            1,
            limits.max_observations,
            "max_observations",
        )
        checks.rows(
            query_times, "query_times", 1, limits.max_query_times, "max_query_times"
        )
        checks.finite(observations, "observations")
        checks.finite(observation_times, "observation_times")
        checks.strictly_increasing(observation_times, "observation_times")
        checks.finite(query_times, "query_times")
        checks.strictly_increasing(query_times, "query_times")
        checks.at_least(
            query_times, "query_times", self.model.t0, why="the latent initial time t0"
        )
        observation_times, observations, query_times = checks.gate(
            observation_times, observations, query_times
        )
        mean, _ = self.model.encode(observations, observation_times[None, :])
        starts_at_t0 = tf.equal(query_times[0], self.t0)

        def from_t0():
            return self._latent_path(mean, query_times)

        def after_t0():
            grid = tf.concat([self.t0[None], query_times], axis=0)
            return self._latent_path(mean, grid)[:, 1:]

        path = tf.cond(starts_at_t0, from_t0, after_t0)
        return {"trajectory": self.model.decode(path), "latent_z0": mean}


def export_latent_ode_model(
    model,
    export_dir: str,
    model_name: str = "neural_ode_latent_ode",
    version: int | None = None,
    limits: LatentODELimits = LatentODELimits(),
) -> str:
    """Exports a trained `LatentODE`; returns the version directory.

    Args:
        model: The trained `neural_ode.latent_ode.LatentODE` (data units in and
            out).
        export_dir: TF Serving's model base directory parent.
        model_name: Folder of the model under `export_dir`.
        version: Version number (default: one more than the latest).
        limits: Per-request limits enforced by the signature.
    """
    server = LatentODEServer(model, limits)
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
        limits=dataclasses.asdict(limits),
    )
