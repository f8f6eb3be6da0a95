#!/usr/bin/env bash
# Issue 12, speed (timing: runs alone in the queue): magnet, softmax and triplet
# fit steps (CIFAR-10 shape, augmentation on, as the study trains them) under
# TensorFlow's default thread pools and under intra-op 1 / inter-op 2 (faster for
# Omniglot 5w1s and the ODE-Net block, results/maml_table1_benchmark/threads.md).
# Two interleaved rounds, each setting in its own process.
# Writes results/magnet_benchmark/threads.md.
set -euo pipefail
cd /work/main
out=results/magnet_benchmark/threads.md
tmp=$(mktemp)
{
  echo "# Thread pools and the magnet-study training steps"
  echo
  echo "$(date -u +%FT%TZ), $(nproc) CPUs, load before start: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo 'Command: `python -m benchmarks.magnet_benchmark --augment --repeats=60'
  echo '--intra_op_threads=I --inter_op_threads=J` (0 = TensorFlow default).'
  echo
} > "$tmp"
for round in 1 2; do
  for pair in "0 0" "1 2"; do
    set -- $pair
    echo "## round $round, intra-op $1, inter-op $2" >> "$tmp"
    echo >> "$tmp"
    .venv/bin/python -m benchmarks.magnet_benchmark --augment --repeats=60 \
      --intra_op_threads="$1" --inter_op_threads="$2" 2>/dev/null >> "$tmp"
    echo >> "$tmp"
  done
done
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
cat "$out"
