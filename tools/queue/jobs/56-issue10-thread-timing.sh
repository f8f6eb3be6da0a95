#!/usr/bin/env bash
# Issue 10, speed (timing: runs alone in the queue): does a thread-pool setting make
# the Omniglot meta-iteration faster with the same graphs? Times 20w1s and 5w1s,
# second order, under TF's default pools and three others, each in its own process,
# in two interleaved rounds (A B C D A B C D) so the VM's drift shows as the spread
# between rounds; then the Neural ODE block under the same settings. Writes
# results/maml_table1_benchmark/threads.md.
set -euo pipefail
cd /work/main
out=results/maml_table1_benchmark/threads.md
tmp=$(mktemp)
{
  echo "# Thread pools and the second-order Omniglot meta-iteration"
  echo
  echo "$(date -u +%FT%TZ), $(nproc) CPUs, load before start: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo 'Command: `python -m benchmarks.maml_table1_benchmark --only=omniglot_20w1s,omniglot_5w1s'
  echo '--orders=second --iterations=10 --repeats=3 --intra_op_threads=I --inter_op_threads=J`'
  echo '(0 = TensorFlow default); two interleaved rounds, best of 3 x 10 iterations each.'
  echo
} > "$tmp"
for round in 1 2; do
  for pair in "0 0" "1 2" "2 1" "1 1"; do
    set -- $pair
    echo "## round $round, intra-op $1, inter-op $2" >> "$tmp"
    echo >> "$tmp"
    .venv/bin/python -m benchmarks.maml_table1_benchmark \
      --only=omniglot_20w1s,omniglot_5w1s --orders=second --iterations=10 --repeats=3 \
      --intra_op_threads="$1" --inter_op_threads="$2" 2>/dev/null | grep -v '^threads:' >> "$tmp"
    echo >> "$tmp"
  done
done
# The same question for the Neural ODE training step (issue 11: an ODE-Net epoch
# takes ~11 min): the ODE-Net block benchmark under the same four settings.
echo "## Neural ODE block (python -m benchmarks.neural_ode_block_benchmark --repeats=5)" >> "$tmp"
echo >> "$tmp"
for pair in "0 0" "1 2" "2 1" "1 1"; do
  set -- $pair
  .venv/bin/python -m benchmarks.neural_ode_block_benchmark --repeats=5 \
    --intra_op_threads="$1" --inter_op_threads="$2" 2>/dev/null >> "$tmp"
  echo >> "$tmp"
done
mkdir -p "$(dirname "$out")"
mv "$tmp" "$out"
cat "$out"
