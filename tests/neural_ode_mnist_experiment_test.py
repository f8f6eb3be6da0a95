"""Tests of the MNIST Table 1 models and experiment (tiny fixtures, tiny budgets)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from neural_ode import mnist_models
from neural_ode.experiments import mnist_experiment, mnist_table1


def _gn(c):  # group norm: gamma and beta
    return 2 * c


def _conv(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def _expected_params(name: str) -> int:
    """Hand-derived parameter counts of the four architectures."""
    c = 64
    stem = _conv(3, 1, c) + _gn(c) + _conv(4, c, c) + _gn(c) + _conv(4, c, c)
    head = _gn(c) + c * 10 + 10
    if name == "mlp":
        return 784 * 300 + 300 + 300 * 10 + 10
    if name == "resnet":
        block = 2 * _gn(c) + 2 * _conv(3, c, c, bias=False)
        return stem + 6 * block + head
    # ODE function: three group norms and two time-concatenated convs (c + 1 in).
    odefunc = 3 * _gn(c) + 2 * _conv(3, c + 1, c)
    return stem + odefunc + head


@pytest.mark.parametrize("name", mnist_models.MODELS)
def test_parameter_counts_match_hand_derivation(name):
    model = mnist_models.build_model(name)
    assert mnist_table1.trainable_parameters(model) == _expected_params(name)


def test_stem_downsamples_28_to_6x6x64():
    model = mnist_models.build_model("odenet")
    block = mnist_models.ode_block_of(model)
    h = tf.zeros([2, 28, 28, 1])
    for layer in model.layers:
        if layer is block:
            break
        h = layer(h)
    assert h.shape == (2, 6, 6, 64)


def test_rknet_uses_rk4_backprop_and_odenet_the_adjoint():
    rk = mnist_models.ode_block_of(mnist_models.build_model("rknet", rk_steps=3))
    ode = mnist_models.ode_block_of(mnist_models.build_model("odenet"))
    assert (rk.solver.method, rk.solver.gradient, rk.solver.steps_per_interval) == (
        "rk4",
        "backprop",
        3,
    )
    assert (ode.solver.method, ode.solver.gradient) == ("dopri5", "adjoint")
    assert mnist_models.ode_block_of(mnist_models.build_model("resnet")) is None


def test_learning_rate_divides_by_ten_at_each_decay_epoch():
    cfg = mnist_experiment.MNISTConfig(decay_epochs=(1, 2), learning_rate=0.1)
    opt = mnist_experiment.make_optimizer(cfg, steps_per_epoch=5)
    schedule = opt.learning_rate if callable(opt.learning_rate) else opt._learning_rate
    values = [float(schedule(s)) for s in (0, 5, 6, 10, 11)]
    np.testing.assert_allclose(values, [0.1, 0.1, 0.01, 0.01, 0.001], rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"models": ("vgg",)},
        {"epochs": 0},
        {"batch_size": 0},
        {"rtol": 0.0},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        mnist_experiment.MNISTConfig(**kwargs)


def test_missing_mnist_is_reported_before_anything_is_written(tmp_path):
    cfg = mnist_experiment.MNISTConfig(data_dir=str(tmp_path / "nothing"))
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="not found"):
        mnist_experiment.run(cfg, str(out))
    assert not out.exists()
