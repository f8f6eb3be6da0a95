"""Export round-trips: the ODE-Net classifier and the latent ODE."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from common import export
from neural_ode import (
    latent_ode_serving,
    serving,
    spiral_experiment,
)
from tests.neural_ode_fixtures import train_tiny_odenet


def _saved_model_cli():
    path = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return (
        [path]
        if os.path.exists(path)
        else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    )


@pytest.fixture(scope="module")
def odenet_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("odenet")
    run_dir = train_tiny_odenet(str(root))
    path = serving.export_odenet(run_dir, str(root / "export"))
    return run_dir, path


def test_odenet_signatures_match_the_trained_model(odenet_export):
    run_dir, path = odenet_export
    model, cfg = serving.load_odenet(run_dir)
    images = tf.random.uniform([3, 28, 28, 1], seed=1)
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](images=images)
    np.testing.assert_allclose(
        out["logits"].numpy(), model(images).numpy(), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_array_equal(
        out["classes"].numpy(), np.argmax(model(images).numpy(), -1)
    )
    tight = loaded.signatures["classify_at_tolerance"](
        images=images, rtol=tf.constant(1e-5), atol=tf.constant(1e-5)
    )
    loose = loaded.signatures["classify_at_tolerance"](
        images=images, rtol=tf.constant(1e-1), atol=tf.constant(1e-1)
    )
    assert (
        int(loose["forward_nfe"])
        <= int(out["forward_nfe"])
        <= int(tight["forward_nfe"])
    )
    assert int(loose["forward_nfe"]) < int(tight["forward_nfe"])
    assert len(export.read_warmup_requests(path)) == 2
    assert os.path.basename(path) == "1"


def test_odenet_rejects_non_positive_tolerance_at_serving_time(odenet_export):
    _, path = odenet_export
    loaded = tf.saved_model.load(path)
    with pytest.raises(tf.errors.InvalidArgumentError, match="rtol"):
        loaded.signatures["classify_at_tolerance"](
            images=tf.zeros([1, 28, 28, 1]),
            rtol=tf.constant(0.0),
            atol=tf.constant(1e-3),
        )


def test_odenet_saved_model_cli_run(odenet_export, tmp_path):
    _, path = odenet_export
    np.save(tmp_path / "images.npy", np.zeros((2, 28, 28, 1), np.float32))
    result = subprocess.run(
        _saved_model_cli()
        + [
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "classify_at_tolerance",
            "--input_exprs",
            "rtol=0.01;atol=0.01",
            "--inputs",
            f"images={tmp_path / 'images.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    del result
    classes = np.load(tmp_path / "out" / "classes.npy")
    assert classes.shape == (2,)


@pytest.fixture(scope="module")
def latent_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("latent")
    run_dir = str(root / "run")
    spiral_experiment.run(
        spiral_experiment.SpiralConfig(
            num_spirals=20,
            num_observed=(20,),
            models=("latent_ode",),
            latent_iterations=3,
            rtol=1e-4,
            atol=1e-4,
            jit_compile=False,
            log_every=3,
            checkpoint_every=3,
            num_plot=1,
        ),
        run_dir,
    )
    return run_dir, latent_ode_serving.export_latent_ode(run_dir, str(root / "export"))


def test_latent_ode_export_matches_extrapolate_at_arbitrary_times(latent_export):
    run_dir, path = latent_export
    model = spiral_experiment.restore_model(run_dir, "latent_ode")
    rng = np.random.default_rng(0)
    obs_times = np.sort(rng.uniform(0.1, 2.0, 12)).astype(np.float32)
    obs = rng.normal(size=(2, 12, 2)).astype(np.float32)
    loaded = tf.saved_model.load(path)
    for query in (np.linspace(2.0, 4.0, 7), np.array([0.0, 0.3, 5.0])):
        query = query.astype(np.float32)
        out = loaded.signatures["serving_default"](
            observation_times=obs_times, observations=obs, query_times=query
        )
        expected = model.extrapolate(obs, obs_times, query).numpy()
        assert out["trajectory"].shape == (2, len(query), 2)
        np.testing.assert_allclose(
            out["trajectory"].numpy(), expected, rtol=1e-3, atol=1e-3
        )


def test_latent_ode_saved_model_cli_run(latent_export, tmp_path):
    _, path = latent_export
    np.save(tmp_path / "obs.npy", np.zeros((1, 5, 2), np.float32))
    np.save(tmp_path / "t.npy", np.linspace(0.1, 1.0, 5).astype(np.float32))
    np.save(tmp_path / "q.npy", np.linspace(1.0, 3.0, 9).astype(np.float32))
    subprocess.run(
        _saved_model_cli()
        + [
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"observations={tmp_path / 'obs.npy'};"
            f"observation_times={tmp_path / 't.npy'};"
            f"query_times={tmp_path / 'q.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert np.load(tmp_path / "out" / "trajectory.npy").shape == (1, 9, 2)
