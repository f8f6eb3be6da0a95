#!/usr/bin/env bash
# Issue 11: seconds per latent-ODE training iteration on 1000 training spirals at the new
# tolerances (rtol 1e-7, atol 1e-8; target <= 0.15 s/iteration), and the ODE-Net block
# benchmark (forward+backward, full norm and seminorm). Timing only, a few minutes. Output in
# the queue log; a copy goes to results/neural_ode_benchmarks/issue11_benchmarks.txt.
set -u
cd /work/main
mkdir -p results/neural_ode_benchmarks
out=results/neural_ode_benchmarks/issue11_benchmarks.txt
{
  echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
  timeout 20m .venv/bin/python -m benchmarks.latent_ode_benchmark --num_spirals=1250 --iterations=30
  timeout 15m .venv/bin/python -m benchmarks.neural_ode_block_benchmark
} 2>&1 | grep -v "^[IWE]0000\|^WARNING" | tee $out
