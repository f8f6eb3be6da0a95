#!/usr/bin/env bash
# queue-parts: 4 (tools/queue/run.sh queues this script 4 times; each part resumes the last)
# Issue 14: MAML 2D navigation (App. C Table 4, Fig. 4), full protocol, seed 2,
# one of 4 queued parts. Each part trains at most 38 min and resumes the previous part; a part
# that finds the run complete only re-evaluates and rewrites the report.
set -euo pipefail
cd /work/main
RUN=runs/maml_rl_nav2d_seed2
.venv/bin/python -m maml.main --experiment=navigation_2d --seed=2 \
  --output_dir=$RUN --max_train_minutes=38 --export_dir=$RUN/export
OUT=results/maml_rl_nav2d_seed2
mkdir -p $OUT
cp $RUN/results.json $RUN/report.md $RUN/config.json $RUN/*.png $RUN/history_*.json $OUT/
.venv/bin/python -m maml.experiments.rl_seed_summary results/maml_rl_nav2d/summary.md \
  runs/maml_rl_nav2d_seed0 runs/maml_rl_nav2d_seed1 runs/maml_rl_nav2d_seed2
