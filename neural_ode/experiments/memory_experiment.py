"""Memory of a training step: adjoint (O(1)) vs backprop through the solver (O(L)).

The paper's Table 1 states the ODE-Net's memory as O(1) in the number of function
evaluations L~ and the RK-Net's as O(L~), without measurements. Here one training
step (forward, mean cross-entropy of a pooled read-out, gradients of all block
weights) of the MNIST ODE-Net block is measured with TF's CPU allocator statistics
(`common.memory.PeakMemory`: the allocator's peak, reset before the step, after a
warm-up call that traces it). Where the allocator keeps no statistics (see
`common.memory`), the step is still timed and counted, and the report says the
memory was not measured and why, instead of crashing:

* adjoint: dopri5 with this project's adjoint over t in [0, T] for growing T, so
  the solver takes more steps;
* backprop: RK4 with L fixed steps over [0, 1], differentiated through its steps.

Peak minus the memory in use before the step is plotted against forward NFE.
Each setting is measured `repeats` times after its warm-up step: repeated steps
of one setting in one process differ by several MiB (the allocator's state
differs from step to step), so the table and the verdict use the median and the
report shows the range.
Measurements already made are kept in `partial.json`, so a killed run resumes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import files, memory, plots, results, seeding, validation
from common.data import mnist
from neural_ode import mnist_models
from neural_ode.experiments import mnist_experiment
from neural_ode.experiments.block_workload import TrainedBlock, make_block_workload
from neural_ode.solver import ADJOINT_NORMS, SolverConfig

PARTIAL = "partial.json"
RESUMABLE_FIELDS = ()


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """Settings of the memory measurement.

    Attributes:
        experiment: "memory".
        seed: Seed of the block's weights and the input.
        batch_size: Batch of the 6x6x64 state.
        integration_lengths: T values of the adjoint runs (t in [0, T]).
        rk_steps: L values of the backprop (RK4) runs.
        rtol: dopri5 relative tolerance.
        atol: dopri5 absolute tolerance.
        adjoint_norm: Backward error control of the adjoint runs: "full" (the
            paper's adjoint) or "seminorm".
        source_dir: An `mnist` run with a trained ODE-Net: its dynamics, the stem
            features of the first `batch_size` test images, its head and their
            labels are measured. None: random weights and inputs.
        repeats: Measured steps per setting, after one warm-up step; the table
            and the verdict use the median, the report shows the range (one
            setting's repeated steps differ by several MiB in one process).
    """

    experiment: str = "memory"
    seed: int = 0
    batch_size: int = 32
    integration_lengths: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
    rk_steps: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    rtol: float = 1e-3
    atol: float = 1e-3
    adjoint_norm: str = "full"
    source_dir: str | None = None
    repeats: int = 5

    def __post_init__(self) -> None:
        validation.require_positive("batch_size", self.batch_size)
        validation.require_int("repeats", self.repeats)
        validation.require_positive("repeats", self.repeats)
        validation.require_all_positive("integration_lengths", self.integration_lengths)
        validation.require_all_positive("rk_steps", self.rk_steps)
        validation.require_positive("rtol", self.rtol)
        validation.require_positive("atol", self.atol)
        validation.require_one_of("adjoint_norm", self.adjoint_norm, ADJOINT_NORMS)


def check_inputs(config: MemoryConfig) -> None:
    """Raises ValueError unless `source_dir` (if set) holds a trained ODE-Net."""
    if config.source_dir is None:
        return
    ckpt = os.path.join(config.source_dir, "checkpoints", "odenet")
    if tf.train.latest_checkpoint(ckpt) is None:
        raise ValueError(f"no ODE-Net checkpoint under {ckpt}")


def trained_block(source_dir: str, batch_size: int) -> TrainedBlock:
    """The trained ODE-Net of an `mnist` run as a block workload on test images."""
    source = config_lib.load_config(mnist_experiment.MNISTConfig, source_dir)
    model = mnist_experiment.restore_model(source_dir, "odenet")
    block = mnist_models.ode_block_of(model)
    images, labels = mnist.load_mnist_arrays(
        source.data_dir, source.prepared_dir, "test", reader=source.reader
    )
    position = model.layers.index(block)
    features = tf.convert_to_tensor(images[:batch_size])
    for layer in model.layers[:position]:
        features = layer(features)
    head_layers = model.layers[position + 1 :]

    def head(out: tf.Tensor) -> tf.Tensor:
        for layer in head_layers:
            out = layer(out)
        return out

    return TrainedBlock(
        block.dynamics, features, head, tf.constant(labels[:batch_size], tf.int32)
    )


def measure_step(
    solver: SolverConfig,
    t1: float,
    batch_size: int,
    seed: int,
    trained: TrainedBlock | None = None,
    repeats: int = 1,
) -> dict:
    """Peak extra memory (MiB), seconds and NFE of a training step of the block.

    Args:
        solver: The block's solver.
        t1: Integration end (from 0).
        batch_size: Batch of the random state (ignored with `trained`).
        seed: Seed of the random weights and state.
        trained: A trained block workload (`trained_block`), or None.
        repeats: Steps measured after the warm-up (which traces the step).

    Returns:
        A dict with `peak_extra_mib`, the median over the repeats (None where
        the allocator keeps no statistics, with the reason in
        `memory_unmeasured`), `peak_extra_mib_all` (each repeat), `seconds`
        (median), `forward_nfe` and `backward_nfe` (of the last step; the same
        inputs give the same solve).
    """
    block, state, step = make_block_workload(solver, batch_size, t1, seed, trained)

    [g.numpy() for g in step(state)]  # trace and warm up
    probe = memory.PeakMemory("CPU:0")
    extras, times = [], []
    for _ in range(repeats):
        probe.start()
        start = time.perf_counter()
        [g.numpy() for g in step(state)]
        times.append(time.perf_counter() - start)
        extra = probe.peak_extra_bytes()
        if extra is not None:
            extras.append(extra / 2**20)
    measured = len(extras) == repeats
    return {
        "peak_extra_mib": float(np.median(extras)) if measured else None,
        "peak_extra_mib_all": extras if measured else None,
        "memory_unmeasured": None if measured else probe.reason,
        "seconds": float(np.median(times)),
        "forward_nfe": int(block.forward_nfe.numpy()),
        "backward_nfe": int(block.backward_nfe.numpy()) if solver.adaptive else 0,
    }


def _growth(rows: list[dict]) -> float | None:
    """Peak memory at the largest NFE over that at the smallest (None: unmeasured)."""
    rows = sorted(rows, key=lambda r: r["forward_nfe"])
    if rows[-1]["peak_extra_mib"] is None or rows[0]["peak_extra_mib"] is None:
        return None
    return rows[-1]["peak_extra_mib"] / max(rows[0]["peak_extra_mib"], 1e-9)


def marginal_mib_per_evaluation(rows: list[dict]) -> float | None:
    """Least-squares slope of peak extra memory against forward NFE (MiB each).

    The growth ratio compares two end points, so a constant that appears between
    the two shortest solves counts in it as much as a cost per evaluation would;
    the slope over every point shows the marginal cost of one more evaluation.
    None where memory was not measured or all points share one NFE.
    """
    points = [(r["forward_nfe"], r["peak_extra_mib"]) for r in rows]
    if any(m is None for _, m in points) or len({n for n, _ in points}) < 2:
        return None
    nfe, mib = zip(*points, strict=True)
    return float(np.polyfit(nfe, mib, 1)[0])


def _mib(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.1f}"


def _range(values: list[float] | None) -> str:
    """ "min-max (n)" of one setting's repeated measurements."""
    if not values:
        return "-"
    return f"{min(values):.1f}-{max(values):.1f} ({len(values)})"


def _plot(path: str, adjoint: list[dict], backprop: list[dict]) -> None:
    plt = plots.pyplot()

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for rows, label, marker in (
        (adjoint, "adjoint (dopri5, growing T)", "o"),
        (backprop, "backprop through RK4 (L steps)", "s"),
    ):
        rows = sorted(
            (r for r in rows if r["peak_extra_mib"] is not None),
            key=lambda r: r["forward_nfe"],
        )
        ax.plot(
            [r["forward_nfe"] for r in rows],
            [r["peak_extra_mib"] for r in rows],
            marker=marker,
            label=label,
        )
    ax.set_xscale("log")
    ax.set_xlabel("forward function evaluations")
    ax.set_ylabel("peak extra memory of a training step (MiB)")
    ax.set_title("Training-step memory vs solver work")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(config: MemoryConfig, output_dir: str) -> dict:
    """Measures every setting (skipping those in partial.json) and reports."""
    check_inputs(config)
    config_lib.claim_output_dir(output_dir, config, RESUMABLE_FIELDS)
    seeding.seed_everything(config.seed)
    trained = (
        None
        if config.source_dir is None
        else trained_block(config.source_dir, config.batch_size)
    )
    partial_path = os.path.join(output_dir, PARTIAL)
    done = {}
    if os.path.exists(partial_path):
        with open(partial_path) as f:
            done = json.load(f)
    settings = [("adjoint", t, None) for t in config.integration_lengths]
    settings += [("backprop", 1.0, steps) for steps in config.rk_steps]
    start = time.perf_counter()
    for kind, t1, steps in settings:
        key = f"{kind}:{t1}:{steps}"
        if key in done:
            continue
        if kind == "adjoint":
            solver = SolverConfig(
                rtol=config.rtol, atol=config.atol, adjoint_norm=config.adjoint_norm
            )
        else:
            solver = SolverConfig(
                method="rk4", gradient="backprop", steps_per_interval=steps
            )
        row = measure_step(
            solver, t1, config.batch_size, config.seed, trained, config.repeats
        )
        row.update({"kind": kind, "t1": t1, "rk_steps": steps})
        done[key] = row
        print(
            f"[memory] {kind} T={t1} L={steps}: {_mib(row['peak_extra_mib'])} MiB, "
            f"NFE {row['forward_nfe']}/{row['backward_nfe']}, {row['seconds']:.2f} s",
            flush=True,
        )
        files.atomic_write_json(partial_path, done, indent=None)
    adjoint = [r for r in done.values() if r["kind"] == "adjoint"]
    backprop = [r for r in done.values() if r["kind"] == "backprop"]
    _plot(os.path.join(output_dir, "memory.png"), adjoint, backprop)
    adj_growth, bp_growth = _growth(adjoint), _growth(backprop)
    nfe_ratio_adj = max(r["forward_nfe"] for r in adjoint) / min(
        r["forward_nfe"] for r in adjoint
    )
    nfe_ratio_bp = max(r["forward_nfe"] for r in backprop) / min(
        r["forward_nfe"] for r in backprop
    )
    unmeasured = sorted(
        {r["memory_unmeasured"] for r in done.values() if r.get("memory_unmeasured")}
    )
    if adj_growth is None or bp_growth is None:
        verdict = "not measured: " + "; ".join(unmeasured)
        ours = "peak memory not measurable in this process"
    else:
        supported = adj_growth < 1.25 and bp_growth > 0.5 * nfe_ratio_bp
        verdict = "supported" if supported else "not supported"
        ours = (
            f"adjoint: x{adj_growth:.2f} memory for x{nfe_ratio_adj:.1f} "
            f"evaluations; backprop: x{bp_growth:.2f} memory for "
            f"x{nfe_ratio_bp:.1f} evaluations (medians; verdict rule: adjoint "
            "growth under x1.25 and backprop growth over half its evaluation "
            "ratio)"
        )
        slopes = [marginal_mib_per_evaluation(r) for r in (adjoint, backprop)]
        if None not in slopes:
            ours += (
                f"; least-squares MiB per added forward evaluation: adjoint "
                f"{slopes[0]:.2f}, backprop {slopes[1]:.2f}"
            )
    rows = [
        [
            r["kind"],
            r["t1"],
            r["rk_steps"] or "-",
            r["forward_nfe"],
            r["backward_nfe"] or "-",
            _mib(r["peak_extra_mib"]),
            _range(r.get("peak_extra_mib_all")),
            f"{r['seconds']:.2f}",
        ]
        for r in sorted(adjoint, key=lambda r: r["t1"])
        + sorted(backprop, key=lambda r: r["rk_steps"])
    ]
    claim = [
        [
            "ODE-Net (adjoint) memory O(1) in the number of evaluations; RK-Net O(L~)",
            ours,
            verdict,
        ]
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
            "measured on the MNIST ODE-Net block with random weights and "
            f"inputs (batch {config.batch_size}), not on a trained model"
            if config.source_dir is None
            else "measured on the trained ODE-Net of "
            f"{config.source_dir} (stem features of its first {config.batch_size} "
            "test images, its head and their labels)",
            f"adjoint runs: dopri5 rtol {config.rtol:g}, atol {config.atol:g}, "
            f"{config.adjoint_norm} norm in the backward error control",
            f"each setting: median of {config.repeats} measured steps after a "
            "warm-up step",
        ],
        figures=["memory.png"],
        extra={
            "tables": [
                {
                    "title": "Claim (Table 1, memory column)",
                    "header": ["paper", "ours", "verdict"],
                    "rows": claim,
                },
                {
                    "title": "Peak extra memory of one training step",
                    "header": [
                        "gradient",
                        "T",
                        "RK4 steps",
                        "forward NFE",
                        "backward NFE",
                        "peak extra MiB (median)",
                        "range over the repeats",
                        "step seconds (median)",
                    ],
                    "rows": rows,
                },
            ],
            "measurements": list(done.values()),
        },
    )
