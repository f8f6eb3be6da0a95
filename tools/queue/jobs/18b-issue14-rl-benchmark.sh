#!/usr/bin/env bash
# Issue 14: timing benchmark of MAML-TRPO meta-iterations (2D navigation full
# protocol projection; half-cheetah seconds per meta-iteration), exact and 20%
# Hessian-vector-product subsampling. About 15 min.
set -euo pipefail
cd /work/main
mkdir -p results/maml_rl_benchmark
.venv/bin/python -m benchmarks.maml_rl_benchmark --iterations=3 \
  | tee results/maml_rl_benchmark/benchmark.md
