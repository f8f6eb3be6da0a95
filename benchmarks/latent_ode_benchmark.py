"""Seconds per full-batch latent ODE training iteration on the spirals.

`python -m benchmarks.latent_ode_benchmark` builds the Table 2 latent ODE of the
`spirals` experiment (default protocol: 800 training spirals, 100 observed points
each, dopri5 at the experiment's tolerances, rtol 1e-7 / atol 1e-8 since issue 11,
adjoint gradients, the experiment's gradient clipping, XLA) and times training
iterations after a warm-up that compiles the step. It prints the median
seconds per iteration; the issue's reference point is torchdiffeq's 0.15 s per
iteration on 1000 spirals here, so `--num_spirals=1250` (1000 training spirals)
gives the like-for-like figure. Run it alone: other jobs distort the figure.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from neural_ode import latent_ode  # noqa: E402
from neural_ode.experiments import spiral_experiment

NUM_SPIRALS = flags.DEFINE_integer(
    "num_spirals", 1250, "Spirals generated (80% train: 1250 gives a 1000 batch)."
)
NUM_OBSERVED = flags.DEFINE_integer("num_observed", 100, "Observed points per spiral.")
ITERATIONS = flags.DEFINE_integer("iterations", 30, "Timed iterations.")
JIT = flags.DEFINE_boolean("jit_compile", True, "Compile the step with XLA.")


def main(argv: list[str]) -> None:
    del argv
    config = spiral_experiment.SpiralConfig(
        num_spirals=NUM_SPIRALS.value, num_observed=(NUM_OBSERVED.value,)
    )
    data = spiral_experiment.make_data(config)
    sub = data.train_subsamples[NUM_OBSERVED.value]
    keras.utils.set_random_seed(0)
    model = spiral_experiment.build_latent_ode(config, data.standardizer)
    optimizer = keras.optimizers.Adam(config.learning_rate)
    step_fn = latent_ode.make_train_step(
        model,
        optimizer,
        sub.observations,
        sub.times,
        jit_compile=JIT.value,
        clip_norm=config.grad_clip_norm,
    )
    start = time.perf_counter()
    float(step_fn(0)["loss"])
    first = time.perf_counter() - start
    times = []
    for step in range(1, ITERATIONS.value + 1):
        start = time.perf_counter()
        float(step_fn(step)["loss"])
        times.append(time.perf_counter() - start)
    batch = sub.observations.shape[0]
    print(
        f"latent ODE, {batch} spirals x {NUM_OBSERVED.value} points, "
        f"{config.solver().method} rtol={config.rtol:g} atol={config.atol:g}, "
        f"XLA={JIT.value}: "
        f"first call {first:.1f} s, median {np.median(times):.3f} s/iteration "
        f"(min {min(times):.3f}) over {len(times)} iterations; "
        f"forward NFE {int(model.ode.forward_nfe.numpy())}, "
        f"backward NFE {int(model.ode.backward_nfe.numpy())}"
    )


if __name__ == "__main__":
    app.run(main)
