"""Planar normalizing flow: constraint, log-determinant, inverse, normalisation."""

import numpy as np
import pytest
import tensorflow as tf

from neural_ode import cnf, planar_flow
from neural_ode.data import densities


def _flow(num_layers, seed, scale=1.0, adversarial=False):
    flow = planar_flow.PlanarFlow(num_layers, init_scale=scale, dtype="float64")
    flow.initialize(seed)
    rng = np.random.default_rng(seed + 100)
    flow.b.assign(rng.normal(0, 1, num_layers))
    if adversarial:  # u pointing against w: the unconstrained map would fold.
        flow.u.assign(-5.0 * flow.w.numpy())
    return flow


def test_constraint_keeps_w_dot_u_hat_above_minus_one():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 2, (1000, 2))
    against = -rng.uniform(0, 30, (500, 1)) * w[500:]
    u = np.concatenate([rng.normal(0, 3, (500, 2)), against])
    u_hat = planar_flow.constrain_u(tf.constant(u), tf.constant(w)).numpy()
    exact = planar_flow.constrained_dot(tf.constant(u), tf.constant(w)).numpy()
    assert (exact >= -1.0).all()
    # Strictly above -1 unless softplus(w.u) underflows next to 1 (w.u < -36).
    assert (exact[(w * u).sum(axis=1) > -36] > -1.0).all()
    # It is -1 + softplus(w.u) and equals w.u_hat; u is only changed along w.
    np.testing.assert_allclose(
        exact, -1 + np.log1p(np.exp((w * u).sum(axis=1))), rtol=1e-12
    )
    np.testing.assert_allclose((w * u_hat).sum(axis=1), exact, rtol=1e-9, atol=1e-12)
    cross = lambda a, b: a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]  # noqa: E731
    np.testing.assert_allclose(cross(w, u_hat), cross(w, u), atol=1e-9)


@pytest.mark.parametrize("adversarial", [False, True])
def test_log_det_equals_log_abs_det_of_the_autodiff_jacobian(adversarial):
    flow = _flow(6, seed=1, adversarial=adversarial)
    z = tf.constant(np.random.default_rng(2).normal(0, 1.5, (64, 2)))
    with tf.GradientTape() as tape:
        tape.watch(z)
        y, log_det = flow.forward(z)
    jacobian = tape.batch_jacobian(y, z).numpy()
    _, expected = np.linalg.slogdet(jacobian)
    np.testing.assert_allclose(log_det.numpy(), expected, rtol=1e-9, atol=1e-10)
    assert (np.linalg.det(jacobian) > 0).all()  # orientation-preserving


@pytest.mark.parametrize("adversarial", [False, True])
def test_inverse_undoes_forward_and_returns_the_layer_path(adversarial):
    flow = _flow(8, seed=3, scale=1.5, adversarial=adversarial)
    z = tf.constant(np.random.default_rng(4).normal(0, 2, (200, 2)))
    y, _, path = flow.forward(z, return_path=True)
    assert path.shape == (9, 200, 2)
    recovered, inverse_path = flow.inverse(y, return_path=True)
    np.testing.assert_allclose(recovered.numpy(), z.numpy(), atol=1e-9)
    np.testing.assert_allclose(inverse_path.numpy(), path.numpy(), atol=1e-9)


def test_flow_density_integrates_to_one():
    # log q(x) = log N(f(x)) + log|det df/dx| (the maximum-likelihood direction).
    flow = _flow(5, seed=5)
    points, area = densities.grid(9.0, 360)
    z, log_det = flow.forward(tf.constant(points))
    log_q = cnf.standard_normal_log_prob(z) + log_det
    assert np.exp(log_q.numpy()).sum() * area == pytest.approx(1.0, abs=1e-3)


def test_initialize_is_deterministic_and_gradients_reach_every_weight():
    a, b = planar_flow.PlanarFlow(3), planar_flow.PlanarFlow(3)
    a.initialize(7)
    b.initialize(7)
    for va, vb in zip(a.trainable_variables, b.trainable_variables, strict=True):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())
    assert len(a.trainable_variables) == 3
    z = tf.random.normal([32, 2])
    with tf.GradientTape() as tape:
        y, log_det = a.forward(z)
        loss = tf.reduce_sum(y**2) + tf.reduce_sum(log_det)
    grads = tape.gradient(loss, a.trainable_variables)
    assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)
