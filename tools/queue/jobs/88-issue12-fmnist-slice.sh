#!/usr/bin/env bash
# queue-parts: 8 (tools/queue/run.sh queues this script 8 times; each part resumes the last)
# Issue 12 (magnet loss at convergence), slice: Fashion-MNIST classification: grid, then seeds 0-2.
# Runs `magnet.study_main --phase=all`: the study's next unfinished units in
# order (grid points, then seed 0's three losses, seed 1's, seed 2's), each
# resuming from its last checkpoint in runs/magnet_study/classification_fashion_mnist/; complete
# units are skipped, so a slice continues what earlier slices left.
# Budget: at most 20 minutes of training (--max_train_minutes;
# evaluations not counted), 40 minutes wall (timeout). Ends by
# regenerating results/magnet_<experiment>_<dataset>/ (results.json, report.md,
# error_curves.png) from every unit finished so far. Refresh the docs tables
# afterwards with: python -m common.docs
set -u
cd /work/main
export OPENBLAS_NUM_THREADS=1  # k-means: threaded BLAS thrashes on a busy machine
timeout 40m .venv/bin/python -m magnet.study_main --study=classification_fashion_mnist \
  --phase=all --max_train_minutes=20 --data_dir=/work/shared/data
status=$?
.venv/bin/python -m magnet.study_main --study=classification_fashion_mnist --phase=report \
  --data_dir=/work/shared/data || status=$?
exit $status
