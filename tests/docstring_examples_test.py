"""The runnable examples in the public docstrings run and print what they show.

Each module listed here carries `>>>` examples (in its module docstring or in the
docstrings of its public classes and functions); doctest runs them all.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "benchmarks.op_profile",
    "common.cli",
    "common.distribute",
    "common.files",
    "common.progress",
    "common.stats",
    "common.threads",
    "common.validation",
    "magnet.cluster_index",
    "magnet.embedding",
    "magnet.evaluation",
    "magnet.experiments.experiment",
    "magnet.experiments.study",
    "magnet.global_batch",
    "magnet.sampler",
    "magnet.train_settings",
    "maml.evaluation",
    "maml.keras_maml",
    "maml.meta_learner",
    "maml.meta_trainer",
    "maml.networks",
    "maml.optimizer",
    "maml.rl.policy",
    "maml.rl.serving",
    "maml.serving",
    "maml.tasks",
    "neural_ode.cnf",
    "neural_ode.data.mnist_input",
    "neural_ode.data.spirals",
    "neural_ode.data.standardizer",
    "neural_ode.experiments.spiral_metrics",
    "neural_ode.latent_ode",
    "neural_ode.ode_block",
    "neural_ode.planar_flow",
    "neural_ode.solver",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        verbose=False,
    )
    assert result.attempted > 0, f"{name} has no docstring examples"
    assert result.failed == 0, f"{result.failed} docstring examples of {name} failed"
