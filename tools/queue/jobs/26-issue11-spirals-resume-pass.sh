#!/usr/bin/env bash
# queue-parts: 3 (tools/queue/run.sh queues this script 3 times; each part resumes the last)
# Issue 11, spirals: a resume pass over the six seed/noise runs of scripts 20-25 (passes
# 26, 27, 28 are identical). A complete run is skipped; a run cut short by its budget
# resumes from its checkpoint (every 100 iterations) for at most 12 training minutes, then
# re-evaluates and rewrites its report, copied to results/neural_ode_spirals_noise*_seed*.
# No new run starts after 26 minutes, so the script stays within 40 min (also a timeout).
set -u
cd /work/main
start=$SECONDS
for noise in 0.3 0.1; do for s in 0 1 2; do
  d=runs/neural_ode_spirals_noise${noise}_seed$s
  if .venv/bin/python -c "import json, sys; sys.exit(json.load(open('$d/results.json'))['status'] != 'complete')" 2>/dev/null; then
    echo "$d complete"; continue
  fi
  if [ $((SECONDS - start)) -gt 1560 ]; then echo "time budget used; next pass resumes"; break 2; fi
  timeout $((2400 - (SECONDS - start)))s .venv/bin/python -m neural_ode.main \
    --experiment=spirals --seed=$s --set noise_std=$noise --set max_train_minutes=12 \
    --set log_every=250 --set checkpoint_every=100 --output_dir=$d
  if [ -f $d/results.json ]; then
    r=results/neural_ode_spirals_noise${noise}_seed$s; mkdir -p $r
    cp $d/results.json $d/report.md $d/config.json $r/; cp $d/*.png $r/ 2>/dev/null || true
  fi
done; done
exit 0
