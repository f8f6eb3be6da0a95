"""Tests of the adjustable-precision study on a tiny trained ODE-Net."""

from __future__ import annotations

import os

import pytest

from neural_ode import mnist_experiment, precision_experiment
from tests.neural_ode_fixtures import write_tiny_mnist


def test_missing_source_run_is_a_clear_error_before_writing(tmp_path):
    cfg = precision_experiment.PrecisionConfig(source_dir=str(tmp_path / "none"))
    with pytest.raises(ValueError, match="no ODE-Net checkpoint"):
        precision_experiment.run(cfg, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_looser_tolerances_take_no_more_evaluations(tmp_path):
    data = write_tiny_mnist(str(tmp_path / "mnist"), train=32, test=16)
    source = str(tmp_path / "mnist_run")
    mnist_experiment.run(
        mnist_experiment.MNISTConfig(
            models=("odenet",),
            epochs=1,
            batch_size=16,
            data_dir=data,
            reader="idx",
            log_every=1,
            checkpoint_every=1,
            eval_batch_size=16,
        ),
        source,
    )
    cfg = precision_experiment.PrecisionConfig(
        source_dir=source, tolerances=(1e-1, 1e-3, 1e-5), test_examples=16, batch_size=8
    )
    out = str(tmp_path / "precision")
    record = precision_experiment.run(cfg, out)
    evals = {e["tolerance"]: e for e in record["extra"]["evaluations"]}
    assert (
        evals[1e-1]["forward_nfe"]
        <= evals[1e-3]["forward_nfe"]
        <= evals[1e-5]["forward_nfe"]
    )
    assert record["extra"]["backward_forward_ratio"] > 0
    assert os.path.exists(os.path.join(out, "precision.png"))
