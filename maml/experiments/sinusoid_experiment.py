"""The sinusoid reproduction: MAML vs the pretrained baseline (App. C Table 2).

`run(config, run_dir)` meta-trains MAML and trains the "pretrained on all tasks"
baseline on the same task stream, evaluates both on held-out tasks (K = 5, 10, 20;
0..10 steps; 600 tasks each), and writes `results.json`, `report.md`, Fig. 2 and
Fig. 3 into the run directory.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Any

import numpy as np
import tensorflow as tf

from common import config as config_lib
from common import published, results, seeding
from maml import evaluation, meta_learner, meta_trainer, tasks, training
from maml.experiments import configs, figures, seed_statistics

TABLE = "Appendix C Table 2"
TABLE2_STEPS = {1: "1 step", 5: "5 steps", 10: "10 steps"}
TABLE2_SHOTS = 5
MAML_ROW, PRETRAIN_ROW = "MAML (ours)", "pretrain on all tasks"
FIGURE2_STEPS = (0, 1, 10)
BLOWN_UP_MSE = 1000.0
PER_TASK_FILE = "per_task_mse.npz"


def build_trainer(
    cfg: configs.SinusoidConfig,
    objective: str,
) -> meta_trainer.MetaTrainer:
    """A trainer for MAML ("maml") or the pretrained baseline ("pretrain")."""
    net = cfg.network()
    sample = functools.partial(
        tasks.sample_sinusoid_tasks,
        num_tasks=cfg.meta_batch_size,
        num_support=cfg.num_shots,
        num_query=cfg.num_shots,
    )
    return meta_trainer.MetaTrainer(
        net,
        net.init_params(cfg.seed),
        sample,
        meta_learner.mse_per_task,
        alpha=cfg.alpha,
        num_inner_steps=cfg.num_inner_steps,
        meta_learning_rate=cfg.meta_learning_rate,
        seed=cfg.seed,
        first_order=cfg.first_order,
        objective=objective,
        jit_compile=cfg.jit_compile,
    )


def eval_batch(
    cfg: configs.SinusoidConfig, shots: int, split: str, num_tasks: int | None = None
) -> tasks.RegressionBatch:
    """Held-out tasks: split "test" for reported numbers, "val" for tuning."""
    stream = {"test": 0, "val": 1}[split]
    seed = tf.constant([cfg.eval_seed + stream, shots], tf.int64)
    return tasks.sample_sinusoid_tasks(seed, num_tasks or cfg.eval_tasks, shots, shots)


def evaluate(
    cfg: configs.SinusoidConfig,
    maml_params,
    pretrain_params,
) -> dict[str, Any]:
    """Adaptation curves of both methods for every K in `cfg.eval_shots`."""
    net = cfg.network()
    loss = meta_learner.mse_per_task
    out: dict[str, Any] = {
        "maml": {},
        "pretrain": {},
        "pretrain_step_size": {},
        "pretrain_step_size_scores": {},
    }
    for k in cfg.eval_shots:
        test = eval_batch(cfg, k, "test")
        out["maml"][k] = evaluation.adaptation_curve(
            net, maml_params, test, loss, cfg.alpha, cfg.eval_max_steps
        )
        step, scores = evaluation.tune_step_size(
            net,
            pretrain_params,
            eval_batch(cfg, k, "val"),
            loss,
            cfg.baseline_step_sizes,
            cfg.eval_max_steps,
        )
        out["pretrain_step_size"][k] = step
        out["pretrain_step_size_scores"][k] = scores
        out["pretrain"][k] = evaluation.adaptation_curve(
            net, pretrain_params, test, loss, step, cfg.eval_max_steps
        )
    return out


def figure2_panels(
    cfg: configs.SinusoidConfig,
    maml_params,
    pretrain_params,
    step_sizes: dict[int, float],
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Fig. 2 data: one held-out task, K = 5 and 10, MAML and pretrained."""
    net = cfg.network()
    x_grid = np.linspace(-5.0, 5.0, 200, dtype=np.float32)
    panels = {}
    task = eval_batch(cfg, 10, "test", num_tasks=1)
    grid = tf.constant(x_grid[None, :, None])
    truth = tasks.SinusoidDistribution()(grid, task.amplitude, task.phase).numpy()[
        0, :, 0
    ]
    for method, params in (("MAML", maml_params), ("pretrained", pretrain_params)):
        for k in (5, 10):
            sx, sy = task.support_x[:, :k], task.support_y[:, :k]
            alpha = cfg.alpha if method == "MAML" else step_sizes.get(k, cfg.alpha)
            preds = evaluation.adapted_predictions(
                net,
                params,
                sx,
                sy,
                grid,
                meta_learner.mse_per_task,
                alpha,
                FIGURE2_STEPS,
            )
            title = f"{method}, K={k}" + (
                "" if method == "MAML" else f", step={alpha:g}"
            )
            panels[title] = {
                "support_x": sx.numpy()[0, :, 0],
                "support_y": sy.numpy()[0, :, 0],
                "predictions": {s: p[0, :, 0] for s, p in preds.items()},
            }
    return x_grid, truth, panels


