"""Exports the model a finished Neural ODE run trained, for TF Serving.

A run directory (`python -m neural_ode.main`) holds the config of its experiment
and the checkpoints of its training loops; this module rebuilds the trained model
from them and hands it to the library's exporters
(`neural_ode.serving.export_odenet_model`,
`neural_ode.latent_ode_serving.export_latent_ode_model`). `python -m
neural_ode.export` and `python -m neural_ode.main ... --export_dir` call
`export_run`.
"""

from __future__ import annotations

import os

import tensorflow as tf

from common import config as config_lib
from common import serving_checks
from neural_ode import latent_ode_serving, mnist_models, serving
from neural_ode.experiments import mnist_experiment, spiral_experiment


def load_odenet(run_dir: str):
    """The ODE-Net of an `mnist` run (latest checkpoint) and its config."""
    cfg = config_lib.load_config(mnist_experiment.MNISTConfig, run_dir)
    model = mnist_models.build_model("odenet", cfg.solver())
    ckpt_dir = os.path.join(run_dir, "checkpoints", "odenet")
    latest = tf.train.latest_checkpoint(ckpt_dir)
    if latest is None:
        raise ValueError(f"no ODE-Net checkpoint in {ckpt_dir}")
    tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return model, cfg


def export_odenet(
    run_dir: str,
    export_dir: str,
    model_name: str = "neural_ode_odenet",
    version: int | None = None,
    limits: serving.ODENetLimits | None = None,
) -> str:
    """Exports the run's ODE-Net at its trained tolerances; returns the version dir."""
    model, cfg = load_odenet(run_dir)
    return serving.export_odenet_model(
        model,
        export_dir,
        cfg.rtol,
        cfg.atol,
        model_name,
        version,
        limits or serving.ODENetLimits(),
    )


def export_latent_ode(
    run_dir: str,
    export_dir: str,
    model_name: str = "neural_ode_latent_ode",
    version: int | None = None,
    num_observed: int | None = None,
    limits: latent_ode_serving.LatentODELimits | None = None,
) -> str:
    """Exports the run's latent ODE (default: trained on the most points)."""
    model = spiral_experiment.restore_model(run_dir, "latent_ode", num_observed)
    return latent_ode_serving.export_latent_ode_model(
        model,
        export_dir,
        model_name,
        version,
        limits or latent_ode_serving.LatentODELimits(),
    )


def export_run(
    experiment: str,
    run_dir: str,
    export_dir: str,
    limits_overrides: tuple[str, ...] = (),
) -> str:
    """Exports the model a finished run of `experiment` trained.

    Args:
        experiment: "mnist" (the ODE-Net) or "spirals" (the latent ODE).
        run_dir: The run directory.
        export_dir: TF Serving's model base directory parent.
        limits_overrides: `field=value` changes of the per-request limits
            (`serving.ODENetLimits` or `latent_ode_serving.LatentODELimits`).
    """
    if experiment == "mnist":
        limits = serving_checks.parse_limits(serving.ODENetLimits, limits_overrides)
        return export_odenet(run_dir, export_dir, limits=limits)
    if experiment == "spirals":
        limits = serving_checks.parse_limits(
            latent_ode_serving.LatentODELimits, limits_overrides
        )
        return export_latent_ode(run_dir, export_dir, limits=limits)
    raise ValueError(
        f"--export_dir: experiment {experiment!r} trains no servable model "
        "(mnist and spirals do)"
    )
