"""MNIST Table 1 cells and cost rows of trained models, kept per model.

`evaluate_model` turns one trained model into its two Table 1 cells (test error
with a binomial 95% CI, parameter count) and its row of measured costs (peak
step memory, minutes per epoch, NFE, epochs, evaluation time). The record is
stored in the model's directory (`EVALUATION_FILE`), so `write_results` reports
every model the run has evaluated, whichever models one invocation trained.
"""

from __future__ import annotations

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from common import results, training_loop
from common.stats import binomial_ci95
from neural_ode import mnist_models

EVALUATION_FILE = "evaluation.json"
MLP_STAND_IN = (
    "stand-in: 784-300(ReLU)-10 with softmax cross-entropy on cropped images; the "
    "published 1.60% is LeCun et al. 1998's 784-300-10 (squared error, deskewed "
    "images), not trained by the paper"
)
COST_HEADER = (
    "model",
    "trainable parameters",
    "peak memory of a training step (MiB)",
    "minutes per epoch",
    "forward NFE",
    "backward NFE",
    "epochs trained",
    "status",
    "test evaluation (s)",
    "evaluated (UTC)",
)


def trainable_parameters(model: keras.Model) -> int:
    """Number of trainable weights (Table 1's "# Params")."""
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def test_error(
    model: keras.Model, images: np.ndarray, labels: np.ndarray, batch_size: int
) -> tuple[float, int]:
    """Test error in % and the number of errors."""
    predict = tf.function(lambda x: tf.argmax(model(x), axis=-1))
    wrong = 0
    for start in range(0, len(images), batch_size):
        pred = predict(images[start : start + batch_size]).numpy()
        wrong += int(np.sum(pred != labels[start : start + batch_size]))
    return 100.0 * wrong / len(images), wrong


def params_cell(row: str, params: int) -> dict:
    """The "# Params" cell; an exact count is compared at the paper's precision."""
    entry = results.cell(
        "neural_ode",
        "Table 1",
        row,
        "# Params",
        results.Estimate(params / 1e6, 0.0, 1),
        budget={"exact count, no training": True},
    )
    published = entry["published"]["value"]
    if round(params / 1e6, 2) == published:
        entry["verdict"] = "equal at the published precision (2 decimals)"
    else:
        entry["verdict"] = (
            f"differs: {params / 1e6:.3f}M vs {published}M "
            f"({100 * (params / 1e6 - published) / published:+.0f}%)"
        )
    return entry


