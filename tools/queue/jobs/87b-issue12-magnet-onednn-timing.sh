#!/usr/bin/env bash
# Timing (runs alone in the queue), before the magnet-loss studies: does TensorFlow's
# oneDNN help the magnet trainer on a CPU where TF leaves it off (AVX2-only, e.g. AMD
# EPYC)? maml.main and neural_ode.main request it (results/machine/onednn.md); magnet
# keeps TF's default until this says. Times one fit step of each loss and one refresh
# (10,000 embedded images), oneDNN off then on, one round.
# Writes results/machine/onednn_magnet.md. Budget: at most 25 minutes.
set -euo pipefail
cd /work/main
out=results/machine/onednn_magnet.md
tmp=$(mktemp)
{
  echo "# Magnet trainer: TensorFlow's oneDNN kernels off vs on"
  echo
  echo "$(date -u +%FT%TZ), $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1),"
  echo "load before start: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo 'Command: `TF_ENABLE_ONEDNN_OPTS=X python -m benchmarks.magnet_benchmark --repeats=30'
  echo '--num_train=10000` (median fit-step seconds of each loss, then one refresh).'
  echo
} > "$tmp"
for round in 1; do
  for onednn in 0 1; do
    echo "## round $round, TF_ENABLE_ONEDNN_OPTS=$onednn" >> "$tmp"
    echo >> "$tmp"
    TF_ENABLE_ONEDNN_OPTS=$onednn timeout 12m .venv/bin/python -m benchmarks.magnet_benchmark \
      --repeats=30 --num_train=10000 2>/dev/null >> "$tmp" || echo "(timed out or failed)" >> "$tmp"
    echo >> "$tmp"
  done
done
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
cat "$out"
