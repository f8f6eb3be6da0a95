"""Seconds per MAML sinusoid meta-iteration on this machine.

`python -m benchmarks.maml_sinusoid_benchmark` times the paper's meta-iteration
(meta-batch 25, K = 10, one inner step, 1-40-40-1 ReLU MLP, Adam) with everything in
one traced graph (task sampling, inner loop, meta-gradient, Adam update), second
and first order, with and without XLA, and prints ms per iteration, first-call
(trace + compile) time and the projected time of the 70,000-iteration protocol.
Run it alone: other jobs on the 2 cores distort the figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from benchmarks import timing  # noqa: E402
from maml.experiments import configs, sinusoid_experiment  # noqa: E402

ITERATIONS = flags.DEFINE_integer("iterations", 5000, "Timed iterations per setting.")
REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repeats; the best is reported.")


def time_setting(first_order: bool, jit_compile: bool) -> tuple[float, float]:
    """Returns (first-call seconds, best seconds per iteration)."""
    cfg = configs.SinusoidConfig(first_order=first_order, jit_compile=jit_compile)
    trainer = sinusoid_experiment.build_trainer(cfg, "maml")
    return timing.time_trainer(trainer, ITERATIONS.value, REPEATS.value)


def main(argv: list[str]) -> None:
    del argv
    print("| order | XLA | first call (s) | ms / meta-iteration | 70k iterations |")
    print("|---|---|---|---|---|")
    for first_order in (False, True):
        for jit in (True, False):
            first, per_it = time_setting(first_order, jit)
            print(
                f"| {'first' if first_order else 'second'} | {'yes' if jit else 'no'}"
                f" | {first:.1f} | {per_it * 1e3:.3f} | "
                f"{per_it * 70_000 / 60:.1f} min |",
                flush=True,
            )


if __name__ == "__main__":
    app.run(main)
