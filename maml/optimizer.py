"""Adam as pure tensor functions, so the update can live inside a traced loop.

Keras optimizers update variables one call at a time; MAML's meta-training loop here
runs many iterations inside one `tf.while_loop`, carrying the parameters and the
optimiser moments as loop values. This module is the same Adam update (Kingma & Ba
2015, with the bias correction folded into the step size exactly as
`keras.optimizers.Adam` and TF1's `AdamOptimizer` do), written over dictionaries of
tensors. `tests/maml_optimizer_test.py` checks it against `keras.optimizers.Adam`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import tensorflow as tf


class AdamState(NamedTuple):
    """Adam moments and the number of updates already applied."""

    m: dict[str, tf.Tensor]
    v: dict[str, tf.Tensor]
    count: tf.Tensor  # float scalar, number of applied updates


def adam_init(params: Mapping[str, tf.Tensor]) -> AdamState:
    """Zero moments shaped like `params`."""
    zeros = {k: tf.zeros_like(p) for k, p in params.items()}
    return AdamState(m=zeros, v=dict(zeros), count=tf.constant(0.0))


def adam_update(
    params: Mapping[str, tf.Tensor],
    grads: Mapping[str, tf.Tensor],
    state: AdamState,
    learning_rate: float,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-8,
) -> tuple[dict[str, tf.Tensor], AdamState]:
    """One Adam step.

    Args:
        params: Current parameters.
        grads: Gradients of the loss with respect to `params`.
        state: Moments from `adam_init` or the previous step.
        learning_rate: Step size (MAML's meta step size beta).
        beta_1: Decay of the first moment.
        beta_2: Decay of the second moment.
        epsilon: Added to the root of the second moment.

    Returns:
        `(new_params, new_state)`.

    Example:
        >>> params = {"w": tf.constant([1.0, -2.0])}
        >>> grads = {"w": tf.constant([0.5, -3.0])}
        >>> new, state = adam_update(params, grads, adam_init(params), 0.1)
        >>> # Adam's first step moves each weight by the step size against the sign
        >>> # of its gradient, whatever the gradient's size.
        >>> [round(float(v), 4) for v in new["w"]]
        [0.9, -1.9]
        >>> float(state.count)
        1.0
    """
    count = state.count + 1.0
    dtype = next(iter(params.values())).dtype
    t = tf.cast(count, dtype)
    step = learning_rate * tf.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)
    new_params, new_m, new_v = {}, {}, {}
    for k, p in params.items():
        g = grads[k]
        m = state.m[k] + (1.0 - beta_1) * (g - state.m[k])
        v = state.v[k] + (1.0 - beta_2) * (tf.square(g) - state.v[k])
        new_params[k] = p - step * m / (tf.sqrt(v) + epsilon)
        new_m[k], new_v[k] = m, v
    return new_params, AdamState(m=new_m, v=new_v, count=count)
