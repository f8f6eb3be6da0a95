"""The Gaussian MLP policy of the MAML RL experiments, in functional form.

The policy follows `MAMLGaussianMLPPolicy` of the official code
(cbfinn/maml_rl, sandbox/rocky/tf/policies/maml_minimal_gauss_mlp_policy.py): an
MLP with ReLU hidden layers (paper App. A.2: two layers of 100 units) whose output
is the mean of a diagonal Gaussian, Glorot-uniform weights and zero biases, and a
state-independent learned log-std initialised to log(1.0) and floored at log(1e-6).
The inner update of that code adapts every parameter, the log-std included.

The context-vector baseline of App. C Tables 4 and 5 appends a learned vector to
the observation; its inner loop adapts that vector only.

Parameters are a dict of tensors. Functions take *per-task* parameters, whose
leading axis indexes the task (`tile` makes them from shared ones), so every task
of a meta-batch runs through one batched matmul.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

Params = dict[str, tf.Tensor]

MIN_LOG_STD = math.log(1e-6)


class GaussianMLPPolicy(tf.Module):
    """Variables and structure of the policy.

    Args:
        obs_dim: Observation size.
        act_dim: Action size.
        hidden: Hidden layer widths.
        context_dim: Size of the learned context vector (0: none, plain MAML).
        init_std: Initial standard deviation of the Gaussian.
        seed: Seed of the weight initialisation.
        name: Module name.

    Example:
        >>> policy = GaussianMLPPolicy(obs_dim=2, act_dim=2, hidden=(8, 8))
        >>> policy.names
        ('w0', 'b0', 'w1', 'b1', 'w2', 'b2', 'log_std')
        >>> mean, log_std = distribution(tile(policy.params(), 3), tf.zeros([3, 5, 2]),
        ...                              policy.num_layers)
        >>> mean.shape  # 3 tasks, 5 observations each, 2 action dimensions
        TensorShape([3, 5, 2])
        >>> bool(tf.reduce_all(tf.exp(log_std) == 1.0))  # init_std = 1
        True
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden: tuple[int, ...] = (100, 100),
        context_dim: int = 0,
        init_std: float = 1.0,
        seed: int = 0,
        name: str = "policy",
    ):
        super().__init__(name=name)
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden, self.context_dim = tuple(hidden), int(context_dim)
        rng = np.random.default_rng(seed)
        sizes = [self.obs_dim + self.context_dim, *self.hidden, self.act_dim]
        values: dict[str, np.ndarray] = {}
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            values[f"w{i}"] = rng.uniform(-limit, limit, (fan_in, fan_out))
            values[f"b{i}"] = np.zeros(fan_out)
        values["log_std"] = np.full(self.act_dim, math.log(init_std))
        if self.context_dim:
            values["context"] = np.zeros(self.context_dim)
        self.variables_by_name = {
            k: tf.Variable(v.astype(np.float32), name=k) for k, v in values.items()
        }

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names in a fixed order."""
        return tuple(self.variables_by_name)

    @property
    def adapted_names(self) -> tuple[str, ...]:
        """Parameters the inner loop changes: all, or the context vector only."""
        return ("context",) if self.context_dim else self.names

    @property
    def num_layers(self) -> int:
        return len(self.hidden) + 1

    def params(self) -> Params:
        """The current parameters as tensors (reads the variables)."""
        return {k: tf.identity(v) for k, v in self.variables_by_name.items()}

    def assign(self, params: Params) -> None:
        for k, v in self.variables_by_name.items():
            v.assign(params[k])


def tile(params: Params, num_tasks: int) -> Params:
    """Per-task copies of shared parameters (leading axis = task)."""
    return {
        k: tf.broadcast_to(v[None], [num_tasks, *v.shape]) for k, v in params.items()
    }


def distribution(
    params: Params,
    obs: tf.Tensor,
    num_layers: int,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean and log-std of the action distribution.

    Args:
        params: Per-task parameters (leading axis T).
        obs: Observations `[T, ..., obs_dim]`.
        num_layers: Dense layers of the MLP.

    Returns:
        `(mean [T, ..., act_dim], log_std [T, 1.., act_dim])` (log-std broadcasts).
    """
    shape = tf.shape(obs)
    x = tf.reshape(obs, [shape[0], -1, obs.shape[-1]])
    if "context" in params:
        ctx = params["context"][:, None, :]
        x = tf.concat(
            [x, tf.broadcast_to(ctx, [shape[0], tf.shape(x)[1], ctx.shape[-1]])],
            axis=-1,
        )
    for i in range(num_layers):
        x = tf.matmul(x, params[f"w{i}"]) + params[f"b{i}"][:, None, :]
        if i < num_layers - 1:
            x = tf.nn.relu(x)
    act_dim = x.shape[-1]
    mean = tf.reshape(x, tf.concat([shape[:-1], [act_dim]], 0))
    log_std = tf.maximum(params["log_std"], MIN_LOG_STD)
    rank = len(obs.shape)
    log_std = tf.reshape(log_std, [-1] + [1] * (rank - 2) + [act_dim])
    return mean, log_std


def log_likelihood(
    actions: tf.Tensor,
    mean: tf.Tensor,
    log_std: tf.Tensor,
) -> tf.Tensor:
    """Log-density of a diagonal Gaussian, summed over the action axis."""
    z = (actions - mean) * tf.exp(-log_std)
    return (
        -0.5 * tf.reduce_sum(tf.square(z), -1)
        - tf.reduce_sum(tf.broadcast_to(log_std, tf.shape(z)), -1)
        - 0.5 * actions.shape[-1] * math.log(2.0 * math.pi)
    )


def kl_divergence(
    old_mean: tf.Tensor,
    old_log_std: tf.Tensor,
    new_mean: tf.Tensor,
    new_log_std: tf.Tensor,
) -> tf.Tensor:
    """KL(old || new) of diagonal Gaussians, summed over the action axis."""
    old_var, new_var = tf.exp(2.0 * old_log_std), tf.exp(2.0 * new_log_std)
    kl = (
        new_log_std
        - old_log_std
        + (old_var + tf.square(old_mean - new_mean)) / (2.0 * new_var)
        - 0.5
    )
    return tf.reduce_sum(kl, -1)
