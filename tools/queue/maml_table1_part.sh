#!/usr/bin/env bash
# One part of a queued MAML Omniglot run (issue 10): trains EXPERIMENT for at most
# MINUTES of training in runs/maml_table1/<EXPERIMENT> (resuming the previous part;
# a part that finds the run complete only re-renders the report), copies its
# outputs (results.json, report.md, config.json, evaluations.json, figures; not
# checkpoints) to results/maml_table1/<EXPERIMENT> and rebuilds the summary.
# Further arguments go to maml.main (e.g. --eval_every=1000).
# Usage: tools/queue/maml_table1_part.sh EXPERIMENT MINUTES [FLAG...]
set -euo pipefail
cd "$(dirname "$0")/../.."
experiment=$1 minutes=$2
shift 2
run=runs/maml_table1/$experiment out=results/maml_table1/$experiment
.venv/bin/python -m maml.main --experiment="$experiment" --output_dir="$run" \
  --data_dir=/work/shared/data --cache_dir=runs/cache \
  --max_train_minutes="$minutes" "$@"
mkdir -p "$out"
cp "$run"/results.json "$run"/report.md "$run"/config.json "$out"/
cp "$run"/evaluations.json "$out"/ 2>/dev/null || true
cp "$run"/*.png "$out"/ 2>/dev/null || true
.venv/bin/python -m maml.experiments.table1_summary --results_dir=results/maml_table1 || true
echo "copied $run -> $out"
