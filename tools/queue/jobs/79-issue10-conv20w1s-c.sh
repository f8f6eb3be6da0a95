#!/usr/bin/env bash
# Issue 10, MAML omniglot_20w1s, part 3 of 3: at most 30 more minutes of training, resuming
# runs/maml_table1/omniglot_20w1s (tools/queue/maml_table1_part.sh).
set -euo pipefail
cd /work/main
tools/queue/maml_table1_part.sh omniglot_20w1s 30 --eval_every=500
