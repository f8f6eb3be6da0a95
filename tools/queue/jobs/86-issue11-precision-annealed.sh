#!/usr/bin/env bash
# Issue 11, Fig. 3 on the annealed ODE-Net of runs/neural_ode_mnist_annealed (trained with
# the paper's full-norm adjoint): NFE and error vs tolerance on 2000 test images, the
# backward/forward NFE ratio of every training step (the 'about half' claim, full norm), and
# the ratio at the trained weights on 10 training batches with the full norm and with the
# seminorm beside it. Writes runs/neural_ode_precision_annealed and copies
# results.json/report.md/precision.png to results/neural_ode_precision_annealed/.
# Evaluation only (minutes); rerunning redoes it. Budget: 40 min wall.
set -u
cd /work/main
RUN=runs/neural_ode_precision_annealed
timeout 40m .venv/bin/python -m neural_ode.main --experiment=precision --output_dir=$RUN \
  --set source_dir=runs/neural_ode_mnist_annealed
status=$?
R=results/neural_ode_precision_annealed
mkdir -p $R
cp $RUN/results.json $RUN/report.md $RUN/config.json $RUN/precision.png $R/ 2>/dev/null
# Refresh results/neural_ode_issue11_SUMMARY.md (README-ready tables of all issue-11 runs).
.venv/bin/python -m neural_ode.experiments.issue11_summary || true
exit $status
