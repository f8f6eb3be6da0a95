"""Fixed-step Runge-Kutta integration that is differentiated step by step.

This is the paper's "RK-Net" integrator: gradients flow by ordinary
backpropagation through every stage of every step, so memory grows linearly with
the number of steps (the O(L) cost that the adjoint method avoids). Comparing it
with `neural_ode.solver.odeint` (gradient="adjoint") on the same dynamics is how the
memory and speed claims of the paper are measured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

DynamicsFn = Callable[[tf.Tensor, tf.Tensor, Sequence[tf.Tensor]], tf.Tensor]

# Butcher tableaux (a, b, c) of the explicit methods offered.
TABLEAUX: dict[str, tuple[tuple[tuple[float, ...], ...], tuple[float, ...], tuple]] = {
    "euler": ((), (1.0,), (0.0,)),
    "midpoint": (((0.5,),), (0.0, 1.0), (0.0, 0.5)),
    "rk4": (
        ((0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
        (1 / 6, 1 / 3, 1 / 3, 1 / 6),
        (0.0, 0.5, 0.5, 1.0),
    ),
}


def evaluations_per_step(method: str) -> int:
    """Number of dynamics evaluations one step of `method` makes."""
    return len(TABLEAUX[method][1])


def rk_step(
    func: DynamicsFn,
    t: tf.Tensor,
    y: tf.Tensor,
    dt: tf.Tensor,
    params: Sequence[tf.Tensor],
    method: str,
) -> tf.Tensor:
    """One explicit Runge-Kutta step `y(t) -> y(t + dt)`.

    Args:
        func: Dynamics `func(t, y, params) -> dy/dt`.
        t: Scalar time at the start of the step.
        y: State at `t`.
        dt: Scalar step (may be negative to integrate backwards).
        params: Tensors passed through to `func`.
        method: A key of `TABLEAUX`.

    Returns:
        The state after the step.
    """
    a, b, c = TABLEAUX[method]
    stages = [func(t, y, params)]
    for row, ci in zip(a, c[1:], strict=True):
        increment = tf.add_n(
            [w * k for w, k in zip(row, stages, strict=True) if w != 0.0]
        )
        stages.append(func(t + ci * dt, y + dt * increment, params))
    return y + dt * tf.add_n(
        [w * k for w, k in zip(b, stages, strict=True) if w != 0.0]
    )


def integrate_fixed_grid(
    func: DynamicsFn,
    y0: tf.Tensor,
    times: tf.Tensor,
    params: Sequence[tf.Tensor],
    method: str,
    steps_per_interval: int,
    unroll: bool = False,
) -> tf.Tensor:
    """Integrates with `steps_per_interval` equal steps between output times.

    Args:
        func: Dynamics `func(t, y, params) -> dy/dt`.
        y0: State at `times[0]`.
        times: 1-D strictly monotone output times, `times[0]` the initial time.
        params: Tensors passed through to `func` (gradients flow to them).
        method: "euler", "midpoint" or "rk4".
        steps_per_interval: Equal steps taken between consecutive output times.
        unroll: Build the steps as straight-line code instead of a `tf.while_loop`
            (faster for a handful of steps; the gradient memory is the same).

    Returns:
        States at `times`, shape `[len(times)] + y0.shape`.
    """
    num_times = times.shape[0]
    outputs = [y0]
    y = y0
    for i in range(num_times - 1):
        t_start = times[i]
        dt = (times[i + 1] - times[i]) / steps_per_interval
        if unroll:
            for step in range(steps_per_interval):
                y = rk_step(func, t_start + step * dt, y, dt, params, method)
        else:

            def body(step, state, t_start=t_start, dt=dt):
                t = t_start + tf.cast(step, dt.dtype) * dt
                return step + 1, rk_step(func, t, state, dt, params, method)

            _, y = tf.while_loop(
                lambda step, _: step < steps_per_interval,
                body,
                (tf.constant(0), y),
                maximum_iterations=steps_per_interval,
            )
        outputs.append(y)
    return tf.stack(outputs)
