"""TF Serving exports: the ODE-Net classifier and the latent ODE.

ODE-Net (`export_odenet_model`), signatures:

* `serving_default(images)` -> `logits`, `classes`, `forward_nfe`, at the
  tolerance the model was trained with;
* `classify_at_tolerance(images, rtol, atol)` -> the same, at a precision chosen
  per request (the paper's "adjustable precision": looser is faster).

Latent ODE (`latent_ode_serving.export_latent_ode_model`), signature
`serving_default(observation_times, observations, query_times)` -> `trajectory`
at the query times (any increasing times, also beyond the observations).

Every request is validated inside the graph before the network runs
(`common.serving_checks`); a rejected request fails with InvalidArgumentError whose
message starts with the input's name and states the rule. ODE-Net (limits
`ODENetLimits`): `images` of shape `[batch, 28, 28, 1]` with 1 to
`max_batch_size` (256) images, finite, pixels in `[0, 1]`; `rtol` and `atol`
finite scalars in `[min_tolerance, max_tolerance]` = `[1e-10, 1]`; and every
solve (also at the trained tolerance) takes at most `max_solver_steps` (500)
dopri5 steps: a request needing more fails with TFP's "max_num_steps exceeded"
at a node named `rtol_atol_solve_within_max_solver_steps_<N>/...` (loosen
rtol/atol). The latent ODE's rules are in `neural_ode.latent_ode_serving`.
The limits are fixed at export (`export_odenet_model(..., limits=...)`, `python -m
neural_ode.export --limit max_solver_steps=N`) and written to
`assets.extra/serving_limits.json`. Exporting the model of a finished run
(`python -m neural_ode.export`, `neural_ode.main --export_dir`) goes through
`neural_ode.experiments.run_export`, which knows the runs' layout.

Both go through `common.export.export_for_serving` (versioned directory, warm-up
requests).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from common import export, serving_checks
from neural_ode import mnist_models

IMAGE_SHAPE = (28, 28, 1)
PIXEL_RANGE = (0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class ODENetLimits:
    """Per-request limits of the served ODE-Net, fixed at export.

    Attributes:
        max_batch_size: Most images per request.
        min_tolerance: Smallest `rtol` / `atol` accepted (issue 15's floor).
        max_tolerance: Largest `rtol` / `atol` accepted.
        max_solver_steps: Most dopri5 steps of one request's solve (rejected
            steps included); bounds the work of one request at any tolerance.
    """

    max_batch_size: int = 256
    min_tolerance: float = 1e-10
    max_tolerance: float = 1.0
    max_solver_steps: int = 500

    def __post_init__(self) -> None:
        serving_checks.check_limits(self)


class ODENetServer(tf.Module):
    """Wraps a trained ODE-Net classifier for serving.

    Args:
        model: The trained classifier (`mnist_models.build_model("odenet")`).
        rtol: Relative tolerance of `serving_default`.
        atol: Absolute tolerance of `serving_default`.
        limits: Per-request limits enforced by the signatures.
    """

    def __init__(
        self, model, rtol: float, atol: float, limits: ODENetLimits = ODENetLimits()
    ):
        super().__init__()
        self.model = model
        self.limits = limits
        # Track the raw tf.Variables too: without them the TF1 loader that
        # `saved_model_cli run` (and TF Serving's session bundle) uses does not
        # restore Keras 3 variables ("Could not find variable ...").
        self.tf_variables = [v.value for v in model.variables]
        self.block = mnist_models.ode_block_of(model)
        self._solver = dataclasses.replace(
            self.block.solver, max_num_steps=limits.max_solver_steps
        )
        self.rtol = tf.constant(rtol, tf.float32)
        self.atol = tf.constant(atol, tf.float32)
        spec = tf.TensorSpec([None, *IMAGE_SHAPE], tf.float32, name="images")
        self.serving_default = tf.function(self._default, input_signature=[spec])
        self.classify_at_tolerance = tf.function(
            self._at_tolerance,
            input_signature=[
                spec,
                tf.TensorSpec([], tf.float32, name="rtol"),
                tf.TensorSpec([], tf.float32, name="atol"),
            ],
        )

    def _classify(self, images, rtol, atol, tolerances_from_request: bool):
        checks = serving_checks.RequestChecks()
        checks.shape(images, "images", ("batch", *IMAGE_SHAPE))
        checks.rows(images, "images", 1, self.limits.max_batch_size, "max_batch_size")
        checks.finite(images, "images")
        checks.values_in(images, "images", *PIXEL_RANGE, why="pixel values")
        bounds = (self.limits.min_tolerance, self.limits.max_tolerance)
        requested = (("rtol", rtol), ("atol", atol)) if tolerances_from_request else ()
        for name, tol in requested:
            checks.shape(tol, name, ())
            checks.finite(tol, name)
            checks.values_in(
                tol,
                name,
                *bounds,
                why="min_tolerance and max_tolerance are fixed at export",
            )
        images, rtol, atol = checks.gate(images, rtol, atol)
        h = images
        nfe = tf.constant(0, tf.int32)
        for layer in self.model.layers:
            if layer is self.block:
                h0 = h
                times = tf.constant([self.block.t0, self.block.t1], tf.float32)
                # The scope names the inputs in TFP's "max_num_steps exceeded".
                scope = (
                    "rtol_atol_solve_within_max_solver_steps_"
                    f"{self.limits.max_solver_steps}"
                )
                with tf.name_scope(scope):
                    result = self.block.solve(
                        h0, times, rtol=rtol, atol=atol, solver=self._solver
                    )
                h, nfe = result.states[-1], result.forward_nfe
            else:
                h = layer(h)
        return {"logits": h, "classes": tf.argmax(h, axis=-1), "forward_nfe": nfe}

    def _default(self, images):
        return self._classify(images, self.rtol, self.atol, False)

    def _at_tolerance(self, images, rtol, atol):
        return self._classify(images, rtol, atol, True)


def export_odenet_model(
    model,
    export_dir: str,
    rtol: float,
    atol: float,
    model_name: str = "neural_ode_odenet",
    version: int | None = None,
    limits: ODENetLimits = ODENetLimits(),
) -> str:
    """Exports a trained ODE-Net classifier; returns the version directory.

    Args:
        model: The classifier (`mnist_models.build_model("odenet", ...)`, trained).
        export_dir: TF Serving's model base directory parent.
        rtol: Relative tolerance of `serving_default` (the trained one).
        atol: Absolute tolerance of `serving_default`.
        model_name: Folder of the model under `export_dir`.
        version: Version number (default: one more than the latest).
        limits: Per-request limits enforced by the signatures.
    """
    server = ODENetServer(model, rtol, atol, limits)
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
        limits=dataclasses.asdict(limits),
    )
