#!/usr/bin/env bash
# Issue 10, MAML omniglot_20w5s (part 2 of 3 queued; a 600-task evaluation costs ~10 CPU-min, so every 1000 iterations and where a script stops): resumable, at most 30 min of
# training in this script (--max_train_minutes=30). Rerunning resumes from the last
# checkpoint in runs/maml_table1/omniglot_20w5s; a part that finds the run complete only
# re-renders the report. At the end the results (results.json, report.md,
# evaluations.json, config.json, figures; not checkpoints) are copied to
# results/maml_table1/omniglot_20w5s.
set -euo pipefail
cd /work/main
run=runs/maml_table1/omniglot_20w5s
out=results/maml_table1/omniglot_20w5s
.venv/bin/python -m maml.main --experiment=omniglot_20w5s --output_dir=$run \
  --data_dir=/work/shared/data --cache_dir=runs/cache --max_train_minutes=30 --eval_every=1000
mkdir -p $out
cp $run/results.json $run/report.md $run/config.json $out/
cp $run/evaluations.json $out/ 2>/dev/null || true
cp $run/*.png $out/ 2>/dev/null || true
.venv/bin/python -m maml.experiments.table1_summary --results_dir=results/maml_table1 || true
echo "copied $run -> $out"
