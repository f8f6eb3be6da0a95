"""App. C Table 2's multi-task rows and the oracle, for one seed.

`run(config, run_dir)` trains the three multi-task variants (500 regressors each,
averaged; `maml.multitask_baseline`) and the oracle (`maml.oracle_baseline`),
fine-tunes each on the held-out tasks the MAML runs use (K = 5, 10, 20; 0..10
steps; step size tuned on validation tasks), and writes `per_task_mse.npz`,
`results.json` and `report.md` into the run directory. A rerun resumes: a finished
variant is read back from its `multitask_<kind>.npz`, the oracle from its checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import results, seeding
from maml import (
    evaluation,
    meta_learner,
    meta_trainer,
    multitask_baseline,
    oracle_baseline,
    tasks,
    training,
)
from maml.experiments import configs, seed_statistics, sinusoid_experiment

TABLE = sinusoid_experiment.TABLE
TABLE2_SHOTS = sinusoid_experiment.TABLE2_SHOTS
ROWS = {
    "none": "multi-task, no reg",
    "l2": "multi-task, l2 reg",
    "mean": "multi-task, reg to mean θ",
}
ORACLE_ROW = "oracle (amplitude and phase as inputs)"
TASK_STREAM, PILOT_STREAM = 7001, 7002


def _task_parameters(
    cfg: configs.SinusoidBaselinesConfig, stream: int, num: int
) -> tuple[np.ndarray, np.ndarray]:
    batch = tasks.sample_sinusoid_tasks(
        tf.constant([cfg.seed, stream], tf.int64), num, 1, 0
    )
    return batch.amplitude.numpy(), batch.phase.numpy()


def _regressor_training(cfg) -> multitask_baseline.RegressorTraining:
    return multitask_baseline.RegressorTraining(
        learning_rate=cfg.regressor_learning_rate,
        batch_points=cfg.regressor_batch_points,
        target_mse=cfg.target_mse,
        max_steps=cfg.regressor_max_steps,
        check_every=cfg.check_every,
        min_steps=cfg.regressor_min_steps,
        jit_compile=cfg.jit_compile,
    )


def train_variant(
    cfg: configs.SinusoidBaselinesConfig, kind: str, run_dir: str
) -> dict[str, Any]:
    """Trains (or reads back) one multi-task variant; returns its summary.

    The summary holds the averaged parameters, each regressor's final grid error
    and steps, the chosen regularisation weight with the pilot scores, and the
    training seconds.
    """
    path = os.path.join(run_dir, f"multitask_{kind}.npz")
    if os.path.exists(path):
        data = seed_statistics.load_per_task(path)
        return {
            "average": {
                k[len("avg_") :]: v for k, v in data.items() if k.startswith("avg_")
            },
            "errors": data["errors"],
            "steps": data["steps"],
            "weight": float(data["weight"]),
            "pilot": json.loads(str(data["pilot"])),
            "train_seconds": float(data["train_seconds"]),
        }
    t0 = time.perf_counter()
    net = cfg.network()
    regressor_training = _regressor_training(cfg)
    weight, pilot = 0.0, {}
    if kind != "none":
        amp, ph = _task_parameters(cfg, PILOT_STREAM, cfg.pilot_tasks)
        weight, pilot = multitask_baseline.select_weight(
            net, amp, ph, kind, cfg.weight_candidates, regressor_training, cfg.seed
        )
        print(f"[multi-task {kind}] weight {weight:g} (pilot: {pilot})", flush=True)
    amp, ph = _task_parameters(cfg, TASK_STREAM, cfg.num_regressors)
    trained = multitask_baseline.train_multitask(
        net, amp, ph, kind, weight, regressor_training, cfg.seed
    )
    average = {
        k: v.numpy()
        for k, v in multitask_baseline.average_parameters(trained.params).items()
    }
    seconds = time.perf_counter() - t0
    print(
        f"[multi-task {kind}] {trained.num_below_target}/{len(amp)} regressors "
        f"below {cfg.target_mse}, median {np.median(trained.steps):.0f} steps, "
        f"{seconds:.0f} s",
        flush=True,
    )
    summary = {
        "average": average,
        "errors": trained.errors,
        "steps": trained.steps,
        "weight": weight,
        "pilot": {str(k): v for k, v in pilot.items()},
        "train_seconds": seconds,
    }
    seed_statistics.save_per_task(
        path,
        {
            **{f"avg_{k}": v for k, v in average.items()},
            "errors": trained.errors,
            "steps": trained.steps,
            "weight": np.float64(weight),
            "pilot": np.array(json.dumps(summary["pilot"])),
            "train_seconds": np.float64(seconds),
        },
    )
    return summary


def build_oracle_trainer(
    cfg: configs.SinusoidBaselinesConfig,
) -> meta_trainer.MetaTrainer:
    """The oracle's trainer: plain regression ("pretrain") on oracle inputs."""
    net = cfg.oracle_network()
    return meta_trainer.MetaTrainer(
        net,
        net.init_params(cfg.seed),
        oracle_baseline.oracle_sampler(
            cfg.meta_batch_size, cfg.num_shots, cfg.num_shots
        ),
        meta_learner.mse_per_task,
        alpha=0.01,
        num_inner_steps=0,
        meta_learning_rate=cfg.meta_learning_rate,
        seed=cfg.seed,
        objective="pretrain",
        jit_compile=cfg.jit_compile,
    )


