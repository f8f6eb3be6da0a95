"""The latent ODE and the Table 2 spiral experiment: shapes, ELBO, training, resume."""

import math
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import checkpoint, results
from neural_ode import latent_ode
from neural_ode.data import spirals
from neural_ode.data.standardizer import Standardizer
from neural_ode.experiments import spiral_experiment
from neural_ode.solver import SolverConfig, odeint

# Slow in all: scheduled first (tests/conftest.py).
pytestmark = pytest.mark.heavy

SOLVER = SolverConfig(rtol=1e-6, atol=1e-6)


def _model(**kwargs):
    keras.utils.set_random_seed(0)
    kwargs.setdefault("solver", SOLVER)
    return latent_ode.LatentODE(**kwargs)


def _irregular(num, n, seed=0, low=0.05, high=2.0):
    """`num` sequences of `n` observations at sorted per-sequence times."""
    rng = np.random.default_rng(seed)
    times = np.sort(rng.uniform(low, high, (num, n)), axis=1).astype(np.float32)
    obs = rng.normal(0.0, 3.0, (num, n, 2)).astype(np.float32)
    return obs, times


def test_union_time_grid():
    grid = latent_ode.union_time_grid(0.0, 2, [0.5, 1.0], [[0.2, 1.0], [0.0, 3.0]])
    np.testing.assert_array_equal(grid.grid, np.float32([0.0, 0.2, 0.5, 1.0, 3.0]))
    np.testing.assert_array_equal(grid.indices[0], [[2, 3], [2, 3]])
    np.testing.assert_array_equal(grid.indices[1], [[1, 3], [0, 4]])
    with pytest.raises(ValueError, match="precede t0"):
        latent_ode.union_time_grid(1.0, 1, [0.5, 2.0])


def test_shapes_and_parameter_count():
    model = _model()
    obs, times = _irregular(5, 7)
    mean, logvar = model.encode(obs, times)
    assert tuple(mean.shape) == tuple(logvar.shape) == (5, 4)
    path = model.latent_path(mean, [0.0, 0.5, 1.0])
    assert tuple(path.shape) == (5, 3, 4)
    assert tuple(model.decode(path).shape) == (5, 3, 2)
    grid = latent_ode.union_time_grid(0.0, 5, times)
    terms = model.loss_terms(obs, grid.grid, grid.indices[0], times, tf.zeros([5, 4]))
    assert set(terms) == {"loss", "neg_log_likelihood", "kl"}
    assert all(t.shape == () for t in terms.values())
    # Encoder: RNN 25 x (2 + 1 + 25 + 1) and linear 8 x 26; dynamics 4-20-4;
    # decoder 4-20-2.
    expected = 25 * 29 + 8 * 26 + (20 * 5 + 4 * 21) + (20 * 5 + 2 * 21)
    assert _trainable(model) == expected
    assert _trainable(_model(encoder_time_input=False)) == expected - 25
    clone = latent_ode.LatentODE.from_config(model.get_config())
    assert _trainable(clone) == expected and clone.solver == model.solver


def _trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


def _log_normal_pdf(x, mean, std):
    """log of 1 / (std sqrt(2 pi)) exp(-(x - mean)^2 / (2 std^2)), in NumPy."""
    return np.log(1.0 / (std * np.sqrt(2.0 * np.pi))) - (x - mean) ** 2 / (2 * std**2)


def test_gaussian_log_likelihood_and_kl_match_numpy():
    rng = np.random.default_rng(0)
    x, mu = rng.normal(size=(2, 3, 4))
    for std in (0.1, 0.3, 2.0):
        np.testing.assert_allclose(
            latent_ode.gaussian_log_likelihood(tf.constant(x), tf.constant(mu), std),
            _log_normal_pdf(x, mu, std),
            rtol=1e-10,
        )
    mean, logvar = rng.normal(size=(2, 6))
    var = np.exp(logvar)
    # KL(N(m, v) || N(0, 1)) = log(1 / sqrt(v)) + (v + m^2) / 2 - 1 / 2.
    expected = np.log(1.0 / np.sqrt(var)) + (var + mean**2) / 2 - 0.5
    np.testing.assert_allclose(
        latent_ode.kl_to_standard_normal(tf.constant(mean), tf.constant(logvar)),
        expected,
        rtol=1e-10,
    )
    # Zero exactly at the prior, and matches a Monte Carlo estimate elsewhere.
    assert (
        float(latent_ode.kl_to_standard_normal(tf.constant(0.0), tf.constant(0.0)))
        == 0.0
    )
    m, s = 0.7, 0.4
    draws = rng.normal(m, s, 400_000)
    monte_carlo = np.mean(_log_normal_pdf(draws, m, s) - _log_normal_pdf(draws, 0, 1))
    exact = float(
        latent_ode.kl_to_standard_normal(tf.constant(m), tf.constant(2 * math.log(s)))
    )
    assert monte_carlo == pytest.approx(exact, abs=5e-3)


