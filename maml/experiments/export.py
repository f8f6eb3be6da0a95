"""Exports the meta-learned model of a finished run directory for serving.

The run's `config.json` says which experiment (`maml.configs.configs`) and so
which network it holds; the served module is `maml.serving.FewShotModule`.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from common import config as config_lib
from maml import meta_learner
from maml.experiments import configs, sinusoid_experiment
from maml.serving import (
    FewShotLimits,
    FewShotModule,
    classification_module,
    export_few_shot_model,
    restore_meta_params,
)


def export_run(
    run_dir: str,
    export_dir: str,
    model_name: str | None = None,
    version: int | None = None,
    limits: FewShotLimits | None = None,
) -> str:
    """Exports the meta-learned model of a finished run directory for serving.

    The run's `config.json` says which experiment and network it holds.
    `limits` are the per-request limits the signatures enforce.

    Returns:
        The SavedModel version directory.
    """
    limits = limits or FewShotLimits()
    name = config_lib.saved_experiment(run_dir)
    if name not in configs.all_experiments():
        raise ValueError(f"{run_dir} holds unknown experiment {name!r}")
    model_name = model_name or f"maml_{name}"
    if name in configs.SINUSOID_EXPERIMENTS:
        cfg = config_lib.load_config(configs.SinusoidConfig, run_dir)
        net = cfg.network()
        params = restore_meta_params(run_dir, net)
        module = FewShotModule(
            net,
            params,
            meta_learner.mse_per_task,
            cfg.alpha,
            example_shape=(1,),
            limits=limits,
        )
        warm = sinusoid_experiment.eval_batch(cfg, cfg.num_shots, "val", num_tasks=1)
        return export_few_shot_model(
            module,
            export_dir,
            model_name,
            warm.support_x.numpy()[0],
            warm.support_y.numpy()[0],
            warm.query_x.numpy()[0],
            cfg.num_inner_steps or 1,
            version,
        )
    cfg = config_lib.load_config(configs.ClassificationConfig, run_dir)
    net = cfg.network(impl="native")
    best = os.path.join(run_dir, "checkpoints", "best")
    params = restore_meta_params(
        run_dir, net, "best" if tf.train.latest_checkpoint(best) else "maml"
    )
    module = classification_module(net, params, cfg.shots, cfg.alpha, limits)
    size = (28, 28, 1) if cfg.dataset == "omniglot" else (84, 84, 3)
    rng = np.random.default_rng(0)
    support_x = rng.uniform(size=(cfg.ways * cfg.shots, *size))
    support_y = np.repeat(np.arange(cfg.ways, dtype=np.int32), cfg.shots)
    query_x = rng.uniform(size=(cfg.ways, *size))
    return export_few_shot_model(
        module,
        export_dir,
        model_name,
        support_x,
        support_y,
        query_x,
        cfg.test_inner_steps,
        version,
    )