def _fine_tune_curves(cfg, net, params, oracle: bool) -> dict[str, Any]:
    """Test curves for every K, step size tuned on validation tasks."""
    out = {"curves": {}, "step_size": {}, "scores": {}}
    for k in cfg.eval_shots:
        val = sinusoid_experiment.eval_batch(cfg, k, "val")
        test = sinusoid_experiment.eval_batch(cfg, k, "test")
        if oracle:
            val, test = (
                oracle_baseline.oracle_batch(val),
                oracle_baseline.oracle_batch(test),
            )
        step, scores = evaluation.tune_step_size(
            net,
            params,
            val,
            meta_learner.mse_per_task,
            cfg.baseline_step_sizes,
            cfg.eval_max_steps,
        )
        out["step_size"][k], out["scores"][k] = step, scores
        out["curves"][k] = evaluation.adaptation_curve(
            net, params, test, meta_learner.mse_per_task, step, cfg.eval_max_steps
        )
    return out


def run(cfg: configs.SinusoidBaselinesConfig, run_dir: str) -> dict[str, Any]:
    """Trains and evaluates every baseline of one seed into `run_dir`.

    Returns:
        The `results.json` record.
    """
    t0 = time.perf_counter()
    seeding.seed_everything(cfg.seed)
    variants = {
        kind: train_variant(cfg, kind, run_dir)
        for kind in multitask_baseline.REGULARISERS
    }
    trainer = build_oracle_trainer(cfg)
    oracle_phase = training.train_phase(
        "oracle",
        trainer,
        cfg.oracle_iterations,
        run_dir,
        cfg.checkpoint_every,
        cfg.log_every,
        60.0 * cfg.max_train_minutes,
    )

    print("[eval] fine-tuning on held-out tasks", flush=True)
    evals = {
        f"multitask_{kind}": _fine_tune_curves(
            cfg,
            cfg.network(),
            {k: tf.constant(v) for k, v in v_["average"].items()},
            oracle=False,
        )
        for kind, v_ in variants.items()
    }
    evals["oracle"] = _fine_tune_curves(
        cfg, cfg.oracle_network(), trainer.current_params(), oracle=True
    )
    arrays = {}
    for method, ev in evals.items():
        for k, curve in ev["curves"].items():
            arrays[f"{method}_k{k}"] = np.asarray(curve, np.float64)
            arrays[f"{method}_step_size_k{k}"] = np.float64(ev["step_size"][k])
    for kind, v in variants.items():
        arrays[f"multitask_{kind}_regressor_errors"] = v["errors"]
        arrays[f"multitask_{kind}_regressor_steps"] = v["steps"]
    seed_statistics.save_per_task(
        os.path.join(run_dir, sinusoid_experiment.PER_TASK_FILE), arrays
    )

    cells = []
    for kind, v in variants.items():
        curve = evals[f"multitask_{kind}"]["curves"][TABLE2_SHOTS]
        below = int(np.sum(v["errors"] < cfg.target_mse))
        details = {
            "fine-tuning_step_size": evals[f"multitask_{kind}"]["step_size"][
                TABLE2_SHOTS
            ],
            "regressors_below_target": f"{below}/{len(v['errors'])}",
        }
        if kind != "none":
            details["weight"] = f"{v['weight']:g}"
        budget = {
            "regressors": len(v["errors"]),
            "median_steps": int(np.median(v["steps"])),
            "wall_time_s": round(v["train_seconds"], 1),
        }
        for steps, column in sinusoid_experiment.TABLE2_STEPS.items():
            cells.append(
                results.cell(
                    "maml",
                    TABLE,
                    ROWS[kind],
                    column,
                    results.mean_ci95(curve[:, steps]),
                    cfg.deviations("multitask"),
                    budget,
                    details,
                )
            )
    oracle_curve = evals["oracle"]["curves"][TABLE2_SHOTS]
    oracle_rows = [
        [s, f"{e.mean:.4f} ± {e.ci95:.4f}"]
        for s, e in enumerate(evaluation.curve_estimates(oracle_curve))
        if s in (0, 1, 5, 10)
    ]
    status = oracle_phase.status
    budget = {
        "regressors_per_variant": cfg.num_regressors,
        "regressor_min_steps": cfg.regressor_min_steps,
        "oracle_iterations": oracle_phase.iterations,
        "oracle_target_iterations": oracle_phase.target_iterations,
        "oracle_train_seconds": round(oracle_phase.train_seconds, 1),
        "multitask_train_seconds": round(
            sum(v["train_seconds"] for v in variants.values()), 1
        ),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "machine": results.machine_description(),
    }
    extra = {
        "tables": [
            {
                "title": f"Oracle, K = {TABLE2_SHOTS} (Fig. 3 plots it; "
                "the paper prints no number)",
                "header": ["fine-tuning steps", "MSE (mean ± 95% CI over tasks)"],
                "rows": oracle_rows,
            },
            {
                "title": "Multi-task regressors",
                "header": [
                    "variant",
                    "weight",
                    "below target",
                    "median steps",
                    "max steps",
                    "pilot (weight: fraction reaching target)",
                ],
                "rows": [
                    [
                        ROWS[kind],
                        f"{v['weight']:g}",
                        f"{int(np.sum(v['errors'] < cfg.target_mse))}/"
                        f"{len(v['errors'])}",
                        int(np.median(v["steps"])),
                        int(np.max(v["steps"])),
                        ", ".join(
                            f"{w}: {s['reached']:.2f}" for w, s in v["pilot"].items()
                        )
                        or "-",
                    ]
                    for kind, v in variants.items()
                ],
            },
        ],
        "step_sizes": {
            m: {str(k): s for k, s in ev["step_size"].items()}
            for m, ev in evals.items()
        },
        "oracle_phase": {
            "status": oracle_phase.status,
            "iterations": oracle_phase.iterations,
        },
    }
    return results.write_results(
        run_dir,
        paper="maml",
        experiment=cfg.experiment,
        status=status,
        budget=budget,
        config=config_lib.to_dict(cfg),
        cells=cells,
        deviations=cfg.deviations("multitask") + cfg.deviations("oracle"),
        extra=extra,
    )
