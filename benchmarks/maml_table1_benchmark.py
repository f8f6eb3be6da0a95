"""Seconds per meta-iteration for every MAML Table 1 configuration, on this CPU.

`python -m benchmarks.maml_table1_benchmark` builds each configuration's trainer
exactly as the main does (in-graph episode sampling, the paper's network, inner
steps, meta-batch and training queries: K per class for Omniglot, 15 for
MiniImagenet, as the official code) on synthetic images of the right shape (so it
needs no dataset), and prints the first-call time (tracing) and the best seconds per
meta-iteration over a few repeats, second and first order, for every configuration:
the conv4 cells, the non-convolutional BN-MLP rows and the context-vector baseline.
Run it alone: other jobs on the 2 cores distort the figures.

With `--profile_ops`, it instead profiles `--iterations` second-order iterations of
each configuration in `--only` and prints the kernel time by op type
(`benchmarks.op_profile`): where an iteration's time goes. `--intra_op_threads`
and `--inter_op_threads` time other thread-pool settings of the same graphs.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import machine  # noqa: E402  (imports no TensorFlow)

# The kernels the main uses (common.machine: oneDNN on x86-64 unless the user chose).
machine.request_onednn()

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from benchmarks import op_profile, threads, timing  # noqa: E402
from maml import networks  # noqa: E402
from maml.experiments import classification_experiment, configs  # noqa: E402

ITERATIONS = flags.DEFINE_integer("iterations", 5, "Timed iterations per repeat.")
REPEATS = flags.DEFINE_integer("repeats", 2, "Repeats; the best is reported.")
SUPPORT_CONV_IMPL = flags.DEFINE_list(
    "support_conv_impl",
    [],
    "Convolutions of the batched inner loop to time (networks.conv3x3_per_task: "
    "grouped, patches, im2col); default: the main's (networks.fastest_per_task_conv).",
)
ONLY = flags.DEFINE_list(
    "only",
    [],
    "Configurations to time (default: every configuration except the _fo duplicates).",
)
ORDERS = flags.DEFINE_list(
    "orders", ["second", "first"], "Meta-gradient orders to time: second, first."
)
PROFILE_OPS = flags.DEFINE_bool(
    "profile_ops",
    False,
    "Print the kernel time by op type of each configuration's second-order "
    "iteration instead of timing every configuration.",
)


def _trainer(cfg: configs.ClassificationConfig, support_conv_impl: str | None):
    """The main's trainer for `cfg`, on synthetic uint8 images of the right shape."""
    shape = (100, 20, 28, 28) if cfg.dataset == "omniglot" else (64, 600, 84, 84, 3)
    rng = np.random.default_rng(0)
    images = tf.Variable(rng.integers(0, 256, shape, dtype=np.uint8), trainable=False)
    return classification_experiment.build_trainer(
        cfg, images, support_conv_impl=support_conv_impl
    )


def time_config(
    cfg: configs.ClassificationConfig, support_conv_impl: str | None = None
) -> tuple[float, float]:
    """Returns (first-call seconds, best seconds per meta-iteration)."""
    trainer = _trainer(cfg, support_conv_impl)
    # The MLP's iterations are ~10x cheaper: time more of them.
    iterations = ITERATIONS.value * (10 if cfg.model == "mlp" else 1)
    return timing.time_trainer(trainer, iterations, REPEATS.value)


def profile_ops(names: list[str]) -> None:
    """Prints each configuration's kernel time by op type (second order)."""
    for name in names:
        cfg = dataclasses.replace(
            configs.CLASSIFICATION_EXPERIMENTS[name], first_order=False
        )
        impl = SUPPORT_CONV_IMPL.value[0] if SUPPORT_CONV_IMPL.value else None
        trainer = _trainer(cfg, impl)
        breakdown = op_profile.op_time_breakdown(
            lambda trainer=trainer: trainer.train(1), calls=ITERATIONS.value
        )
        print(
            f"\n{name} (meta-batch {cfg.meta_batch_size}, {cfg.num_inner_steps} "
            f"steps, second order), per meta-iteration, {os.cpu_count()} CPUs:\n"
        )
        print(op_profile.format_breakdown(breakdown), flush=True)


def main(argv: list[str]) -> None:
    del argv
    for order in ORDERS.value:
        if order not in ("second", "first"):
            raise app.UsageError(f"--orders: second or first, got {order!r}")
    threads_line = threads.apply()  # before any op: the first op fixes the pools
    names = ONLY.value or [
        n for n in configs.CLASSIFICATION_EXPERIMENTS if not n.endswith("_fo")
    ]
    if PROFILE_OPS.value:
        print(threads_line)
        profile_ops(names)
        return
    print(f"{threads_line}\nmachine: {machine.description()}\n")
    print(
        "| configuration | queries / class | order | inner-loop conv | "
        "first call (s) | s / meta-iteration |"
    )
    print("|---|---|---|---|---|---|")
    for name in names:
        mlp = configs.CLASSIFICATION_EXPERIMENTS[name].model == "mlp"
        for first_order in [o == "first" for o in ORDERS.value]:
            cfg = dataclasses.replace(
                configs.CLASSIFICATION_EXPERIMENTS[name], first_order=first_order
            )
            impls = SUPPORT_CONV_IMPL.value or [networks.fastest_per_task_conv()]
            for impl in impls[:1] if mlp else impls:
                first, per_it = time_config(cfg, impl)
                print(
                    f"| {name} (meta-batch {cfg.meta_batch_size}, "
                    f"{cfg.num_inner_steps} steps) | {cfg.queries_at_training} | "
                    f"{'first' if first_order else 'second'} | "
                    f"{'-' if mlp else impl} | {first:.1f} | {per_it:.3f} |",
                    flush=True,
                )


if __name__ == "__main__":
    app.run(main)
