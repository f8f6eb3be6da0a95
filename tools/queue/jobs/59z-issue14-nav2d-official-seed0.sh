#!/usr/bin/env bash
# queue-parts: 2 (tools/queue/run.sh queues this script 2 times; each part resumes the last)
# Issue 14: the official code's 2D-navigation configuration (navigation_2d_official:
# alpha 0.5 at training, evaluated at 0.5 then 0.25, as maml_examples/test_maml_point.py)
# at the full protocol, seed 0, beside the paper's (alpha 0.1, then 0.05). After the
# first step the paper's configuration varies widely between seeds (seed 0: -9.71 and
# -8.46 after 2 and 3 steps, seed 1: -2.74 and -4.23); this run shows how the official
# step sizes behave on the same seed.
set -euo pipefail
cd /work/main
tools/queue/maml_rl_part.sh navigation_2d_official 0 maml_rl_nav2d_official_seed0 \
  maml_rl_nav2d_official_seed0
