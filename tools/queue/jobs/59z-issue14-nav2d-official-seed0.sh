#!/usr/bin/env bash
# queue-parts: 2 (tools/queue/run.sh queues this script 2 times; each part resumes the last)
# Issue 14: the official code's 2D-navigation configuration (navigation_2d_official:
# alpha 0.5 at training, evaluated at 0.5 then 0.25, as maml_examples/test_maml_point.py)
# at the full protocol, seed 0, beside the paper's (alpha 0.1, then 0.05). Seed 0 of the
# paper's configuration improves little after the first step (-12.05 -> -9.71 -> -8.46,
# short of the published steps 2-3); this run shows whether the published steps 2-3
# come from the official step sizes.
set -euo pipefail
cd /work/main
tools/queue/maml_rl_part.sh navigation_2d_official 0 maml_rl_nav2d_official_seed0 \
  maml_rl_nav2d_official_seed0
