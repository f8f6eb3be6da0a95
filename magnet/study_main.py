"""Runs the magnet-loss study at convergence (issue 12), resumably, under a budget.

    python -m magnet.study_main --study=classification_cifar10 --phase=grid \
        --losses=softmax,triplet --max_train_minutes=25
    python -m magnet.study_main --study=classification_cifar10 --phase=seeds \
        --seeds=0 --losses=magnet,triplet --max_train_minutes=28
    python -m magnet.study_main --study=classification_cifar10 --phase=report

Studies (`STUDIES`): classification on CIFAR-10 (50,000 images, random crop and
flip) and Fashion-MNIST (60,000), hierarchy on CIFAR-10 (vehicles vs animals ->
the 10 classes; reuses the CIFAR-10 grid's choices) and Omniglot (50 alphabets
-> 1,623 characters; base values, no grid). Runs live in
`runs/magnet_study/<study>/`; `--phase=report` writes
`results/magnet_<experiment>_<dataset>/results.json` and `report.md` (and the
error-curve figure) from whatever has finished, so it can run at any time.

`--phase=grid`, `--phase=seeds` and `--phase=all` (grid, then seeds) run their
units one after another, each resuming where it stopped and skipping complete
ones, until `--max_train_minutes` of training (summed over the units of this
invocation; evaluations not counted) are spent. Seeds run seed by seed (the
three losses of seed 0 first). `seeds` runs a loss only once its grid is
complete (it reports the missing grid and skips the loss otherwise). The queue
scripts (`magnet.experiments.queue_study`) are slices of `--phase=all`: each continues
whatever the previous slices left. Exit status 0 unless an error occurred.

The phases are `magnet.experiments.study_phases`, the report
`magnet.experiments.study_report`; this main parses the flags.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import machine  # noqa: E402  (imports no TensorFlow)

# oneDNN kernels, as magnet.main asks for them (results/machine/onednn_magnet.md).
machine.request_onednn()

import dataclasses  # noqa: E402
import sys  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from common import flags as common_flags  # noqa: E402
from magnet.experiments import study, study_phases, study_report  # noqa: E402

STUDIES = study.STUDIES

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines this main's flags (only when run as a program, so importing the
    module for its functions defines none and cannot clash with other mains)."""
    flags.DEFINE_enum("study", None, list(STUDIES), "Which study.")
    flags.DEFINE_enum(
        "phase",
        "report",
        ["grid", "seeds", "all", "report"],
        "What to do (all: grid, then seeds).",
    )
    flags.DEFINE_list("seeds", None, "Seeds of --phase=seeds (default all).")
    flags.DEFINE_list("losses", None, "Losses to run (default all).")
    flags.DEFINE_float(
        "max_train_minutes", 30.0, "Training minutes this invocation may spend."
    )
    flags.DEFINE_string(
        "results_root", "results", "Where report phases write magnet_<study>/."
    )


def _with_data_dir(cfg: study.StudyConfig, data_dir: str) -> study.StudyConfig:
    return dataclasses.replace(cfg, base=(*cfg.base, ("data_dir", data_dir)))


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    if FLAGS.study is None:
        print("error: --study is required", file=sys.stderr)
        sys.exit(2)
    cfg = _with_data_dir(STUDIES[FLAGS.study], common_flags.DATA_DIR.value)
    losses = FLAGS.losses or list(cfg.losses)
    seeds = [int(s) for s in (FLAGS.seeds or cfg.seeds)]
    unknown = [x for x in losses if x not in cfg.losses]
    if unknown:
        print(f"error: unknown losses {unknown}", file=sys.stderr)
        sys.exit(2)
    if FLAGS.phase == "report":
        out = os.path.join(FLAGS.results_root, f"magnet_{cfg.experiment}_{cfg.dataset}")
        record = study_report.report(cfg, out)
        print(f"[study] {record['status']}; report: {os.path.join(out, 'report.md')}")
        return
    study_phases.run_phase(cfg, FLAGS.phase, losses, seeds, FLAGS.max_train_minutes)


if __name__ == "__main__":
    define_flags()
    app.run(main)
