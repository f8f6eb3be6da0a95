"""Returns, rllab's linear feature baseline and advantages, batched over tasks.

Roll-outs are tensors `[T, M, H, ...]` (task, trajectory, time) with a `mask` that
is 1 up to and including the step an episode ends on and 0 after, so episodes of
different lengths share one array.

The baseline is rllab's `LinearFeatureBaseline`
(cbfinn/maml_rl, rllab/baselines/linear_feature_baseline.py): features
`[o, o^2, t, t^2, t^3, 1]` with observations clipped to [-10, 10] and `t` the step
index / 100, fitted to the discounted returns by ridge-regularised least squares
(coefficient 1e-5) separately for each task, as the official sampler calls
`process_samples` per task (sandbox/rocky/tf/algos/batch_maml_polopt.py).
Advantages are generalised advantage estimates (discount 0.99, lambda 1) centred
per task to zero mean and unit variance (rllab/sampler/base.py, `center_adv`).
"""

from __future__ import annotations

import tensorflow as tf

REG_COEFF = 1e-5


def discounted_returns(
    rewards: tf.Tensor,
    mask: tf.Tensor,
    discount: float,
) -> tf.Tensor:
    """Reward-to-go `sum_k discount^k r_{t+k}` within each episode, `[..., H]`."""
    r = tf.transpose(
        rewards * mask, [tf.rank(rewards) - 1] + list(range(len(rewards.shape) - 1))
    )
    out = tf.scan(
        lambda acc, x: x + discount * acc,
        r,
        reverse=True,
        initializer=tf.zeros_like(r[0]),
    )
    return tf.transpose(out, list(range(1, len(rewards.shape))) + [0]) * mask


def features(observations: tf.Tensor) -> tf.Tensor:
    """rllab's baseline features of `[T, M, H, d]` observations, `[T, M, H, 2d+4]`."""
    o = tf.clip_by_value(tf.cast(observations, tf.float64), -10.0, 10.0)
    horizon = tf.shape(o)[2]
    t = tf.cast(tf.range(horizon), tf.float64) / 100.0
    t = tf.broadcast_to(t[None, None, :, None], tf.concat([tf.shape(o)[:3], [1]], 0))
    return tf.concat([o, o * o, t, t * t, t * t * t, tf.ones_like(t)], axis=-1)


def fit_linear_baseline(
    feats: tf.Tensor, returns: tf.Tensor, mask: tf.Tensor, reg_coeff: float = REG_COEFF
) -> tf.Tensor:
    """Per-task least-squares coefficients `[T, F]` (float64 normal equations).

    Solves `(X^T X + reg I) w = X^T y` over the valid steps of each task, as rllab
    does with `np.linalg.lstsq` on the same system.
    """
    x = tf.reshape(feats, [tf.shape(feats)[0], -1, feats.shape[-1]])
    m = tf.reshape(tf.cast(mask, tf.float64), [tf.shape(feats)[0], -1, 1])
    y = tf.reshape(tf.cast(returns, tf.float64), [tf.shape(feats)[0], -1, 1])
    xtx = tf.matmul(x * m, x, transpose_a=True)
    xty = tf.matmul(x * m, y, transpose_a=True)
    eye = tf.eye(feats.shape[-1], dtype=tf.float64)[None]
    return tf.linalg.solve(xtx + reg_coeff * eye, xty)[..., 0]


def predict(feats: tf.Tensor, coeffs: tf.Tensor) -> tf.Tensor:
    """Baseline values `[T, M, H]` of fitted per-task coefficients."""
    return tf.einsum("tmhf,tf->tmh", feats, coeffs)


def gae_advantages(
    rewards: tf.Tensor,
    values: tf.Tensor,
    mask: tf.Tensor,
    discount: float,
    gae_lambda: float,
) -> tf.Tensor:
    """Generalised advantage estimates; the value after an episode's end is 0."""
    v = values * mask
    v_next = tf.concat([v[..., 1:], tf.zeros_like(v[..., :1])], axis=-1)
    deltas = (rewards + discount * v_next - v) * mask
    return discounted_returns(deltas, mask, discount * gae_lambda)


def center_per_task(advantages: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Zero mean, unit standard deviation over each task's valid steps."""
    axes = list(range(1, len(advantages.shape)))
    n = tf.reduce_sum(mask, axes, keepdims=True)
    mean = tf.reduce_sum(advantages * mask, axes, keepdims=True) / n
    var = tf.reduce_sum(tf.square(advantages - mean) * mask, axes, keepdims=True) / n
    return (advantages - mean) / (tf.sqrt(var) + 1e-8) * mask


def advantages(
    observations: tf.Tensor,
    rewards: tf.Tensor,
    mask: tf.Tensor,
    discount: float = 0.99,
    gae_lambda: float = 1.0,
    center: bool = True,
) -> tf.Tensor:
    """Fits the per-task linear baseline and returns the (centred) advantages."""
    rewards = tf.cast(rewards, tf.float64)
    mask64 = tf.cast(mask, tf.float64)
    returns = discounted_returns(rewards, mask64, discount)
    feats = features(observations)
    values = predict(feats, fit_linear_baseline(feats, returns, mask64))
    adv = gae_advantages(rewards, values, mask64, discount, gae_lambda)
    if center:
        adv = center_per_task(adv, mask64)
    return tf.cast(adv, tf.float32)
