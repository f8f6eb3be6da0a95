"""Drives a `MetaTrainer` to its budget: chunks, checkpoints, logs, resume.

The loop is `common.training_loop.run_training` in its chunked form: each call
of the trainer runs up to `log_every` iterations in one traced call, and the
trainer counts them in its own checkpointed `iteration` variable. After a chunk:
a progress line and TensorBoard scalars; every `checkpoint_every` iterations a
checkpoint plus a small `phase_state.json` with the training seconds spent so
far, so a resumed run reports its total compute honestly. A rerun restores the
latest checkpoint and continues; because tasks are drawn from
`(seed, iteration)`, it ends exactly where an uninterrupted run would. The
checkpoint holds the trainer alone and the state file keeps its name, so runs
written before the loops were merged resume unchanged.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable

from common import checkpoint, training_loop
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
        machine: The machine(s) that trained it (`common.machine.spread`).
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
    machine: str = ""


def restore_phase(
    name: str, trainer: meta_trainer.MetaTrainer, target: int, run_dir: str
) -> PhaseResult:
    """Restores a phase's latest checkpoint without training (evaluate-only runs).

    The status is "complete" when the checkpoint reached `target`, otherwise
    "cut short".
    """
    ckpt_dir = os.path.join(run_dir, "checkpoints", name)
    checkpoint.Checkpointer(ckpt_dir, trainer=trainer).restore_latest()
    state = training_loop.read_state(ckpt_dir, PHASE_STATE)
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
        training_loop.machine_spread(state, "iteration"),
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

    def chunk(step: int, n: int) -> dict[str, float]:
        del step  # The trainer continues from its own iteration counter.
        stats = trainer.train(n)
        metrics = {
            "loss": stats.loss,
            "query_loss_pre_update": stats.pre_update_query_loss,
            "query_loss_post_update": stats.post_update_query_loss,
        }
        # The split second-order gradient does not compute the pre-update query
        # loss (it reports NaN); leave it out of progress lines and TensorBoard.
        return {k: v for k, v in metrics.items() if k == "loss" or math.isfinite(v)}

    loop = training_loop.run_training(
        name,
        chunk,
        target,
        run_dir,
        {"trainer": trainer},
        log_every=log_every,
        checkpoint_every=checkpoint_every,
        on_checkpoint=on_checkpoint,
        max_seconds=max_seconds or None,
        chunked=True,
        counter=trainer.iteration,
        state_file=PHASE_STATE,
        unit="iteration",
    )
    return PhaseResult(
        name,
        loop.steps,
        target,
        loop.train_seconds,
        loop.sessions,
        loop.status,
        loop.session_seconds,
        loop.steps_per_second,
        loop.last_metrics.get("loss", math.nan),
        loop.machine,
    )
