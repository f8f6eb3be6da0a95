"""MAML for reinforcement learning: policy-gradient inner step, TRPO meta-step.

Official code: cbfinn/maml_rl, sandbox/rocky/tf/algos/maml_npo.py (the graph),
maml_trpo.py (the optimiser), batch_maml_polopt.py (one meta-iteration).

One meta-iteration (`maml_iteration`):

1. roll out the shared policy theta on each of T tasks (M episodes each);
2. fit each task's linear baseline and take one vanilla policy-gradient step
   `phi_i = theta - alpha grad L_i(theta)`, with the REINFORCE surrogate
   `L_i = -mean_t log pi(a_t | s_t) A_t` (every parameter adapts; only the context
   vector for the context-vector policy);
3. roll out each adapted policy phi_i;
4. TRPO step on theta for the post-update surrogate
   `mean_i -mean_t [pi_{phi_i(theta)}(a|s) / pi_{phi_i(theta_old)}(a|s)] A_t`
   subject to `mean KL(pi_{phi_i(theta_old)} || pi_{phi_i(theta)}) <= 0.01` over
   the post-update samples (`kl_constrain_step = -1` in the official code), with
   exact Hessian-vector products (`maml.rl.trpo`).

Gradient terms this estimator drops, as the official one does: the post-update
samples and their advantages are constants, so the dependence of the post-update
*sampling distribution* on theta (through phi_i, and through the pre-update
trajectories the inner step was computed from) contributes nothing; the baselines
fitted to sampled returns are constants too. Only the explicit path
theta -> phi_i(theta) -> log pi_{phi_i} is differentiated (through the inner
gradient, so second derivatives are kept).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from maml.rl import baseline as rl_baseline
from maml.rl import policy as rl_policy
from maml.rl import trpo
from maml.rl.sampling import Batch


@dataclasses.dataclass(frozen=True)
class RLHyperparameters:
    """Learning settings (defaults: official code; see maml.experiments.rl_configs)."""

    alpha: float = 0.1
    discount: float = 0.99
    gae_lambda: float = 1.0
    max_kl: float = 0.01
    cg_iterations: int = 10
    reg_coeff: float = 1e-5
    backtrack_ratio: float = 0.8
    max_backtracks: int = 15
    pretrain_learning_rate: float = 1e-3
    hvp: str = "factored"
    hvp_subsample: float = 1.0


def _flat(x: tf.Tensor) -> tf.Tensor:
    """`[T, M, H, ...]` -> `[T, M*H, ...]`."""
    shape = tf.shape(x)
    return tf.reshape(x, tf.concat([shape[:1], [-1], shape[3:]], 0))


def pg_surrogate(
    params: rl_policy.Params,
    obs,
    act,
    adv,
    mask,
    num_layers: int,
) -> tf.Tensor:
    """Per-task REINFORCE surrogate `-mean_t log pi(a|s) A`, `[T]`."""
    mean, log_std = rl_policy.distribution(params, _flat(obs), num_layers)
    logp = rl_policy.log_likelihood(_flat(act), mean, log_std)
    m = _flat(mask)
    return -tf.reduce_sum(logp * _flat(adv) * m, -1) / tf.reduce_sum(m, -1)


def adapt(
    params: rl_policy.Params,
    obs,
    act,
    adv,
    mask,
    alpha,
    num_layers: int,
    adapted_names: Sequence[str],
) -> rl_policy.Params:
    """One policy-gradient step per task on per-task parameters.

    Differentiable: under an outer tape watching the shared parameters the
    result carries the second-order terms.
    """
    watched = [params[k] for k in adapted_names]
    with tf.GradientTape() as tape:
        tape.watch(watched)
        loss = tf.reduce_sum(pg_surrogate(params, obs, act, adv, mask, num_layers))
    grads = tape.gradient(
        loss, watched, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    out = dict(params)
    for k, g in zip(adapted_names, grads, strict=True):
        out[k] = params[k] - alpha * g
    return out


class RLMetaLearner:
    """Trains a `GaussianMLPPolicy` with MAML-TRPO, TRPO or REINFORCE + Adam.

    Args:
        policy: The policy (its variables are updated in place).
        hyper: Learning settings.
    """

    def __init__(self, policy: rl_policy.GaussianMLPPolicy, hyper: RLHyperparameters):
        self.policy, self.hyper = policy, hyper
        self._layers = policy.num_layers
        self._names = policy.names
        self._adapted = policy.adapted_names
        self.optimizer = keras.optimizers.Adam(hyper.pretrain_learning_rate)
        self._meta_step = tf.function(self._meta_step_impl, reduce_retracing=True)
        self._trpo_step = tf.function(self._trpo_step_impl, reduce_retracing=True)
        self._adapt = tf.function(self._adapt_impl, reduce_retracing=True)
        self._pg_step = tf.function(self._pg_step_impl, reduce_retracing=True)
        self._advantages = tf.function(self._advantages_impl, reduce_retracing=True)

    # --- pieces ---------------------------------------------------------------------
    def _advantages_impl(self, obs, rewards, mask):
        return rl_baseline.advantages(
            obs, rewards, mask, self.hyper.discount, self.hyper.gae_lambda
        )

    def advantages(self, batch: Batch) -> tf.Tensor:
        """Centred GAE advantages with the per-task linear baseline."""
        return self._advantages(batch.observations, batch.rewards, batch.mask)

    def _adapt_impl(self, params, obs, act, adv, mask, alpha):
        return adapt(params, obs, act, adv, mask, alpha, self._layers, self._adapted)

    def adapt(
        self, params: rl_policy.Params, batch: Batch, adv: tf.Tensor, alpha: float
    ) -> rl_policy.Params:
        """Per-task parameters after one policy-gradient step on `batch`."""
        return self._adapt(
            params,
            batch.observations,
            batch.actions,
            adv,
            batch.mask,
            tf.constant(alpha, tf.float32),
        )

    def _shared(self, flat_list):
        return dict(zip(self._names, flat_list, strict=True))

    def _post_loss_and_kl(self, theta, pre, post, old_mean, old_log_std, inner):
        num_tasks = tf.shape(post[0])[0]
        params = rl_policy.tile(theta, num_tasks)
        if inner:
            params = adapt(params, *pre, self.hyper.alpha, self._layers, self._adapted)
        obs, act, adv, mask = post
        mean, log_std = rl_policy.distribution(params, _flat(obs), self._layers)
        logp = rl_policy.log_likelihood(_flat(act), mean, log_std)
        old_logp = rl_policy.log_likelihood(_flat(act), old_mean, old_log_std)
        m = _flat(mask)
        ratio = tf.exp(logp - old_logp)
        loss = tf.reduce_mean(
            -tf.reduce_sum(ratio * _flat(adv) * m, -1) / tf.reduce_sum(m, -1)
        )
        kl = rl_policy.kl_divergence(old_mean, old_log_std, mean, log_std)
        mean_kl = tf.reduce_sum(kl * m) / tf.reduce_sum(m)
        return loss, mean_kl

    def _trpo(self, pre, post, inner):
        theta = self.policy.params()
        num_tasks = tf.shape(post[0])[0]
        tiled = rl_policy.tile(theta, num_tasks)
        params = tiled
        if inner:
            params = adapt(tiled, *pre, self.hyper.alpha, self._layers, self._adapted)
        old_mean, old_log_std = rl_policy.distribution(
            params, _flat(post[0]), self._layers
        )
        old_mean, old_log_std = (
            tf.stop_gradient(old_mean),
            tf.stop_gradient(old_log_std),
        )

        def loss_and_kl(flat_list):
            return self._post_loss_and_kl(
                self._shared(flat_list), pre, post, old_mean, old_log_std, inner
            )

        theta_list = [theta[k] for k in self._names]
        if inner and self.hyper.hvp == "factored":

            def kl_hvp(v):
                return self._factored_kl_hvp(tiled, params, pre, post, v)
        else:

            def kl_hvp(v):
                return trpo.hessian_vector_product(
                    lambda p: loss_and_kl(p)[1], theta_list, v
                )

        h = self.hyper
        new, info = trpo.trpo_step(
            theta_list,
            loss_and_kl,
            kl_hvp,
            h.max_kl,
            h.cg_iterations,
            h.reg_coeff,
            h.backtrack_ratio,
            h.max_backtracks,
        )
        self.policy.assign(self._shared(new))
        return info

    def _inner_hvp(self, params, pre, vectors):
        """Per-task `H_i v_i`, H_i the Hessian of task i's inner surrogate."""
        primals = [params[k] for k in self._names]
        tangents = [vectors[k] for k in self._names]
        zero = tf.UnconnectedGradients.ZERO
        with tf.autodiff.ForwardAccumulator(primals, tangents) as acc:
            with tf.GradientTape() as tape:
                tape.watch(primals)
                loss = tf.reduce_sum(
                    pg_surrogate(self._shared(primals), *pre, self._layers)
                )
            grads = tape.gradient(loss, primals, unconnected_gradients=zero)
        return self._shared([acc.jvp(g, unconnected_gradients=zero) for g in grads])

    def _factored_kl_hvp(self, tiled, phi_old, pre, post, flat_v):
        """Exact `H v` of the post-update mean KL at theta_old, as `J^T F J v`.

        With phi_i(theta) the adapted parameters, the Hessian of
        `KL(theta) = KL(pi_old || pi_{phi(theta)})` at theta_old is
        `sum_i J_i^T F_i J_i + sum_i (d KL / d phi_i) d^2 phi_i / d theta^2`; the
        second sum vanishes because the KL's gradient in phi is zero where
        phi = phi_old. `J_i = I - alpha P H_i` (P keeps the adapted parameters,
        H_i the inner surrogate's Hessian), so `J v` and `J^T w` are Hessian-vector
        products of the inner surrogate, and `F_i u` is one of the KL in phi:
        second derivatives only, instead of the third derivatives of
        differentiating the inner step twice.

        With `hvp_subsample < 1` only the first fraction of each task's
        trajectories enters the product (the TRPO paper's Fisher subsampling;
        rllab's `subsample_factor`); the line search still uses every sample.
        """
        num_tasks = tf.shape(post[0])[0]
        keep = max(1, math.ceil(self.hyper.hvp_subsample * post[0].shape[1]))
        pre = tuple(x[:, :keep] for x in pre)
        post = tuple(x[:, :keep] for x in post)
        v = rl_policy.tile(
            self._shared(trpo.unflatten(flat_v, [tiled[k][0] for k in self._names])),
            num_tasks,
        )
        alpha = self.hyper.alpha
        hv = self._inner_hvp(tiled, pre, v)
        u = {
            k: v[k] - alpha * hv[k] if k in self._adapted else v[k] for k in self._names
        }
        obs, act, _, mask = post
        m = _flat(mask)
        phi = [tf.stop_gradient(phi_old[k]) for k in self._names]
        old_mean, old_log_std = rl_policy.distribution(
            self._shared(phi), _flat(obs), self._layers
        )

        def kl_of(phi_list):
            mean, log_std = rl_policy.distribution(
                self._shared(phi_list), _flat(obs), self._layers
            )
            kl = rl_policy.kl_divergence(old_mean, old_log_std, mean, log_std)
            return tf.reduce_sum(kl * m) / tf.reduce_sum(m)

        zero = tf.UnconnectedGradients.ZERO
        with tf.autodiff.ForwardAccumulator(phi, [u[k] for k in self._names]) as acc:
            with tf.GradientTape() as tape:
                tape.watch(phi)
                value = kl_of(phi)
            grads = tape.gradient(value, phi, unconnected_gradients=zero)
        fu = dict(
            zip(
                self._names,
                [acc.jvp(g, unconnected_gradients=zero) for g in grads],
                strict=True,
            )
        )
        w_adapted = {
            k: fu[k] if k in self._adapted else tf.zeros_like(fu[k])
            for k in self._names
        }
        hw = self._inner_hvp(tiled, pre, w_adapted)
        out = [tf.reduce_sum(fu[k] - alpha * hw[k], 0) for k in self._names]
        return trpo.flatten(out)

    def _meta_step_impl(self, pre, post):
        return self._trpo(pre, post, inner=True)

    def _trpo_step_impl(self, batch):
        return self._trpo(None, batch, inner=False)

    def _pg_step_impl(self, obs, act, adv, mask):
        variables = [self.policy.variables_by_name[k] for k in self._names]
        with tf.GradientTape() as tape:
            theta = rl_policy.tile(self.policy.params(), tf.shape(obs)[0])
            loss = tf.reduce_mean(
                pg_surrogate(theta, obs, act, adv, mask, self._layers)
            )
        self.optimizer.apply_gradients(
            zip(tape.gradient(loss, variables), variables, strict=True)
        )
        return loss

    # --- iterations -------------------------------------------------------------
    def maml_iteration(
        self, sampler, tasks: np.ndarray, num_traj: int, seed: int, iteration: int
    ) -> dict[str, float]:
        """One MAML-TRPO meta-iteration; returns its statistics."""
        theta = rl_policy.tile(self.policy.params(), len(tasks))
        pre = sampler.rollouts(theta, tasks, num_traj, (seed, 2 * iteration))
        pre_adv = self.advantages(pre)
        phi = self.adapt(theta, pre, pre_adv, self.hyper.alpha)
        post = sampler.rollouts(phi, tasks, num_traj, (seed, 2 * iteration + 1))
        post_adv = self.advantages(post)
        info = self._meta_step(
            (pre.observations, pre.actions, pre_adv, pre.mask),
            (post.observations, post.actions, post_adv, post.mask),
        )
        return {
            "pre_return": float(tf.reduce_mean(pre.average_return())),
            "post_return": float(tf.reduce_mean(post.average_return())),
            **{k: float(v) for k, v in info.items()},
        }

    def trpo_iteration(
        self, sampler, tasks: np.ndarray, num_traj: int, seed: int, iteration: int
    ) -> dict[str, float]:
        """One plain TRPO iteration on all tasks (the oracle baseline)."""
        theta = rl_policy.tile(self.policy.params(), len(tasks))
        batch = sampler.rollouts(theta, tasks, num_traj, (seed, 2 * iteration))
        adv = self.advantages(batch)
        info = self._trpo_step((batch.observations, batch.actions, adv, batch.mask))
        return {
            "pre_return": float(tf.reduce_mean(batch.average_return())),
            **{k: float(v) for k, v in info.items()},
        }

    def pretrain_iteration(
        self, sampler, tasks: np.ndarray, num_traj: int, seed: int, iteration: int
    ) -> dict[str, float]:
        """One REINFORCE + Adam step on all tasks jointly ("pretrained").

        The official `use_maml=False` path (maml_npo.py): the loss is the mean of
        the pre-update surrogates, minimised by rllab's `FirstOrderOptimizer`
        (Adam, learning rate 1e-3, one full-batch step per iteration).
        """
        theta = rl_policy.tile(self.policy.params(), len(tasks))
        batch = sampler.rollouts(theta, tasks, num_traj, (seed, 2 * iteration))
        adv = self.advantages(batch)
        loss = self._pg_step(batch.observations, batch.actions, adv, batch.mask)
        return {
            "pre_return": float(tf.reduce_mean(batch.average_return())),
            "loss": float(loss),
        }


def evaluate_adaptation(
    learner: RLMetaLearner,
    sampler,
    params: rl_policy.Params,
    tasks: np.ndarray,
    step_sizes: Sequence[float],
    num_traj: int,
    seed: int,
) -> np.ndarray:
    """Average return per task after 0..len(step_sizes) policy-gradient steps.

    The official test scripts (maml_examples/test_maml_point.py) run rllab's VPG
    from the meta-learned parameters on each test goal: sample, fit the baseline,
    step, repeat. Here all test tasks run as one batch.

    Returns:
        `[len(step_sizes) + 1, T]` average undiscounted returns.
    """
    p = rl_policy.tile(params, len(tasks))
    out = []
    for k in range(len(step_sizes) + 1):
        batch = sampler.rollouts(p, tasks, num_traj, (seed, 1_000_000 + k))
        out.append(batch.average_return().numpy())
        if k < len(step_sizes):
            p = learner.adapt(p, batch, learner.advantages(batch), step_sizes[k])
    return np.stack(out).astype(np.float64)
