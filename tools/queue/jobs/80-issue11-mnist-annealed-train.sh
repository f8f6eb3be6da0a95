#!/usr/bin/env bash
# queue-parts: 8 (tools/queue/run.sh queues this script 8 times; each part resumes the last)
# Issue 11, MNIST Table 1 (ResNet / RK-Net / ODE-Net) at a compressed, annealed schedule:
# 8 epochs each, learning rate 0.1 divided by 10 after epochs 3/5/7 (37.5/62.5/87.5% of the
# budget, as the authors' 60/100/140 of 160), ODE-Net with the paper's full-norm adjoint,
# RK-Net RK4 steps matched to the ODE-Net's mean forward NFE (so the ODE-Net trains first).
# This script (one of the identical parts of this job) trains the first unfinished model in the
# order odenet, resnet, rknet for at most 34 training minutes (max_train_minutes), then
# evaluates it and writes runs/neural_ode_mnist_annealed/{results.json,report.md}.
# Resumable: every script resumes from the latest checkpoint; when all three models are
# trained it exits at once. Budget: 40 min wall (timeout).
set -u
cd /work/main
RUN=runs/neural_ode_mnist_annealed
TOTAL=3744  # 8 epochs x 468 steps of 128 images
step_of() {
  f=$RUN/checkpoints/$1/checkpoint
  s=$( [ -f $f ] && sed -n 's/^model_checkpoint_path: "ckpt-\([0-9]*\)"$/\1/p' $f )
  echo ${s:-0}
}
pick=""
for m in odenet resnet rknet; do
  if [ "$(step_of $m)" -lt $TOTAL ]; then pick=$m; break; fi
done
if [ -z "$pick" ]; then echo "all three models trained"; exit 0; fi
# Thread pools: the ODE-Net block's forward+backward is 21% faster with one thread
# per op and two ops at a time (results/maml_table1_benchmark/threads.md); the
# ResNet and RK-Net were not timed that way and keep TensorFlow's default.
threads=""
if [ "$pick" = odenet ]; then threads="--set intra_op_threads=1 --set inter_op_threads=2"; fi
echo "training $pick from step $(step_of $pick)"
timeout 40m .venv/bin/python -m neural_ode.main --experiment=mnist --output_dir=$RUN \
  --set models=$pick --set epochs=8 --set max_train_minutes=34 --set log_every=100 $threads
