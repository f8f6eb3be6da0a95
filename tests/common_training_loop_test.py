"""Tests of the resumable training loop."""

from __future__ import annotations

import io
import os
import time

import pytest
import tensorflow as tf

from common import training_loop


def _counter_step(var: tf.Variable):
    def step_fn(step: int) -> dict:
        var.assign_add(1.0)
        return {"loss": 1.0 / (step + 1)}

    return step_fn


def test_runs_to_budget_with_progress_tensorboard_and_checkpoints(tmp_path):
    var = tf.Variable(0.0)
    stream = io.StringIO()
    result = training_loop.run_training(
        "toy",
        _counter_step(var),
        7,
        str(tmp_path),
        {"var": var},
        log_every=2,
        checkpoint_every=3,
        stream=stream,
    )
    assert (result.steps, result.status, result.sessions) == (7, "complete", 1)
    assert float(var.numpy()) == 7.0
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[toy] 2/7") and lines[-1].startswith("[toy] 7/7")
    assert os.listdir(os.path.join(tmp_path, "tensorboard", "toy"))
    assert tf.train.latest_checkpoint(os.path.join(tmp_path, "checkpoints", "toy"))


def test_a_cut_short_run_resumes_from_its_checkpoint_and_sums_sessions(tmp_path):
    var = tf.Variable(0.0)
    first = training_loop.run_training(
        "toy",
        _counter_step(var),
        10,
        str(tmp_path),
        {"var": var},
        log_every=100,
        checkpoint_every=100,
        max_seconds=0.0,
        stream=io.StringIO(),
    )
    assert (first.steps, first.status) == (1, "cut short")
    var2 = tf.Variable(0.0)  # a fresh process: state comes from the checkpoint
    second = training_loop.run_training(
        "toy",
        _counter_step(var2),
        10,
        str(tmp_path),
        {"var": var2},
        log_every=100,
        checkpoint_every=100,
        stream=io.StringIO(),
    )
    assert (second.steps, second.status, second.sessions) == (10, "complete", 2)
    assert float(var2.numpy()) == 10.0
    assert second.train_seconds >= first.train_seconds
    # A third call has nothing left to train and does not count as a session.
    third = training_loop.run_training(
        "toy",
        _counter_step(tf.Variable(0.0)),
        10,
        str(tmp_path),
        {},
        stream=io.StringIO(),
    )
    assert (third.steps, third.status, third.sessions) == (10, "complete", 2)


def test_a_non_finite_loss_stops_the_run_as_diverged(tmp_path):
    def step_fn(step: int) -> dict:
        return {"loss": float("nan") if step == 3 else 1.0}

    result = training_loop.run_training(
        "toy", step_fn, 10, str(tmp_path), {}, stream=io.StringIO()
    )
    assert (result.status, result.steps) == ("diverged", 4)


def test_evaluation_hook_runs_at_checkpoints_and_is_not_training_time(tmp_path):
    seen = []

    def evaluate(step: int) -> dict:
        seen.append(step)
        return {"accuracy": 0.5}

    training_loop.run_training(
        "toy",
        lambda step: {"loss": 0.0},
        6,
        str(tmp_path),
        {},
        log_every=10,
        checkpoint_every=2,
        on_checkpoint=evaluate,
        stream=io.StringIO(),
    )
    assert seen == [2, 4, 6]


class _Killed(Exception):
    """Stands in for the process being killed in the middle of an evaluation."""


def test_an_evaluation_killed_after_its_checkpoint_runs_again_on_resume(tmp_path):
    def killed_at_4(step: int) -> None:
        if step == 4:
            raise _Killed

    def run(hook, total):
        return training_loop.run_training(
            "toy",
            lambda step: {"loss": 0.0},
            total,
            str(tmp_path),
            {},
            log_every=10,
            checkpoint_every=2,
            on_checkpoint=hook,
            stream=io.StringIO(),
        )

    with pytest.raises(_Killed):
        run(killed_at_4, 6)  # checkpoint 4 is saved, its evaluation never ends
    seen = []
    result = run(seen.append, 6)
    assert seen == [4, 6]  # the lost evaluation first, then the remaining one
    assert result.steps == 6
    seen.clear()
    run(seen.append, 8)  # a finished evaluation is not repeated
    assert seen == [8]


