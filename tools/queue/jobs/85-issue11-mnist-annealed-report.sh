#!/usr/bin/env bash
# Issue 11, MNIST Table 1: once the parts of job 80- have trained ResNet, ODE-Net and RK-Net
# (8 annealed epochs each), evaluates all three (no training: every loop restores its last
# checkpoint; a model not yet finished trains for at most 10 more minutes in total) and
# writes runs/neural_ode_mnist_annealed/{results.json,report.md}. The models trained before
# step_memory.json existed get their peak step memory measured on two throwaway steps that are
# undone (mnist_experiment.probe_step_memory). Copies results, config.json and
# the ODE-Net's nfe_log.json to results/neural_ode_mnist_annealed/. Budget: 40 min wall.
set -u
cd /work/main
RUN=runs/neural_ode_mnist_annealed
timeout 40m .venv/bin/python -m neural_ode.main --experiment=mnist --output_dir=$RUN \
  --set models=resnet,rknet,odenet --set epochs=8 --set max_train_minutes=10 \
  --set log_every=100
status=$?
R=results/neural_ode_mnist_annealed
mkdir -p $R
cp $RUN/results.json $RUN/report.md $RUN/config.json $R/ 2>/dev/null
cp $RUN/odenet/nfe_log.json $R/odenet_nfe_log.json 2>/dev/null
cp $RUN/rknet/rk_steps.json $R/rknet_rk_steps.json 2>/dev/null
# Refresh results/neural_ode_issue11_SUMMARY.md (README-ready tables of all issue-11 runs).
.venv/bin/python -m neural_ode.experiments.issue11_summary || true
exit $status
