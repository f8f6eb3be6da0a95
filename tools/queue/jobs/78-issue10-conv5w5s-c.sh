#!/usr/bin/env bash
# Issue 10, MAML omniglot_5w5s, part 3 of 3: at most 30 more minutes of training, resuming
# runs/maml_table1/omniglot_5w5s (tools/queue/maml_table1_part.sh).
set -euo pipefail
cd /work/main
tools/queue/maml_table1_part.sh omniglot_5w5s 30
