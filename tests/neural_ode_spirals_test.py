"""The spiral dataset: shapes, geometry, noise, determinism, subsampling, split."""

import numpy as np
import pytest

from neural_ode.data import spirals


@pytest.fixture(scope="module")
def data():
    return spirals.generate_spirals(seed=3)


def _cross(u, v):
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def test_shapes_and_equal_time_spacing(data):
    assert len(data) == 1000
    assert data.times.shape == (100,) and data.extrapolation_times.shape == (100,)
    assert data.observations.shape == data.true_trajectories.shape == (1000, 100, 2)
    assert data.extrapolation_trajectories.shape == (1000, 100, 2)
    assert data.clockwise.shape == data.start_angles.shape == (1000,)
    assert data.observations.dtype == np.float32
    all_times = np.concatenate([data.times, data.extrapolation_times])
    assert all_times[0] == 0.0
    np.testing.assert_allclose(np.diff(all_times), spirals.DEFAULT_TIME_STEP, rtol=1e-4)
    assert len(np.unique(data.start_angles)) == 1000  # a start point per spiral


def test_half_clockwise_by_direction_of_rotation(data):
    assert data.clockwise.sum() == 500
    true = np.concatenate(
        [data.true_trajectories, data.extrapolation_trajectories], axis=1
    )
    # Angular direction about the spiral's centre.
    center = np.where(data.clockwise, -5.0, 5.0)[:, None, None] * np.array([1, 0])
    rel = true - center
    turn = _cross(rel[:, :-1], rel[:, 1:])
    assert (turn[data.clockwise] < 0).all() and (turn[~data.clockwise] > 0).all()
    # The same from the bending of the path alone (no centre needed).
    velocity = np.diff(true, axis=1)
    bend = _cross(velocity[:, :-1], velocity[:, 1:])
    assert (bend[data.clockwise] < 0).all() and (bend[~data.clockwise] > 0).all()


def test_points_lie_on_archimedean_spirals(data):
    true = np.concatenate(
        [data.true_trajectories, data.extrapolation_trajectories], axis=1
    ).astype(float)
    center = np.where(data.clockwise, -5.0, 5.0)
    radius = np.hypot(true[..., 0] - center[:, None], true[..., 1])
    direction = np.where(data.clockwise, -1.0, 1.0)
    angles = (
        data.start_angles[:, None]
        + direction[:, None]
        * np.concatenate([data.times, data.extrapolation_times])[None]
    )
    np.testing.assert_allclose(radius, 0.3 * angles, atol=1e-4)
    assert angles.min() >= 100 * spirals.DEFAULT_TIME_STEP - 1e-4
    assert angles.max() <= 6 * np.pi + 1e-4


def test_noise_std_matches_request():
    for std in (0.1, 0.3):
        d = spirals.generate_spirals(num_spirals=200, noise_std=std, seed=1)
        noise = d.observations - d.true_trajectories
        assert abs(noise.std() - std) < 0.02 * std
        assert abs(noise.mean()) < 0.02 * std
    clean = spirals.generate_spirals(num_spirals=4, noise_std=0.0)
    np.testing.assert_array_equal(clean.observations, clean.true_trajectories)


def test_deterministic_per_seed():
    a = spirals.generate_spirals(num_spirals=20, seed=7)
    b = spirals.generate_spirals(num_spirals=20, seed=7)
    c = spirals.generate_spirals(num_spirals=20, seed=8)
    for field in ("observations", "extrapolation_trajectories", "clockwise"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.observations, c.observations)


def test_extrapolation_continues_the_same_curve(data):
    last = data.true_trajectories[:, -1]
    first = data.extrapolation_trajectories[:, 0]
    gap = np.linalg.norm(first - last, axis=-1)
    step_before = np.linalg.norm(
        data.true_trajectories[:, -1] - data.true_trajectories[:, -2], axis=-1
    )
    step_after = np.linalg.norm(data.extrapolation_trajectories[:, 1] - first, axis=-1)
    # One ordinary step across the boundary: no jump, no repeated point.
    np.testing.assert_allclose(gap, step_before, rtol=0.01)
    np.testing.assert_allclose(gap, step_after, rtol=0.01)
    # Generating more observed points reproduces the continuation.
    longer = spirals.generate_spirals(
        num_points=200, num_extrapolate=0, seed=3, noise_std=0.0
    )
    np.testing.assert_allclose(
        longer.true_trajectories[:, 100:], data.extrapolation_trajectories, atol=1e-5
    )


def test_subsample_sorted_and_of_requested_size(data):
    for k in (30, 50, 100):
        sub = spirals.subsample(data.observations, data.times, k, seed=k)
        assert sub.observations.shape == (1000, k, 2)
        assert sub.times.shape == sub.indices.shape == (1000, k)
        assert (np.diff(sub.times, axis=1) > 0).all()
        assert (np.diff(sub.indices, axis=1) > 0).all()
        np.testing.assert_array_equal(
            sub.observations[5], data.observations[5, sub.indices[5]]
        )
        np.testing.assert_array_equal(sub.times[5], data.times[sub.indices[5]])
    full = spirals.subsample(data.observations, data.times, 100)
    np.testing.assert_array_equal(full.observations, data.observations)
    sub = spirals.subsample(data.observations, data.times, 30, seed=1)
    assert len({tuple(row) for row in sub.indices}) > 1  # irregular per spiral
    again = spirals.subsample(data.observations, data.times, 30, seed=1)
    np.testing.assert_array_equal(sub.indices, again.indices)
    shared = spirals.subsample(data.observations, data.times, 30, per_sequence=False)
    assert (shared.indices == shared.indices[0]).all()
    with pytest.raises(ValueError, match="num_observed"):
        spirals.subsample(data.observations, data.times, 101)


def test_train_test_split_is_disjoint_and_covering(data):
    train, test = spirals.train_test_split(data, test_fraction=0.2, seed=0)
    assert len(train) == 800 and len(test) == 200
    starts = np.concatenate([train.start_angles, test.start_angles])
    assert sorted(starts.tolist()) == sorted(data.start_angles.tolist())
    assert not set(train.start_angles.tolist()) & set(test.start_angles.tolist())
    assert train.times is data.times and test.observations.shape == (200, 100, 2)
    assert 0.35 < test.clockwise.mean() < 0.65


def test_bad_arguments():
    with pytest.raises(ValueError, match="angle range"):
        spirals.generate_spirals(num_points=1000)
    with pytest.raises(ValueError, match="noise_std"):
        spirals.generate_spirals(noise_std=-1.0)
