"""2D navigation dynamics and termination, the batched roll-outs, and the cheetah
batch against MuJoCo quantities computed independently (skipped without MuJoCo)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import tensorflow as tf

from maml.rl import envs as rl_envs
from maml.rl import policy as rl_policy
from maml.rl import sampling as rl_sampling


def test_navigation_step_clips_velocity_and_rewards_minus_distance():
    env = rl_envs.Navigation2D()
    pos = tf.constant([[[0.0, 0.0], [0.2, 0.2]]])
    goal = tf.constant([[0.3, -0.4]])
    # Normalised action 0.5 -> velocity 0.05; 3 -> clipped to 0.1.
    act = tf.constant([[[0.5, 3.0], [-3.0, -0.2]]])
    new, reward, done = env.step(pos, act, goal)
    np.testing.assert_allclose(new.numpy(), [[[0.05, 0.1], [0.1, 0.18]]], atol=1e-7)
    d = np.array([[0.05 - 0.3, 0.1 + 0.4], [0.1 - 0.3, 0.18 + 0.4]])
    np.testing.assert_allclose(
        reward.numpy()[0], -np.linalg.norm(d, axis=-1), rtol=1e-6
    )
    assert not done.numpy().any()
    sq = rl_envs.Navigation2D(reward="squared_distance")
    np.testing.assert_allclose(
        sq.step(pos, act, goal)[1].numpy()[0], -np.sum(d**2, -1), rtol=1e-6
    )


def test_navigation_terminates_within_0_01_in_both_coordinates():
    env = rl_envs.Navigation2D()
    goal = tf.constant([[0.0, 0.0]])
    pos = tf.constant([[[0.005, 0.0], [0.005, 0.02], [0.0095, -0.0095]]])
    _, _, done = env.step(pos, tf.zeros([1, 3, 2]), goal)
    np.testing.assert_array_equal(done.numpy(), [[True, False, True]])


def test_navigation_rollouts_mask_after_the_goal_and_freeze_the_agent():
    env = rl_envs.Navigation2D(horizon=12)
    policy = rl_policy.GaussianMLPPolicy(2, 2, (4,), seed=0)
    params = rl_policy.tile(policy.params(), 2)
    # Zero weights and a bias of +1 (velocity 0.1 per axis), std ~ 0.
    params = {k: tf.zeros_like(v) for k, v in params.items()}
    params["b1"] = tf.ones_like(params["b1"])
    params["log_std"] = tf.fill(params["log_std"].shape, -30.0)
    goals = np.array([[0.3, 0.3], [-0.5, 0.5]], np.float32)
    batch = rl_sampling.navigation_rollouts(
        env, params, tf.constant(goals), 2, 2, tf.constant([0, 1], tf.int64)
    )
    mask = batch.mask.numpy()
    # Task 0 reaches (0.3, 0.3) on step 3 (index 2): steps 0..2 count, then masked.
    np.testing.assert_array_equal(mask[0, 0], [1, 1, 1] + [0] * 9)
    np.testing.assert_array_equal(mask[1, 0], [1] * 12)  # never reaches its goal
    obs = batch.observations.numpy()
    np.testing.assert_allclose(
        obs[0, 0, :3], [[0, 0], [0.1, 0.1], [0.2, 0.2]], atol=1e-6
    )
    expected = -np.linalg.norm(
        np.array([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]) - goals[0], axis=-1
    )
    np.testing.assert_allclose(batch.rewards.numpy()[0, 0, :3], expected, atol=1e-6)
    assert np.all(batch.rewards.numpy()[0, 0, 3:] == 0)


def test_oracle_observation_appends_the_goal():
    env = rl_envs.Navigation2D(oracle=True)
    obs = env.observe(tf.zeros([2, 3, 2]), tf.constant([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(obs.numpy()[1, 2], [0, 0, 3, 4])


def test_goals_are_uniform_in_the_unit_square():
    goals = rl_envs.Navigation2D().sample_tasks(np.random.default_rng(0), 4000)
    assert goals.min() >= -0.5 and goals.max() <= 0.5
    np.testing.assert_allclose(goals.mean(0), 0.0, atol=0.02)


needs_mujoco = pytest.mark.skipif(
    importlib.util.find_spec("mujoco") is None, reason="MuJoCo not installed"
)


@needs_mujoco
def test_cheetah_reward_is_direction_times_com_velocity_minus_control_cost():
    from maml.rl import cheetah as rl_cheetah

    env = rl_cheetah.HalfCheetahDirection(horizon=5)
    rng = np.random.default_rng(0)
    obs = env.reset(np.array([1.0, -1.0], np.float32), 2, rng)
    assert obs.shape == (2, 2, 20)
    torso = env._torso
    datas = env._datas[:4]
    before = np.array([d.xipos[torso, 0] for d in datas])
    actions = rng.uniform(-1.5, 1.5, (2, 2, 6))
    obs, reward, done = env.step(actions)
    after = np.array([d.xipos[torso, 0] for d in datas])
    # Finite-difference velocity of the torso's centre of mass over the 0.01 s step
    # (the step's velocity is the end-of-step one, so allow a loose tolerance).
    speed = (after - before) / env.model.opt.timestep
    a = np.clip(actions.reshape(4, 6), -1, 1)
    expected = np.repeat([1.0, -1.0], 2) * speed - 0.05 * np.sum(a * a, -1)
    np.testing.assert_allclose(
        reward.reshape(4), expected, atol=0.05 + 0.05 * np.abs(expected).max()
    )
    assert not done.any()
    for i, d in enumerate(datas):
        np.testing.assert_allclose(obs.reshape(4, 20)[i, :8], d.qpos[1:], rtol=1e-6)
        np.testing.assert_allclose(
            obs.reshape(4, 20)[i, 17:], d.subtree_com[torso], rtol=1e-5
        )


@needs_mujoco
def test_cheetah_host_rollouts_shapes_and_directions():
    from maml.rl import cheetah as rl_cheetah

    env = rl_cheetah.HalfCheetahDirection(horizon=3)
    dirs = env.sample_tasks(np.random.default_rng(0), 1000)
    assert set(np.unique(dirs)) == {-1.0, 1.0}
    assert 400 < (dirs > 0).sum() < 600
    sampler = rl_sampling.HostSampler(env, 2)
    policy = rl_policy.GaussianMLPPolicy(20, 6, (4,), seed=0)
    batch = sampler.rollouts(rl_policy.tile(policy.params(), 2), dirs[:2], 3, (0, 0))
    assert batch.observations.shape == (2, 3, 3, 20)
    assert batch.actions.shape == (2, 3, 3, 6)
    assert float(tf.reduce_min(batch.mask)) == 1.0


def test_missing_mujoco_gives_a_one_line_install_hint(monkeypatch):
    from maml.experiments import rl_configs, rl_experiment

    monkeypatch.setitem(sys.modules, "mujoco", None)  # import mujoco -> ImportError
    cfg = rl_configs.make_rl_config("halfcheetah_dir")
    with pytest.raises(ValueError) as info:
        rl_experiment.check_environment(cfg)
    message = str(info.value)
    assert "\n" not in message
    assert 'pip install "gymnasium[mujoco]==1.4.0"' in message
