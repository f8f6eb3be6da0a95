"""Seconds for one forward+backward of the ODE-Net block, with NFE.

`python -m benchmarks.neural_ode_block_benchmark` builds the MNIST ODE-Net block
(GroupNorm, ReLU, time-concatenated 3x3 convs, 64 channels) on a 128x6x6x64 state,
integrates t = 0..1 with dopri5 at rtol = atol = 1e-3, and times:

* the forward solve alone (ms per forward evaluation = its time / forward NFE,
  solver overhead included);
* forward + backward of a training loss shaped like the real one (mean softmax
  cross-entropy of a pooled linear read-out, so the adjoint has the magnitude it has
  in training), for this project's adjoint (seminorm and full norm) and for TFP's
  built-in adjoint (the straightforward version).

Medians over `--repeats` calls after one warm-up call; `--intra_op_threads` and
`--inter_op_threads` (`benchmarks.threads`) time other thread pools. Run it alone:
other jobs on the 2 cores distort the figures.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import machine  # noqa: E402  (imports no TensorFlow)

# The kernels the main uses (common.machine: oneDNN on x86-64 unless the user chose).
machine.request_onednn()

import time  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks import threads  # noqa: E402
from neural_ode.experiments.block_workload import make_block_workload  # noqa: E402
from neural_ode.solver import SolverConfig  # noqa: E402

REPEATS = flags.DEFINE_integer("repeats", 7, "Timed calls per setting (median).")
BATCH = flags.DEFINE_integer("batch", 128, "Batch size of the state.")


def _median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        for value in tf.nest.flatten(out):
            np.asarray(value)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def time_setting(gradient: str, adjoint_norm: str, repeats: int, batch: int) -> dict:
    """Times one solver setting; returns seconds and NFE."""
    solver = SolverConfig(
        rtol=1e-3, atol=1e-3, gradient=gradient, adjoint_norm=adjoint_norm
    )
    block, state, forward_backward = make_block_workload(solver, batch)

    @tf.function
    def forward(h):
        return block(h)

    forward_s = _median_seconds(lambda: forward(state), repeats)
    forward_nfe = int(block.forward_nfe.numpy())
    step_s = _median_seconds(lambda: forward_backward(state), repeats)
    backward_nfe = int(block.backward_nfe.numpy()) if gradient == "adjoint" else None
    return {
        "forward_s": forward_s,
        "forward_nfe": forward_nfe,
        "ms_per_forward_eval": 1e3 * forward_s / forward_nfe,
        "step_s": step_s,
        "backward_nfe": backward_nfe,
    }


def main(argv: list[str]) -> None:
    del argv
    threads_line = threads.apply()  # before any op: the first op fixes the pools
    print(
        f"ODE-Net block, state {BATCH.value}x6x6x64, dopri5, rtol=atol=1e-3; "
        f"{threads_line}"
    )
    print(
        "| gradient | forward s | forward NFE | ms / forward eval | forward+backward s "
        "| backward NFE |"
    )
    print("|---|---|---|---|---|---|")
    settings = [
        ("adjoint", "seminorm", "this project's adjoint, seminorm (default)"),
        ("adjoint", "full", "this project's adjoint, full norm"),
        ("tfp_adjoint", "full", "TFP built-in adjoint"),
    ]
    for gradient, norm, label in settings:
        r = time_setting(gradient, norm, REPEATS.value, BATCH.value)
        bwd = "not reported by TFP" if r["backward_nfe"] is None else r["backward_nfe"]
        print(
            f"| {label} | {r['forward_s']:.3f} | {r['forward_nfe']} | "
            f"{r['ms_per_forward_eval']:.1f} | {r['step_s']:.3f} | {bwd} |",
            flush=True,
        )


if __name__ == "__main__":
    app.run(main)
