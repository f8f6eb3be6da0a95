#!/usr/bin/env bash
# Issue 13 item 3: MAML on a Keras model vs the explicit-weight path (target <= 1.5x).
set -euo pipefail
cd /work/main
mkdir -p results/maml_keras_wrapper_benchmark
PYTHONPATH=. .venv/bin/python -m benchmarks.maml_keras_wrapper_benchmark --iterations=3000 --repeats=3 2>/dev/null | tee results/maml_keras_wrapper_benchmark/benchmark.md
uptime | tee -a results/maml_keras_wrapper_benchmark/benchmark.md
