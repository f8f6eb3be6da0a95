#!/usr/bin/env bash
# End of a session: keep unfinished runs' state and the jobs not yet done in git
# (see tools/queue/README.md). Usage: tools/queue/save_state.sh RUN_DIR...
# where each RUN_DIR (under runs/) is a run to carry over (TensorBoard logs and
# dataset caches are left out). RUN_DIR:results keeps a finished run's outputs
# without its checkpoints (enough for reports that aggregate it).
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf tools/queue/jobs && mkdir -p tools/queue/jobs
for job in runs/queue/running/*.sh runs/queue/pending/*.sh runs/queue/hold/*.sh; do
    [ -e "$job" ] && cp "$job" tools/queue/jobs/
done
rm -rf resume_state && mkdir -p resume_state
for spec in "$@"; do
    run=${spec%:results}
    extra=()
    [ "$run" != "$spec" ] && extra=(--exclude=checkpoints)
    rel=${run#runs/}
    mkdir -p "resume_state/$rel"
    tar -C "runs/$rel" --exclude=tensorboard --exclude=cache "${extra[@]}" -cf - . \
        | tar -C "resume_state/$rel" -xf -
done
du -sh resume_state tools/queue/jobs
