"""Few-shot classification: one cell of MAML's Table 1 (Omniglot, MiniImagenet).

`run(cfg, run_dir, data_dir, cache_dir)` meta-trains on the meta-train classes,
evaluates on validation tasks every `eval_every` iterations (keeping the
best-on-validation parameters) and on the 600 test tasks at the same budget
checkpoints, and finally writes `results.json` / `report.md` with the table cell,
accuracies after 0..10 inner steps, the accuracy-vs-budget history and figures.

The cell is the test accuracy (after `test_inner_steps` steps, 95% CI) of the
*final* parameters, as the official code tests its last checkpoint
(cbfinn/maml main.py, `test_iter=-1`); the best-on-validation parameters are
reported beside it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Any

import numpy as np
import tensorflow as tf

from common import checkpoint, files, results, seeding, summaries
from common import config as config_lib
from common.data import miniimagenet, omniglot
from common.data.errors import DatasetError
from maml import evaluation, meta_learner, meta_trainer, networks, tasks, training
from maml.experiments import configs

HISTORY_FILE = "evaluations.json"


def load_splits(
    cfg: configs.ClassificationConfig, data_dir: str, cache_dir: str | None
) -> dict[str, np.ndarray]:
    """uint8 class-indexed image arrays of the train / val / test classes."""
    if cfg.dataset == "omniglot":
        data = omniglot.load_omniglot(
            os.path.join(data_dir, "omniglot"), cache_dir, pixels=cfg.omniglot_pixels
        )
        split = omniglot.split_characters(data, cfg.omniglot_split)
        return {k: data.images[idx] for k, idx in split.items()}
    root = os.path.join(data_dir, "miniimagenet")
    return {
        s: miniimagenet.load_miniimagenet_split(root, s, cache_dir).images
        for s in miniimagenet.SPLITS
    }


def check_data(cfg: configs.ClassificationConfig, data_dir: str) -> None:
    """Fails fast, before anything is written, when the dataset files are absent.

    Raises:
        DatasetError: naming the expected layout and the flag.
    """
    if cfg.dataset == "omniglot":
        folder = os.path.join(data_dir, "omniglot")
        missing = [
            z for z in omniglot.ZIPS if not os.path.exists(os.path.join(folder, z))
        ]
        if missing:
            raise DatasetError(
                f"Omniglot not found: {folder} lacks "
                f"{', '.join(missing)}; expected {omniglot.LAYOUT}; "
                "set --data_dir"
            )
        return
    root = os.path.join(data_dir, "miniimagenet")
    if not os.path.isdir(root):
        raise DatasetError(
            f"MiniImagenet not found under {root}: expected <root>/images/*.jpg with "
            "train.csv/val.csv/test.csv, or <root>/train/<wnid>/*.jpg; set "
            "--data_dir"
        )


def loss_fn(cfg: configs.ClassificationConfig) -> meta_learner.LossFn:
    return _loss(cfg.shots)


@functools.lru_cache(maxsize=8)
def _loss(shots: int) -> meta_learner.LossFn:
    return meta_learner.softmax_cross_entropy_per_task(shots)


def support_network(
    cfg: configs.ClassificationConfig, conv_impl: str | None = None
) -> networks.FunctionalNetwork:
    """The network with all tasks batched (inner loops, evaluation).

    Conv nets use `conv_impl` (`networks.conv3x3_per_task`). The default
    (`networks.fastest_per_task_conv`) is "grouped" where TF can differentiate
    grouped convolutions (oneDNN on x86, cuDNN), else "patches". "grouped" runs
    one grouped convolution with the tasks folded into channels (float32
    only); measured alone it is 4-15 % faster per meta-iteration than the
    im2col "patches" (`results/maml_table1_benchmark/inner_conv.md`). The
    BN-MLP keeps its first-layer inner-loop steps factored (`networks.MLP`,
    low_rank_first_layer): the same function and meta-gradient without a
    per-task copy of the 784x256 first weight.
    """
    net = cfg.network(impl=conv_impl or networks.fastest_per_task_conv())
    if isinstance(net, networks.MLP):
        net = networks.MLP(
            net.layer_sizes,
            net.init_stddev,
            net.batch_norm,
            net.bn_epsilon,
            low_rank_first_layer=True,
        )
    return net


def build_trainer(
    cfg: configs.ClassificationConfig,
    train_images: tf.Variable,
    strategy: tf.distribute.Strategy | None = None,
    support_conv_impl: str | None = None,
) -> meta_trainer.MetaTrainer:
    """The meta-trainer: batched inner loop, per-task query gradients for conv.

    With a `strategy`, each meta-batch's tasks are split across its replicas.
    `support_conv_impl` is the batched inner loop's convolution (see
    `support_network`).
    """
    net = support_network(cfg, support_conv_impl)
    sample = functools.partial(
        tasks.sample_episodes,
        images=train_images,
        num_tasks=cfg.meta_batch_size,
        ways=cfg.ways,
        shots=cfg.shots,
        queries=cfg.queries_at_training,
        rotate=cfg.rotate,
    )
    conv = cfg.model != "mlp"
    query_net = cfg.network(impl="native") if conv else None
    return meta_trainer.MetaTrainer(
        net,
        net.init_params(cfg.seed),
        sample,
        loss_fn(cfg),
        alpha=cfg.alpha,
        num_inner_steps=cfg.num_inner_steps,
        meta_learning_rate=cfg.meta_learning_rate,
        seed=cfg.seed,
        first_order=cfg.first_order,
        grad_clip=cfg.grad_clip or None,
        jit_compile=not conv and strategy is None,  # XLA: the BN-MLP only
        query_net=query_net,
        strategy=strategy,
    )


def eval_episodes(
    cfg: configs.ClassificationConfig, images, split: str, num_tasks: int
) -> tasks.EpisodeBatch:
    """Fixed evaluation episodes of a split (K query images per class by default)."""
    stream = {"val": 1, "test": 0}[split]
    seed = tf.constant([cfg.eval_seed + stream, cfg.ways * 100 + cfg.shots], tf.int64)
    return tasks.sample_episodes(
        seed,
        images,
        num_tasks,
        cfg.ways,
        cfg.shots,
        cfg.queries_at_test,
        rotate=cfg.rotate,
    )


def accuracy_curve(
    cfg: configs.ClassificationConfig, params, batch: tasks.EpisodeBatch
) -> np.ndarray:
    """Per-task query accuracy after 0..eval_max_steps steps (see evaluation)."""
    return evaluation.classification_curve(
        support_network(cfg),
        params,
        batch,
        loss_fn(cfg),
        cfg.alpha,
        cfg.eval_max_steps,
        support_statistics=cfg.batch_norm == "support",
    )


def _history(run_dir: str) -> list[dict[str, Any]]:
    path = os.path.join(run_dir, HISTORY_FILE)
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return []


def run(
    cfg: configs.ClassificationConfig,
    run_dir: str,
    data_dir: str,
    cache_dir: str | None = None,
    strategy: tf.distribute.Strategy | None = None,
    evaluate_only: bool = False,
) -> dict[str, Any]:
    """Runs (or resumes) one Table 1 cell into `run_dir`; returns the record.

    Args:
        cfg: The cell's configuration.
        run_dir: Output directory (resumed when it holds this run).
        data_dir: Folder holding `omniglot/` or `miniimagenet/`.
        cache_dir: Where preprocessed datasets are cached.
        strategy: Optional `tf.distribute` strategy splitting each meta-batch.
        evaluate_only: Do not train: evaluate the latest checkpoint and rewrite
            the results (e.g. after a run was stopped by its time limit).
    """
    t0 = time.perf_counter()
    seeding.seed_everything(cfg.seed)
    splits = load_splits(cfg, data_dir, cache_dir)
    images = {
        k: tf.Variable(v, trainable=False, name=f"{k}_images")
        for k, v in splits.items()
    }
    val = eval_episodes(cfg, images["val"], "val", cfg.val_tasks)
    test = eval_episodes(cfg, images["test"], "test", cfg.eval_tasks)
    trainer = build_trainer(cfg, images["train"], strategy)
    best_holder = tf.Module()
    best_holder.params = {
        k: tf.Variable(v, name=k) for k, v in trainer.current_params().items()
    }
    best_ckpt = checkpoint.Checkpointer(
        os.path.join(run_dir, "checkpoints", "best"), max_to_keep=1, trainer=best_holder
    )
    best_ckpt.restore_latest()
    history = _history(run_dir)
    writer = summaries.Summaries(os.path.join(run_dir, "tensorboard"), "eval")
    step = cfg.test_inner_steps
    test_curves: dict[int, np.ndarray] = {}  # this session's, reused by _finish

    def on_checkpoint(done: int, force: bool = False) -> None:
        if done % cfg.eval_every and done != cfg.num_iterations and not force:
            return
        if any(h["iteration"] == done for h in history):
            return
        params = trainer.current_params()
        val_acc = float(accuracy_curve(cfg, params, val)[:, step].mean())
        test_curves[done] = accuracy_curve(cfg, params, test)
        test_est = results.mean_ci95(test_curves[done][:, step])
        best = max([h["val_accuracy"] for h in history], default=-1.0)
        entry = {
            "iteration": done,
            "val_accuracy": val_acc,
            "test_accuracy": test_est.mean,
            "test_ci95": test_est.ci95,
            "best_so_far": val_acc > best,
        }
        if val_acc > best:
            for k, v in params.items():
                best_holder.params[k].assign(v)
            best_ckpt.save(done)
        history.append(entry)
        files.atomic_write_json(os.path.join(run_dir, HISTORY_FILE), history, indent=1)
        writer.scalars(done, {"val_accuracy": val_acc, "test_accuracy": test_est.mean})
        print(
            f"[eval] iteration {done}: val {100 * val_acc:.2f}%  test "
            f"{100 * test_est.mean:.2f} ± {100 * test_est.ci95:.2f}% "
            f"({step} steps)",
            flush=True,
        )

    if evaluate_only:
        phase = training.restore_phase("maml", trainer, cfg.num_iterations, run_dir)
    else:
        phase = training.train_phase(
            "maml",
            trainer,
            cfg.num_iterations,
            run_dir,
            cfg.checkpoint_every,
            cfg.log_every,
            60.0 * cfg.max_train_minutes,
            on_checkpoint,
        )
    if phase.status == "cut short" and phase.iterations:
        on_checkpoint(phase.iterations, force=True)  # evaluate where it stopped
    return _finish(
        cfg, run_dir, trainer, best_holder, history, phase, test, t0, test_curves
    )


def _fmt(e: results.Estimate) -> str:
    return f"{e.mean:.2f} ± {e.ci95:.2f}"


def _finish(
    cfg, run_dir, trainer, best_holder, history, phase, test, t0, test_curves=None
):
    """Writes the results; `test_curves` (iteration -> curve) evaluated this
    session at those iterations' parameters are reused, not recomputed."""
    test_curves = test_curves or {}
    final_params = trainer.current_params()
    have_best = bool(history)
    best_params = (
        {k: v.read_value() for k, v in best_holder.params.items()}
        if have_best
        else final_params
    )
    best_iteration = (
        max(history, key=lambda h: h["val_accuracy"])["iteration"]
        if history
        else phase.iterations
    )
    final_curve = test_curves.get(phase.iterations)
    if final_curve is None:
        final_curve = accuracy_curve(cfg, final_params, test)
    best_curve = test_curves.get(best_iteration)
    if best_curve is None:
        best_curve = (
            final_curve
            if best_iteration == phase.iterations
            else accuracy_curve(cfg, best_params, test)
        )
    step = cfg.test_inner_steps
    status = phase.status
    budget = {
        "iterations": phase.iterations,
        "target_iterations": phase.target_iterations,
        "wall_time_s": round(
            time.perf_counter() - t0 + phase.train_seconds - phase.session_seconds, 1
        ),
        "train_seconds": round(phase.train_seconds, 1),
        "seconds_per_iteration": round(
            phase.train_seconds / max(phase.iterations, 1), 3
        ),
        "sessions": phase.sessions,
        "machine": phase.machine or results.machine_description(),
    }
    final_est = results.mean_ci95(100.0 * final_curve[:, step])
    best_est = results.mean_ci95(100.0 * best_curve[:, step])
    deviations = cfg.deviations()
    paper = configs.CLASSIFICATION_PAPER_ITERATIONS
    if phase.iterations < min(cfg.num_iterations, paper):
        deviations.insert(
            0,
            f"trained {phase.iterations:,} of the paper's "
            f"{paper:,} meta-iterations ({status})",
        )
    # The cell: final parameters, as the official code tests its last checkpoint.
    details = {
        "checkpoint": f"final (iteration {phase.iterations})",
        "inner_steps": step,
        "batch_norm": cfg.batch_norm,
        "best_on_validation": f"{_fmt(best_est)} (iteration {best_iteration})",
    }
    cells = [
        results.cell(
            "maml",
            cfg.table,
            cfg.table_row,
            cfg.table_column,
            final_est,
            deviations,
            None,
            details,
        )
    ]
    if (
        cfg.table == configs.TABLE1
        and cfg.dataset == "omniglot"
        and cfg.model == "conv4"
        and cfg.ways == 5
    ):
        # Table 3 of App. C repeats the 5-way conv MAML cells beside the context
        # vector.
        cells.append(
            results.cell(
                "maml",
                configs.CONTEXT_TABLE,
                "MAML",
                f"{cfg.shots}-shot",
                final_est,
                deviations,
                None,
                details,
            )
        )
    figs = _figures(cfg, run_dir, best_curve, final_curve, history)
    by_steps = [
        [
            s,
            _fmt(results.mean_ci95(100 * final_curve[:, s])),
            _fmt(results.mean_ci95(100 * best_curve[:, s])),
        ]
        for s in range(final_curve.shape[1])
    ]
    budget_rows = [
        [
            h["iteration"],
            f"{100 * h['val_accuracy']:.2f}",
            f"{100 * h['test_accuracy']:.2f} ± {100 * h['test_ci95']:.2f}",
            "yes" if h["best_so_far"] else "",
        ]
        for h in history
    ]
    pub = cells[0]["published"]
    label = "" if status == "complete" else f" ({status})"
    tables = [
        {
            "title": f"The cell: final vs best-on-validation parameters ({step} inner "
            f"steps, {cfg.eval_tasks} test tasks, 95% CI)",
            "header": [
                "published",
                f"final, iteration {phase.iterations} (the cell)",
                f"best on validation, iteration {best_iteration}",
                "meta-iterations",
                "status",
            ],
            "rows": [
                [
                    _fmt(results.Estimate(pub["value"], pub["ci95"] or 0.0, 0)),
                    _fmt(final_est),
                    _fmt(best_est),
                    f"{phase.iterations:,} of {paper:,}",
                    status,
                ]
            ],
        },
        {
            "title": f"Test accuracy (%) after 0..{cfg.eval_max_steps} inner steps "
            f"({cfg.eval_tasks} tasks, 95% CI)",
            "header": [
                "inner steps",
                f"final (iteration {phase.iterations})",
                f"best on validation (iteration {best_iteration})",
            ],
            "rows": by_steps,
        },
        {
            "title": f"Accuracy (%) at each budget checkpoint ({step} inner steps)"
            + label,
            "header": [
                "meta-iterations",
                f"validation ({cfg.val_tasks} tasks)",
                f"test ({cfg.eval_tasks} tasks, 95% CI)",
                "best so far",
            ],
            "rows": budget_rows,
        },
    ]
    extra = {
        "tables": tables,
        "cell_checkpoint": "final",
        "best_on_validation": {
            "iteration": best_iteration,
            **dataclasses.asdict(best_est),
        },
        "accuracy_by_inner_steps": {
            "final": [
                dataclasses.asdict(results.mean_ci95(100 * c)) for c in final_curve.T
            ],
            "best_on_validation": [
                dataclasses.asdict(results.mean_ci95(100 * c)) for c in best_curve.T
            ],
        },
        "history": history,
        "evaluation": {
            "test_tasks": cfg.eval_tasks,
            "query_per_class": cfg.queries_at_test,
            "train_query_per_class": cfg.queries_at_training,
            "eval_seed": cfg.eval_seed,
            "ci": "1.96 * std / sqrt(n_tasks)",
            "batch_norm": cfg.batch_norm,
            "omniglot_pixels": cfg.omniglot_pixels,
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
        deviations=deviations,
        figures=figs,
        extra=extra,
    )


def _figures(cfg, run_dir, curve, final_curve, history) -> list[str]:
    from common import plots  # noqa: PLC0415

    figs = []
    steps = np.arange(curve.shape[1])
    path = os.path.join(run_dir, "accuracy_vs_inner_steps.png")
    panel = {}
    for label, c in (("best on validation", curve), ("final", final_curve)):
        ests = [results.mean_ci95(100 * col) for col in c.T]
        panel[label] = (steps, [e.mean for e in ests], [e.ci95 for e in ests])
    plots.plot_curve_panels(
        path, {cfg.table_column: panel}, "inner gradient steps", "test accuracy (%)"
    )
    figs.append(os.path.basename(path))
    if history:
        path = os.path.join(run_dir, "accuracy_vs_iterations.png")
        its = [h["iteration"] for h in history]
        plots.plot_curve_panels(
            path,
            {
                cfg.table_column: {
                    f"test ({cfg.test_inner_steps} steps)": (
                        its,
                        [100 * h["test_accuracy"] for h in history],
                        [100 * h["test_ci95"] for h in history],
                    ),
                    "validation": (
                        its,
                        [100 * h["val_accuracy"] for h in history],
                        [0.0] * len(its),
                    ),
                }
            },
            "meta-iterations",
            "accuracy (%)",
        )
        figs.append(os.path.basename(path))
    return figs
