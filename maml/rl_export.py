"""Exports the meta-learned RL policy as a SavedModel with `act(observations)`.

`act` maps a batch of observations `[N, obs_dim]` to the Gaussian policy's mean
action `[N, act_dim]` and its standard deviation, for the best-return parameters
of the run's MAML phase (the model the reports evaluate).

Every request is validated in the graph (`common.serving_checks`): observations
of shape `[N, obs_dim]`, 1 <= N <= `max_batch_size` (default 1000, fixed at export
by `PolicyLimits` and written to `assets.extra/serving_limits.json`), all finite.
A rejected request's error names `observations` and the rule.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from common import config as config_lib
from common import export as common_export
from common import serving_checks
from maml import rl_policy
from maml.rl_config import RLConfig


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

    def __init__(self, policy: rl_policy.GaussianMLPPolicy,
                 limits: PolicyLimits = PolicyLimits()):
        super().__init__(name="maml_rl_policy")
        self.policy = policy
        self.limits = limits
        self._vars = list(policy.variables_by_name.values())
        self.act = tf.function(
            self._act, input_signature=[tf.TensorSpec([None, policy.obs_dim],
                                                      tf.float32, "observations")])

    def _act(self, observations):
        checks = serving_checks.RequestChecks()
        checks.shape(observations, "observations", ("batch", self.policy.obs_dim))
        checks.rows(observations, "observations", 1, self.limits.max_batch_size,
                    "max_batch_size")
        checks.finite(observations, "observations")
        (observations,) = checks.gate(observations)
        params = rl_policy.tile(self.policy.params(), 1)
        mean, log_std = rl_policy.distribution(params, observations[None],
                                               self.policy.num_layers)
        std = tf.broadcast_to(tf.exp(log_std[0]), tf.shape(mean[0]))
        return {"mean": mean[0], "std": std}


def restore_best_policy(run_dir: str, phase: str = "maml",
                        ) -> tuple[RLConfig, rl_policy.GaussianMLPPolicy]:
    """The config and best-return policy of a run's phase.

    Raises:
        FileNotFoundError: no checkpoint of that phase in `run_dir`.
    """
    cfg = config_lib.load_config(RLConfig, run_dir)
    obs_dim = 2 if cfg.env == "navigation_2d" else 20
    act_dim = 2 if cfg.env == "navigation_2d" else 6
    policy = rl_policy.GaussianMLPPolicy(obs_dim, act_dim, cfg.hidden, name="best")
    path = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints", phase))
    if not path:
        raise FileNotFoundError(f"no {phase} checkpoint in {run_dir}: train first")
    tf.train.Checkpoint(best=policy).restore(path).expect_partial()
    return cfg, policy


def export_run(run_dir: str, export_dir: str, model_name: str | None = None,
               version: int | None = None,
               limits: PolicyLimits = PolicyLimits()) -> str:
    """Writes `<export_dir>/<model_name>/<version>/`; returns that directory."""
    cfg, policy = restore_best_policy(run_dir)
    module = PolicyModule(policy, limits)
    sig = module.act.get_concrete_function()
    obs = tf.zeros([1, policy.obs_dim]).numpy()
    return common_export.export_for_serving(
        module, export_dir, model_name or f"maml_{cfg.experiment}",
        {"serving_default": sig, "act": sig}, [("act", {"observations": obs})],
        version, limits=dataclasses.asdict(limits))
