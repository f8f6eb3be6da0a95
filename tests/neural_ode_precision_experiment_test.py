"""Tests of the adjustable-precision study on a tiny untrained ODE-Net."""

from __future__ import annotations

import os

import pytest

from neural_ode.experiments import precision_experiment
from tests.neural_ode_fixtures import untrained_odenet_run

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy


def test_missing_source_run_is_a_clear_error_before_writing(tmp_path):
    cfg = precision_experiment.PrecisionConfig(source_dir=str(tmp_path / "none"))
    with pytest.raises(ValueError, match="no ODE-Net checkpoint"):
        precision_experiment.run(cfg, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_looser_tolerances_take_no_more_evaluations(tmp_path):
    # A training log of two steps: 20 + 26 forward and 33 + 37 backward NFE.
    source = untrained_odenet_run(str(tmp_path), nfe_log=[[1, 20, 33], [2, 26, 37]])
    cfg = precision_experiment.PrecisionConfig(
        source_dir=source,
        tolerances=(1e-1, 1e-2, 1e-3),
        test_examples=8,
        batch_size=8,
        norm_batches=0,  # both norms: neural_ode_mnist_protocol_test
    )
    out = str(tmp_path / "precision")
    record = precision_experiment.run(cfg, out)
    evals = {e["tolerance"]: e for e in record["extra"]["evaluations"]}
    assert (
        evals[1e-1]["forward_nfe"]
        <= evals[1e-2]["forward_nfe"]
        <= evals[1e-3]["forward_nfe"]
    )
    # A 100x tighter tolerance needs more dopri5 steps (step sizes scale as
    # tol^(1/5)), so the sweep measures something even on untrained weights.
    assert evals[1e-1]["forward_nfe"] < evals[1e-3]["forward_nfe"]
    assert record["extra"]["backward_forward_ratio"] == pytest.approx(70 / 46)
    assert os.path.exists(os.path.join(out, "precision.png"))
