#!/usr/bin/env bash
# One part of a queued MAML RL run (issue 14): trains EXPERIMENT with SEED for at
# most 38 minutes in runs/<NAME> (resuming the previous part; a part that finds the
# run complete only re-evaluates and rewrites the report), exports the policy, and
# copies the outputs (not checkpoints) to results/<RESULTS>.
# Usage: tools/queue/maml_rl_part.sh EXPERIMENT SEED NAME RESULTS
set -euo pipefail
cd "$(dirname "$0")/../.."
experiment=$1 seed=$2 run=runs/$3 out=results/$4
.venv/bin/python -m maml.main --experiment="$experiment" --seed="$seed" \
  --output_dir="$run" --max_train_minutes=38 --export_dir="$run/export"
mkdir -p "$out"
cp "$run"/results.json "$run"/report.md "$run"/config.json "$run"/*.png \
  "$run"/history_*.json "$out"/
