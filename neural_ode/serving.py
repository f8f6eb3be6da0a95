"""TF Serving exports: the ODE-Net classifier and the latent ODE.

ODE-Net (`export_odenet`), signatures:

* `serving_default(images)` -> `logits`, `classes`, `forward_nfe`, at the
  tolerance the model was trained with;
* `classify_at_tolerance(images, rtol, atol)` -> the same, at a precision chosen
  per request (the paper's "adjustable precision": looser is faster).

Latent ODE (`export_latent_ode`), signature `serving_default(observation_times,
observations, query_times)` -> `trajectory` at the query times (any increasing
times, also beyond the observations).

Both go through `common.export.export_for_serving` (versioned directory, warm-up
requests).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import export
from neural_ode import mnist_experiment, mnist_models


class ODENetServer(tf.Module):
    """Wraps a trained ODE-Net classifier for serving."""

    def __init__(self, model, rtol: float, atol: float):
        super().__init__()
        self.model = model
        # Track the raw tf.Variables too: without them the TF1 loader that
        # `saved_model_cli run` (and TF Serving's session bundle) uses does not
        # restore Keras 3 variables ("Could not find variable ...").
        self.tf_variables = [v.value for v in model.variables]
        self.block = mnist_models.ode_block_of(model)
        self.rtol = tf.constant(rtol, tf.float32)
        self.atol = tf.constant(atol, tf.float32)
        spec = tf.TensorSpec([None, 28, 28, 1], tf.float32, name="images")
        self.serving_default = tf.function(self._default, input_signature=[spec])
        self.classify_at_tolerance = tf.function(
            self._at_tolerance,
            input_signature=[
                spec,
                tf.TensorSpec([], tf.float32, name="rtol"),
                tf.TensorSpec([], tf.float32, name="atol"),
            ],
        )

    def _classify(self, images, rtol, atol):
        h = images
        nfe = tf.constant(0, tf.int32)
        for layer in self.model.layers:
            if layer is self.block:
                h0 = h
                times = tf.constant([self.block.t0, self.block.t1], tf.float32)
                result = self.block.solve(h0, times, rtol=rtol, atol=atol)
                h, nfe = result.states[-1], result.forward_nfe
            else:
                h = layer(h)
        return {"logits": h, "classes": tf.argmax(h, axis=-1), "forward_nfe": nfe}

    def _default(self, images):
        return self._classify(images, self.rtol, self.atol)

    def _at_tolerance(self, images, rtol, atol):
        return self._classify(images, rtol, atol)


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
) -> str:
    """Exports the run's ODE-Net; returns the version directory."""
    model, cfg = load_odenet(run_dir)
    server = ODENetServer(model, cfg.rtol, cfg.atol)
    images = np.zeros((2, 28, 28, 1), np.float32)
    warmup = [
        ("serving_default", {"images": images}),
        (
            "classify_at_tolerance",
            {"images": images, "rtol": np.float32(1e-2), "atol": np.float32(1e-2)},
        ),
    ]
    return export.export_for_serving(
        server,
        export_dir,
        model_name,
        {
            "serving_default": server.serving_default,
            "classify_at_tolerance": server.classify_at_tolerance,
        },
        warmup,
        version,
    )


def export_run(experiment: str, run_dir: str, export_dir: str) -> str:
    """Exports the model a finished run of `experiment` trained."""
    if experiment == "mnist":
        return export_odenet(run_dir, export_dir)
    if experiment == "spirals":
        from neural_ode import latent_ode_serving  # noqa: PLC0415

        return latent_ode_serving.export_latent_ode(run_dir, export_dir)
    raise ValueError(
        f"--export_dir: experiment {experiment!r} trains no servable model "
        "(mnist and spirals do)"
    )
