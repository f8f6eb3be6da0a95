#!/usr/bin/env bash
# End of a session: keep unfinished runs' state and the jobs not yet done in git
# (see tools/queue/README.md). Usage: tools/queue/save_state.sh [RUN_DIR...]
# where each RUN_DIR (under runs/) is a run to carry over (TensorBoard logs and
# dataset caches are left out). RUN_DIR:results keeps a finished run's outputs
# without its checkpoints (enough for reports that aggregate it). Without
# arguments, the runs listed in tools/queue/carry.txt; a listed run that has
# not started yet (no directory) is skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -eq 0 ]; then
    mapfile -t specs < <(grep -v '^[[:space:]]*\(#\|$\)' tools/queue/carry.txt)
    set -- "${specs[@]}"
fi
rm -rf tools/queue/jobs && mkdir -p tools/queue/jobs
# Parts of one job (NAME-pNN.sh, see run.sh) fold back into NAME.sh with a
# "# queue-parts: <parts left>" line.
for job in runs/queue/running/*.sh runs/queue/pending/*.sh runs/queue/hold/*.sh; do
    [ -e "$job" ] || continue
    name=$(basename "$job" .sh)
    base=${name%-p[0-9][0-9]}
    if [ "$base" = "$name" ]; then cp "$job" tools/queue/jobs/; continue; fi
    left=$( (ls runs/queue/running/"$base"-p*.sh runs/queue/pending/"$base"-p*.sh \
        2>/dev/null || true) | wc -l)
    { head -n 1 "$job"; echo "# queue-parts: $left"; tail -n +2 "$job"; } \
        > "tools/queue/jobs/$base.sh"
done
rm -rf resume_state && mkdir -p resume_state
for spec in "$@"; do
    run=${spec%:results}
    extra=()
    [ "$run" != "$spec" ] && extra=(--exclude=checkpoints)
    rel=${run#runs/}
    if [ ! -d "runs/$rel" ]; then echo "not started, skipped: $run"; continue; fi
    mkdir -p "resume_state/$rel"
    tar -C "runs/$rel" --exclude=tensorboard --exclude=cache "${extra[@]}" -cf - . \
        | tar -C "resume_state/$rel" -xf -
done
du -sh resume_state tools/queue/jobs
