#!/usr/bin/env bash
# Issue 10, MAML omniglot_context_5w5s, part 2 of 2 (part 1 trained 30 min on
# 2026-12-02): at most 38 more minutes of training, resuming
# runs/maml_table1/omniglot_context_5w5s (tools/queue/maml_table1_part.sh).
set -euo pipefail
cd /work/main
tools/queue/maml_table1_part.sh omniglot_context_5w5s 38
