"""MAML (Finn et al. 2017): meta-learning a Keras model's initialisation.

`MAML(model, loss, inner_lr)` meta-trains any built Keras 3 model (see
`maml.keras_maml`); the explicit-weight networks and the in-graph trainer of the
paper's experiments are in `maml.networks` and `maml.meta_learner`.

The public names are resolved on first use, so `import maml.networks` does not
load the wrapper (and the package has no import cycle through its `__init__`).
"""

from __future__ import annotations

import importlib

_PUBLIC = {"MAML": "maml.keras_maml", "KerasNetwork": "maml.keras_maml"}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'maml' has no attribute {name!r}")
