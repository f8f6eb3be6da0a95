"""Exports an RL run's meta-learned policy as a SavedModel with `act(observations)`.

The served model (`maml.rl.serving.PolicyModule`) holds the best-return parameters
of the run's MAML phase (the model the reports evaluate).
Requests are validated in the graph; the limits (`PolicyLimits`) are fixed here,
at export.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from common import config as config_lib
from common import export as common_export
from maml.experiments.rl_configs import RLConfig
from maml.rl import policy as rl_policy
from maml.rl.serving import PolicyLimits, PolicyModule


def restore_best_policy(
    run_dir: str,
    phase: str = "maml",
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


def export_run(
    run_dir: str,
    export_dir: str,
    model_name: str | None = None,
    version: int | None = None,
    limits: PolicyLimits | None = None,
) -> str:
    """Writes `<export_dir>/<model_name>/<version>/`; returns that directory."""
    limits = limits or PolicyLimits()
    cfg, policy = restore_best_policy(run_dir)
    module = PolicyModule(policy, limits)
    sig = module.act.get_concrete_function()
    obs = tf.zeros([1, policy.obs_dim]).numpy()
    return common_export.export_for_serving(
        module,
        export_dir,
        model_name or f"maml_{cfg.experiment}",
        {"serving_default": sig, "act": sig},
        [("act", {"observations": obs})],
        version,
        limits=dataclasses.asdict(limits),
    )
