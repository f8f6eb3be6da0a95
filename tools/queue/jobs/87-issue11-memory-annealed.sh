#!/usr/bin/env bash
# Issue 11, memory (Table 1's O(1) vs O(L~) claim) on the annealed ODE-Net of
# runs/neural_ode_mnist_annealed: its trained dynamics on stem features of 32 test images,
# adjoint with the paper's full norm over growing T vs backprop through L RK4 steps. Peak
# memory needs TF_CPU_ALLOCATOR_USE_BFC, which neural_ode.main requests itself. Writes
# runs/neural_ode_memory_annealed (resumable: finished settings are kept in partial.json)
# and copies results.json/report.md/memory.png to results/neural_ode_memory_annealed/.
# Budget: 40 min wall.
set -u
cd /work/main
RUN=runs/neural_ode_memory_annealed
timeout 40m .venv/bin/python -m neural_ode.main --experiment=memory --output_dir=$RUN \
  --set source_dir=runs/neural_ode_mnist_annealed
status=$?
R=results/neural_ode_memory_annealed
mkdir -p $R
cp $RUN/results.json $RUN/report.md $RUN/config.json $RUN/memory.png $R/ 2>/dev/null
# Refresh results/neural_ode_issue11_SUMMARY.md (README-ready tables of all issue-11 runs).
.venv/bin/python -m neural_ode.experiments.issue11_summary || true
exit $status
