#!/usr/bin/env bash
# Issue 10: seconds per meta-iteration of every MAML Table 1 configuration (conv4
# cells, non-conv BN-MLP rows, context vector; second and first order) with the
# grouped-convolution inner loop (the default since 2026-12-01). Timing only, no
# training run; about 10-20 minutes. Output: runs/maml_table1_benchmark/table.md,
# copied to results/maml_table1_benchmark/table.md.
set -euo pipefail
cd /work/main
out=runs/maml_table1_benchmark
mkdir -p $out results/maml_table1_benchmark
{ echo "# python -m benchmarks.maml_table1_benchmark --iterations=3 --repeats=2"
  echo "# $(date -u +%FT%TZ), $(nproc) cores; load before start: $(cut -d' ' -f1-3 /proc/loadavg)"
  .venv/bin/python -m benchmarks.maml_table1_benchmark --iterations=3 --repeats=2
} > $out/table.md.tmp
mv $out/table.md.tmp $out/table.md
cp $out/table.md results/maml_table1_benchmark/table.md
cat $out/table.md
