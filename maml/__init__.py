"""MAML (Finn et al. 2017): meta-learning a model's initialisation.

The library:

- `MAML(model, loss, inner_lr)` meta-trains any built Keras 3 model
  (`maml.keras_maml`; `KerasNetwork` adapts a Keras model to the functional form).
- The explicit-weight networks of the paper's experiments (`MLP`, `Conv4`,
  `ContextConv4`, all `FunctionalNetwork`s), the inner loop (`adapt`) and the
  meta-gradient (`meta_gradient`) in `maml.meta_learner`, and `MetaTrainer`, which
  runs whole chunks of meta-training in one traced graph.
- Task samplers (`sample_sinusoid_tasks`, `SinusoidDistribution`,
  `sample_episodes`) and the per-task losses (`mse_per_task`,
  `softmax_cross_entropy_per_task`).
- Served few-shot adaptation (`FewShotModule`, `maml.serving`), and MAML for
  reinforcement learning in `maml.rl`.

The reproduction of the paper's tables is the harness in `maml.experiments`
(entry point: `python -m maml.main`).

The public names are resolved on first use, so `import maml.networks` does not
load the Keras wrapper (and the package has no import cycle through its
`__init__`).

Example:
    >>> import tensorflow as tf
    >>> import maml
    >>> net = maml.MLP((1, 40, 40, 1))
    >>> theta = net.init_params(seed=0)
    >>> batch = maml.sample_sinusoid_tasks(tf.constant([0, 0]), 5, 10, 10)
    >>> objective, grads = maml.meta_gradient(net, theta, batch, maml.mse_per_task,
    ...                                       alpha=0.01, num_steps=1)
    >>> sorted(grads) == sorted(theta)
    True
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "MAML": "maml.keras_maml",
    "KerasNetwork": "maml.keras_maml",
    "FunctionalNetwork": "maml.networks",
    "MLP": "maml.networks",
    "Conv4": "maml.networks",
    "ContextConv4": "maml.networks",
    "adapt": "maml.meta_learner",
    "meta_gradient": "maml.meta_learner",
    "mse_per_task": "maml.meta_learner",
    "softmax_cross_entropy_per_task": "maml.meta_learner",
    "MetaTrainer": "maml.meta_trainer",
    "SinusoidDistribution": "maml.tasks",
    "sample_sinusoid_tasks": "maml.tasks",
    "sample_episodes": "maml.tasks",
    "FewShotModule": "maml.serving",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'maml' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