def run(cfg: configs.SinusoidConfig, run_dir: str) -> dict[str, Any]:
    """Runs the whole reproduction into `run_dir` (resuming if it holds one).

    Returns:
        The `results.json` record.
    """
    t0 = time.perf_counter()
    seeding.seed_everything(cfg.seed)
    max_seconds = 60.0 * cfg.max_train_minutes
    phases = {}
    trained = {}
    for objective, target in (
        ("maml", cfg.num_iterations),
        ("pretrain", cfg.pretrain_iterations),
    ):
        trainer = build_trainer(cfg, objective)
        phases[objective] = training.train_phase(
            objective,
            trainer,
            target,
            run_dir,
            cfg.checkpoint_every,
            cfg.log_every,
            max_seconds,
        )
        trained[objective] = trainer.current_params()

    print("[eval] adapting on held-out tasks", flush=True)
    curves = evaluate(cfg, trained["maml"], trained["pretrain"])
    save_per_task_curves(run_dir, cfg, curves)
    status = "complete"
    for phase in phases.values():
        if phase.status != "complete":
            status = phase.status if status == "complete" else status

    cells = []
    for method, row in (("maml", MAML_ROW), ("pretrain", PRETRAIN_ROW)):
        curve = curves[method].get(TABLE2_SHOTS)
        phase = phases[method]
        budget = {
            "iterations": phase.iterations,
            "target_iterations": phase.target_iterations,
            "wall_time_s": round(phase.train_seconds, 1),
        }
        details = {}
        if method == "pretrain" and TABLE2_SHOTS in curves["pretrain_step_size"]:
            details["fine-tuning_step_size"] = curves["pretrain_step_size"][
                TABLE2_SHOTS
            ]
        for steps, column in TABLE2_STEPS.items():
            est, cell_details = None, dict(details)
            if curve is not None and steps < curve.shape[1]:
                est = results.mean_ci95(curve[:, steps])
                # Tasks whose fine-tuning blew up (non-finite, or MSE beyond
                # any sane fit: |y| <= 5): they alone can dominate a mean.
                blown = curve[:, steps]
                blown = int(np.sum(~np.isfinite(blown) | (blown > BLOWN_UP_MSE)))
                if blown:
                    cell_details[f"tasks_with_MSE_>_{BLOWN_UP_MSE:g}_or_non-finite"] = (
                        f"{blown}/{curve.shape[0]}"
                    )
            cells.append(
                results.cell(
                    "maml",
                    TABLE,
                    row,
                    column,
                    est,
                    cfg.deviations(method),
                    budget,
                    cell_details,
                )
            )

    figs = []
    fig3 = os.path.join(run_dir, "fig3_learning_curves.png")
    pub_points = {}
    for method, row in (("MAML", MAML_ROW), ("pretrained", PRETRAIN_ROW)):
        entries = [
            published.lookup("maml", TABLE, row, col) for col in TABLE2_STEPS.values()
        ]
        pub_points[f"published {method} (Table 2)"] = (
            list(TABLE2_STEPS),
            [e.value for e in entries],
        )
    figures.plot_learning_curves(
        fig3,
        {
            k: {
                "MAML": _means_cis(curves["maml"][k]),
                f"pretrained, step={curves['pretrain_step_size'][k]:g}": _means_cis(
                    curves["pretrain"][k]
                ),
            }
            for k in cfg.eval_shots
        },
        {TABLE2_SHOTS: pub_points},
    )
    figs.append(os.path.basename(fig3))
    x_grid, truth, panels = figure2_panels(
        cfg, trained["maml"], trained["pretrain"], curves["pretrain_step_size"]
    )
    fig2 = os.path.join(run_dir, "fig2_adapted_curves.png")
    figures.plot_adapted_curves(fig2, x_grid, truth, panels)
    figs.append(os.path.basename(fig2))

    maml_phase = phases["maml"]
    budget = {
        "iterations": maml_phase.iterations,
        "target_iterations": maml_phase.target_iterations,
        "pretrain_iterations": phases["pretrain"].iterations,
        "maml_train_seconds": round(maml_phase.train_seconds, 1),
        "maml_iterations_per_second": round(maml_phase.iterations_per_second, 1),
        "pretrain_train_seconds": round(phases["pretrain"].train_seconds, 1),
        # This process's wall clock plus training time of earlier sessions.
        "wall_time_s": round(
            time.perf_counter()
            - t0
            + sum(p.train_seconds - p.session_seconds for p in phases.values()),
            1,
        ),
        "sessions": max(p.sessions for p in phases.values()),
        "machine": results.machine_description(),
    }
    extra = {
        "curves": {
            method: {
                str(k): [dataclasses.asdict(e) for e in evaluation.curve_estimates(c)]
                for k, c in curves[method].items()
            }
            for method in ("maml", "pretrain")
        },
        "pretrain_step_size": {
            str(k): v for k, v in curves["pretrain_step_size"].items()
        },
        "pretrain_step_size_scores": {
            str(k): {str(s): v for s, v in scores.items()}
            for k, scores in curves["pretrain_step_size_scores"].items()
        },
        "phases": {name: dataclasses.asdict(p) for name, p in phases.items()},
        "evaluation": {
            "tasks_per_k": cfg.eval_tasks,
            "query_points_per_task": "K",
            "eval_seed": cfg.eval_seed,
            "ci": "1.96 * std / sqrt(n_tasks)",
        },
    }
    record = results.write_results(
        run_dir,
        paper="maml",
        experiment=cfg.experiment,
        status=status,
        budget=budget,
        config=config_lib.to_dict(cfg),
        cells=cells,
        deviations=cfg.deviations("maml"),
        figures=figs,
        extra=extra,
    )
    return record


