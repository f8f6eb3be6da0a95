"""MAML on a Keras model: the explicit-weight path and closed forms as references."""

from __future__ import annotations

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

from maml import keras_maml, meta_learner, networks, tasks


def _sinusoid_model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(40, "relu", name="hidden1"),
            keras.layers.Dense(40, "relu", name="hidden2"),
            keras.layers.Dense(1, name="head"),
        ]
    )


def _explicit_params(maml: keras_maml.MAML) -> dict[str, tf.Tensor]:
    # Sequential Dense layers in order: kernel, bias, kernel, bias, ... -> w0, b0, ...
    values = list(maml.net.meta_params().values())
    return {
        (f"w{i // 2}" if i % 2 == 0 else f"b{i // 2}"): v for i, v in enumerate(values)
    }


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 2])
def test_meta_gradient_equals_the_explicit_weight_path(first_order, steps):
    maml = keras_maml.MAML(
        _sinusoid_model(),
        meta_learner.mse_per_task,
        0.01,
        num_inner_steps=steps,
        first_order=first_order,
    )
    batch = tasks.sample_sinusoid_tasks(tf.constant([4, 2]), 7, 5, 6)
    obj, grads = maml.compute_gradients(batch)
    params = _explicit_params(maml)
    ref_obj, ref = meta_learner.meta_gradient(
        networks.MLP((1, 40, 40, 1)),
        params,
        batch,
        meta_learner.mse_per_task,
        0.01,
        steps,
        first_order,
    )
    np.testing.assert_allclose(obj.loss, ref_obj.loss, rtol=1e-6)
    for g, key in zip(grads, params, strict=True):
        np.testing.assert_allclose(g, ref[key], rtol=1e-4, atol=1e-6)


def test_linear_regression_matches_the_closed_form_second_order_gradient():
    # Model y = x w (no bias). Per task, L(w) = mean((X w - y)^2), so
    # grad = 2/N X^T (X w - y), H = 2/N X^T X, w' = w - a grad_s(w), and the
    # exact MAML gradient of L_q(w') is (I - a H_s) grad_q(w'), averaged over tasks.
    rng = np.random.default_rng(0)
    t, n, d, alpha = 3, 4, 2, 0.05
    xs, xq = rng.normal(size=(t, n, d)), rng.normal(size=(t, n, d))
    ys, yq = rng.normal(size=(t, n, 1)), rng.normal(size=(t, n, 1))
    w = rng.normal(size=(d, 1))
    model = keras.Sequential(
        [
            keras.Input((d,), dtype="float64"),
            keras.layers.Dense(1, use_bias=False, dtype="float64"),
        ]
    )
    model.layers[0].kernel.assign(w)
    maml = keras_maml.MAML(model, meta_learner.mse_per_task, alpha)
    batch = meta_learner.TaskSlice(*(tf.constant(a) for a in (xs, ys, xq, yq)))
    obj, (grad,) = maml.compute_gradients(batch)

    expected, losses = np.zeros_like(w), []
    for i in range(t):
        g_s = 2 / n * xs[i].T @ (xs[i] @ w - ys[i])
        h_s = 2 / n * xs[i].T @ xs[i]
        w_fast = w - alpha * g_s
        losses.append(np.mean((xq[i] @ w_fast - yq[i]) ** 2))
        g_q = 2 / n * xq[i].T @ (xq[i] @ w_fast - yq[i])
        expected += (np.eye(d) - alpha * h_s) @ g_q / t
    np.testing.assert_allclose(obj.loss, np.mean(losses), rtol=1e-10)
    np.testing.assert_allclose(grad, expected, rtol=1e-10)


def test_adapt_changes_only_the_adapted_variables_and_predict_uses_them():
    maml = keras_maml.MAML(
        _sinusoid_model(),
        meta_learner.mse_per_task,
        0.01,
        adapted=lambda path: "/head/" in path,
    )
    batch = tasks.sample_sinusoid_tasks(tf.constant([1, 1]), 3, 5, 5)
    fast = maml.adapt(batch.support_x, batch.support_y)
    theta = maml.net.meta_params()
    for key, value in fast.items():
        same = np.allclose(value, np.broadcast_to(theta[key], value.shape))
        assert same == ("/head/" not in key), key
    # Predictions at the fast weights equal the model called with them assigned.
    out = maml.predict(fast, batch.query_x)
    clone = keras.models.clone_model(maml.model)
    for task in range(3):
        clone.set_weights([fast[k][task].numpy() for k in maml.net.keys])
        np.testing.assert_allclose(
            out[task], clone(batch.query_x[task]), rtol=1e-5, atol=1e-6
        )


def test_train_step_updates_the_models_variables_with_the_meta_gradient():
    maml = keras_maml.MAML(_sinusoid_model(), meta_learner.mse_per_task, 0.01)
    batch = tasks.sample_sinusoid_tasks(tf.constant([2, 3]), 5, 10, 10)
    before = [v.numpy() for v in maml.model.trainable_variables]
    _, grads = maml.compute_gradients(batch)
    maml.train_step(batch, keras.optimizers.SGD(0.1))
    for b, g, v in zip(before, grads, maml.model.trainable_variables, strict=True):
        np.testing.assert_allclose(v.numpy(), b - 0.1 * g.numpy(), rtol=1e-5, atol=1e-7)


def test_unbuilt_model_and_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="built"):
        keras_maml.MAML(
            keras.Sequential([keras.layers.Dense(1)]), meta_learner.mse_per_task, 0.01
        )
    with pytest.raises(ValueError, match="inner_lr"):
        keras_maml.MAML(_sinusoid_model(), meta_learner.mse_per_task, 0.0)
    with pytest.raises(ValueError, match="adapted"):
        keras_maml.MAML(
            _sinusoid_model(),
            meta_learner.mse_per_task,
            0.1,
            adapted=lambda path: False,
        )
    with pytest.raises(ValueError, match="num_inner_steps"):
        keras_maml.MAML(
            _sinusoid_model(), meta_learner.mse_per_task, 0.1, num_inner_steps=-1
        )


def test_docstring_example_runs():
    failures, tried = doctest.testmod(keras_maml, optionflags=doctest.ELLIPSIS)[:2]
    assert tried > 0 and failures == 0
