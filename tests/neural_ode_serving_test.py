"""Export round-trips and request validation: the ODE-Net classifier and the
latent ODE.

One export per model for the whole module, loaded once. Every validation rule is
checked through `tf.saved_model.load` and through saved_model_cli's loader (both
models in one subprocess, `tests.serving_cli`); valid answers are compared with
the in-process models.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from common import export
from neural_ode import latent_ode_serving, serving
from neural_ode.experiments import run_export, spiral_experiment
from tests import serving_cli
from tests.neural_ode_fixtures import untrained_odenet_run

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy

# The untrained ODE-Net below needs ~9 dopri5 steps at rtol = atol = 1e-5 and ~50
# at 1e-7: 12 lets the first through and stops the second.
ODENET_LIMITS = serving.ODENetLimits(max_batch_size=4, max_solver_steps=12)
LATENT_LIMITS = latent_ode_serving.LatentODELimits(
    max_batch_size=3, max_observations=20, max_query_times=30, max_solver_steps=60
)


@pytest.fixture(scope="module")
def odenet(tmp_path_factory):
    """A run directory as the MNIST experiment leaves it (an untrained ODE-Net:
    serving does not care how good the weights are), its export, the loaded
    SavedModel and the in-process model."""
    root = tmp_path_factory.mktemp("odenet")
    run_dir = untrained_odenet_run(str(root))
    path = run_export.export_odenet(run_dir, str(root / "export"), limits=ODENET_LIMITS)
    restored, _ = run_export.load_odenet(run_dir)
    return path, tf.saved_model.load(path), restored


def _tol(images, rtol, atol):
    return (
        "classify_at_tolerance",
        {"images": images, "rtol": np.float32(rtol), "atol": np.float32(atol)},
    )


def _odenet_rejections():
    images = np.random.default_rng(0).uniform(size=(3, 28, 28, 1)).astype(np.float32)
    nan = images.copy()
    nan[0, 3, 4, 0] = np.nan
    return [
        (_tol(images, 0.0, 1e-3), "rtol must be in [1e-10, 1]"),
        (_tol(images, 1e-3, -1e-3), "atol must be in [1e-10, 1]"),
        (_tol(images, 1e-12, 1e-3), "rtol must be in [1e-10, 1]"),
        (_tol(images, 2.0, 1e-3), "rtol must be in [1e-10, 1]"),
        (_tol(images, np.nan, 1e-3), "rtol must be finite"),
        (_tol(images, 1e-3, np.inf), "atol must be finite"),
        (_tol(nan, 1e-3, 1e-3), "images must be finite"),
        (_tol(images * 2.0, 1e-3, 1e-3), "images must be in [0, 1] (pixel values)"),
        (
            ("serving_default", {"images": np.zeros((5, 28, 28, 1), np.float32)}),
            "images must have 1 to 4 rows (max_batch_size = 4",
        ),
        (
            ("serving_default", {"images": np.zeros((0, 28, 28, 1), np.float32)}),
            "images must have 1 to 4 rows",
        ),
        # More than max_solver_steps = 12 dopri5 steps: bounded, then refused.
        (_tol(images, 1e-7, 1e-7), "rtol_atol_solve_within_max_solver_steps_12/"),
        (_tol(images, 1e-7, 1e-7), "max_num_steps exceeded"),
    ]


def test_odenet_signatures_match_the_model_and_bound_each_request(odenet):
    path, loaded, model = odenet
    images = tf.random.uniform([3, 28, 28, 1], seed=1)
    out = loaded.signatures["serving_default"](images=images)
    np.testing.assert_allclose(
        out["logits"].numpy(), model(images).numpy(), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_array_equal(
        out["classes"].numpy(), np.argmax(model(images).numpy(), -1)
    )
    nfe = {}
    for tol in (1e-1, 1e-5):
        nfe[tol] = int(
            loaded.signatures["classify_at_tolerance"](
                images=images, rtol=tf.constant(tol), atol=tf.constant(tol)
            )["forward_nfe"]
        )
    assert nfe[1e-1] <= int(out["forward_nfe"]) <= nfe[1e-5]
    assert nfe[1e-1] < nfe[1e-5]
    # The step bound holds: TFP's Dormand-Prince takes 6 evaluations per step and
    # odeint counts 3 more (first-step choice and initial evaluation).
    assert nfe[1e-5] <= 6 * ODENET_LIMITS.max_solver_steps + 3
    assert os.path.basename(path) == "1"
    assert export.read_serving_limits(path) == {
        "max_batch_size": 4,
        "min_tolerance": 1e-10,
        "max_tolerance": 1.0,
        "max_solver_steps": 12,
    }
    warmup = serving_cli.warmup_requests(path)
    assert [name for name, _ in warmup] == ["serving_default", "classify_at_tolerance"]
    for name, inputs in warmup:
        loaded.signatures[name](**inputs)


def test_odenet_rejects_each_bad_request_naming_the_input(odenet):
    _, loaded, _ = odenet
    for (name, inputs), text in _odenet_rejections():
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        assert text in str(info.value), (text, str(info.value)[-800:])
    # Shapes the input spec does not describe still reach the graph of a loaded
    # signature; the in-graph check refuses them.
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"images must have shape \[batch, 28, 28, 1\]",
    ):
        loaded.signatures["serving_default"](images=tf.zeros([2, 28, 28, 3]))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"Shape of tensor rtol \[2\] is not compatible",
    ):
        loaded.signatures["classify_at_tolerance"](
            images=tf.zeros([2, 28, 28, 1]),
            rtol=tf.constant([1e-3, 1e-3]),
            atol=tf.constant(1e-3),
        )


def test_odenet_saved_model_cli_run_rejects_naming_the_input(odenet, tmp_path):
    path = odenet[0]
    np.save(tmp_path / "images.npy", np.zeros((2, 28, 28, 1), np.float32))
    proc = subprocess.run(
        serving_cli.saved_model_cli()
        + [
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            "classify_at_tolerance",
            "--input_exprs",
            "rtol=0.0;atol=0.01",
            "--inputs",
            f"images={tmp_path / 'images.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert proc.returncode != 0
    assert "rtol must be in [1e-10, 1]" in proc.stderr, proc.stderr[-2000:]


@pytest.fixture(scope="module")
def latent(tmp_path_factory):
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
    path = run_export.export_latent_ode(
        run_dir, str(root / "export"), limits=LATENT_LIMITS
    )
    model = spiral_experiment.restore_model(run_dir, "latent_ode")
    return path, tf.saved_model.load(path), model


def _latent_request(obs_times=None, obs=None, query=None):
    rng = np.random.default_rng(0)
    obs_times = np.sort(rng.uniform(0.1, 2.0, 12)) if obs_times is None else obs_times
    obs = rng.normal(size=(2, 12, 2)) if obs is None else obs
    query = np.linspace(2.0, 4.0, 7) if query is None else query
    return (
        "serving_default",
        {
            "observation_times": np.float32(obs_times),
            "observations": np.float32(obs),
            "query_times": np.float32(query),
        },
    )


def _latent_rejections():
    times = np.linspace(0.1, 2.0, 12)
    obs = np.random.default_rng(1).normal(size=(2, 12, 2))
    nan_obs = obs.copy()
    nan_obs[1, 4, 0] = np.nan
    return [
        (
            _latent_request(query=[2.0, 1.0, 3.0]),
            "query_times must be strictly increasing",
        ),
        (_latent_request(query=[1.0, 1.0]), "query_times must be strictly increasing"),
        (_latent_request(query=[1.0, np.nan]), "query_times must be finite"),
        (
            _latent_request(query=[-1.0, 1.0]),
            "query_times must be >= 0 (the latent initial time t0)",
        ),
        (_latent_request(query=np.zeros(0)), "query_times must have 1 to 30 rows"),
        (
            _latent_request(query=np.linspace(1.0, 2.0, 31)),
            "query_times must have 1 to 30 rows (max_query_times = 30",
        ),
        (
            _latent_request(obs_times=times[:11]),
            "observation_times must have as many entries (n) as observations",
        ),
        (
            _latent_request(obs_times=times[::-1]),
            "observation_times must be strictly increasing",
        ),
        (
            _latent_request(obs_times=np.r_[times[:11], np.inf]),
            "observation_times must be finite",
        ),
        (
            _latent_request(
                obs_times=np.linspace(0.1, 2.0, 21), obs=np.zeros((2, 21, 2))
            ),
            "observation_times must have 1 to 20 rows (max_observations = 20",
        ),
        (_latent_request(obs=nan_obs), "observations must be finite"),
        (
            _latent_request(obs=np.zeros((4, 12, 2))),
            "observations must have 1 to 3 rows (max_batch_size = 3",
        ),
        # Far beyond the data: more than max_solver_steps = 60 steps.
        (
            _latent_request(query=[1.0, 1e5]),
            "query_times_solve_within_max_solver_steps_60/",
        ),
        (_latent_request(query=[1.0, 1e5]), "max_num_steps exceeded"),
    ]


def test_latent_ode_export_matches_extrapolate_at_arbitrary_times(latent):
    path, loaded, model = latent
    _, request = _latent_request()
    for query in (np.linspace(2.0, 4.0, 7), np.array([0.0, 0.3, 5.0])):
        query = query.astype(np.float32)
        out = loaded.signatures["serving_default"](**{**request, "query_times": query})
        expected = model.extrapolate(
            request["observations"], request["observation_times"], query
        ).numpy()
        assert out["trajectory"].shape == (2, len(query), 2)
        np.testing.assert_allclose(
            out["trajectory"].numpy(), expected, rtol=1e-3, atol=1e-3
        )
    for name, inputs in serving_cli.warmup_requests(path):
        loaded.signatures[name](**inputs)
    assert export.read_serving_limits(path)["max_solver_steps"] == 60


def test_latent_ode_rejects_each_bad_request_naming_the_input(latent):
    _, loaded, _ = latent
    for (name, inputs), text in _latent_rejections():
        with pytest.raises(tf.errors.InvalidArgumentError) as info:
            loaded.signatures[name](**inputs)
        assert text in str(info.value), (text, str(info.value)[-800:])
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"observations must have shape \[batch, n, 2\]",
    ):
        loaded.signatures["serving_default"](
            **{
                k: tf.constant(v)
                for k, v in _latent_request(obs=np.zeros((2, 12, 3)))[1].items()
            }
        )


def test_saved_model_cli_loader_answers_and_rejects_like_tf_saved_model_load(
    odenet, latent, tmp_path
):
    """Both models' rejections, valid answers and warm-up requests through the
    TF1 loader that saved_model_cli uses, in one subprocess."""
    odenet_path, odenet_loaded, _ = odenet
    latent_path, latent_loaded, _ = latent
    rejections = [(odenet_path, r, t) for r, t in _odenet_rejections()] + [
        (latent_path, r, t) for r, t in _latent_rejections()
    ]
    images = np.random.default_rng(2).uniform(size=(4, 28, 28, 1)).astype(np.float32)
    valid = [
        (odenet_path, *_tol(images, 1e-2, 1e-2)),
        (latent_path, *_latent_request()),
        *[(odenet_path, *r) for r in serving_cli.warmup_requests(odenet_path)],
        *[(latent_path, *r) for r in serving_cli.warmup_requests(latent_path)],
    ]
    results = serving_cli.cli_batch(
        [(p, *r) for p, r, _ in rejections] + valid, str(tmp_path)
    )
    for (_, _, text), result in zip(rejections, results, strict=False):
        assert isinstance(result, str) and text in result, (text, result[-800:])
    answers = results[len(rejections) :]
    want = odenet_loaded.signatures["classify_at_tolerance"](
        **{k: tf.constant(v) for k, v in _tol(images, 1e-2, 1e-2)[1].items()}
    )
    np.testing.assert_allclose(
        answers[0]["logits"], want["logits"].numpy(), rtol=1e-5, atol=1e-5
    )
    want = latent_loaded.signatures["serving_default"](**_latent_request()[1])
    np.testing.assert_allclose(
        answers[1]["trajectory"], want["trajectory"].numpy(), rtol=1e-5, atol=1e-5
    )
    assert all(isinstance(a, dict) for a in answers[2:])  # Warm-up requests.
