#!/usr/bin/env bash
# Issue 12 (rerun after the k-means speed-up: point norms computed once per k-means): magnet vs softmax vs triplet fit-step time and refresh share of
# training time (benchmarks.magnet_benchmark), CIFAR-10-sized (50,000 images of
# 32x32x3, batch 48, augmentation on); about 5 minutes. Writes
# results/magnet_benchmark/benchmark.json and benchmark.md.
set -eu
cd /work/main
export OPENBLAS_NUM_THREADS=1
mkdir -p results/magnet_benchmark
timeout 20m .venv/bin/python -m benchmarks.magnet_benchmark --num_train=50000 \
  --refresh_every=2500 --reembed_every=10000 --steps=20000 --repeats=100 \
  --output=results/magnet_benchmark/benchmark.json \
  | tee results/magnet_benchmark/benchmark.md
