"""Roll-outs of a batch of per-task policies: `[T tasks, M trajectories, H steps]`.

Every environment of every task advances together, with one policy evaluation per
time step for all of them: the 2D navigation tasks as a `tf.while_loop` inside the
traced graph, the cheetah as a batch of MuJoCo `MjData` (see `maml.rl.cheetah`).
Action noise comes from stateless random ops seeded by the caller, so a resumed
run draws exactly the same roll-outs.

Deviation from the official sampler (sandbox/rocky/tf/samplers/
vectorized_sampler.py): that sampler collects a fixed number of *time steps* per
task (M x H), starting a new episode whenever one terminates early; here each task
gets exactly M episodes and the steps after an episode ends are masked out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from maml.rl import envs as rl_envs
from maml.rl import policy as rl_policy


class Batch(NamedTuple):
    """Roll-outs; leading axes `[T, M, H]`.

    Attributes:
        observations: `[T, M, H, obs_dim]`, the observation each action saw.
        actions: `[T, M, H, act_dim]`, as sampled (before any clipping).
        rewards: `[T, M, H]`.
        mask: `[T, M, H]`, 1 for steps of the episode, 0 after it ended.
    """

    observations: tf.Tensor
    actions: tf.Tensor
    rewards: tf.Tensor
    mask: tf.Tensor

    def average_return(self) -> tf.Tensor:
        """Undiscounted return averaged over each task's episodes, `[T]`."""
        return tf.reduce_mean(tf.reduce_sum(self.rewards * self.mask, -1), -1)


def navigation_rollouts(
    env: rl_envs.Navigation2D,
    params: rl_policy.Params,
    goals: tf.Tensor,
    num_traj: int,
    num_layers: int,
    seed: tf.Tensor,
) -> Batch:
    """Samples `num_traj` episodes of each task's policy (tensor code).

    Args:
        env: The task family.
        params: Per-task policy parameters (leading axis T).
        goals: `[T, 2]`.
        num_traj: Episodes per task, M.
        num_layers: Dense layers of the policy.
        seed: Shape-[2] int seed of the action noise.
    """
    num_tasks = tf.shape(goals)[0]
    horizon = env.horizon
    noise = tf.random.stateless_normal(
        [horizon, num_tasks, num_traj, env.act_dim], seed
    )
    position0 = tf.zeros([num_tasks, num_traj, 2])
    alive0 = tf.ones([num_tasks, num_traj])
    arrays = [tf.TensorArray(tf.float32, size=horizon) for _ in range(4)]

    def body(t, position, alive, obs_ta, act_ta, rew_ta, mask_ta):
        obs = env.observe(position, goals)
        mean, log_std = rl_policy.distribution(params, obs, num_layers)
        action = mean + tf.exp(log_std) * noise[t]
        new_position, reward, done = env.step(position, action, goals)
        position = tf.where(alive[..., None] > 0, new_position, position)
        obs_ta = obs_ta.write(t, obs)
        act_ta = act_ta.write(t, action)
        rew_ta = rew_ta.write(t, reward * alive)
        mask_ta = mask_ta.write(t, alive)
        alive = alive * (1.0 - tf.cast(done, tf.float32))
        return t + 1, position, alive, obs_ta, act_ta, rew_ta, mask_ta

    _, _, _, *arrays = tf.while_loop(
        lambda t, *_: t < horizon, body, (tf.constant(0), position0, alive0, *arrays)
    )

    def stacked(ta, extra):
        x = ta.stack()  # [H, T, M, ...]
        return tf.transpose(x, [1, 2, 0] + list(range(3, 3 + extra)))

    obs, act, rew, mask = arrays
    return Batch(stacked(obs, 1), stacked(act, 1), stacked(rew, 0), stacked(mask, 0))


