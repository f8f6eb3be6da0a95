#!/usr/bin/env bash
# queue-parts: 18 (tools/queue/run.sh queues this script 18 times; each part resumes the last)
# Issue 12 (magnet loss at convergence), slice: CIFAR-10 hierarchy (vehicles/animals -> 10 classes): seeds 0-2.
# Runs `magnet.study_main --phase=all`: the study's next unfinished units in
# order (grid points, then seed 0's three losses, seed 1's, seed 2's), each
# resuming from its last checkpoint in runs/magnet_study/hierarchy_cifar10/; complete
# units are skipped, so a slice continues what earlier slices left.
# Budget: at most 20 minutes of training (--max_train_minutes;
# evaluations not counted), 40 minutes wall (timeout). Ends by
# regenerating results/magnet_<experiment>_<dataset>/ (results.json, report.md,
# error_curves.png) from every unit finished so far. Refresh the docs tables
# afterwards with: python -m common.docs
set -u
cd /work/main
export OPENBLAS_NUM_THREADS=1  # k-means: threaded BLAS thrashes on a busy machine
timeout 40m .venv/bin/python -m magnet.study_main --study=hierarchy_cifar10 \
  --phase=all --max_train_minutes=20 --data_dir=/work/shared/data
status=$?
.venv/bin/python -m magnet.study_main --study=hierarchy_cifar10 --phase=report \
  --data_dir=/work/shared/data || status=$?
exit $status
