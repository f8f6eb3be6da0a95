#!/usr/bin/env bash
# Issue 11, spirals: pools the six runs (noise 0.3 and 0.1, seeds 0-2) into Table 2 over
# seeds (neural_ode.experiments.spiral_seeds; no training, seconds). Writes runs/neural_ode_spiral_seeds
# and copies results.json/report.md to results/neural_ode_spiral_seeds/.
set -u
cd /work/main
dirs=""
for noise in 0.3 0.1; do for s in 0 1 2; do
  d=runs/neural_ode_spirals_noise${noise}_seed$s
  [ -f $d/results.json ] && dirs="$dirs,$d"
done; done
dirs=${dirs#,}
timeout 10m .venv/bin/python -m neural_ode.main --experiment=spiral_seeds \
  --set run_dirs=$dirs --output_dir=runs/neural_ode_spiral_seeds
status=$?
mkdir -p results/neural_ode_spiral_seeds
cp runs/neural_ode_spiral_seeds/results.json runs/neural_ode_spiral_seeds/report.md \
  runs/neural_ode_spiral_seeds/config.json results/neural_ode_spiral_seeds/ 2>/dev/null
# Refresh results/neural_ode_issue11_SUMMARY.md (README-ready tables of all issue-11 runs).
.venv/bin/python -m neural_ode.experiments.issue11_summary || true
exit $status
