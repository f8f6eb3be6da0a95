"""The cost of minibatching (a drawback the paper names in section 6).

An adaptive solver integrating a batch as one system must pick steps that suit
every example at once, so the batched solve can need more evaluations than most
examples would alone. Measured here on the MNIST ODE-Net block (random weights) with
inputs whose scales differ (log-uniform), so examples differ in difficulty: one
batched solve vs a separate solve per example, reporting NFE (batched vs per-example
mean / max) and wall time (one batched solve vs all per-example solves in a row).
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import results, seeding, validation
from neural_ode.dynamics import ConvODEFunc
from neural_ode.ode_block import ODEBlock
from neural_ode.solver import SolverConfig

RESUMABLE_FIELDS = ()


@dataclasses.dataclass(frozen=True)
class MinibatchConfig:
    """Settings of the minibatch-cost measurement.

    Attributes:
        experiment: "minibatch".
        seed: Seed of weights and inputs.
        batch_sizes: Batch sizes measured (each against per-example solves).
        min_scale: Smallest input scale (inputs are N(0, 1) times a log-uniform
            scale in [min_scale, max_scale]).
        max_scale: Largest input scale.
        t1: Integration length.
        rtol: dopri5 relative tolerance.
        atol: dopri5 absolute tolerance.
    """

    experiment: str = "minibatch"
    seed: int = 0
    batch_sizes: tuple[int, ...] = (8, 32, 128)
    min_scale: float = 0.1
    max_scale: float = 10.0
    t1: float = 1.0
    rtol: float = 1e-3
    atol: float = 1e-3

    def __post_init__(self) -> None:
        validation.require_all_positive("batch_sizes", self.batch_sizes)
        validation.require_positive("min_scale", self.min_scale)
        if not self.min_scale <= self.max_scale:
            raise ValueError("need 0 < min_scale <= max_scale")
        for name in ("t1", "rtol", "atol"):
            validation.require_positive(name, getattr(self, name))


def measure(config: MinibatchConfig, batch_size: int) -> dict:
    """NFE and seconds of one batched solve vs per-example solves."""
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng([config.seed, batch_size])
    scales = np.exp(
        rng.uniform(
            np.log(config.min_scale),
            np.log(config.max_scale),
            size=(batch_size, 1, 1, 1),
        )
    )
    inputs = tf.constant(
        rng.standard_normal((batch_size, 6, 6, 64)) * scales, tf.float32
    )
    block = ODEBlock(
        ConvODEFunc(64),
        t1=config.t1,
        solver=SolverConfig(rtol=config.rtol, atol=config.atol),
    )
    block.build(inputs.shape)
    solve = tf.function(lambda h: block(h))

    solve(inputs).numpy()
    start = time.perf_counter()
    solve(inputs).numpy()
    batched_seconds = time.perf_counter() - start
    batched_nfe = int(block.forward_nfe.numpy())

    solve(inputs[:1]).numpy()
    single_nfe, single_seconds = [], 0.0
    for i in range(batch_size):
        start = time.perf_counter()
        solve(inputs[i : i + 1]).numpy()
        single_seconds += time.perf_counter() - start
        single_nfe.append(int(block.forward_nfe.numpy()))
    return {
        "batch_size": batch_size,
        "batched_nfe": batched_nfe,
        "per_example_nfe_mean": float(np.mean(single_nfe)),
        "per_example_nfe_max": int(np.max(single_nfe)),
        "per_example_nfe_min": int(np.min(single_nfe)),
        "batched_seconds": batched_seconds,
        "per_example_seconds_total": single_seconds,
    }


def run(config: MinibatchConfig, output_dir: str) -> dict:
    """Measures every batch size and writes the report."""
    config_lib.claim_output_dir(output_dir, config, RESUMABLE_FIELDS)
    seeding.seed_everything(config.seed)
    start = time.perf_counter()
    rows = []
    for batch_size in config.batch_sizes:
        r = measure(config, batch_size)
        rows.append(r)
        print(
            f"[minibatch] B={batch_size}: batched NFE {r['batched_nfe']}, per-example "
            f"NFE mean {r['per_example_nfe_mean']:.1f} max {r['per_example_nfe_max']}; "
            f"{r['batched_seconds']:.2f} s vs {r['per_example_seconds_total']:.2f} s",
            flush=True,
        )
    extra_nfe = [r["batched_nfe"] / r["per_example_nfe_mean"] for r in rows]
    claim = [
        [
            "minibatching an adaptive solve costs extra evaluations (all examples "
            "share the steps of the hardest)",
            "; ".join(
                f"B={r['batch_size']}: batched {r['batched_nfe']} vs per-example "
                f"mean {r['per_example_nfe_mean']:.1f}"
                for r in rows
            ),
            "supported" if min(extra_nfe) > 1.0 else "not supported",
        ]
    ]
    table = [
        [
            r["batch_size"],
            r["batched_nfe"],
            f"{r['per_example_nfe_mean']:.1f}",
            r["per_example_nfe_min"],
            r["per_example_nfe_max"],
            f"{r['batched_seconds']:.3f}",
            f"{r['per_example_seconds_total']:.3f}",
        ]
        for r in rows
    ]
    return results.write_results(
        output_dir,
        paper="neural_ode",
        experiment=config.experiment,
        status="complete",
        budget={
            "seconds": round(time.perf_counter() - start, 1),
            "machine": results.machine_description(),
        },
        config=config_lib.to_dict(config),
        cells=[],
        deviations=[
            "random block weights and inputs of log-uniform scale "
            f"[{config.min_scale:g}, {config.max_scale:g}]; the paper gives no "
            "measurement"
        ],
        extra={
            "tables": [
                {
                    "title": "Claim (section 6, minibatching)",
                    "header": ["paper", "ours", "verdict"],
                    "rows": claim,
                },
                {
                    "title": "One batched solve vs a solve per example (forward only)",
                    "header": [
                        "batch",
                        "batched NFE",
                        "per-example NFE mean",
                        "min",
                        "max",
                        "batched s",
                        "per-example s (all)",
                    ],
                    "rows": table,
                },
            ],
            "measurements": rows,
        },
    )
