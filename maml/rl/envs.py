"""The 2D point-mass navigation tasks as tensor operations (MAML §5.3).

Official code: cbfinn/maml_rl, maml_examples/point_env_randgoal.py, wrapped in
rllab's `normalize` (rllab/envs/normalized_env.py). The agent starts at the origin;
the goal is uniform in [-0.5, 0.5]^2 (a unit square, paper §5.3). The policy acts
in [-1, 1]; `normalize` maps an action `a` to the velocity `0.1 a` clipped to
[-0.1, 0.1] (paper: "velocity commands clipped to [-0.1, 0.1]"). The episode ends
when both coordinates are within 0.01 of the goal, or at the horizon H = 100. The
official environment rewards minus the distance to the goal; the paper's text says
minus the *squared* distance. `reward` selects either.

`oracle=True` appends the goal to the observation, as
maml_examples/point_env_randgoal_oracle.py does for the oracle baseline of Fig. 4.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

REWARDS = ("distance", "squared_distance")


@dataclasses.dataclass(frozen=True)
class Navigation2D:
    """The task family.

    Attributes:
        horizon: Episode length H.
        reward: "distance" (official code) or "squared_distance" (paper text).
        max_speed: Clip of each velocity coordinate.
        goal_low, goal_high: Goal coordinates are uniform in this range.
        success_radius: Episode ends when |x - goal| < this in both coordinates.
        oracle: Append the goal to the observation.
    """

    horizon: int = 100
    reward: str = "distance"
    max_speed: float = 0.1
    goal_low: float = -0.5
    goal_high: float = 0.5
    success_radius: float = 0.01
    oracle: bool = False

    def __post_init__(self):
        if self.reward not in REWARDS:
            raise ValueError(f"reward must be one of {REWARDS}, got {self.reward!r}")

    @property
    def obs_dim(self) -> int:
        return 4 if self.oracle else 2

    @property
    def act_dim(self) -> int:
        return 2

    def sample_tasks(self, rng: np.random.Generator, num_tasks: int) -> np.ndarray:
        """Goals `[num_tasks, 2]`."""
        return rng.uniform(self.goal_low, self.goal_high, (num_tasks, 2)).astype(
            np.float32
        )

    def observe(self, position: tf.Tensor, goal: tf.Tensor) -> tf.Tensor:
        """Observation of positions `[T, M, 2]` for goals `[T, 2]`."""
        if not self.oracle:
            return position
        return tf.concat(
            [position, tf.broadcast_to(goal[:, None, :], tf.shape(position))], -1
        )

    def step(
        self,
        position: tf.Tensor,
        action: tf.Tensor,
        goal: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """One step of every environment.

        Args:
            position: `[T, M, 2]`.
            action: Policy actions `[T, M, 2]` in the normalised [-1, 1] scale.
            goal: `[T, 2]`.

        Returns:
            `(next position, reward, done)`, reward and done `[T, M]`.
        """
        velocity = tf.clip_by_value(
            self.max_speed * action, -self.max_speed, self.max_speed
        )
        position = position + velocity
        delta = position - goal[:, None, :]
        sq = tf.reduce_sum(tf.square(delta), -1)
        reward = -tf.sqrt(sq) if self.reward == "distance" else -sq
        done = tf.reduce_all(tf.abs(delta) < self.success_radius, -1)
        return position, reward, done
