"""Target energies and the Two Circles / Two Moons samplers of the CNF experiment."""

import math

import numpy as np
import pytest
import tensorflow as tf

from neural_ode.data import densities


@pytest.mark.parametrize("name", sorted(densities.ENERGIES))
def test_energies_are_finite_everywhere_and_shaped_like_the_input(name):
    rng = np.random.default_rng(0)
    points = np.concatenate(
        [rng.uniform(-4, 4, (500, 2)), rng.normal(0, 50, (500, 2)), np.zeros((1, 2))]
    )
    energy = densities.ENERGIES[name](tf.constant(points, tf.float32)).numpy()
    assert energy.shape == (1001,)
    assert np.isfinite(energy).all()
    batched = densities.ENERGIES[name](tf.constant(points.reshape(7, 143, 2)))
    np.testing.assert_allclose(batched.numpy().ravel(), energy, rtol=1e-5, atol=1e-5)


def test_energies_inside_the_box_are_rezende_and_mohamed_table_1():
    z1, z2 = 0.7, -0.4
    w1 = math.sin(2 * math.pi * z1 / 4)
    w2 = 3 * math.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
    w3 = 3 / (1 + math.exp(-(z1 - 1) / 0.3))
    radius = math.hypot(z1, z2)
    expected = {
        "ring": 0.5 * ((radius - 2) / 0.4) ** 2
        - math.log(
            math.exp(-0.5 * ((z1 - 2) / 0.6) ** 2)
            + math.exp(-0.5 * ((z1 + 2) / 0.6) ** 2)
        ),
        "wave": 0.5 * ((z2 - w1) / 0.4) ** 2,
        "split_wave": -math.log(
            math.exp(-0.5 * ((z2 - w1) / 0.35) ** 2)
            + math.exp(-0.5 * ((z2 - w1 + w2) / 0.35) ** 2)
        ),
        "step_wave": -math.log(
            math.exp(-0.5 * ((z2 - w1) / 0.4) ** 2)
            + math.exp(-0.5 * ((z2 - w1 + w3) / 0.35) ** 2)
        ),
    }
    point = tf.constant([[z1, z2]], tf.float64)
    for name, value in expected.items():
        assert densities.ENERGIES[name](point).numpy()[0] == pytest.approx(
            value, rel=1e-9
        )


def test_wall_only_acts_outside_the_box():
    inside = tf.constant([[3.99, 0.3]], tf.float64)
    outside = tf.constant([[4.4, 0.3]], tf.float64)
    free = 0.5 * ((0.3 - np.sin(2 * np.pi * 3.99 / 4)) / 0.4) ** 2
    assert densities.energy_wave(inside).numpy()[0] == pytest.approx(free)
    free_out = 0.5 * ((0.3 - np.sin(2 * np.pi * 4.4 / 4)) / 0.4) ** 2
    assert densities.energy_wave(outside).numpy()[0] == pytest.approx(
        free_out + 0.5 * (0.4 / 0.4) ** 2
    )


def test_wave_normaliser_matches_its_closed_form():
    # Every vertical line carries a Gaussian band of mass 0.4 sqrt(2 pi); integrating
    # over z1 gives the box width 8 plus the two half-Gaussian walls, 0.4 sqrt(2 pi).
    band = 0.4 * math.sqrt(2 * math.pi)
    exact = math.log(band * (8 + band))
    assert densities.log_normalizer("wave") == pytest.approx(exact, abs=2e-3)


@pytest.mark.parametrize("name", sorted(densities.ENERGIES))
def test_every_target_is_normalisable(name):
    # The mass on the default grid equals that on a twice larger one: no mass
    # escapes to infinity, so exp(-U) is integrable.
    log_z = densities.log_normalizer(name, half_width=8.0, points_per_axis=800)
    log_z_wide = densities.log_normalizer(name, half_width=16.0, points_per_axis=1600)
    assert math.isfinite(log_z)
    assert log_z == pytest.approx(log_z_wide, abs=1e-4)


def test_grid_covers_the_square_with_cell_centres():
    points, area = densities.grid(2.0, 4)
    assert points.shape == (16, 2) and area == pytest.approx(1.0)
    np.testing.assert_allclose(np.unique(points[:, 0]), [-1.5, -0.5, 0.5, 1.5])


def test_two_circles_radii_labels_and_noise():
    rng = np.random.default_rng(1)
    points, labels = densities.two_circles(1001, rng, radius=2.0, factor=0.5, noise=0.0)
    assert points.shape == (1001, 2) and points.dtype == np.float32
    assert labels.shape == (1001,) and set(labels) == {0, 1}
    assert (labels == 0).sum() == 500
    radii = np.hypot(points[:, 0], points[:, 1])
    np.testing.assert_allclose(radii[labels == 0], 2.0, rtol=1e-6)
    np.testing.assert_allclose(radii[labels == 1], 1.0, rtol=1e-6)
    # Angles are uniform: the mean point is near the centre.
    assert np.abs(points.mean(axis=0)).max() < 0.15
    noisy, noisy_labels = densities.two_circles(20000, rng, radius=2.0, noise=0.1)
    radial = np.hypot(noisy[:, 0], noisy[:, 1]) - np.where(noisy_labels == 0, 2, 1)
    assert radial.std() == pytest.approx(0.1, rel=0.05)


def test_two_moons_geometry_labels_and_centring():
    rng = np.random.default_rng(2)
    points, labels = densities.two_moons(2000, rng, scale=2.0, noise=0.0)
    assert points.shape == (2000, 2) and (labels == 0).sum() == 1000
    centers = 2.0 * densities.MOON_CENTERS[labels]
    np.testing.assert_allclose(np.linalg.norm(points - centers, axis=1), 2.0, rtol=1e-6)
    upper, lower = labels == 0, labels == 1
    assert (points[upper, 1] >= centers[upper, 1] - 1e-6).all()
    assert (points[lower, 1] <= centers[lower, 1] + 1e-6).all()
    # The moons interleave: each moon's tips reach the other's centre line, and
    # their vertical ranges overlap.
    assert points[upper, 0].max() > 0.99 * centers[lower][0, 0]
    assert points[lower, 0].min() < 0.99 * centers[upper][0, 0]
    assert points[upper, 1].min() < points[lower, 1].max()
    assert np.abs(points.mean(axis=0)).max() < 0.1


def test_samplers_are_deterministic_and_validate_arguments():
    a = densities.two_moons(50, np.random.default_rng(3))
    b = densities.two_moons(50, np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError):
        densities.two_circles(10, np.random.default_rng(0), factor=1.5)
    with pytest.raises(ValueError):
        densities.two_moons(0, np.random.default_rng(0))
    with pytest.raises(ValueError):
        densities.two_moons(10, np.random.default_rng(0), noise=-1.0)


@pytest.mark.parametrize("name", ["two_circles", "two_moons"])
def test_true_data_densities_integrate_to_one_and_fit_their_samples(name):
    points, area = densities.grid(4.0, 200)
    log_p = densities.DATA_LOG_PROBS[name](points, noise=0.15, num_angles=256)
    assert np.exp(log_p).sum() * area == pytest.approx(1.0, abs=2e-3)
    # Samples are likelier under their own density than under a shifted copy.
    rng = np.random.default_rng(4)
    samples, _ = densities.DATASETS[name](2000, rng, noise=0.15)
    own = densities.DATA_LOG_PROBS[name](samples, noise=0.15).mean()
    shifted = densities.DATA_LOG_PROBS[name](samples + 0.3, noise=0.15).mean()
    assert own > shifted + 0.5
