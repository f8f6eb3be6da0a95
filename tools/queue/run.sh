#!/usr/bin/env bash
# Runs the queued jobs one at a time (see tools/queue/README.md).
set -uo pipefail
cd "$(dirname "$0")/../.."
mkdir -p runs/queue/pending runs/queue/running runs/queue/done runs/queue/failed \
    runs/queue/logs
if [ -d resume_state ]; then
    # Restore unfinished runs saved by save_state.sh (never over newer files).
    cp -r --update resume_state/. runs/
fi
# A job left in running/ by a runner that ended with its session, whose process
# is gone, goes back to pending/ (it resumes from its checkpoint).
for job in runs/queue/running/*.sh; do
    [ -e "$job" ] || continue
    if ! pgrep -f "$job" > /dev/null; then
        mv "$job" runs/queue/pending/
        echo "$(date -u +%FT%TZ) requeued $(basename "$job") (no process)" \
            >> runs/queue/runner.log
    fi
done
# A job with a "# queue-parts: N" line is queued N times (NAME-p01.sh, ...): one
# resumable script that needs several sittings of at most ~40 minutes.
for job in tools/queue/jobs/*.sh; do
    [ -e "$job" ] || continue
    name=$(basename "$job" .sh)
    parts=$(sed -n 's/^# queue-parts: \([0-9]*\).*/\1/p' "$job")
    names=("$name.sh")
    if [ -n "$parts" ]; then
        names=(); for i in $(seq 1 "$parts"); do names+=("$(printf "%s-p%02d.sh" "$name" "$i")"); done
    fi
    for n in "${names[@]}"; do
        # A job in running/ belongs to a runner stopped mid-job (its process may
        # still be running): it is not queued a second time.
        [ -e "runs/queue/done/$n" ] || [ -e "runs/queue/pending/$n" ] || \
            [ -e "runs/queue/running/$n" ] || \
            grep -v '^# queue-parts:' "$job" > "runs/queue/pending/$n"
    done
done
while true; do
    # `touch runs/queue/PAUSE` holds the queue after the running job (to time
    # or profile something alone); removing the file lets it go on.
    if [ -e runs/queue/PAUSE ]; then sleep 20; continue; fi
    job=$(ls runs/queue/pending/*.sh 2>/dev/null | sort | head -1)
    if [ -z "$job" ]; then sleep 20; continue; fi
    name=$(basename "$job")
    mv "$job" "runs/queue/running/$name"
    echo "$(date -u +%FT%TZ) start $name" >> runs/queue/runner.log
    if bash "runs/queue/running/$name" > "runs/queue/logs/${name%.sh}.log" 2>&1; then
        mv "runs/queue/running/$name" runs/queue/done/; status=ok
    else
        mv "runs/queue/running/$name" runs/queue/failed/; status=FAILED
    fi
    echo "$(date -u +%FT%TZ) $status $name" >> runs/queue/runner.log
    # The docs' result tables follow results/ (python -m common.docs).
    .venv/bin/python -m common.docs >> runs/queue/runner.log 2>&1 || true
done