def test_chunked_form_cuts_chunks_at_lines_and_checkpoints_and_resumes(tmp_path):
    """A trainer that counts its own steps: a chunk runs to the next multiple of
    log_every, cut short at the next checkpoint (checkpoint_every) and at the
    budget."""
    counter = tf.Variable(0, dtype=tf.int64)
    calls = []

    def chunk(step, n):
        calls.append((step, n))
        counter.assign_add(n)
        return {"loss": 1.0}

    def run(total):
        return training_loop.run_training(
            "chunky",
            chunk,
            total,
            str(tmp_path),
            {"counter": counter},
            log_every=4,
            checkpoint_every=6,
            stream=io.StringIO(),
            chunked=True,
            counter=counter,
            state_file="phase_state.json",
            unit="iteration",
            max_chunk_seconds=None,  # chunks by step counts alone
        )

    first = run(10)
    # A chunk ends at the next multiple of log_every (4, 8), the next
    # checkpoint (6) or the budget (10), whichever comes first.
    assert calls == [(0, 4), (4, 2), (6, 2), (8, 2)]
    assert (first.steps, first.status, first.sessions) == (10, "complete", 1)
    state = training_loop.read_state(
        os.path.join(tmp_path, "checkpoints", "chunky"), "phase_state.json"
    )
    assert state["iterations"] == 10 and state["sessions"] == 1
    counter.assign(0)  # A fresh process: the checkpoint restores the count.
    calls.clear()
    second = run(13)
    assert calls == [(10, 2), (12, 1)]  # Cut at the checkpoint at 12.
    assert (second.steps, second.sessions) == (13, 2)


def test_chunked_form_rejects_a_trainer_that_miscounts(tmp_path):
    counter = tf.Variable(0, dtype=tf.int64)

    def chunk(step, n):
        counter.assign_add(n + 1)
        return {"loss": 1.0}

    try:
        training_loop.run_training(
            "bad",
            chunk,
            5,
            str(tmp_path),
            {"counter": counter},
            stream=io.StringIO(),
            chunked=True,
            counter=counter,
            max_chunk_seconds=None,
        )
    except RuntimeError as e:
        assert "expected 5" in str(e)
    else:
        raise AssertionError("a miscounting trainer was accepted")


def test_each_machine_that_trained_gets_its_share_of_steps_and_seconds(
    tmp_path, monkeypatch
):
    # Two sittings on two "machines": the state keeps each one's steps and
    # seconds, they add up to the run's totals, and the budget names both.
    def sitting(name: str, max_seconds):
        monkeypatch.setattr(training_loop.machine, "description", lambda: name)
        return training_loop.run_training(
            "toy",
            _counter_step(tf.Variable(0.0)),
            10,
            str(tmp_path),
            {},
            log_every=100,
            checkpoint_every=100,
            max_seconds=max_seconds,
            stream=io.StringIO(),
        )

    first = sitting("machine A", 0.0)
    assert first.machine == "machine A"  # one machine: its description alone
    second = sitting("machine B", None)
    state = training_loop.read_state(
        os.path.join(tmp_path, "checkpoints", "toy"), training_loop.LOOP_STATE
    )
    shares = state[training_loop.MACHINES]
    assert {k: v["steps"] for k, v in shares.items()} == {
        "machine A": first.steps,
        "machine B": 10 - first.steps,
    }
    assert sum(v["train_seconds"] for v in shares.values()) == pytest.approx(
        state["train_seconds"]
    )
    assert second.machine.startswith(f"machine A: {first.steps:,} steps in ")
    assert f"; machine B: {10 - first.steps:,} steps in " in second.machine
    assert second.budget()["machine"] == second.machine


def test_slow_chunks_are_cut_to_the_time_bound_and_still_report(tmp_path):
    # A trainer at 0.05 s per step with log_every = 1000: after a first chunk
    # of one step (whose rate it measures), chunks fit max_chunk_seconds; every
    # chunk that ends that long after the last line writes one; a max_seconds
    # budget is overrun by at most about one such chunk.
    counter = tf.Variable(0, dtype=tf.int64)
    calls = []

    def chunk(step, n):
        calls.append(n)
        time.sleep(0.05 * n)
        counter.assign_add(n)
        return {"loss": 1.0}

    stream = io.StringIO()
    result = training_loop.run_training(
        "slow",
        chunk,
        10_000,
        str(tmp_path),
        {"counter": counter},
        log_every=1000,
        checkpoint_every=10_000,
        max_seconds=1.0,
        stream=stream,
        chunked=True,
        counter=counter,
        max_chunk_seconds=0.2,
    )
    # The first chunk is one step (to measure the rate); later ones fit 0.2 s
    # (4 steps) or the budget's remainder.
    assert calls[0] == 1 and all(n <= 5 for n in calls[1:]), calls
    assert result.status == "cut short" and result.steps == sum(calls)
    lines = [ln for ln in stream.getvalue().splitlines() if ln.startswith("[slow] ")]
    assert len(lines) >= 2  # lines without reaching a multiple of log_every