def test_loss_terms_match_a_per_sequence_numpy_derivation():
    model = _model(likelihood_std=0.3, obs_mean=(0.5, -1.0), obs_scale=4.0)
    obs, times = _irregular(4, 6, seed=1)
    noise = np.random.default_rng(2).normal(size=(4, 4)).astype(np.float32)
    grid = latent_ode.union_time_grid(0.0, 4, times)
    terms = model.loss_terms(obs, grid.grid, grid.indices[0], times, noise)
    mean, logvar = (np.asarray(v, np.float64) for v in model.encode(obs, times))
    z0 = mean + np.exp(0.5 * logvar) * noise
    log_lik, kl = [], []
    for b in range(4):  # every sequence solved alone on its own times
        own = np.concatenate([[0.0], times[b]]).astype(np.float32)
        states = model.ode.solve(tf.constant(z0[b : b + 1], tf.float32), own).states
        prediction = np.asarray(model.decode(states[1:, 0]), np.float64)
        log_lik.append(_log_normal_pdf(obs[b], prediction, 0.3).sum())
        var = np.exp(logvar[b])
        kl.append(np.sum(-0.5 * logvar[b] + (var + mean[b] ** 2) / 2 - 0.5))
    np.testing.assert_allclose(
        float(terms["neg_log_likelihood"]), -np.mean(log_lik), rtol=1e-4
    )
    np.testing.assert_allclose(float(terms["kl"]), np.mean(kl), rtol=1e-5)
    np.testing.assert_allclose(
        float(terms["loss"]), -np.mean(log_lik) + np.mean(kl), rtol=1e-4
    )


def test_a_few_training_steps_lower_the_loss():
    data = spirals.generate_spirals(num_spirals=16, seed=0)
    # Shared times keep the solve grid (and the adjoint's restarts) short.
    sub = spirals.subsample(
        data.observations, data.times, 10, seed=0, per_sequence=False
    )
    standardizer = Standardizer.fit(data.observations)
    model = _model(
        obs_mean=standardizer.mean,
        obs_scale=standardizer.scale,
        solver=SolverConfig(rtol=1e-3, atol=1e-3),
    )
    grid = latent_ode.union_time_grid(0.0, 16, sub.times)

    def loss():
        return float(
            model.loss_terms(
                sub.observations,
                grid.grid,
                grid.indices[0],
                sub.times,
                tf.zeros([16, 4]),
            )["loss"]
        )

    before = loss()
    step = latent_ode.make_train_step(
        model, keras.optimizers.Adam(0.02), sub.observations, sub.times, seed=0
    )
    metrics = [float(step(k)["loss"]) for k in range(30)]
    assert all(np.isfinite(metrics))
    assert loss() < 0.5 * before


def test_extrapolation_is_the_decoded_ode_solution_from_the_posterior_mean():
    model = _model(obs_mean=(1.0, 2.0), obs_scale=3.0)
    obs, times = _irregular(3, 8, seed=3)
    mean, _ = model.encode(obs, times)
    params = [tf.convert_to_tensor(v) for v in model.ode.dynamics.trainable_variables]
    # Shared, irregular query times, also past the observations.
    queries = np.array([0.3, 0.31, 1.2, 2.5, 3.9], np.float32)
    out = model.extrapolate(obs, times, queries)
    assert tuple(out.shape) == (3, 5, 2)
    reference = odeint(
        lambda t, z, p: model.ode.dynamics.stateless_call(p, [], t, z)[0],
        mean,
        np.concatenate([[0.0], queries]),
        params,
        SOLVER,
    ).states
    expected = model.decode(tf.transpose(reference[1:], [1, 0, 2]))
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # Per-sequence query times: each row equals its own shared-time answer.
    rows = np.array([[0.5, 1.0], [2.0, 3.0], [0.1, 4.0]], np.float32)
    per_row = model.extrapolate(obs, times, rows)
    assert tuple(per_row.shape) == (3, 2, 2)
    for b in range(3):
        alone = model.extrapolate(obs[b : b + 1], times[b], rows[b])
        # Different solve grids: equal up to the solver's tolerance.
        np.testing.assert_allclose(per_row[b], alone[0], rtol=1e-4, atol=1e-4)
    # A query at t0 is the decoded posterior mean itself.
    at_zero = model.extrapolate(obs, times, [0.0, 1.0])
    np.testing.assert_allclose(at_zero[:, 0], model.decode(mean), atol=1e-6)


