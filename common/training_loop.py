"""A resumable training loop around any `step_fn`: progress, TensorBoard, checkpoints.

Used by the papers whose training is "call a compiled step N times" (Neural ODEs,
magnet loss). Each call of `step_fn(step)` trains one step and returns scalar
metrics. Every `log_every` steps a progress line and TensorBoard scalars are
written; every `checkpoint_every` steps (and at the end) the trackables, the step
counter and a `loop_state.json` with the training seconds spent so far are saved,
so a run killed with -9 resumes from its last checkpoint and reports its total
compute honestly. A non-finite loss stops the run with status "diverged".

Trainers that run many steps in one traced call (MAML's `MetaTrainer`) use the
chunked form: `step_fn(step, n)` trains n steps (up to the next multiple of
`log_every`, cut short at the next checkpoint, at the budget and, once the rate
is known, to about `max_chunk_seconds`) and the trainer counts them in its own
checkpointed variable (`counter`), so the loop adds no step variable of its own.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import tensorflow as tf

from common import checkpoint, files, machine, progress, summaries

LOOP_STATE = "loop_state.json"
# State key: the last step whose `on_checkpoint` hook ran to the end.
EVALUATED = "evaluated_step"
# State key: {machine description: {"train_seconds", "steps"}} (common.machine).
MACHINES = "machines"


@dataclasses.dataclass(frozen=True)
class LoopResult:
    """What a training loop spent and how it ended.

    Attributes:
        name: Loop name (also the checkpoint and TensorBoard sub-directory).
        steps: Steps completed (over all sessions).
        target_steps: The budget asked for.
        train_seconds: Training seconds summed over all sessions (evaluation
            hooks excluded).
        sessions: Processes that trained this loop (1 = never restarted).
        status: "complete", "cut short" or "diverged".
        steps_per_second: Rate in this session (0 if no step ran).
        last_metrics: Metrics of the last step run (empty if none ran).
        session_seconds: Training seconds of this session (0 if no step ran).
        machine: The machine(s) the training ran on (`common.machine.spread`:
            one description, or each machine's share when sittings differed).
    """

    name: str
    steps: int
    target_steps: int
    train_seconds: float
    sessions: int
    status: str
    steps_per_second: float
    last_metrics: dict[str, float]
    session_seconds: float = 0.0
    machine: str = ""

    def budget(self) -> dict[str, Any]:
        """The loop's compute as a budget entry for `common.results`."""
        return {
            "steps": self.steps,
            "target_steps": self.target_steps,
            "train_seconds": round(self.train_seconds, 1),
            "sessions": self.sessions,
            "machine": self.machine,
        }


def machine_spread(state: dict, unit: str = "step") -> str:
    """The machines a loop's saved `state` trained on (`common.machine.spread`)."""
    return machine.spread(
        state.get(MACHINES, {}),
        state.get("train_seconds", 0.0),
        int(state.get(f"{unit}s", 0)),
        unit,
    )


def read_state(directory: str, filename: str = LOOP_STATE) -> dict:
    """A loop's saved `{train_seconds, sessions, ...}` (zeros if none yet)."""
    path = os.path.join(directory, filename)
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {"train_seconds": 0.0, "sessions": 0}


def write_state(directory: str, state: dict, filename: str = LOOP_STATE) -> None:
    """Saves a loop's state atomically."""
    files.atomic_write_json(os.path.join(directory, filename), state, indent=None)


def run_training(
    name: str,
    step_fn: Callable[..., Mapping[str, Any]],
    total_steps: int,
    run_dir: str,
    trackables: Mapping[str, Any],
    log_every: int = 100,
    checkpoint_every: int = 1000,
    on_checkpoint: Callable[[int], Mapping[str, float] | None] | None = None,
    max_seconds: float | None = None,
    stream: TextIO | None = None,
    *,
    chunked: bool = False,
    counter: tf.Variable | None = None,
    state_file: str = LOOP_STATE,
    unit: str = "step",
    max_chunk_seconds: float | None = 60.0,
) -> LoopResult:
    """Trains `step_fn` until `total_steps`, resuming from the latest checkpoint.

    Args:
        name: Loop name; checkpoints go to `<run_dir>/checkpoints/<name>`,
            TensorBoard scalars to `<run_dir>/tensorboard/<name>`.
        step_fn: Trains one step given the (0-based) step index; returns scalar
            metrics (tensors or floats). The key "loss" is checked for finiteness.
            With `chunked`, `step_fn(step, n)` trains steps step .. step + n - 1
            and returns the chunk's metrics.
        total_steps: Step budget.
        run_dir: The run directory.
        trackables: Objects to checkpoint (models, optimizers, variables).
        log_every: Steps between progress lines and TensorBoard writes (with
            `chunked`, chunks never cross a multiple of it).
        checkpoint_every: Steps between checkpoints.
        on_checkpoint: Optional evaluation called after each checkpoint with the
            step count; the metrics it returns (if any) go to TensorBoard
            (`eval/...`) and the progress line. Its time is excluded from the
            training seconds. If the process ended after a checkpoint but before
            its hook finished, the hook runs for that step on resume.
        max_seconds: Stop (status "cut short", after a checkpoint) once this
            session has trained this long.
        stream: Where progress lines go (stdout by default).
        chunked: `step_fn` takes `(step, n)` (see above).
        counter: The step count, kept and advanced by the trainer itself and
            checkpointed among `trackables`; None adds a loop step variable.
        state_file: Name of the JSON state file next to the checkpoints.
        unit: What a step is called in messages ("iteration" for MAML).
        max_chunk_seconds: With `chunked`, the longest a chunk should take: the
            first chunk is one step, and from the rate of the chunks so far each
            later one is cut to fit (at least one step); a progress line is
            written after any chunk that ends this long after the last line, as
            well as at every multiple of `log_every`. So a slow
            configuration still reports about every minute, and a `max_seconds`
            budget is overrun by at most about one such chunk. None: chunks
            bounded by step counts alone. Chunk boundaries do not change what is
            trained (the trainer draws its tasks from its own step count).

    Returns:
        A `LoopResult`.
    """
    stream = stream or sys.stdout
    ckpt_dir = os.path.join(run_dir, "checkpoints", name)
    if counter is None:
        counter = tf.Variable(0, dtype=tf.int64, trainable=False, name=f"{name}_step")
        ckpt = checkpoint.Checkpointer(ckpt_dir, step=counter, **trackables)
        own_counter = True
    else:
        ckpt = checkpoint.Checkpointer(ckpt_dir, **trackables)
        own_counter = False
    ckpt.restore_latest()
    state = read_state(ckpt_dir, state_file)
    start = int(counter.numpy())
    counted = {"session": False, "seconds": 0.0, "step": start}
    this_machine = machine.description()
    if 0 < start < total_steps:
        print(
            f"[{name}] resuming from checkpoint at {unit} {start}",
            file=stream,
            flush=True,
        )
    board = summaries.Summaries(os.path.join(run_dir, "tensorboard"), name)
    bar = progress.Progress(name, total_steps, start=start, stream=stream)
    session_start = time.perf_counter()
    excluded = 0.0
    metrics: dict[str, float] = {}
    status = "complete"
    step = start

    def count(step: int, trained: float) -> None:
        """Adds this session's training since the last count to the state."""
        seconds = trained - counted["seconds"]
        state["train_seconds"] += seconds
        # Which machine did the work: minutes on different CPUs differ.
        here = state.setdefault(MACHINES, {}).setdefault(
            this_machine, {"train_seconds": 0.0, "steps": 0}
        )
        here["train_seconds"] += seconds
        here["steps"] += step - counted["step"]
        counted["seconds"], counted["step"] = trained, step

    def save(step: int) -> None:
        nonlocal excluded
        if own_counter:
            counter.assign(step)
        if not counted["session"]:
            state["sessions"] += 1
            counted["session"] = True
        count(step, time.perf_counter() - session_start - excluded)
        state[f"{unit}s"] = step
        if on_checkpoint is not None:
            state.setdefault(EVALUATED, 0)  # this step's hook has not run yet
        ckpt.save(step)
        write_state(ckpt_dir, state, state_file)
        evaluate(step)

    def evaluate(step: int) -> None:
        nonlocal excluded
        if on_checkpoint is None:
            return
        t = time.perf_counter()
        returned = on_checkpoint(step) or {}
        evaluation = {f"eval/{k}": float(v) for k, v in returned.items()}
        spent = time.perf_counter() - t
        excluded += spent
        bar.exclude(spent)  # before the line, so its rate is training only
        if evaluation:
            board.scalars(step, evaluation)
            bar.update(step, **evaluation)
        # Recorded only once the hook has finished, so a run killed during an
        # evaluation repeats it on resume instead of leaving a hole in the curve.
        state[EVALUATED] = step
        write_state(ckpt_dir, state, state_file)

    if on_checkpoint is not None and start > 0 and state.get(EVALUATED, start) < start:
        print(
            f"[{name}] the evaluation at {unit} {start} did not finish before the "
            "last session ended; running it now",
            file=stream,
            flush=True,
        )
        evaluate(start)

    rate = None  # steps per second of the chunks of this session
    last_line = time.perf_counter()
    while step < total_steps:
        if chunked:
            next_checkpoint = (step // checkpoint_every + 1) * checkpoint_every
            next_line = (step // log_every + 1) * log_every
            n = min(next_line - step, total_steps - step, next_checkpoint - step)
            if max_chunk_seconds:
                # One step first, to measure the rate; then chunks that fit.
                n = 1 if rate is None else max(1, min(n, int(max_chunk_seconds * rate)))
                if rate is not None and max_seconds is not None:
                    left = max_seconds - (
                        time.perf_counter() - session_start - excluded
                    )
                    n = max(1, min(n, int(left * rate) + 1))
            t = time.perf_counter()
            metrics = {k: float(v) for k, v in step_fn(step, n).items()}
            rate = n / max(time.perf_counter() - t, 1e-9)
            step += n
            if int(counter.numpy()) != step:
                raise RuntimeError(
                    f"step_fn trained to {unit} {int(counter.numpy())}, expected {step}"
                )
        else:
            metrics = {k: float(v) for k, v in step_fn(step).items()}
            step += 1
        if "loss" in metrics and not math.isfinite(metrics["loss"]):
            status = "diverged"
            bar.update(step, **metrics)
            print(
                f"[{name}] diverged at {unit} {step}: loss {metrics['loss']}",
                file=stream,
                flush=True,
            )
            break
        overdue = (
            chunked
            and max_chunk_seconds is not None
            and time.perf_counter() - last_line >= max_chunk_seconds
        )
        if step % log_every == 0 or step == total_steps or overdue:
            board.scalars(step, metrics)
            bar.update(step, **metrics)
            last_line = time.perf_counter()
        if step % checkpoint_every == 0 or step == total_steps:
            save(step)
        if (
            max_seconds is not None
            and time.perf_counter() - session_start - excluded > max_seconds
        ):
            if step < total_steps:
                save(step)
                status = "cut short"
                print(
                    f"[{name}] time limit reached at {unit} {step} of {total_steps}",
                    file=stream,
                    flush=True,
                )
            break
    session_seconds = time.perf_counter() - session_start - excluded
    if status == "diverged":
        if not counted["session"]:
            state["sessions"] += 1
        count(step, session_seconds)
        write_state(ckpt_dir, state, state_file)
    if step == start and start < total_steps and status == "complete":
        status = "cut short"
    ran = step > start
    return LoopResult(
        name=name,
        steps=step,
        target_steps=total_steps,
        train_seconds=state["train_seconds"],
        sessions=state["sessions"],
        status=status,
        steps_per_second=(step - start) / session_seconds if ran else 0.0,
        last_metrics=metrics,
        session_seconds=session_seconds if ran else 0.0,
        machine=machine_spread({**state, f"{unit}s": step}, unit),
    )
