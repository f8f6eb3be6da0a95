"""Tests of the shared confidence intervals."""

import math

import numpy as np
import pytest
import tensorflow_probability as tfp

from common import stats


@pytest.mark.parametrize("df", sorted(stats.T_975))
def test_t_quantiles_match_the_student_distribution(df):
    exact = float(
        tfp.distributions.StudentT(df=float(df), loc=0.0, scale=1.0).quantile(0.975)
    )
    assert stats.T_975[df] == pytest.approx(exact, abs=1e-3)


def test_mean_t_ci_is_the_student_interval():
    values = [0.30, 0.34, 0.29]
    mean, half = stats.mean_t_ci(values)
    sd = np.std(values, ddof=1)
    assert mean == pytest.approx(np.mean(values))
    assert half == pytest.approx(stats.T_975[2] * sd / math.sqrt(3))


def test_mean_t_ci_of_one_value_has_no_width():
    mean, half = stats.mean_t_ci([0.5])
    assert mean == 0.5 and math.isnan(half)


def test_mean_ci95_is_the_normal_interval_with_the_population_std():
    values = np.array([1.0, 2.0, 4.0, 7.0])
    est = stats.mean_ci95(values)
    assert est.mean == pytest.approx(3.5)
    assert est.ci95 == pytest.approx(1.96 * values.std() / 2.0)
    assert est.n == 4
