"""Writes the issue-12 magnet study's queue scripts.

Run: `python -m magnet.experiments.queue_study`.

Each script is a slice of `magnet.study_main --phase=all` with an explicit
training-time budget (`--max_train_minutes`, evaluations not counted) and a
wall-time cap (`timeout`), and ends by regenerating the study's report in
`results/magnet_<experiment>_<dataset>/`. A slice continues the study's next
unfinished units (complete ones are skipped), so re-queueing everything in a
later session (`--force`) continues where the queue stopped.

Order (most decisive first): the CIFAR-10 grid and the CIFAR-10 seeds of
magnet vs triplet vs softmax (band 30), then, after the earlier issues' runs
(issues 10 and 11, bands 60-87), Fashion-MNIST, then the hierarchy studies
(CIFAR-10 vehicles/animals -> 10 classes, Omniglot alphabets -> characters;
bands 88-90). The timing benchmark goes in band 50.

Scripts are written to a temporary name and renamed into `--queue_dir`, so the
runner never reads a half-written file. Existing scripts of the same name in
pending/, running/ or done/ are left alone unless `--force`.
"""

from __future__ import annotations

import os

from absl import app, flags

from common import files

FLAGS = flags.FLAGS
DATA_DIR = "/work/shared/data"

SLICES = (
    # (file-name prefix, study, slices, what)
    (
        "30-issue12-cifar10",
        "classification_cifar10",
        8,
        "CIFAR-10 classification: grid, then seeds 0-2 of magnet, triplet, softmax",
    ),
    (
        "88-issue12-fmnist",
        "classification_fashion_mnist",
        6,
        "Fashion-MNIST classification: grid, then seeds 0-2",
    ),
    (
        "89-issue12-hier-cifar10",
        "hierarchy_cifar10",
        6,
        "CIFAR-10 hierarchy (vehicles/animals -> 10 classes): seeds 0-2",
    ),
    (
        "90-issue12-hier-omniglot",
        "hierarchy_omniglot_alphabets",
        4,
        "Omniglot hierarchy (alphabets -> characters): seeds 0-2",
    ),
)
"""Each study is cut into slices of `TRAIN_MINUTES` of training; the slice counts
are estimates (CIFAR-10: 14 grid points of ~2 training minutes and 9 runs of ~15
at ~40 ms a step), so a later session may need to re-queue (`--force`)."""

# Evaluations, k-means refreshes and unit start-up add about 60% to the training
# minutes (Fashion-MNIST grid, 2026-12-02: two 25-minute slices both reached the
# 40-minute wall cap and were killed mid-unit), so a slice trains for 20.
TRAIN_MINUTES = 20
WALL_MINUTES = 40


def script(prefix: str, study: str, index: int, count: int, what: str) -> str:
    """The bash text of slice `index` (1-based) of a study."""
    return f"""#!/usr/bin/env bash
# Issue 12 (magnet loss at convergence), slice {index} of {count}: {what}.
# Runs `magnet.study_main --phase=all`: the study's next unfinished units in
# order (grid points, then seed 0's three losses, seed 1's, seed 2's), each
# resuming from its last checkpoint in runs/magnet_study/{study}/; complete
# units are skipped, so a slice continues what earlier slices left.
# Budget: at most {TRAIN_MINUTES} minutes of training (--max_train_minutes;
# evaluations not counted), {WALL_MINUTES} minutes wall (timeout). Ends by
# regenerating results/magnet_<experiment>_<dataset>/ (results.json, report.md,
# error_curves.png) from every unit finished so far. Refresh the docs tables
# afterwards with: python -m common.docs
set -u
cd /work/main
export OPENBLAS_NUM_THREADS=1  # k-means: threaded BLAS thrashes on a busy machine
timeout {WALL_MINUTES}m .venv/bin/python -m magnet.study_main --study={study} \\
  --phase=all --max_train_minutes={TRAIN_MINUTES} --data_dir={DATA_DIR}
status=$?
.venv/bin/python -m magnet.study_main --study={study} --phase=report \\
  --data_dir={DATA_DIR} || status=$?
exit $status
"""


BENCHMARK = """#!/usr/bin/env bash
# Issue 12: magnet vs softmax vs triplet fit-step time and refresh share of
# training time (benchmarks.magnet_benchmark), CIFAR-10-sized (50,000 images of
# 32x32x3, batch 48, augmentation on); about 5 minutes. Writes
# results/magnet_benchmark/benchmark.json and benchmark.md.
set -eu
cd /work/main
export OPENBLAS_NUM_THREADS=1
mkdir -p results/magnet_benchmark
timeout 20m .venv/bin/python -m benchmarks.magnet_benchmark --num_train=50000 \\
  --refresh_every=2500 --reembed_every=10000 --steps=20000 --repeats=100 \\
  --output=results/magnet_benchmark/benchmark.json \\
  | tee results/magnet_benchmark/benchmark.md
"""


def _queued(name: str, queue_dir: str) -> bool:
    root = os.path.dirname(os.path.abspath(queue_dir))
    return any(
        os.path.exists(os.path.join(root, sub, name))
        for sub in ("pending", "running", "done")
    )


def write(queue_dir: str, force: bool) -> list[str]:
    """Writes every script not already queued; returns the names written."""
    os.makedirs(queue_dir, exist_ok=True)
    written = []
    items = [
        (f"{prefix}-slice{i:02d}.sh", script(prefix, study, i, count, what))
        for prefix, study, count, what in SLICES
        for i in range(1, count + 1)
    ]
    items.append(("50-issue12-magnet-benchmark.sh", BENCHMARK))
    for name, text in items:
        if not force and _queued(name, queue_dir):
            continue
        path = os.path.join(queue_dir, name)
        files.atomic_write_text(path, text)  # The runner runs it with bash.
        os.chmod(path, 0o755)
        written.append(name)
    return written


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    for name in write(FLAGS.queue_dir, FLAGS.force):
        print(f"queued {name}")


if __name__ == "__main__":
    flags.DEFINE_string(
        "queue_dir", "runs/queue/pending", "Where the runner picks up scripts."
    )
    flags.DEFINE_bool("force", False, "Rewrite scripts already queued or done.")
    app.run(main)
