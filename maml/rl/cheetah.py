"""Half-cheetah forward/backward tasks as a batch of MuJoCo `MjData` (MAML §5.3).

Task protocol of the official code (cbfinn/maml_rl,
rllab/envs/mujoco/half_cheetah_env_rand_direc.py and rllab/envs/mujoco/
mujoco_env.py, inside rllab's `normalize`):

- direction -1 or +1 with probability 1/2 (the official `goal_vel ~ U(0, 2)`,
  backwards when below 1);
- reset: `qpos = qpos0 + N(0, 0.01^2)`, `qvel = N(0, 0.1^2)`;
- one physics step of 0.01 s per action (the model file sets no frame skip);
- action clipped to the control range [-1, 1];
- reward `direction * v_x(torso centre of mass) - 0.05 |a|^2`;
- observation `[qpos[1:], qvel, centre of mass of the torso subtree]` (20 values);
- horizon 200, no termination.

The model is Gymnasium's `half_cheetah.xml` (the same file as rllab's
vendor/mujoco_models/half_cheetah.xml, plus a tracking camera), run on the MuJoCo
release the `mujoco` wheel ships rather than MuJoCo 1.31; Gymnasium's own
`HalfCheetah-v5` task (5 physics steps per action, reward from the root's x
displacement with control weight 0.1, 17 observations, uniform position noise) is
*not* used. Both differences are deviations the reports state.

All `T * M` environments step together: one `mj_step2` + `mj_step1` per data and
time step (the pair is one `mj_step` whose kinematics are left at the new state,
as rllab's `step` followed by `forward`).
"""

from __future__ import annotations

import os

import numpy as np

INSTALL_HINT = (
    'the half-cheetah experiment needs MuJoCo: pip install "gymnasium[mujoco]==1.4.0"'
)


class MujocoMissingError(RuntimeError):
    """MuJoCo or Gymnasium's model files cannot be loaded."""


def _load_model():
    try:
        import gymnasium  # noqa: PLC0415
        import mujoco  # noqa: PLC0415
    except ImportError as e:
        raise MujocoMissingError(f"{INSTALL_HINT} ({e})") from e
    path = os.path.join(
        os.path.dirname(gymnasium.__file__),
        "envs",
        "mujoco",
        "assets",
        "half_cheetah.xml",
    )
    if not os.path.exists(path):
        raise MujocoMissingError(f"{INSTALL_HINT} ({path} not found)")
    try:
        return mujoco, mujoco.MjModel.from_xml_path(path)
    except Exception as e:  # noqa: BLE001 - any load failure gets the same hint
        raise MujocoMissingError(f"{INSTALL_HINT} (loading {path}: {e})") from e


class HalfCheetahDirection:
    """A batch of cheetahs, `[T tasks, M trajectories]`.

    Args:
        horizon: Episode length.
        ctrl_cost: Weight of `|a|^2` (rllab: 0.1 * 0.5).
    """

    obs_dim = 20
    act_dim = 6

    def __init__(self, horizon: int = 200, ctrl_cost: float = 0.05):
        self._mujoco, self.model = _load_model()
        self.horizon = int(horizon)
        self.ctrl_cost = float(ctrl_cost)
        self._torso = self._mujoco.mj_name2id(
            self.model, self._mujoco.mjtObj.mjOBJ_BODY, "torso"
        )
        self._datas: list = []
        self._shape = (0, 0)
        self._direction = np.zeros((0, 0))
        self._vel = np.zeros(6)

    @staticmethod
    def sample_tasks(rng: np.random.Generator, num_tasks: int) -> np.ndarray:
        """Directions `[num_tasks]` in {-1, +1}."""
        return np.where(rng.uniform(0.0, 2.0, num_tasks) < 1.0, -1.0, 1.0).astype(
            np.float32
        )

    def _ensure(self, n: int) -> None:
        while len(self._datas) < n:
            self._datas.append(self._mujoco.MjData(self.model))

    def _observe(self) -> np.ndarray:
        n = self._shape[0] * self._shape[1]
        obs = np.empty((n, self.obs_dim), np.float32)
        for i, d in enumerate(self._datas[:n]):
            obs[i, :8] = d.qpos[1:]
            obs[i, 8:17] = d.qvel
            obs[i, 17:] = d.subtree_com[self._torso]
        return obs.reshape(*self._shape, self.obs_dim)

    def reset(
        self,
        tasks: np.ndarray,
        num_traj: int,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Starts `num_traj` episodes per direction in `tasks`; observations."""
        mj = self._mujoco
        self._shape = (len(tasks), int(num_traj))
        n = self._shape[0] * self._shape[1]
        self._ensure(n)
        self._direction = np.repeat(np.asarray(tasks, np.float64), num_traj)
        qpos = self.model.qpos0 + 0.01 * rng.standard_normal((n, self.model.nq))
        qvel = 0.1 * rng.standard_normal((n, self.model.nv))
        for i, d in enumerate(self._datas[:n]):
            mj.mj_resetData(self.model, d)
            d.qpos[:] = qpos[i]
            d.qvel[:] = qvel[i]
            mj.mj_forward(self.model, d)
        return self._observe()

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advances every environment; `(observations, rewards [T, M], dones)`."""
        mj, model, vel = self._mujoco, self.model, self._vel
        n = self._shape[0] * self._shape[1]
        a = np.clip(actions.reshape(n, self.act_dim), -1.0, 1.0).astype(np.float64)
        speed = np.empty(n)
        body = mj.mjtObj.mjOBJ_BODY
        for i, d in enumerate(self._datas[:n]):
            d.ctrl[:] = a[i]
            mj.mj_step2(model, d)
            mj.mj_step1(model, d)
            mj.mj_objectVelocity(model, d, body, self._torso, vel, 0)
            speed[i] = vel[3]
        reward = self._direction * speed - self.ctrl_cost * np.sum(a * a, -1)
        return (
            self._observe(),
            reward.reshape(self._shape).astype(np.float32),
            np.zeros(self._shape, bool),
        )
