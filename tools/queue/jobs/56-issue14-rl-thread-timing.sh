#!/usr/bin/env bash
# Issue 14, speed (timing: runs alone in the queue): the RL meta-iteration under
# TensorFlow's default thread pools and under intra-op 1 / inter-op 2 (faster for
# Omniglot 5w1s and the ODE-Net block, results/maml_table1_benchmark/threads.md).
# Two interleaved rounds, each setting in its own process: 2D navigation at its
# config's Hessian-vector products (all trajectories), the cheetah at its (20 %).
# Writes results/maml_rl_benchmark/threads.md.
set -euo pipefail
cd /work/main
out=results/maml_rl_benchmark/threads.md
tmp=$(mktemp)
{
  echo "# Thread pools and the MAML-TRPO meta-iteration"
  echo
  echo "$(date -u +%FT%TZ), $(nproc) CPUs, load before start: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo 'Command: `python -m benchmarks.maml_rl_benchmark --experiments=E --hvp_subsamples=S'
  echo '--iterations=N --intra_op_threads=I --inter_op_threads=J` (0 = TensorFlow default).'
  echo
} > "$tmp"
for round in 1 2; do
  for pair in "0 0" "1 2"; do
    set -- $pair
    echo "## round $round, intra-op $1, inter-op $2" >> "$tmp"
    echo >> "$tmp"
    .venv/bin/python -m benchmarks.maml_rl_benchmark --experiments=navigation_2d \
      --hvp_subsamples=1.0 --iterations=4 --intra_op_threads="$1" \
      --inter_op_threads="$2" 2>/dev/null | grep -v '^threads:' >> "$tmp"
    .venv/bin/python -m benchmarks.maml_rl_benchmark --experiments=halfcheetah_dir \
      --hvp_subsamples=0.2 --iterations=2 --intra_op_threads="$1" \
      --inter_op_threads="$2" 2>/dev/null | grep -v '^threads:' | tail -1 >> "$tmp"
    echo >> "$tmp"
  done
done
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
cat "$out"
