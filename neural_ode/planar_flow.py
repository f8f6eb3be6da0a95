"""Planar normalizing flow (Rezende & Mohamed 2015, sec. 4.1 and App. A.1).

Each of K layers maps z to `z + u_hat h(w^T z + b)` with h = tanh, and

    log |det dz'/dz| = log |1 + u_hat^T psi(z)|,   psi(z) = h'(w^T z + b) w.

Invertibility needs `w^T u_hat >= -1`; following Rezende & Mohamed's appendix A.1,
the free parameter u is mapped to

    u_hat = u + (m(w^T u) - w^T u) w / |w|^2,   m(x) = -1 + softplus(x),

so that `w^T u_hat = m(w^T u) > -1`. Then `1 + u_hat^T psi = 1 + h' w^T u_hat > 0`
for every z, and each layer is a bijection of R^D: along w it is the strictly
increasing scalar map `alpha -> alpha + (w^T u_hat) tanh(alpha + b)` and across w it
is a shear. `inverse` uses exactly that: it solves the scalar equation by bisection
and undoes the shear, which is how samples are drawn from a flow trained by maximum
likelihood in the data-to-noise direction (the NF has no cheap inverse; Chen et al.
2018, sec. 4.1).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def constrain_u(u: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
    """u_hat, the invertible version of u: `w^T u_hat = -1 + softplus(w^T u)`.

    Args:
        u, w: `[..., D]`.

    Returns:
        `[..., D]`.
    """
    wu = tf.reduce_sum(w * u, axis=-1, keepdims=True)
    w_sq = tf.reduce_sum(tf.square(w), axis=-1, keepdims=True)
    return u + (constrained_dot(u, w)[..., None] - wu) * w / w_sq


def constrained_dot(u: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
    """`w^T u_hat = -1 + softplus(w^T u)`, computed directly so that it is
    `>= -1` exactly in floating point (recomputing it from u_hat can round below).

    Args:
        u, w: `[..., D]`.

    Returns:
        `[...]`.
    """
    return -1.0 + tf.nn.softplus(tf.reduce_sum(w * u, axis=-1))


def planar_layer(
    z: tf.Tensor,
    u_hat: tf.Tensor,
    w: tf.Tensor,
    b: tf.Tensor,
    w_dot_u_hat: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """One planar layer `z + u_hat tanh(w^T z + b)` and its log |det Jacobian|.

    Args:
        z: `[N, D]`.
        u_hat, w: `[D]` (u_hat already constrained).
        b: Scalar.
        w_dot_u_hat: Optional exact `w^T u_hat` (`constrained_dot`); computed from
            u_hat and w if omitted.

    Returns:
        `(z' [N, D], log |det| [N])`.
    """
    if w_dot_u_hat is None:
        w_dot_u_hat = tf.reduce_sum(w * u_hat)
    activation = tf.tanh(tf.linalg.matvec(z, w) + b)
    slope = 1.0 - tf.square(activation)
    log_det = tf.math.log1p(slope * w_dot_u_hat)
    return z + activation[:, None] * u_hat, log_det


def invert_planar_layer(
    y: tf.Tensor, u_hat: tf.Tensor, w: tf.Tensor, b: tf.Tensor, iterations: int = 60
) -> tf.Tensor:
    """The z with `planar_layer(z) = y`, by bisection on alpha = w^T z.

    `w^T y = alpha + c tanh(alpha + b)` with `c = w^T u_hat > -1` is strictly
    increasing in alpha, and its root lies within |c| of `w^T y`.
    """
    c = tf.reduce_sum(w * u_hat)
    target = tf.linalg.matvec(y, w)
    lo = target - tf.abs(c) - 1e-6
    hi = target + tf.abs(c) + 1e-6

    def body(_, lo, hi):
        mid = 0.5 * (lo + hi)
        below = mid + c * tf.tanh(mid + b) < target
        return _ + 1, tf.where(below, mid, lo), tf.where(below, hi, mid)

    _, lo, hi = tf.while_loop(lambda i, *_: i < iterations, body, (0, lo, hi))
    alpha = 0.5 * (lo + hi)
    return y - tf.tanh(alpha + b)[:, None] * u_hat


@keras.saving.register_keras_serializable(package="neural_ode")
class PlanarFlow(keras.layers.Layer):
    """K stacked planar layers (a planar normalizing flow).

    Args:
        num_layers: K.
        dim: Data dimension D.
        init_scale: Standard deviation of the normal initialisation of u and w
            (b starts at zero).

    Example (the layers are invertible; `inverse` undoes `forward`):
        >>> import tensorflow as tf
        >>> flow = PlanarFlow(num_layers=3)
        >>> z = tf.random.stateless_normal([4, 2], seed=[0, 1])
        >>> y, log_det = flow.forward(z)
        >>> y.shape, log_det.shape
        (TensorShape([4, 2]), TensorShape([4]))
        >>> bool(tf.reduce_max(tf.abs(flow.inverse(y) - z)) < 1e-4)
        True
    """

    def __init__(
        self, num_layers: int, dim: int = 2, init_scale: float = 0.5, **kwargs
    ):
        super().__init__(**kwargs)
        self.num_layers = int(num_layers)
        self.dim = int(dim)
        self.init_scale = float(init_scale)
        self.build(None)

    def build(self, input_shape=None):
        if self.built:
            return
        init = keras.initializers.RandomNormal(stddev=self.init_scale)
        shape = (self.num_layers, self.dim)
        self.u = self.add_weight(shape=shape, initializer=init, name="u")
        self.w = self.add_weight(shape=shape, initializer=init, name="w")
        self.b = self.add_weight(
            shape=(self.num_layers,), initializer="zeros", name="b"
        )
        self.built = True

    def initialize(self, seed: int) -> None:
        """Re-draws the weights from the initial distribution with a given seed."""
        rng = np.random.default_rng(seed)
        shape = (self.num_layers, self.dim)
        self.u.assign(self.init_scale * rng.standard_normal(shape))
        self.w.assign(self.init_scale * rng.standard_normal(shape))
        self.b.assign(np.zeros(self.num_layers))

    def constrained_u(self) -> tf.Tensor:
        """u_hat of every layer, `[K, D]`."""
        return constrain_u(tf.convert_to_tensor(self.u), tf.convert_to_tensor(self.w))

    def constrained_dot(self) -> tf.Tensor:
        """w^T u_hat of every layer, `[K]`, each `>= -1`."""
        return constrained_dot(
            tf.convert_to_tensor(self.u), tf.convert_to_tensor(self.w)
        )

    def forward(self, z: tf.Tensor, return_path: bool = False):
        """Applies the K layers in order.

        The layers run in a `tf.while_loop`, so the graph (and an XLA compilation)
        does not grow with K.

        Args:
            z: `[N, D]`.
            return_path: Also return the points after every layer.

        Returns:
            `(y [N, D], sum of log |det| [N])`, plus `[K + 1, N, D]` points (input
            first) if `return_path`.
        """
        z = tf.convert_to_tensor(z)
        u_hat = self.constrained_u()
        dots = self.constrained_dot()
        w = tf.convert_to_tensor(self.w)
        b = tf.convert_to_tensor(self.b)

        def layer(k, z, total):
            z, log_det = planar_layer(z, u_hat[k], w[k], b[k], dots[k])
            return z, total + log_det

        total = tf.zeros_like(z[:, 0])
        if not return_path:
            _, z, total = tf.while_loop(
                lambda k, *_: k < self.num_layers,
                lambda k, z, total: (k + 1, *layer(k, z, total)),
                (0, z, total),
                maximum_iterations=self.num_layers,
            )
            return z, total
        path = tf.TensorArray(
            z.dtype, size=self.num_layers + 1, element_shape=z.shape
        ).write(0, z)

        def body(k, z, total, path):
            z, total = layer(k, z, total)
            return k + 1, z, total, path.write(k + 1, z)

        _, z, total, path = tf.while_loop(
            lambda k, *_: k < self.num_layers,
            body,
            (0, z, total, path),
            maximum_iterations=self.num_layers,
        )
        return z, total, path.stack()

    def inverse(self, y: tf.Tensor, iterations: int = 60, return_path: bool = False):
        """Undoes `forward`: the z with `forward(z)[0] = y`.

        Returns:
            `z [N, D]`, plus the `[K + 1, N, D]` points after every layer of the
            forward direction (so `path[0] = z`, `path[K] = y`) if `return_path`.
        """
        y = tf.convert_to_tensor(y)
        u_hat = self.constrained_u()
        w = tf.convert_to_tensor(self.w)
        b = tf.convert_to_tensor(self.b)
        path = [y]
        for k in reversed(range(self.num_layers)):
            y = invert_planar_layer(y, u_hat[k], w[k], b[k], iterations)
            path.append(y)
        if return_path:
            return y, tf.stack(path[::-1])
        return y

    def call(self, z):
        return self.forward(z)

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "dim": self.dim,
            "init_scale": self.init_scale,
        }
