#!/usr/bin/env bash
# Issue 10 (speed): where a second-order Omniglot 20w1s / 5w1s meta-iteration spends
# its time, by op type (benchmarks.maml_table1_benchmark --profile_ops), measured
# alone on the 2 cores, then 20w1s timed without the profiler over 3 repeats of 10
# iterations (the table's figure uses 2 of 3). Writes
# results/maml_table1_benchmark/op_profile.md. Budget: about 4 minutes.
set -euo pipefail
cd /work/main
out=results/maml_table1_benchmark/op_profile.md
{
  echo "# Kernel time by op type, second-order MAML meta-iteration (alone on the machine)"
  echo
  echo "$(date -u +%FT%TZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Command: \`python -m benchmarks.maml_table1_benchmark --profile_ops"
  echo "--only=omniglot_20w1s,omniglot_5w1s --iterations=5\`"
  .venv/bin/python -m benchmarks.maml_table1_benchmark --profile_ops \
    --only=omniglot_20w1s,omniglot_5w1s --iterations=5 2>/dev/null
  echo
  echo "Without the profiler: \`python -m benchmarks.maml_table1_benchmark"
  echo "--only=omniglot_20w1s --iterations=10 --repeats=3\`"
  echo
  .venv/bin/python -m benchmarks.maml_table1_benchmark --only=omniglot_20w1s \
    --iterations=10 --repeats=3 2>/dev/null
} > "$out.tmp"
mv "$out.tmp" "$out"
