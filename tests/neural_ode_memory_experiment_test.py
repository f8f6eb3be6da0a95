"""Smoke and property tests of the memory experiment."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from neural_ode.experiments import memory_experiment
from neural_ode.solver import SolverConfig
from tests.bare_env import REPO, bare_env

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy


def test_backprop_memory_grows_with_rk_steps_and_adjoint_memory_does_not():
    # The O(L) vs O(1) property itself: 8x the RK4 steps must grow the backprop
    # step's peak memory several-fold, while 8x the adjoint's integration length
    # (more solver steps) must not. Batch 32: TF's CPU allocator statistics miss
    # the small tensors of tiny batches.
    bp = [
        memory_experiment.measure_step(
            SolverConfig(method="rk4", gradient="backprop", steps_per_interval=s),
            1.0,
            32,
            0,
        )
        for s in (1, 8)
    ]
    adj = [
        memory_experiment.measure_step(SolverConfig(), t1, 32, 0) for t1 in (0.5, 4.0)
    ]
    assert adj[1]["forward_nfe"] > adj[0]["forward_nfe"]
    assert bp[1]["peak_extra_mib"] > 4 * bp[0]["peak_extra_mib"]
    assert adj[1]["peak_extra_mib"] < 2 * adj[0]["peak_extra_mib"]


def test_repeated_steps_report_their_median_and_every_value():
    row = memory_experiment.measure_step(
        SolverConfig(method="rk4", gradient="backprop", steps_per_interval=2),
        1.0,
        32,
        0,
        repeats=3,
    )
    values = row["peak_extra_mib_all"]
    assert len(values) == 3 and all(v > 0 for v in values)
    assert row["peak_extra_mib"] == pytest.approx(float(np.median(values)))
    assert row["forward_nfe"] == 8  # 2 RK4 steps of 4 evaluations


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"integration_lengths": (0.0,)},
        {"rk_steps": (0,)},
        {"rtol": -1.0},
        {"repeats": 0},
        {"repeats": 1.5},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        memory_experiment.MemoryConfig(**kwargs)


def test_run_without_allocator_statistics_reports_not_measured_and_resumes(
    tmp_path, monkeypatch, capsys
):
    # TF's default CPU allocator keeps no statistics on some machines: the run must
    # still finish, time and count every step, and say memory was not measured.
    # (With statistics, test_main_in_a_plain_environment_writes_measured_report.)
    def _raise(*args, **kwargs):
        raise ValueError("Cannot reset memory stats for device 'CPU:0'")

    monkeypatch.setattr(tf.config.experimental, "reset_memory_stats", _raise)
    monkeypatch.setattr(tf.config.experimental, "get_memory_info", _raise)
    cfg = memory_experiment.MemoryConfig(
        batch_size=4, integration_lengths=(0.5,), rk_steps=(1,), repeats=2
    )
    out = str(tmp_path / "run")
    record = memory_experiment.run(cfg, out)
    assert record["status"] == "complete"
    assert all(m["peak_extra_mib"] is None for m in record["extra"]["measurements"])
    assert all(m["forward_nfe"] > 0 for m in record["extra"]["measurements"])
    with open(os.path.join(out, "report.md")) as f:
        report = f.read()
    assert "not measured" in report and "TF_CPU_ALLOCATOR_USE_BFC" in report
    # One adjoint length and one RK-Net: two measurements, kept as they finish,
    # and the figure.
    assert len(record["extra"]["measurements"]) == 2
    with open(os.path.join(out, memory_experiment.PARTIAL)) as f:
        assert len(json.load(f)) == 2
    assert os.path.exists(os.path.join(out, "memory.png"))
    capsys.readouterr()
    memory_experiment.run(cfg, out)  # everything measured: nothing re-measured
    assert "[memory]" not in capsys.readouterr().out


def test_main_in_a_plain_environment_writes_measured_report(tmp_path):
    # What a fresh machine has: PATH, HOME, LANG only. The main must obtain a
    # counting allocator by itself and write numbers, not crash.
    out = str(tmp_path / "run")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "neural_ode.main",
            "--experiment=memory",
            "--set",
            "batch_size=4",
            "--set",
            "integration_lengths=0.5",
            "--set",
            "rk_steps=1,4",
            "--set",
            "repeats=2",
            f"--output_dir={out}",
        ],
        cwd=REPO,
        env=bare_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(os.path.join(out, "results.json")) as f:
        record = json.load(f)
    assert all(
        m["peak_extra_mib"] is not None and m["peak_extra_mib"] > 0
        for m in record["extra"]["measurements"]
    )
    assert os.path.exists(os.path.join(out, "report.md"))


def test_marginal_memory_per_evaluation_is_the_least_squares_slope():
    nfe = [15, 21, 27, 33]
    mib = [25.0, 31.0, 30.0, 36.0]
    rows = [
        {"forward_nfe": n, "peak_extra_mib": m} for n, m in zip(nfe, mib, strict=True)
    ]
    # By hand: deviations from the means (24, 30.5) give 96 / 180.
    expected = 96 / 180
    assert memory_experiment.marginal_mib_per_evaluation(rows) == pytest.approx(
        expected
    )
    # A constant memory has no marginal cost; unmeasured points give None.
    flat = [{"forward_nfe": n, "peak_extra_mib": 7.0} for n in nfe]
    assert memory_experiment.marginal_mib_per_evaluation(flat) == pytest.approx(0.0)
    rows[1]["peak_extra_mib"] = None
    assert memory_experiment.marginal_mib_per_evaluation(rows) is None
    one_nfe = [{"forward_nfe": 4, "peak_extra_mib": 1.0}] * 2
    assert memory_experiment.marginal_mib_per_evaluation(one_nfe) is None
