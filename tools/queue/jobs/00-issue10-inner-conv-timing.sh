#!/usr/bin/env bash
# Issue 10 (20w1s speed target): the batched inner loop's convolution, "patches"
# (depthwise im2col + batched matmul, the default) against "grouped" (one oneDNN
# grouped convolution, tasks folded into channels), for the conv cells, second and
# first order, measured alone. Timing only; about 10 minutes. Output:
# runs/maml_inner_conv_timing/table.md, copied to results/maml_table1_benchmark/inner_conv.md.
set -euo pipefail
cd /work/main
out=runs/maml_inner_conv_timing
mkdir -p $out results/maml_table1_benchmark
{ echo "# python -m benchmarks.maml_table1_benchmark --iterations=3 --repeats=2 --support_conv_impl=patches,grouped --only=omniglot_5w1s,omniglot_20w1s,omniglot_5w5s,miniimagenet_5w1s"
  echo "# $(date -u +%FT%TZ), $(nproc) cores; load before start: $(cut -d' ' -f1-3 /proc/loadavg)"
  .venv/bin/python -m benchmarks.maml_table1_benchmark --iterations=3 --repeats=2 \
    --support_conv_impl=patches,grouped \
    --only=omniglot_5w1s,omniglot_20w1s,omniglot_5w5s,miniimagenet_5w1s
} > $out/table.md.tmp
mv $out/table.md.tmp $out/table.md
cp $out/table.md results/maml_table1_benchmark/inner_conv.md
cat $out/table.md
