#!/usr/bin/env bash
# queue-parts: 4 (tools/queue/run.sh queues this script 4 times; each part resumes the last)
# Issue 14: MAML half-cheetah forward/backward (App. C Table 5), budgeted run,
# one of 4 queued parts (each trains at most 38 min; together about 2.5 h), seed 0.
# Rerunning resumes from the last checkpoint; the report states the budget.
set -euo pipefail
cd /work/main
RUN=runs/maml_rl_cheetah_seed0
.venv/bin/python -m maml.main --experiment=halfcheetah_dir --seed=0 \
  --output_dir=$RUN --max_train_minutes=38 --export_dir=$RUN/export
OUT=results/maml_rl_cheetah
mkdir -p $OUT
cp $RUN/results.json $RUN/report.md $RUN/config.json $RUN/*.png $RUN/history_*.json $OUT/
