"""Exports the model of a finished Neural ODE run for TF Serving.

`python -m neural_ode.export --experiment=mnist --export_dir=/models` writes
`/models/neural_ode_odenet/<version>/` from `runs/neural_ode_mnist` (the ODE-Net);
`--experiment=spirals` exports the latent ODE to
`/models/neural_ode_latent_ode/<version>/`. The same exports as
`python -m neural_ode.main ... --export_dir`, with per-request limits that can be
changed: `--limit max_solver_steps=2000 --limit min_tolerance=1e-8` (fields of
`neural_ode.serving.ODENetLimits` or
`neural_ode.latent_ode_serving.LatentODELimits`); the run is read by
`neural_ode.experiments.run_export`.
"""

from __future__ import annotations

from absl import app, flags

from common import cli
from neural_ode.experiments import run_export

EXPERIMENT = flags.DEFINE_enum(
    "experiment", "mnist", ["mnist", "spirals"], "Which run's model to export."
)
RUN_DIR = flags.DEFINE_string(
    "run_dir", None, "Run directory (default runs/neural_ode_<experiment>)."
)
EXPORT_DIR = flags.DEFINE_string(
    "export_dir", "exported_models", "TF Serving model base directory parent."
)
LIMIT = flags.DEFINE_multi_string(
    "limit", [], "Per-request limit field=value (repeatable)."
)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    run_dir = RUN_DIR.value or f"runs/neural_ode_{EXPERIMENT.value}"
    cli.run_export(
        lambda: run_export.export_run(
            EXPERIMENT.value, run_dir, EXPORT_DIR.value, tuple(LIMIT.value)
        )
    )


if __name__ == "__main__":
    app.run(main)
