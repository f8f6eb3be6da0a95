#!/usr/bin/env bash
# Issue 11, spirals Table 2 under the fixed protocol (in-window RMSE cell, extrapolation
# table, plain RNN on the regular grid, time-gap RNN row, rtol 1e-7 / atol 1e-8, gradient
# clipping): one seed (0) at observation noise 0.3, all three models at 30/50/100 points.
# Writes runs/neural_ode_spirals_noise0.3_seed0/ and copies results.json, report.md,
# config.json and the figure to results/neural_ode_spirals_noise0.3_seed0/.
# Resumable: rerunning resumes every loop from its checkpoint (a complete run only
# re-evaluates). Budget: 36 training minutes in the session (max_train_minutes), 40 min wall.
set -u
cd /work/main
d=runs/neural_ode_spirals_noise0.3_seed0
timeout 40m .venv/bin/python -m neural_ode.main --experiment=spirals --seed=0 \
  --set noise_std=0.3 --set max_train_minutes=36 --set log_every=250 --set checkpoint_every=100 \
  --output_dir=$d
status=$?
if [ -f $d/results.json ]; then
  mkdir -p results/neural_ode_spirals_noise0.3_seed0
  cp $d/results.json $d/report.md $d/config.json results/neural_ode_spirals_noise0.3_seed0/
  cp $d/*.png results/neural_ode_spirals_noise0.3_seed0/ 2>/dev/null || true
fi
exit $status
