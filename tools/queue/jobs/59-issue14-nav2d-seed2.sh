#!/usr/bin/env bash
# queue-parts: 4 (tools/queue/run.sh queues this script 4 times; each part resumes the last)
# Issue 14: MAML 2D navigation (App. C Table 4, Fig. 4), full protocol, seed 2,
# one of 4 queued parts (tools/queue/maml_rl_part.sh), then the pool over the 3 seeds (results/maml_rl_nav2d).
set -euo pipefail
cd /work/main
tools/queue/maml_rl_part.sh navigation_2d 2 maml_rl_nav2d_seed2 maml_rl_nav2d_seed2
.venv/bin/python -m maml.experiments.rl_seed_summary results/maml_rl_nav2d \
  runs/maml_rl_nav2d_seed0 runs/maml_rl_nav2d_seed1 runs/maml_rl_nav2d_seed2
