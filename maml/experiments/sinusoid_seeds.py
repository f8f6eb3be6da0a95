"""App. C Table 2 over seeds: `python -m maml.experiments.sinusoid_seeds --part=...`.

Parts:
- `--part=baselines --seeds=0,1`: the multi-task rows and the oracle for each seed,
  into `<runs_dir>/baselines/seed_<s>/` (resumable).
- `--part=report`: aggregates every seed run under `--runs_dir` into
  `--results_dir` (`results.json`, `report.md`, `per_task_mse_k5.npz`) and
  regenerates the results tables of README.md and docs/ (`python -m common.docs`;
  `--nodocs` to skip).

The MAML rows come from `python -m maml.main --experiment=sinusoid --seed=<s>
--output_dir=<runs_dir>/sinusoid/seed_<s>` (and `sinusoid_official`).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from common import config as config_lib  # noqa: E402
from maml.experiments import configs, table2_report  # noqa: E402

PART = flags.DEFINE_enum(
    "part",
    "report",
    ["baselines", "report"],
    "What to do: train the baseline seeds, or aggregate.",
)
SEEDS = flags.DEFINE_list(
    "seeds", ["0", "1", "2", "3", "4"], "Seeds of --part=baselines."
)
RUNS_DIR = flags.DEFINE_string(
    "runs_dir", "runs/maml_sinusoid_seeds", "Directory of the per-seed runs."
)
RESULTS_DIR = flags.DEFINE_string(
    "results_dir",
    "results/maml_sinusoid_seeds",
    "Where --part=report writes the aggregate.",
)
DOCS = flags.DEFINE_bool(
    "docs",
    True,
    "Regenerate the results tables of README.md "
    "and docs/ from results/ (python -m common.docs).",
)
NUM_REGRESSORS = flags.DEFINE_integer(
    "num_regressors", None, "Regressors per multi-task variant (500)."
)
ORACLE_ITERATIONS = flags.DEFINE_integer(
    "oracle_iterations", None, "Training iterations of the oracle (70000)."
)
EVAL_TASKS = flags.DEFINE_integer("eval_tasks", None, "Held-out tasks per K (600).")
REGRESSOR_MIN_STEPS = flags.DEFINE_integer(
    "regressor_min_steps",
    None,
    "Multi-task regressors stop only after this many steps (0: at the target).",
)
BASELINES_DIR = flags.DEFINE_string(
    "baselines_dir",
    "baselines",
    "Sub-directory of --runs_dir for --part=baselines ('baselines_long' holds the "
    "long-training variant that the report shows as extra rows).",
)
MAX_TRAIN_MINUTES = flags.DEFINE_float(
    "max_train_minutes", None, "Time limit of the oracle's training (0 = none)."
)

_OVERRIDES = {
    "num_regressors": NUM_REGRESSORS,
    "oracle_iterations": ORACLE_ITERATIONS,
    "eval_tasks": EVAL_TASKS,
    "max_train_minutes": MAX_TRAIN_MINUTES,
    "regressor_min_steps": REGRESSOR_MIN_STEPS,
}


def baselines_config(seed: int) -> configs.SinusoidBaselinesConfig:
    """The baselines config of one seed, with the given flags applied."""
    overrides = {k: f.value for k, f in _OVERRIDES.items() if f.value is not None}
    return configs.SinusoidBaselinesConfig(seed=seed, **overrides)


def run_baselines(seeds: list[int], runs_dir: str, subdir: str) -> None:
    """Trains and evaluates the baselines of every seed (resuming)."""
    from maml.experiments import (  # noqa: PLC0415 (loads TF)
        sinusoid_baselines_experiment,
    )

    for seed in seeds:
        cfg = baselines_config(seed)
        run_dir = os.path.join(runs_dir, subdir, f"seed_{seed}")
        resumed = config_lib.claim_output_dir(run_dir, cfg, ("max_train_minutes",))
        print(
            f"[baselines] seed {seed}: {run_dir}" + (" (resuming)" if resumed else ""),
            flush=True,
        )
        record = sinusoid_baselines_experiment.run(cfg, run_dir)
        print(f"[baselines] seed {seed}: {record['status']}", flush=True)


def report(runs_dir: str, results_dir: str, refresh_docs: bool) -> None:
    """Aggregates the seeds and regenerates the docs' results tables."""
    record = table2_report.write_aggregate(runs_dir, results_dir)
    print(
        f"[report] {record['status']}: {os.path.join(results_dir, 'report.md')}",
        flush=True,
    )
    if refresh_docs:
        from common import docs  # noqa: PLC0415 (only this part needs it)

        changed = docs.update(".")
        print(
            f"[report] regenerated the tables of {', '.join(changed) or 'nothing'}",
            flush=True,
        )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    try:
        seeds = [int(s) for s in SEEDS.value]
        if PART.value == "baselines":
            for seed in seeds:
                baselines_config(seed)  # validate before anything is written
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if PART.value == "baselines":
        run_baselines(seeds, RUNS_DIR.value, BASELINES_DIR.value)
    else:
        report(RUNS_DIR.value, RESULTS_DIR.value, DOCS.value)


if __name__ == "__main__":
    app.run(main)
