#!/usr/bin/env bash
# Issue 10, MAML omniglot_context_5w1s, part 2 of 2: at most 38 more minutes of training, resuming
# runs/maml_table1/omniglot_context_5w1s (tools/queue/maml_table1_part.sh).
set -euo pipefail
cd /work/main
tools/queue/maml_table1_part.sh omniglot_context_5w1s 38
