"""MAML RL core against independent references: a bandit's known policy gradient,
closed-form least squares, finite differences, and the TRPO step's closed form."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from maml.rl import baseline as rl_baseline
from maml.rl import learner as rl_learner
from maml.rl import policy as rl_policy
from maml.rl import trpo


def _policy_params(
    seed=0, obs_dim=2, act_dim=2, hidden=(8, 8), context_dim=0, dtype=tf.float64
):
    pol = rl_policy.GaussianMLPPolicy(obs_dim, act_dim, hidden, context_dim, seed=seed)
    params = {k: tf.cast(v, dtype) for k, v in pol.params().items()}
    params["log_std"] = params["log_std"] - 0.3
    return pol, params


def _batch(rng, tasks=2, traj=3, horizon=4, obs_dim=2, act_dim=2):
    obs = rng.normal(size=(tasks, traj, horizon, obs_dim))
    act = rng.normal(size=(tasks, traj, horizon, act_dim))
    adv = rng.normal(size=(tasks, traj, horizon))
    mask = np.ones((tasks, traj, horizon))
    mask[0, 0, 2:] = 0.0  # an episode that ended early
    return tuple(tf.constant(x, tf.float64) for x in (obs, act, adv, mask))


def test_reinforce_on_a_bandit_matches_the_known_gradient():
    # One-step bandit, reward -(a - c)^2 per dimension, a ~ N(mu, sigma^2):
    # J = -sum((mu - c)^2 + sigma^2), dJ/dmu = -2 (mu - c), dJ/dlog_sigma = -2 sigma^2.
    rng = np.random.default_rng(0)
    pol = rl_policy.GaussianMLPPolicy(1, 2, (4,), seed=0)
    params = rl_policy.tile(pol.params(), 1)
    mu = np.array([0.3, -0.2], np.float32)
    params["b1"] = tf.constant(mu[None])
    params["log_std"] = tf.constant(np.log([[0.5, 0.8]]), tf.float32)
    sigma = np.array([0.5, 0.8])
    c = np.array([1.0, -1.0])
    n = 400_000
    obs = np.zeros((1, n, 1, 1), np.float32)  # hidden units are 0: mean = b1
    act = (mu + sigma * rng.standard_normal((n, 2))).astype(np.float32)
    reward = -np.sum((act - c) ** 2, -1)
    mask = np.ones((1, n, 1), np.float32)
    watched = [params["b1"], params["log_std"]]
    with tf.GradientTape() as tape:
        tape.watch(watched)
        loss = rl_learner.pg_surrogate(
            params,
            obs,
            act[None, :, None],
            reward[None, :, None].astype(np.float32),
            mask,
            pol.num_layers,
        )[0]
    g_mu, g_ls = (-g.numpy()[0] for g in tape.gradient(loss, watched))
    # Standard errors of the per-sample estimators, for the tolerance.
    z = (act - mu) / sigma
    se_mu = np.std(reward[:, None] * z / sigma, 0) / np.sqrt(n)
    se_ls = np.std(reward[:, None] * (z**2 - 1), 0) / np.sqrt(n)
    np.testing.assert_array_less(np.abs(g_mu - (-2 * (mu - c))), 5 * se_mu)
    np.testing.assert_array_less(np.abs(g_ls - (-2 * sigma**2)), 5 * se_ls)


def _numpy_discount_cumsum(x, discount):
    out = np.zeros_like(x)
    acc = 0.0
    for t in reversed(range(len(x))):
        acc = x[t] + discount * acc
        out[t] = acc
    return out


def test_linear_baseline_equals_closed_form_least_squares_per_task():
    rng = np.random.default_rng(1)
    tasks, traj, horizon = 2, 4, 7
    obs = rng.normal(size=(tasks, traj, horizon, 2)) * 3
    obs[0, 1, 0, 0] = 25.0  # clipped to 10 by the features
    rewards = rng.normal(size=(tasks, traj, horizon))
    lengths = rng.integers(3, horizon + 1, size=(tasks, traj))
    mask = (np.arange(horizon)[None, None] < lengths[..., None]).astype(np.float64)
    adv = rl_baseline.advantages(
        tf.constant(obs, tf.float32),
        tf.constant(rewards * mask, tf.float32),
        tf.constant(mask, tf.float32),
        discount=0.99,
        gae_lambda=1.0,
        center=False,
    ).numpy()
    for i in range(tasks):
        feats, rets, paths = [], [], []
        for j in range(traj):
            n = lengths[i, j]
            o = np.clip(obs[i, j, :n], -10, 10)
            t = np.arange(n).reshape(-1, 1) / 100.0
            f = np.concatenate([o, o**2, t, t**2, t**3, np.ones((n, 1))], 1)
            r = _numpy_discount_cumsum(rewards[i, j, :n], 0.99)
            feats.append(f)
            rets.append(r)
            paths.append((f, r))
        x, y = np.concatenate(feats), np.concatenate(rets)
        coeffs = np.linalg.lstsq(
            x.T @ x + 1e-5 * np.eye(x.shape[1]), x.T @ y, rcond=None
        )[0]
        for j, (f, r) in enumerate(paths):
            n = lengths[i, j]
            np.testing.assert_allclose(
                adv[i, j, :n], r - f @ coeffs, rtol=1e-4, atol=1e-4
            )
            np.testing.assert_array_equal(adv[i, j, n:], 0.0)


def test_centred_advantages_have_zero_mean_unit_std_per_task():
    rng = np.random.default_rng(2)
    obs = tf.constant(rng.normal(size=(3, 5, 6, 2)), tf.float32)
    rew = tf.constant(rng.normal(size=(3, 5, 6)), tf.float32)
    mask = np.ones((3, 5, 6), np.float32)
    mask[1, :, 4:] = 0
    adv = rl_baseline.advantages(obs, rew * mask, tf.constant(mask)).numpy()
    for i in range(3):
        valid = adv[i][mask[i] > 0]
        assert abs(valid.mean()) < 1e-5
        assert abs(valid.std() - 1.0) < 1e-4


def test_hessian_vector_product_matches_finite_differences():
    _, params = _policy_params()
    names = list(params)
    rng = np.random.default_rng(3)
    obs, act, adv, mask = _batch(rng)

    def f(plist):
        p = rl_policy.tile(dict(zip(names, plist, strict=True)), 2)
        return tf.reduce_sum(rl_learner.pg_surrogate(p, obs, act, adv, mask, 3))

    plist = [params[k] for k in names]
    v = tf.constant(rng.normal(size=int(trpo.flatten(plist).shape[0])), tf.float64)
    hv = trpo.hessian_vector_product(f, plist, v).numpy()
    eps = 1e-5
    flat = trpo.flatten(plist)
    g_plus = trpo.gradient(f, trpo.unflatten(flat + eps * v, plist))[1].numpy()
    g_minus = trpo.gradient(f, trpo.unflatten(flat - eps * v, plist))[1].numpy()
    np.testing.assert_allclose(hv, (g_plus - g_minus) / (2 * eps), rtol=1e-5, atol=1e-7)


def test_conjugate_gradient_solves_a_spd_system():
    rng = np.random.default_rng(4)
    m = rng.normal(size=(6, 6))
    a = m @ m.T + 6 * np.eye(6)
    b = rng.normal(size=6)
    x = trpo.conjugate_gradient(
        lambda v: tf.linalg.matvec(tf.constant(a), v), tf.constant(b), iterations=6
    ).numpy()
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-8)


def test_trpo_step_on_a_quadratic_trust_region_matches_the_closed_form():
    # loss = g^T x, KL = 0.5 x^T A x: the step is -sqrt(2 delta / g^T A^-1 g) A^-1 g.
    rng = np.random.default_rng(5)
    m = rng.normal(size=(5, 5))
    a = tf.constant(m @ m.T + 5 * np.eye(5))
    g = tf.constant(rng.normal(size=5))
    x0 = [tf.zeros(5, tf.float64)]

    def loss_and_kl(p):
        kl = 0.5 * tf.reduce_sum(p[0] * tf.linalg.matvec(a, p[0]))
        return tf.reduce_sum(g * p[0]), kl

    new, info = trpo.trpo_step(
        x0,
        loss_and_kl,
        lambda v: trpo.hessian_vector_product(lambda p: loss_and_kl(p)[1], x0, v),
        max_kl=0.01,
        cg_iterations=5,
        reg_coeff=0.0,
    )
    ainv_g = np.linalg.solve(a.numpy(), g.numpy())
    expected = -np.sqrt(2 * 0.01 / (g.numpy() @ ainv_g)) * ainv_g
    assert bool(info["accepted"])
    # The full step sits on the KL boundary, where kl <= max_kl may fail by
    # round-off; then one backtrack of 0.8 is taken.
    scale = 0.8 ** int(info["backtracks"])
    np.testing.assert_allclose(new[0].numpy(), scale * expected, rtol=1e-6)
    assert float(info["kl_after"]) <= 0.01


def test_meta_trpo_step_respects_the_kl_bound_and_lowers_the_loss():
    rng = np.random.default_rng(6)
    pol = rl_policy.GaussianMLPPolicy(2, 2, (16, 16), seed=1)
    learner = rl_learner.RLMetaLearner(
        pol, rl_learner.RLHyperparameters(alpha=0.5, max_kl=0.01)
    )
    pre = tuple(tf.cast(x, tf.float32) for x in _batch(rng, 3, 4, 5))
    post = tuple(tf.cast(x, tf.float32) for x in _batch(rng, 3, 4, 5))
    before = {k: v.numpy() for k, v in pol.variables_by_name.items()}
    info = learner._meta_step(pre, post)
    assert bool(info["accepted"])
    assert 0.0 < float(info["kl_after"]) <= 0.01
    assert float(info["loss_after"]) < float(info["loss_before"])
    # Recompute the KL independently of the step's own bookkeeping.
    theta_old = {k: tf.constant(v) for k, v in before.items()}
    phi_old = rl_learner.adapt(rl_policy.tile(theta_old, 3), *pre, 0.5, 3, pol.names)
    phi_new = rl_learner.adapt(rl_policy.tile(pol.params(), 3), *pre, 0.5, 3, pol.names)
    obs = tf.reshape(post[0], [3, -1, 2])
    m_old, s_old = rl_policy.distribution(phi_old, obs, 3)
    m_new, s_new = rl_policy.distribution(phi_new, obs, 3)
    kl = rl_policy.kl_divergence(m_old, s_old, m_new, s_new).numpy()
    mask = tf.reshape(post[3], [3, -1]).numpy()
    assert (kl * mask).sum() / mask.sum() <= 0.01 + 1e-6


@pytest.mark.parametrize("context_dim", [0, 3])
def test_meta_gradient_matches_float64_finite_differences(context_dim):
    # Fixed sampled trajectories; the post-update surrogate as a function of theta
    # through the inner policy-gradient step.
    rng = np.random.default_rng(7)
    pol, params = _policy_params(context_dim=context_dim)
    learner = rl_learner.RLMetaLearner(pol, rl_learner.RLHyperparameters(alpha=0.3))
    names = pol.names
    pre, post = _batch(rng), _batch(rng)
    tiled = rl_policy.tile(params, 2)
    phi_old = rl_learner.adapt(tiled, *pre, 0.3, 3, pol.adapted_names)
    old_mean, old_log_std = rl_policy.distribution(
        phi_old, tf.reshape(post[0], [2, -1, 2]), 3
    )

    def loss(plist):
        return learner._post_loss_and_kl(
            dict(zip(names, plist, strict=True)), pre, post, old_mean, old_log_std, True
        )[0]

    plist = [params[k] for k in names]
    _, grad = trpo.gradient(loss, plist)
    flat = trpo.flatten(plist).numpy()
    eps = 1e-6
    for idx in rng.choice(flat.size, 25, replace=False):
        e = np.zeros_like(flat)
        e[idx] = eps
        fd = (
            loss(trpo.unflatten(tf.constant(flat + e), plist))
            - loss(trpo.unflatten(tf.constant(flat - e), plist))
        ).numpy() / (2 * eps)
        np.testing.assert_allclose(grad.numpy()[idx], fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("context_dim", [0, 3])
def test_factored_kl_hvp_equals_nested_tapes_and_finite_differences(context_dim):
    rng = np.random.default_rng(8)
    pol, params = _policy_params(context_dim=context_dim)
    learner = rl_learner.RLMetaLearner(pol, rl_learner.RLHyperparameters(alpha=0.3))
    names = pol.names
    pre, post = _batch(rng), _batch(rng)
    tiled = rl_policy.tile(params, 2)
    phi_old = rl_learner.adapt(tiled, *pre, 0.3, 3, pol.adapted_names)
    old_mean, old_log_std = rl_policy.distribution(
        phi_old, tf.reshape(post[0], [2, -1, 2]), 3
    )

    def kl(plist):
        return learner._post_loss_and_kl(
            dict(zip(names, plist, strict=True)), pre, post, old_mean, old_log_std, True
        )[1]

    plist = [params[k] for k in names]
    v = tf.constant(rng.normal(size=int(trpo.flatten(plist).shape[0])), tf.float64)
    factored = learner._factored_kl_hvp(tiled, phi_old, pre, post, v).numpy()
    nested = trpo.hessian_vector_product(kl, plist, v).numpy()
    np.testing.assert_allclose(factored, nested, rtol=1e-6, atol=1e-10)
    eps = 1e-5
    flat = trpo.flatten(plist)
    g_plus = trpo.gradient(kl, trpo.unflatten(flat + eps * v, plist))[1].numpy()
    g_minus = trpo.gradient(kl, trpo.unflatten(flat - eps * v, plist))[1].numpy()
    np.testing.assert_allclose(
        factored, (g_plus - g_minus) / (2 * eps), rtol=1e-4, atol=1e-7
    )