def host_rollouts(
    env,
    act_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
    tasks: np.ndarray,
    num_traj: int,
    rng: np.random.Generator,
) -> Batch:
    """Roll-outs of a stepped host-side batch environment (the cheetah).

    Args:
        env: Object with `reset(tasks, num_traj, rng) -> obs [T, M, d]`,
            `step(actions [T, M, a]) -> (obs, reward [T, M], done [T, M])` and
            `horizon`.
        act_fn: `(observations [T, M, d], noise [T, M, a]) -> actions`, one call
            per time step for all environments.
        tasks: Per-task parameters of the environment, `[T, ...]`.
        num_traj: Episodes per task.
        rng: Source of the reset and action noise.
    """
    obs = env.reset(tasks, num_traj, rng)
    num_tasks = len(tasks)
    alive = np.ones((num_tasks, num_traj), np.float32)
    out_obs, out_act, out_rew, out_mask = [], [], [], []
    for _ in range(env.horizon):
        noise = rng.standard_normal((num_tasks, num_traj, env.act_dim)).astype(
            np.float32
        )
        action = act_fn(obs, noise)
        out_obs.append(obs)
        out_act.append(action)
        out_mask.append(alive.copy())
        obs, reward, done = env.step(action)
        out_rew.append(reward * alive)
        alive = alive * (1.0 - done.astype(np.float32))

    def stack(xs):
        return tf.constant(np.stack(xs, axis=2), tf.float32)

    return Batch(stack(out_obs), stack(out_act), stack(out_rew), stack(out_mask))


class NavigationSampler:
    """Roll-outs of the 2D navigation tasks, traced into one graph.

    Args:
        env: The task family.
        num_layers: Dense layers of the policy.
    """

    def __init__(self, env: rl_envs.Navigation2D, num_layers: int):
        self.env = env
        self.obs_dim, self.act_dim = env.obs_dim, env.act_dim
        self._num_layers = num_layers
        self._fns: dict[int, Callable] = {}

    def sample_tasks(self, rng: np.random.Generator, num_tasks: int) -> np.ndarray:
        return self.env.sample_tasks(rng, num_tasks)

    def rollouts(
        self,
        params: rl_policy.Params,
        tasks: np.ndarray,
        num_traj: int,
        seed: tuple[int, int],
    ) -> Batch:
        """`num_traj` episodes per task; `seed` is a pair of ints."""
        if num_traj not in self._fns:
            env, layers = self.env, self._num_layers

            @tf.function(reduce_retracing=True)
            def fn(params, goals, seed):
                return navigation_rollouts(env, params, goals, num_traj, layers, seed)

            self._fns[num_traj] = fn
        return self._fns[num_traj](
            params, tf.constant(tasks, tf.float32), tf.constant(seed, tf.int64)
        )


class HostSampler:
    """Roll-outs of a host-stepped batch environment (the cheetah).

    Args:
        env: E.g. `maml.rl.cheetah.HalfCheetahDirection`.
        num_layers: Dense layers of the policy.
    """

    def __init__(self, env, num_layers: int):
        self.env = env
        self.obs_dim, self.act_dim = env.obs_dim, env.act_dim
        self._num_layers = num_layers

        @tf.function(reduce_retracing=True)
        def act(params, obs, noise):
            mean, log_std = rl_policy.distribution(params, obs, num_layers)
            return mean + tf.exp(log_std) * noise

        self._act = act

    def sample_tasks(self, rng: np.random.Generator, num_tasks: int) -> np.ndarray:
        return self.env.sample_tasks(rng, num_tasks)

    def rollouts(
        self,
        params: rl_policy.Params,
        tasks: np.ndarray,
        num_traj: int,
        seed: tuple[int, int],
    ) -> Batch:
        rng = np.random.default_rng([int(s) % 2**63 for s in seed])

        def act_fn(obs, noise):
            return self._act(params, tf.constant(obs), tf.constant(noise)).numpy()

        return host_rollouts(self.env, act_fn, tasks, num_traj, rng)
