#!/usr/bin/env bash
# Issue 10, sinusoid App. C Table 2, extra variant of the multi-task rows: the same
# 500 regressors per variant, but each trained at least 10,000 steps (not only until
# its grid MSE is below 0.02), so the l2 / reg-to-mean regularisers act longer.
# Seed 0. The oracle is not retrained here (its row comes from baselines/).
# Writes runs/maml_sinusoid_seeds/baselines_long/seed_0/ (resumable per variant),
# then aggregates every seed run into results/maml_sinusoid_seeds/ and refreshes
# the Table 2 tables of docs/maml.md (the variant appears as extra 'long training' rows).
# Budget: at most 40 minutes of training (timeout); about 20-30 min expected.
set -u
cd /work/main
status=0
timeout 40m .venv/bin/python -m maml.experiments.sinusoid_seeds --part=baselines --seeds=0 --baselines_dir=baselines_long --regressor_min_steps=10000 --oracle_iterations=0 || status=$?
.venv/bin/python -m maml.experiments.sinusoid_seeds --part=report || status=$?
exit $status
