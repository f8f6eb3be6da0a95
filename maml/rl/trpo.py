"""Trust-region policy optimisation step: conjugate gradient and line search.

Follows rllab's `ConjugateGradientOptimizer` as the official MAML code uses it
(cbfinn/maml_rl, sandbox/rocky/tf/optimizers/conjugate_gradient_optimizer.py and
rllab/misc/krylov.py): 10 conjugate-gradient iterations on `(H + 1e-5 I) x = g`
where H is the Hessian of the mean KL, a step scaled to the KL bound
`sqrt(2 delta / x^T H x)`, and a backtracking line search (ratio 0.8, at most 15
tries) that accepts the first step with a lower loss and a KL within the bound, and
otherwise keeps the old parameters.

The official optimiser uses a finite-difference Hessian-vector product
(`FiniteDifferenceHvp`); this one is exact: reverse-over-reverse differentiation
with nested gradient tapes. When the KL itself contains an inner gradient step (the
MAML meta-objective), that is a third derivative of the policy's log-likelihood,
which the nested tapes give as well.

Everything is tensor code, meant to run inside one `tf.function`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

Tensors = list[tf.Tensor]


def flatten(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """Concatenates tensors into one vector."""
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], 0)


def unflatten(vector: tf.Tensor, like: Sequence[tf.Tensor]) -> Tensors:
    """Splits a vector into tensors shaped like `like`."""
    sizes = [
        int(tf.size(t)) if t.shape.num_elements() is None else t.shape.num_elements()
        for t in like
    ]
    parts = tf.split(vector, sizes)
    return [tf.reshape(p, t.shape) for p, t in zip(parts, like, strict=True)]


def gradient(
    fn: Callable[[Tensors], tf.Tensor],
    params: Sequence[tf.Tensor],
) -> tuple[tf.Tensor, tf.Tensor]:
    """`(fn(params), flat gradient)`."""
    params = list(params)
    with tf.GradientTape() as tape:
        tape.watch(params)
        value = fn(params)
    grads = tape.gradient(
        value, params, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    return value, flatten(grads)


def hessian_vector_product(
    fn: Callable[[Tensors], tf.Tensor],
    params: Sequence[tf.Tensor],
    vector: tf.Tensor,
) -> tf.Tensor:
    """Exact `H v` of a scalar `fn` at `params` (flat vector in, flat out)."""
    params = list(params)
    with tf.GradientTape() as outer:
        outer.watch(params)
        with tf.GradientTape() as inner:
            inner.watch(params)
            value = fn(params)
        grads = inner.gradient(
            value, params, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )
        gv = tf.reduce_sum(flatten(grads) * tf.stop_gradient(vector))
    hv = outer.gradient(gv, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return flatten(hv)


def conjugate_gradient(
    matvec: Callable[[tf.Tensor], tf.Tensor],
    b: tf.Tensor,
    iterations: int = 10,
    residual_tol: float = 1e-10,
) -> tf.Tensor:
    """Approximately solves `A x = b` for symmetric positive definite `A`.

    The iteration of rllab/misc/krylov.py `cg` (Demmel p. 312), stopping early
    when the squared residual drops below `residual_tol`.
    """

    def body(i, x, r, p, rdotr):
        z = matvec(p)
        v = rdotr / tf.reduce_sum(p * z)
        x = x + v * p
        r = r - v * z
        new_rdotr = tf.reduce_sum(r * r)
        p = r + (new_rdotr / rdotr) * p
        return i + 1, x, r, p, new_rdotr

    def cond(i, x, r, p, rdotr):
        return tf.logical_and(i < iterations, rdotr >= residual_tol)

    x0 = tf.zeros_like(b)
    _, x, _, _, _ = tf.while_loop(
        cond, body, (tf.constant(0), x0, b, b, tf.reduce_sum(b * b))
    )
    return x


def trpo_step(
    params: Sequence[tf.Tensor],
    loss_and_kl: Callable[[Tensors], tuple[tf.Tensor, tf.Tensor]],
    kl_hvp: Callable[[tf.Tensor], tf.Tensor],
    max_kl: float = 0.01,
    cg_iterations: int = 10,
    reg_coeff: float = 1e-5,
    backtrack_ratio: float = 0.8,
    max_backtracks: int = 15,
) -> tuple[Tensors, dict[str, tf.Tensor]]:
    """One constrained step: minimise the loss subject to mean KL <= max_kl.

    Args:
        params: Current parameters.
        loss_and_kl: `params -> (loss, mean KL to the old policy)`.
        kl_hvp: `v -> H v` (flat) with H the Hessian of the mean KL at `params`,
            the metric of the trust region (e.g. `hessian_vector_product`).
        max_kl: The trust region delta.
        cg_iterations: Conjugate-gradient iterations.
        reg_coeff: Damping added to the Hessian.
        backtrack_ratio: Step shrink factor of the line search.
        max_backtracks: Line-search tries.

    Returns:
        `(new params, info)`; info holds loss_before, loss_after, kl_after,
        accepted (bool) and backtracks.
    """
    params = list(params)
    loss_before, flat_g = gradient(lambda p: loss_and_kl(p)[0], params)

    def hvp(v):
        return kl_hvp(v) + reg_coeff * v

    direction = conjugate_gradient(hvp, flat_g, cg_iterations)
    shs = tf.reduce_sum(direction * hvp(direction))
    step_size = tf.sqrt(2.0 * max_kl / (shs + 1e-8))
    step_size = tf.where(tf.math.is_finite(step_size), step_size, 1.0)
    full_step = step_size * direction
    flat_params = flatten(params)

    def evaluate(n):
        ratio = tf.pow(
            tf.constant(backtrack_ratio, full_step.dtype), tf.cast(n, full_step.dtype)
        )
        candidate = unflatten(flat_params - ratio * full_step, params)
        loss, kl = loss_and_kl(candidate)
        return loss, kl

    def ok(loss, kl):
        return tf.logical_and(loss < loss_before, kl <= max_kl)

    def cond(n, loss, kl):
        return tf.logical_and(n < max_backtracks - 1, tf.logical_not(ok(loss, kl)))

    def body(n, loss, kl):
        loss, kl = evaluate(n + 1)
        return n + 1, loss, kl

    loss0, kl0 = evaluate(0)
    n, loss, kl = tf.while_loop(cond, body, (tf.constant(0), loss0, kl0))
    accepted = tf.logical_and(
        ok(loss, kl), tf.logical_and(tf.math.is_finite(loss), tf.math.is_finite(kl))
    )
    ratio = tf.pow(
        tf.constant(backtrack_ratio, full_step.dtype), tf.cast(n, full_step.dtype)
    )
    new_flat = tf.where(accepted, flat_params - ratio * full_step, flat_params)
    info = {
        "loss_before": loss_before,
        "loss_after": tf.where(accepted, loss, loss_before),
        "kl_after": tf.where(accepted, kl, 0.0),
        "accepted": accepted,
        "backtracks": n,
    }
    return unflatten(new_flat, params), info
