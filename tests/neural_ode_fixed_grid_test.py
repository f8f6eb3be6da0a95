"""`neural_ode.fixed_grid`: convergence orders, exactness, NFE, backprop gradients.

References are independent of the module: closed-form solutions, the classical
Runge-Kutta formulas written out in NumPy, and the exact discrete map of RK4 on a
linear system (the degree-4 Taylor polynomial of exp(hA)).
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from neural_ode import fixed_grid
from neural_ode import solver as ode

ORDERS = {"euler": 1, "midpoint": 2, "rk4": 4}
STAGES = {"euler": 1, "midpoint": 2, "rk4": 4}


def _config(method, steps):
    return ode.SolverConfig(
        method=method, gradient="backprop", steps_per_interval=steps
    )


def _growth(t, y, params):
    """dy/dt = y cos t, solved by y0 exp(sin t)."""
    del params
    return y * tf.cos(t)


@pytest.mark.parametrize("method", list(ORDERS))
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reversed"])
def test_global_error_shrinks_at_the_method_order(method, reverse):
    """Doubling the steps divides the global error by ~2**order (2, 4, 16)."""
    times = np.array([0.0, 1.0, 2.0])
    if reverse:
        times = times[::-1].copy()
    exact = np.exp(np.sin(times))
    errors = []
    for steps in (16, 32, 64):
        states = ode.odeint(
            _growth, tf.constant([exact[0]]), times, config=_config(method, steps)
        ).states
        errors.append(np.abs(states.numpy()[:, 0] - exact).max())
    observed = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    np.testing.assert_allclose(observed, ORDERS[method], atol=0.15)
    assert errors[-1] < {"euler": 2e-2, "midpoint": 1e-4, "rk4": 1e-8}[method]


# A method of order p integrates dy/dt = g(t) exactly when g is a polynomial of
# degree p - 1 (its quadrature rule is exact there) but not, in general, degree p.
@pytest.mark.parametrize("method", list(ORDERS))
def test_exact_up_to_polynomial_degree_order_minus_one(method):
    p = ORDERS[method]
    times = np.array([0.0, 0.7, 2.0])
    for degree in range(p + 1):
        result = ode.odeint(
            lambda t, y, params, d=degree: tf.ones_like(y) * t**d,
            tf.zeros(1, tf.float64),
            times,
            config=_config(method, 3),
        )
        exact = times ** (degree + 1) / (degree + 1)
        error = np.abs(result.states.numpy()[:, 0] - exact)
        if degree < p:
            assert error.max() < 1e-13, (degree, error)
        else:
            assert error.max() > 1e-4, (degree, error)


def _numpy_step(f, t, y, h, method):
    """The textbook formulas of each method, independent of the Butcher tables."""
    if method == "euler":
        return y + h * f(t, y)
    if method == "midpoint":
        return y + h * f(t + h / 2, y + h / 2 * f(t, y))
    k1 = f(t, y)
    k2 = f(t + h / 2, y + h / 2 * k1)
    k3 = f(t + h / 2, y + h / 2 * k2)
    k4 = f(t + h, y + h * k3)
    return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


@pytest.mark.parametrize("method", list(ORDERS))
@pytest.mark.parametrize("h", [0.3, -0.2])
def test_rk_step_matches_textbook_formulas(method, h):
    m = np.array([[0.0, 1.0, 0.5], [-2.0, 0.1, 0.0], [0.3, -0.4, -0.2]])

    def np_f(t, y):
        return np.tanh(m @ y) + np.sin(3.0 * t) * y

    def tf_f(t, y, params):
        (mat,) = params
        return tf.tanh(tf.linalg.matvec(mat, y)) + tf.sin(3.0 * t) * y

    y = np.array([0.5, -1.0, 2.0])
    got = fixed_grid.rk_step(
        tf_f,
        tf.constant(0.4, tf.float64),
        tf.constant(y),
        tf.constant(h, tf.float64),
        [tf.constant(m)],
        method,
    )
    np.testing.assert_allclose(
        got.numpy(), _numpy_step(np_f, 0.4, y, h, method), rtol=1e-14, atol=1e-14
    )


@pytest.mark.parametrize("method", list(ORDERS))
def test_unrolled_and_looped_integration_agree(method):
    times = tf.constant([0.0, 0.5, 1.5], tf.float64)
    y0 = tf.constant([[1.0, 2.0], [0.5, -1.0]], tf.float64)
    args = (_growth, y0, times, [], method, 5)
    looped = fixed_grid.integrate_fixed_grid(*args)
    unrolled = fixed_grid.integrate_fixed_grid(*args, unroll=True)
    assert looped.shape == (3, 2, 2)
    np.testing.assert_allclose(looped.numpy(), unrolled.numpy(), rtol=1e-14)
    np.testing.assert_array_equal(looped.numpy()[0], y0.numpy())


def test_evaluations_per_step():
    assert {m: fixed_grid.evaluations_per_step(m) for m in ORDERS} == STAGES
    assert set(ode.FIXED_GRID_METHODS) == set(ORDERS)


_CALLS = tf.Variable(0, dtype=tf.int32, trainable=False)


def _counted_growth(t, y, params):
    _CALLS.assign_add(1)
    return _growth(t, y, params)


@pytest.mark.parametrize("method", list(ORDERS))
@pytest.mark.parametrize("steps", [1, 3])
def test_forward_nfe_is_steps_times_stages_times_intervals(method, steps):
    times = [0.0, 0.25, 0.5, 1.0]  # three intervals
    expected = steps * STAGES[method] * 3
    config = _config(method, steps)

    @tf.function(autograph=False)
    def solve(y0):
        _CALLS.assign(0)
        result = ode.odeint(_counted_growth, y0, times, config=config)
        with tf.control_dependencies([result.states]):
            return result.forward_nfe, _CALLS.read_value()

    nfe, calls = solve(tf.ones(2))
    assert int(nfe) == int(calls) == expected
    _CALLS.assign(0)  # and eagerly
    assert (
        int(ode.odeint(_counted_growth, tf.ones(2), times, config=config).forward_nfe)
        == int(_CALLS.numpy())
        == expected
    )


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_dtype_and_shape_are_preserved(dtype):
    y0 = tf.ones((4, 3), dtype)
    states = ode.odeint(_growth, y0, [0.0, 0.5, 1.0], config=_config("rk4", 4)).states
    assert states.dtype == dtype and states.shape == (3, 4, 3)
    np.testing.assert_allclose(
        states.numpy()[-1], np.full((4, 3), np.exp(np.sin(1.0))), rtol=1e-5
    )


A = np.array([[-0.3, 1.2, 0.0], [-1.0, -0.2, 0.4], [0.1, 0.0, -0.6]])


def _rk4_linear_map(a, h, steps):
    """The exact discrete RK4 map for dy/dt = A y: P(hA)^steps, P the degree-4
    Taylor polynomial of exp."""
    z = h * a
    eye = np.eye(len(a))
    p = eye + z + z @ z / 2 + z @ z @ z / 6 + z @ z @ z @ z / 24
    return np.linalg.matrix_power(p, steps)


def test_backprop_gradient_is_the_exact_gradient_of_the_discrete_map():
    c = np.array([1.0, -0.5, 2.0])
    y0_np = np.array([0.3, 1.0, -0.7])
    t_end, steps = 1.2, 7
    y0, a = tf.constant(y0_np), tf.constant(A)
    with tf.GradientTape() as tape:
        tape.watch([y0, a])
        states = ode.odeint(
            lambda t, y, p: tf.linalg.matvec(p[0], y),
            y0,
            [0.0, t_end],
            [a],
            _config("rk4", steps),
        ).states
        loss = tf.reduce_sum(c * states[-1])
    dy0, da = tape.gradient(loss, [y0, a])

    h = t_end / steps
    np.testing.assert_allclose(
        states.numpy()[-1], _rk4_linear_map(A, h, steps) @ y0_np, rtol=1e-13
    )
    # Linear in y0: the gradient is the transposed map applied to c.
    np.testing.assert_allclose(
        dy0.numpy(), _rk4_linear_map(A, h, steps).T @ c, rtol=1e-13
    )
    # Central differences of the NumPy map (a polynomial in A: truncation O(eps^2)).
    eps = 1e-6
    fd = np.zeros_like(A)
    for i in range(3):
        for j in range(3):
            e = np.zeros_like(A)
            e[i, j] = eps
            plus = c @ _rk4_linear_map(A + e, h, steps) @ y0_np
            minus = c @ _rk4_linear_map(A - e, h, steps) @ y0_np
            fd[i, j] = (plus - minus) / (2 * eps)
    np.testing.assert_allclose(da.numpy(), fd, rtol=1e-7, atol=1e-9)


def test_gradient_through_several_output_times_and_a_reversed_grid():
    """Backprop through a decreasing grid equals the NumPy map with negative h."""
    y0_np = np.array([1.0, 0.0, -1.0])
    weights = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 0.5], [-1.0, 0.5, 1.0]])
    y0 = tf.constant(y0_np)
    with tf.GradientTape() as tape:
        tape.watch(y0)
        states = ode.odeint(
            lambda t, y, p: tf.linalg.matvec(tf.constant(A), y),
            y0,
            [1.0, 0.4, -0.5],
            config=_config("rk4", 3),
        ).states
        loss = tf.reduce_sum(weights * states)
    m1 = _rk4_linear_map(A, -0.2, 3)  # 1.0 -> 0.4 in 3 steps
    m2 = _rk4_linear_map(A, -0.3, 3) @ m1  # 0.4 -> -0.5 in 3 steps
    np.testing.assert_allclose(states.numpy()[1:], [m1 @ y0_np, m2 @ y0_np], rtol=1e-13)
    expected = m1.T @ weights[1] + m2.T @ weights[2]
    np.testing.assert_allclose(tape.gradient(loss, y0).numpy(), expected, rtol=1e-13)


def test_python_time_grid_keeps_float64_precision():
    """Regression: a list of Python floats must not be rounded through float32
    (odeint used tf.convert_to_tensor(times) before casting to the state dtype,
    so dy/dt = 1 on [0, 0.1] ended at 0.10000000149)."""
    for method in ORDERS:
        states = ode.odeint(
            lambda t, y, p: tf.ones_like(y),
            tf.zeros(1, tf.float64),
            [0.0, 0.1, 0.3],
            config=_config(method, 1),
        ).states
        np.testing.assert_allclose(states.numpy()[:, 0], [0.0, 0.1, 0.3], rtol=1e-15)


def test_float_steps_per_interval_is_rejected_by_the_config():
    with pytest.raises(ode.OdeintError, match="steps_per_interval"):
        _config("rk4", 2.0)
