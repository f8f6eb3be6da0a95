"""Drives a `MetaTrainer` to its budget: chunks, checkpoints, logs, resume.

Training runs in chunks of `log_every` iterations (one traced call each). After a
chunk: a progress line, TensorBoard scalars, and every `checkpoint_every`
iterations a checkpoint plus a small `phase_state.json` with the training seconds
spent so far, so a resumed run reports its total compute honestly. A rerun restores
the latest checkpoint and continues; because tasks are drawn from
`(seed, iteration)`, it ends exactly where an uninterrupted run would.

This is not `common.training_loop.run_training`, whose unit is one `step_fn` call
per step with a separate step variable and `loop_state.json`: a `MetaTrainer`
runs a whole chunk of iterations in one traced call and counts them in its own
checkpointed `iteration` variable. Moving to the common loop would change the
checkpoint layout and state file of runs already on disk (the queued sinusoid
seeds resume from them) and the progress lines; the atomic state write is shared
(`common.files`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable

from common import checkpoint, files, progress, summaries
from maml import meta_trainer

PHASE_STATE = "phase_state.json"


@dataclasses.dataclass(frozen=True)
class PhaseResult:
    """What a training phase spent and how it ended.

    Attributes:
        name: Phase name ("maml", "pretrain").
        iterations: Iterations completed.
        target_iterations: The budget asked for.
        train_seconds: Training time summed over all sessions of the run.
        sessions: Number of processes that trained this phase (1 = no restart).
        status: "complete", "cut short" (time limit) or "diverged".
        session_seconds: Training seconds spent in this process.
        iterations_per_second: Rate measured in this session (0 if none ran).
        last_loss: Mean loss of the last chunk (nan when none ran).
    """

    name: str
    iterations: int
    target_iterations: int
    train_seconds: float
    sessions: int
    status: str
    session_seconds: float
    iterations_per_second: float
    last_loss: float


def _read_state(directory: str) -> dict:
    path = os.path.join(directory, PHASE_STATE)
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"train_seconds": 0.0, "sessions": 0}


def _write_state(directory: str, state: dict) -> None:
    files.atomic_write_json(os.path.join(directory, PHASE_STATE), state, indent=None)


def restore_phase(
    name: str, trainer: meta_trainer.MetaTrainer, target: int, run_dir: str
) -> PhaseResult:
    """Restores a phase's latest checkpoint without training (evaluate-only runs).

    The status is "complete" when the checkpoint reached `target`, otherwise
    "cut short".
    """
    ckpt_dir = os.path.join(run_dir, "checkpoints", name)
    checkpoint.Checkpointer(ckpt_dir, trainer=trainer).restore_latest()
    state = _read_state(ckpt_dir)
    done = int(trainer.iteration.numpy())
    status = "complete" if done >= target else "cut short"
    return PhaseResult(
        name,
        done,
        target,
        state["train_seconds"],
        state["sessions"],
        status,
        0.0,
        0.0,
        float("nan"),
    )


def train_phase(
    name: str,
    trainer: meta_trainer.MetaTrainer,
    target: int,
    run_dir: str,
    checkpoint_every: int,
    log_every: int,
    max_seconds: float = 0.0,
    on_checkpoint: Callable[[int], None] | None = None,
) -> PhaseResult:
    """Trains until `target` iterations (or the time limit), resuming if possible.

    Args:
        name: Phase name; checkpoints go to `<run_dir>/checkpoints/<name>` and
            TensorBoard logs to `<run_dir>/tensorboard/<name>`.
        trainer: The trainer, freshly built (its state is restored here).
        target: Total iterations wanted.
        run_dir: The run directory.
        checkpoint_every: Iterations between checkpoints.
        log_every: Iterations per chunk (progress line and summaries).
        max_seconds: Stop after this many seconds of this session (0 = none).
        on_checkpoint: Called with the iteration count after every checkpoint
            (evaluations; its time is not counted as training time).

    Returns:
        A `PhaseResult`.
    """
    ckpt_dir = os.path.join(run_dir, "checkpoints", name)
    ckpt = checkpoint.Checkpointer(ckpt_dir, trainer=trainer)
    ckpt.restore_latest()
    state = _read_state(ckpt_dir)
    done = int(trainer.iteration.numpy())
    if done >= target:
        return PhaseResult(
            name,
            done,
            target,
            state["train_seconds"],
            state["sessions"],
            "complete",
            0.0,
            0.0,
            float("nan"),
        )
    state["sessions"] += 1
    if done:
        print(f"[{name}] resuming from checkpoint at iteration {done}", flush=True)
    writer = summaries.Summaries(os.path.join(run_dir, "tensorboard"), name)
    bar = progress.Progress(name, target, start=done)
    base_seconds = state["train_seconds"]
    status, last_loss = "complete", float("nan")
    while done < target:
        next_ckpt = (done // checkpoint_every + 1) * checkpoint_every
        chunk = min(log_every, target - done, next_ckpt - done)
        stats = trainer.train(chunk)
        done = stats.iteration
        last_loss = stats.loss
        if not math.isfinite(stats.loss):
            status = "diverged"
            print(
                f"[{name}] diverged at iteration {done}: loss {stats.loss}", flush=True
            )
            break
        scalars = {
            "loss": stats.loss,
            "query_loss_pre_update": stats.pre_update_query_loss,
            "query_loss_post_update": stats.post_update_query_loss,
            "iterations_per_second": bar.rate(done),
        }
        writer.scalars(done, scalars)
        if done % log_every == 0 or done == target:
            bar.update(done, loss=stats.loss)
        out_of_time = bool(max_seconds) and bar.elapsed >= max_seconds
        if done % checkpoint_every == 0 or done == target or out_of_time:
            ckpt.save(done)
            state["train_seconds"] = base_seconds + bar.elapsed
            state["iterations"] = done
            _write_state(ckpt_dir, state)
            if on_checkpoint is not None:
                paused = time.perf_counter()
                on_checkpoint(done)
                bar.exclude(time.perf_counter() - paused)
        if out_of_time and done < target:
            status = "cut short"
            print(
                f"[{name}] time limit reached at iteration {done} of {target}",
                flush=True,
            )
            break
    return PhaseResult(
        name,
        done,
        target,
        base_seconds + bar.elapsed,
        state["sessions"],
        status,
        bar.elapsed,
        bar.rate(done),
        last_loss,
    )
