"""Serving a meta-learned RL policy: a SavedModel with `act(observations)`.

`act` maps a batch of observations `[N, obs_dim]` to the Gaussian policy's mean
action `[N, act_dim]` and its standard deviation.

Every request is validated in the graph (`common.serving_checks`): observations
of shape `[N, obs_dim]`, 1 <= N <= `max_batch_size` (default 1000, fixed at export
by `PolicyLimits` and written to `assets.extra/serving_limits.json`), all finite.
A rejected request's error names `observations` and the rule.

Example:
    >>> from maml.rl import policy
    >>> module = PolicyModule(policy.GaussianMLPPolicy(2, 2, (8,)))
    >>> out = module.act(tf.zeros([3, 2]))
    >>> out["mean"].shape, out["std"].shape
    (TensorShape([3, 2]), TensorShape([3, 2]))
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from common import serving_checks
from maml.rl import policy as rl_policy


@dataclasses.dataclass(frozen=True)
class PolicyLimits:
    """Per-request limits of the served policy, fixed at export.

    Attributes:
        max_batch_size: Most observations per `act` request.
    """

    max_batch_size: int = 1000

    def __post_init__(self) -> None:
        serving_checks.check_limits(self)


class PolicyModule(tf.Module):
    """Serves a `GaussianMLPPolicy` (without a context vector).

    Args:
        policy: The policy to serve.
        limits: Per-request limits `act` enforces.
    """

    def __init__(
        self, policy: rl_policy.GaussianMLPPolicy, limits: PolicyLimits = PolicyLimits()
    ):
        super().__init__(name="maml_rl_policy")
        self.policy = policy
        self.limits = limits
        self._vars = list(policy.variables_by_name.values())
        self.act = tf.function(
            self._act,
            input_signature=[
                tf.TensorSpec([None, policy.obs_dim], tf.float32, "observations")
            ],
        )

    def _act(self, observations):
        checks = serving_checks.RequestChecks()
        checks.shape(observations, "observations", ("batch", self.policy.obs_dim))
        checks.rows(
            observations,
            "observations",
            1,
            self.limits.max_batch_size,
            "max_batch_size",
        )
        checks.finite(observations, "observations")
        (observations,) = checks.gate(observations)
        params = rl_policy.tile(self.policy.params(), 1)
        mean, log_std = rl_policy.distribution(
            params, observations[None], self.policy.num_layers
        )
        std = tf.broadcast_to(tf.exp(log_std[0]), tf.shape(mean[0]))
        return {"mean": mean[0], "std": std}
