"""Planar CNF: exact trace, normalised densities, sampling/density round trip."""

import numpy as np
import pytest
import tensorflow as tf

from neural_ode import cnf
from neural_ode.data import densities
from neural_ode.solver import SolverConfig

TIGHT = SolverConfig(rtol=1e-7, atol=1e-7)


def _model(width, seed, scale=1.0, **kwargs):
    model = cnf.PlanarCNF(width, dtype="float64", **kwargs)
    model.initialize(seed)
    if scale != 1.0:  # larger weights: a strongly non-Gaussian flow
        for v in model.hyper_weights[-2:]:
            v.assign(scale * v.numpy())
    return model


@pytest.mark.parametrize("t", [0.0, 0.37, 1.0])
def test_exact_trace_equals_trace_of_the_autodiff_jacobian(t):
    model = _model(8, seed=0, scale=3.0)
    z = tf.constant(np.random.default_rng(1).normal(0, 1.5, (50, 2)))
    with tf.GradientTape() as tape:
        tape.watch(z)
        velocity, trace = model.velocity_and_trace(t, z)
    jacobian = tape.batch_jacobian(velocity, z).numpy()
    np.testing.assert_allclose(
        trace.numpy(), np.trace(jacobian, axis1=1, axis2=2), rtol=1e-10, atol=1e-12
    )
    # The augmented dynamics carry -trace in the last column.
    state = tf.concat([z, tf.zeros_like(z[:, :1])], axis=-1)
    out = model.dynamics(tf.constant(t, tf.float64), state, model.params())
    np.testing.assert_allclose(out[:, :2].numpy(), velocity.numpy())
    np.testing.assert_allclose(out[:, 2].numpy(), -trace.numpy())


def test_dynamics_are_a_sum_of_gated_planar_units_read_from_params():
    model = _model(4, seed=2)
    w, u, b, gate = model.unit_parameters(0.5)
    assert w.shape == u.shape == (4, 2) and b.shape == gate.shape == (4,)
    assert ((gate.numpy() > 0) & (gate.numpy() < 1)).all()
    z = np.random.default_rng(3).normal(size=(5, 2))
    expected = sum(
        gate[m].numpy()
        * np.outer(np.tanh(z @ w[m].numpy() + b[m].numpy()), u[m].numpy())
        for m in range(4)
    )
    velocity, _ = model.velocity_and_trace(0.5, tf.constant(z))
    np.testing.assert_allclose(velocity.numpy(), expected, rtol=1e-12)
    # The dynamics read the weights only from `params`.
    state = tf.constant(np.concatenate([z, np.zeros((5, 1))], axis=1))
    zero = [tf.zeros_like(p) for p in model.params()]
    assert np.abs(model.dynamics(0.5, state, zero).numpy()).max() == 0.0
    assert len(model.trainable_variables) == 6


def test_log_density_integrates_to_one_on_a_grid():
    model = _model(6, seed=4, scale=12.0)
    points, area = densities.grid(7.0, 100)
    log_q, nfe = tf.function(lambda x: model.log_prob(x, solver=TIGHT))(
        tf.constant(points)
    )
    mass = np.exp(log_q.numpy()).sum() * area
    assert mass == pytest.approx(1.0, abs=0.02)
    assert int(nfe) > 10
    # The flow is far from the base Gaussian (the test is not trivial).
    base = np.exp(cnf.standard_normal_log_prob(points).numpy())
    assert np.abs(np.exp(log_q.numpy()) - base).sum() * area > 0.1


def test_sampling_and_density_evaluation_agree():
    model = _model(6, seed=5, scale=12.0)
    z0 = tf.constant(np.random.default_rng(6).normal(size=(200, 2)))

    @tf.function
    def round_trip(z0):
        x, log_q_forward, _ = model.sample_and_log_prob(z0, solver=TIGHT)
        log_q_backward, _ = model.log_prob(x, solver=TIGHT)
        back = model.integrate(x, [model.end_time, 0.0], solver=TIGHT).states[-1]
        return x, log_q_forward, log_q_backward, back[:, :2]

    x, forward, backward, recovered = round_trip(z0)
    assert np.abs(x.numpy() - z0.numpy()).max() > 0.3  # the flow moved the points
    np.testing.assert_allclose(backward.numpy(), forward.numpy(), atol=1e-5)
    np.testing.assert_allclose(recovered.numpy(), z0.numpy(), atol=1e-5)


def test_adjoint_gradient_matches_backprop_through_fine_rk4():
    model = _model(3, seed=7, scale=2.0)
    z0 = tf.constant(np.random.default_rng(8).normal(size=(16, 2)))
    energy = densities.ENERGIES["ring"]

    @tf.function
    def grads(solver):
        with tf.GradientTape() as tape:
            x, log_q, _ = model.sample_and_log_prob(z0, solver=solver)
            loss = tf.reduce_mean(log_q + energy(x))
        return tape.gradient(loss, model.trainable_variables)

    adjoint = grads(SolverConfig(rtol=1e-8, atol=1e-8))
    rk4 = grads(SolverConfig(method="rk4", gradient="backprop", steps_per_interval=200))
    for a, r in zip(adjoint, rk4, strict=True):
        np.testing.assert_allclose(a.numpy(), r.numpy(), rtol=1e-4, atol=1e-6)


def test_initialize_is_deterministic():
    a, b = cnf.PlanarCNF(4), cnf.PlanarCNF(4)
    a.initialize(9)
    b.initialize(9)
    for va, vb in zip(a.trainable_variables, b.trainable_variables, strict=True):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert cnf.hyper_output_size(4, 2) == 24
    assert a.hyper_weights[-1].shape == (24,)