def evaluate_model(
    name: str,
    model: keras.Model,
    loop: training_loop.LoopResult,
    stats: dict,
    test_x: np.ndarray,
    test_y: np.ndarray,
    steps_per_epoch: int,
    eval_batch_size: int,
) -> dict:
    """Test error of one trained model: its two Table 1 cells and its cost row.

    Args:
        name: One of `mnist_models.MODELS`.
        model: The trained model.
        loop: Its training loop's result (steps, time, status, budget).
        stats: What its training measured: "peak_step_memory_mb" and
            "memory_unmeasured" (one of them None), "last_nfe" ([forward,
            backward] of the last training step, or None) and "rk" (the RK-Net's
            step choice, `mnist_experiment.resolve_rk_steps`).
        test_x: Test images.
        test_y: Their labels.
        steps_per_epoch: Training steps of one epoch.
        eval_batch_size: Images per evaluation batch.

    Returns:
        A JSON-ready record: "cells" (Test Error, # Params), "row" (the measured
        costs table's row), "status", "train_seconds" and "evaluated" (UTC).
    """
    t = time.perf_counter()
    error, wrong = test_error(model, test_x, test_y, eval_batch_size)
    eval_seconds = time.perf_counter() - t
    epochs_done = loop.steps / steps_per_epoch
    seconds_per_epoch = (loop.train_seconds / epochs_done) if epochs_done else None
    budget = {**loop.budget(), "epochs": round(epochs_done, 2), "status": loop.status}
    row = mnist_models.TABLE1_ROWS[name]
    cell_dev = [] if epochs_done >= 160 else [f"{epochs_done:.2f} of 160 epochs"]
    if name == "mlp":
        cell_dev.append(MLP_STAND_IN)
    if name == "rknet":
        rk = stats["rk"]
        text = (
            f"RK4 with {rk['rk_steps']} steps ({4 * rk['rk_steps']} evaluations), "
            "backprop through the steps"
        )
        if "odenet_mean_forward_nfe" in rk:
            text += (
                ", matched to the ODE-Net's mean forward NFE "
                f"{rk['odenet_mean_forward_nfe']:.1f} over its training"
            )
        cell_dev.append(text)
    if loop.status != "complete":
        cell_dev.append(f"run {loop.status}")
    block = mnist_models.ode_block_of(model)
    details = {}
    if block is not None and block.solver.adaptive and stats["last_nfe"]:
        # The NFE log's last entry: the last training step, whichever process
        # ran it (the block's counters hold this process's last call).
        forward, backward = stats["last_nfe"]
        details = {
            "forward NFE (last step)": int(forward),
            "backward NFE (last step)": int(backward),
        }
    if stats["memory_unmeasured"]:
        details["peak step memory"] = "not measured: " + stats["memory_unmeasured"]
    cells = [
        results.cell(
            "neural_ode",
            "Table 1",
            row,
            "Test Error",
            results.Estimate(error, binomial_ci95(wrong, len(test_y)), len(test_y)),
            deviations=cell_dev,
            budget=budget,
            details=details,
        )
    ]
    if name == "mlp":
        cells[-1]["verdict"] += " (stand-in: not the published model)"
    params = trainable_parameters(model)
    cells.append(params_cell(row, params))
    memory_mb = stats["peak_step_memory_mb"]
    evaluated = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    return {
        "cells": cells,
        "row": [
            row,
            f"{params:,}",
            "not measured" if memory_mb is None else f"{memory_mb:.0f}",
            "-" if seconds_per_epoch is None else f"{seconds_per_epoch / 60:.1f}",
            details.get("forward NFE (last step)", "-"),
            details.get("backward NFE (last step)", "-"),
            f"{epochs_done:.2f}",
            loop.status,
            f"{eval_seconds:.0f}",
            evaluated,
        ],
        "status": loop.status,
        "train_seconds": loop.train_seconds,
        "evaluated": evaluated,
    }


def load_evaluations(run_dir: str) -> dict[str, dict]:
    """Every model's last evaluation in `run_dir`, in Table 1's row order.

    A model's record is written when an invocation evaluates it and removed when
    its training resumes, so a record always describes the checkpoint it
    evaluated; models never evaluated (or mid-training) are absent.
    """
    found = {}
    for name in mnist_models.MODELS:
        path = os.path.join(run_dir, name, EVALUATION_FILE)
        if os.path.exists(path):
            with open(path) as f:
                found[name] = json.load(f)
    return found


def write_results(
    output_dir: str,
    config: dict,
    deviations: list[str],
    listed: tuple[str, ...],
    solver_deviation: str,
) -> dict:
    """Writes results.json and report.md from every stored evaluation of the run.

    Args:
        output_dir: The run directory.
        config: The run's resolved config (saved with the results).
        deviations: The run's protocol deviations (schedule, replicas...).
        listed: The models this invocation was asked for; the others reported
            are named as evaluated by an earlier invocation.
        solver_deviation: The ODE-Net's solver settings, added if it is reported.

    Returns:
        The results record.
    """
    deviations = list(deviations)
    evaluations = load_evaluations(output_dir)
    cells, rows, statuses, total_seconds = [], [], [], 0.0
    for record in evaluations.values():
        cells.extend(record["cells"])
        rows.append(record["row"])
        statuses.append(record["status"])
        total_seconds += record["train_seconds"]
    if "odenet" in evaluations:
        deviations.append(solver_deviation)
    unlisted = [mnist_models.TABLE1_ROWS[n] for n in evaluations if n not in listed]
    if unlisted:
        deviations.append(
            "evaluated by an earlier invocation of this run (not listed in this "
            "one's models; each row states its own training budget): "
            + ", ".join(unlisted)
        )
    status = results.overall_status(statuses)
    return results.write_results(
        output_dir,
        paper="neural_ode",
        experiment="mnist",
        status=status,
        budget={
            "train_seconds": round(total_seconds, 1),
            "machine": results.machine_description(),
        },
        config=config,
        cells=cells,
        deviations=deviations,
        extra={
            "tables": [
                {
                    "title": "Measured costs (Table 1 gives only O(1) / O(L) / O(L~))",
                    "header": list(COST_HEADER),
                    "rows": rows,
                }
            ]
        },
    )
