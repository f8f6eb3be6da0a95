"""The Table 2 RNN baseline: shapes, parameters, extrapolation, training, RMSE."""

import keras
import numpy as np
import pytest

from neural_ode import rnn_baseline
from neural_ode.data import spirals


@pytest.fixture(scope="module")
def data():
    return spirals.generate_spirals(num_spirals=8, seed=0)


@pytest.mark.parametrize("time_gaps", [False, True])
def test_output_shapes(data, time_gaps):
    keras.utils.set_random_seed(0)
    model = rnn_baseline.RNNBaseline(time_gaps=time_gaps)
    assert model.input_dim == 2 + time_gaps
    inputs, targets = rnn_baseline.one_step_data(
        data.observations, data.times, time_gaps
    )
    assert inputs.shape == (8, 99, 2 + time_gaps) and targets.shape == (8, 99, 2)
    assert tuple(model(inputs).shape) == (8, 99, 2)
    sub = spirals.subsample(data.observations, data.times, 30, seed=0)
    future = model.extrapolate(sub.observations, sub.times, data.extrapolation_times)
    assert tuple(future.shape) == (8, 100, 2)
    assert np.isfinite(keras.ops.convert_to_numpy(future)).all()


@pytest.mark.parametrize("time_gaps", [False, True])
def test_parameter_count_matches_formula(time_gaps):
    model = rnn_baseline.RNNBaseline(time_gaps=time_gaps)
    # Cell: 25 x (inputs + 25 + 1); readout: 2 x (25 + 1).
    expected = 25 * ((2 + time_gaps) + 25 + 1) + 2 * (25 + 1)
    assert expected == (777 if time_gaps else 752)
    assert model.count_params() == expected
    assert rnn_baseline.num_parameters(25, 2, time_gaps) == expected
    kernel = model.rnn.cell.kernel
    assert tuple(kernel.shape) == (2 + time_gaps, 25)  # one more input feature


def test_time_gap_features():
    obs = np.zeros((2, 3, 2), np.float32)
    features = rnn_baseline.time_gap_features(obs, [0.0, 0.5, 2.0], [3.0, 2.5])
    assert features.shape == (2, 3, 3)
    np.testing.assert_allclose(features[..., 2], [[0.5, 1.5, 1.0], [0.5, 1.5, 0.5]])
    inputs, _ = rnn_baseline.one_step_data(obs, [[0, 1, 3], [0, 2, 3]], True)
    np.testing.assert_allclose(inputs[..., 2], [[1, 2], [2, 1]])
    with pytest.raises(ValueError, match="needs the observation times"):
        rnn_baseline.one_step_data(obs, None, True)


@pytest.mark.parametrize("time_gaps", [False, True])
def test_extrapolation_is_autoregressive(data, time_gaps):
    keras.utils.set_random_seed(1)
    model = rnn_baseline.RNNBaseline(time_gaps=time_gaps)
    obs, times, queries = data.observations, data.times, data.extrapolation_times
    future = keras.ops.convert_to_numpy(model.extrapolate(obs, times, queries[:3]))

    def features(points, point_times, next_time):
        if not time_gaps:
            return points
        return rnn_baseline.time_gap_features(points, point_times, next_time)

    # The first prediction is the readout after the last observation ...
    first = keras.ops.convert_to_numpy(model(features(obs, times, queries[0])))
    np.testing.assert_allclose(future[:, 0], first[:, -1], atol=1e-5)
    # ... and the second reads the first as if it had been observed.
    longer = np.concatenate([obs, future[:, :1]], axis=1)
    longer_times = np.concatenate([times, queries[:1]])
    second = keras.ops.convert_to_numpy(
        model(features(longer, longer_times, queries[1]))
    )
    np.testing.assert_allclose(future[:, 1], second[:, -1], atol=1e-5)


@pytest.mark.parametrize("time_gaps", [False, True])
def test_a_few_training_steps_reduce_the_loss(data, time_gaps):
    keras.utils.set_random_seed(2)
    model = rnn_baseline.RNNBaseline(time_gaps=time_gaps)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", jit_compile=False)
    sub = spirals.subsample(data.observations, data.times, 50, seed=0)
    inputs, targets = rnn_baseline.one_step_data(sub.observations, sub.times, time_gaps)
    before = model.evaluate(inputs, targets, verbose=0)
    for _ in range(30):
        model.train_on_batch(inputs, targets)
    after = model.evaluate(inputs, targets, verbose=0)
    assert after < 0.7 * before


def test_rmse():
    assert rnn_baseline.rmse([[0.0, 0.0]], [[3.0, 4.0]]) == pytest.approx(np.sqrt(12.5))
    assert rnn_baseline.rmse(np.ones((2, 5, 2)), np.ones((2, 5, 2))) == 0.0
    with pytest.raises(ValueError, match="shape"):
        rnn_baseline.rmse(np.ones((2, 3)), np.ones((3, 2)))