def test_config_validation():
    with pytest.raises(ValueError, match="models"):
        spiral_experiment.SpiralConfig(models=("gru",))
    with pytest.raises(ValueError, match="num_observed"):
        spiral_experiment.SpiralConfig(num_observed=(101,))
    with pytest.raises(ValueError, match="test_fraction"):
        spiral_experiment.SpiralConfig(test_fraction=1.0)
    with pytest.raises(ValueError, match="solver"):
        spiral_experiment.SpiralConfig(solver_method="rk4")  # needs backprop
    with pytest.raises(ValueError, match="likelihood_std"):
        spiral_experiment.SpiralConfig(noise_std=0.0)
    config = spiral_experiment.SpiralConfig()
    assert config.effective_likelihood_std == config.noise_std == 0.3
    assert config.num_observed == (30, 50, 100) and config.num_spirals == 1000


def test_smoke_run_writes_results_and_resumes_without_retraining(tmp_path, capsys):
    config = spiral_experiment.SpiralConfig(
        num_spirals=20,
        num_observed=(10, 100),
        latent_iterations=3,
        rnn_iterations=4,
        rtol=1e-3,
        atol=1e-3,
        jit_compile=False,
        log_every=2,
        checkpoint_every=2,
        num_plot=2,
    )
    out = str(tmp_path / "run")
    record = spiral_experiment.run(config, out)
    for name in ("results.json", "report.md", spiral_experiment.FIGURE):
        assert os.path.exists(os.path.join(out, name))
    assert record["status"] == "complete"
    assert record["figures"] == [spiral_experiment.FIGURE]
    cells = {(c["row"], c["column"]): c for c in record["cells"]}
    assert set(cells) == {("Latent ODE", "100/100"), ("RNN", "100/100")}
    for c in cells.values():
        assert c["ours"]["n"] == 4 and np.isfinite(c["ours"]["mean"])
        assert c["published"]["value"] > 0
    rows = record["extra"]["tables"][0]["rows"]
    assert {(r[0], r[1]) for r in rows} == {
        (label, col)
        for label in ("Latent ODE", "RNN", "RNN with time gaps")
        for col in ("10/100", "100/100")
    }
    assert any("noise std 0.3" in d for d in record["deviations"])
    first_loops = {loop["name"]: loop for loop in record["extra"]["loops"]}
    assert first_loops["latent_ode_n10"]["steps"] == 3
    assert first_loops["rnn_n100"]["steps"] == 4
    capsys.readouterr()
    # The checkpoint holds the Adam moments, and they restore into a fresh build.
    data = spiral_experiment.make_data(config)
    model, optimizer, _, _ = spiral_experiment._build("latent_ode", config, data, 10)
    step = tf.Variable(0, dtype=tf.int64)
    checkpoint.Checkpointer(
        os.path.join(out, "checkpoints", "latent_ode_n10"),
        step=step,
        model=model,
        optimizer=optimizer,
    ).restore_latest()
    assert int(step.numpy()) == int(optimizer.iterations.numpy()) == 3
    assert all(np.abs(v.numpy()).max() > 0 for v in optimizer.variables[2:])
    restored = spiral_experiment.restore_model(out, "latent_ode", 10)
    for a, b in zip(restored.weights, model.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="trains no"):
        spiral_experiment.restore_model(out, "latent_ode", 50)

    again = spiral_experiment.run(config, out)
    progress_lines = capsys.readouterr().out
    assert not re.search(r"\] \d+/\d+", progress_lines), progress_lines
    for loop in again["extra"]["loops"]:
        previous = first_loops[loop["name"]]
        # No new training session: nothing was trained on the rerun.
        assert loop["sessions"] == previous["sessions"] == 1
        assert loop["steps"] == previous["steps"]
        assert loop["train_seconds"] == previous["train_seconds"]  # no training
    for c_new, c_old in zip(again["cells"], record["cells"], strict=True):
        np.testing.assert_allclose(
            c_new["ours"]["mean"], c_old["ours"]["mean"], rtol=1e-5
        )
    assert results.load_results(out)["status"] == "complete"
    with open(os.path.join(out, "report.md")) as f:
        report = f.read()
    assert "Table 2" in report and "RNN with time gaps" in report