def save_per_task_curves(
    run_dir: str, cfg: configs.SinusoidConfig, curves: dict[str, Any]
) -> str:
    """Writes every method's per-task query MSE to `PER_TASK_FILE` (atomically).

    Keys: `<method>_k<K>` (`[eval_tasks, eval_max_steps + 1]`, column s = MSE
    after s steps), `test_amplitude_k<K>` and `test_phase_k<K>` (the held-out
    tasks, the same for every seed) and `pretrain_step_size_k<K>`. Statistics
    over tasks and seeds (`maml.experiments.seed_statistics`) are recomputed from
    this file.

    Returns:
        The path written.
    """
    arrays = {}
    for k in cfg.eval_shots:
        for method in ("maml", "pretrain"):
            arrays[f"{method}_k{k}"] = np.asarray(curves[method][k], np.float64)
        test = eval_batch(cfg, k, "test")
        arrays[f"test_amplitude_k{k}"] = test.amplitude.numpy()
        arrays[f"test_phase_k{k}"] = test.phase.numpy()
        arrays[f"pretrain_step_size_k{k}"] = np.float64(curves["pretrain_step_size"][k])
    return seed_statistics.save_per_task(os.path.join(run_dir, PER_TASK_FILE), arrays)


def _means_cis(curve: np.ndarray) -> tuple[list[float], list[float]]:
    ests = evaluation.curve_estimates(curve)
    return [e.mean for e in ests], [e.ci95 for e in ests]
