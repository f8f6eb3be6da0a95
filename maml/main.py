"""Runs a MAML reproduction: `python -m maml.main [--experiment=sinusoid]`.

Writes into `--output_dir` (default `runs/<experiment>`): `config.json`,
checkpoints, TensorBoard logs, `results.json`, `report.md` and figures. Rerunning
the same command resumes from the last checkpoint.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses  # noqa: E402
import sys  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from common import config as config_lib  # noqa: E402
from common import flags as common_flags  # noqa: E402
from common.data.errors import DatasetError  # noqa: E402
from maml.experiments import (  # noqa: E402
    classification_experiment,
    configs,
    export,
    rl_cli,
    rl_configs,
    sinusoid_experiment,
)

EXPERIMENT = flags.DEFINE_string(
    "experiment", "sinusoid",
    "Which experiment to run: one of "
    f"{', '.join([*configs.all_experiments(), *rl_configs.RL_EXPERIMENTS])}.")
RL_SET = flags.DEFINE_multi_string(
    "rl_set", [], "RL experiments (navigation_2d, halfcheetah_dir): override a "
    "config field of maml/experiments/rl_configs.py, key=value (repeatable).")
NUM_ITERATIONS = flags.DEFINE_integer(
    "num_iterations", None, "Meta-training iterations (paper: 70000 for sinusoid).")
PRETRAIN_ITERATIONS = flags.DEFINE_integer(
    "pretrain_iterations", None, "Training iterations of the pretrained baseline.")
META_BATCH_SIZE = flags.DEFINE_integer("meta_batch_size", None, "Tasks per iteration.")
NUM_SHOTS = flags.DEFINE_integer("num_shots", None, "K: examples per task at training.")
NUM_INNER_STEPS = flags.DEFINE_integer("num_inner_steps", None,
                                       "Inner SGD steps at meta-training.")
ALPHA = flags.DEFINE_float(
    "alpha", None, "Inner step size (sinusoid: paper 0.01, official code 0.001).")
META_LEARNING_RATE = flags.DEFINE_float("meta_learning_rate", None,
                                        "Adam step size beta.")
FIRST_ORDER = flags.DEFINE_boolean("first_order", None,
                                   "Use the first-order approximation.")
EVAL_TASKS = flags.DEFINE_integer("eval_tasks", None, "Held-out tasks per setting.")
VAL_TASKS = flags.DEFINE_integer("val_tasks", None,
                                 "Classification: validation tasks per evaluation.")
CHECKPOINT_EVERY = flags.DEFINE_integer("checkpoint_every", None,
                                        "Iterations between checkpoints.")
LOG_EVERY = flags.DEFINE_integer("log_every", None,
                                 "Iterations between progress lines.")
MAX_TRAIN_MINUTES = flags.DEFINE_float(
    "max_train_minutes", None,
    "Stop each training phase after this many minutes; the run is then reported as "
    "cut short (0 = no limit).")
JIT_COMPILE = flags.DEFINE_boolean("jit_compile", None,
                                   "Compile the training loop with XLA.")
EVAL_EVERY = flags.DEFINE_integer(
    "eval_every", None, "Classification: iterations between validation/test "
    "evaluations (the best-on-validation parameters are kept).")
BATCH_NORM = flags.DEFINE_enum(
    "batch_norm", None, ["transductive", "support"],
    "Classification: batch statistics at meta-test from the evaluated batch "
    "(transductive, the official code) or from the support set.")
OMNIGLOT_SPLIT = flags.DEFINE_enum(
    "omniglot_split", None, ["official", "background_evaluation"],
    "Omniglot character split.")
OMNIGLOT_PIXELS = flags.DEFINE_enum(
    "omniglot_pixels", None, ["binary", "antialiased"],
    "Omniglot preprocessing: binary (the official code's resize of the 1-bit PNGs) "
    "or antialiased (grey levels).")
TRAIN_QUERIES = flags.DEFINE_integer(
    "train_queries", None, "Classification: query examples per class at "
    "meta-training (0 = K, the official Omniglot protocol; MiniImagenet 15).")
DISTRIBUTE = flags.DEFINE_enum(
    "distribute", "none", ["none", "mirrored", "multi_worker"],
    "Classification: split each meta-batch across devices with tf.distribute "
    "(mirrored: all local devices; multi_worker: the cluster in $TF_CONFIG).")
EVALUATE_ONLY = flags.DEFINE_boolean(
    "evaluate_only", False,
    "Classification: do not train; evaluate the run's latest checkpoint and rewrite "
    "results.json and report.md.")
CACHE_DIR = flags.DEFINE_string(
    "cache_dir", "runs/cache", "Where preprocessed datasets are cached.")

_OVERRIDES = {
    "num_iterations": NUM_ITERATIONS, "pretrain_iterations": PRETRAIN_ITERATIONS,
    "meta_batch_size": META_BATCH_SIZE, "num_shots": NUM_SHOTS, "shots": NUM_SHOTS,
    "num_inner_steps": NUM_INNER_STEPS, "alpha": ALPHA,
    "meta_learning_rate": META_LEARNING_RATE, "first_order": FIRST_ORDER,
    "eval_tasks": EVAL_TASKS, "val_tasks": VAL_TASKS,
    "checkpoint_every": CHECKPOINT_EVERY,
    "log_every": LOG_EVERY, "max_train_minutes": MAX_TRAIN_MINUTES,
    "jit_compile": JIT_COMPILE, "eval_every": EVAL_EVERY, "batch_norm": BATCH_NORM,
    "omniglot_split": OMNIGLOT_SPLIT, "omniglot_pixels": OMNIGLOT_PIXELS,
    "train_queries": TRAIN_QUERIES,
}


def config_from_flags():
    """The experiment's config with the flags that were given applied.

    Raises:
        ValueError: unknown experiment or a bad value, naming the flag to fix.
    """
    name = EXPERIMENT.value
    if name not in configs.all_experiments():
        raise ValueError(f"unknown experiment {name!r}: pass --experiment= one of "
                         f"{', '.join(configs.all_experiments())}")
    cls = (configs.SinusoidConfig if name in configs.SINUSOID_EXPERIMENTS
           else configs.ClassificationConfig)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: flag.value for k, flag in _OVERRIDES.items()
              if flag.value is not None and k in fields}
    kwargs["seed"] = common_flags.SEED.value
    return configs.make_config(name, **kwargs)


def _strategy(name: str):
    """The tf.distribute strategy named by --distribute (None for "none")."""
    import tensorflow as tf  # noqa: PLC0415

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return None


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    if EXPERIMENT.value in rl_configs.RL_EXPERIMENTS:
        sys.exit(rl_cli.run(
            EXPERIMENT.value, {k: f.value for k, f in _OVERRIDES.items()},
            RL_SET.value, common_flags.SEED.value, common_flags.OUTPUT_DIR.value,
            common_flags.EXPORT_DIR.value))
    try:
        cfg = config_from_flags()
        if not isinstance(cfg, configs.SinusoidConfig):
            classification_experiment.check_data(cfg, common_flags.DATA_DIR.value)
        run_dir = common_flags.OUTPUT_DIR.value or os.path.join("runs", cfg.experiment)
        resumed = config_lib.claim_output_dir(run_dir, cfg,
                                              configs.RESUMABLE_FIELDS)
    except ValueError as e:  # includes OutputDirError and DatasetError
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"[{cfg.experiment}] run directory {run_dir}"
          + (" (resuming)" if resumed else ""), flush=True)
    if isinstance(cfg, configs.SinusoidConfig):
        record = sinusoid_experiment.run(cfg, run_dir)
    else:
        try:
            record = classification_experiment.run(
                cfg, run_dir, common_flags.DATA_DIR.value, CACHE_DIR.value,
                _strategy(DISTRIBUTE.value), EVALUATE_ONLY.value)
        except DatasetError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
    print(f"[{cfg.experiment}] {record['status']}; report: "
          f"{os.path.join(run_dir, 'report.md')}", flush=True)
    if common_flags.EXPORT_DIR.value:
        path = export.export_run(run_dir, common_flags.EXPORT_DIR.value)
        print(f"[{cfg.experiment}] exported SavedModel to {path}", flush=True)


def run() -> None:
    """Console-script entry point (`pyproject.toml`): parses flags, runs main."""
    app.run(main)


if __name__ == "__main__":
    run()
