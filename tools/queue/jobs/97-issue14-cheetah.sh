#!/usr/bin/env bash
# queue-parts: 5 (tools/queue/run.sh queues this script 5 times; each part resumes the last)
# Issue 14: MAML half-cheetah forward/backward (App. C Table 5), budgeted run,
# MAML then the context-vector model (Table 5's two rows), one of 5 queued parts
# (each trains at most 38 min; together about 3 h), seed 0
# (tools/queue/maml_rl_part.sh). The report states the budget.
set -euo pipefail
cd /work/main
tools/queue/maml_rl_part.sh halfcheetah_dir 0 maml_rl_cheetah_seed0 maml_rl_cheetah
