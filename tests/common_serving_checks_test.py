"""In-graph request checks and export limits (common.serving_checks)."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from common import serving_checks


@dataclasses.dataclass(frozen=True)
class Limits:
    max_batch_size: int = 4
    min_tolerance: float = 1e-10
    max_tolerance: float = 1.0

    def __post_init__(self):
        serving_checks.check_limits(self)


def test_parse_limits_converts_and_validates():
    limits = serving_checks.parse_limits(
        Limits, ["max_batch_size=64", "min_tolerance=1e-8"]
    )
    assert limits == Limits(max_batch_size=64, min_tolerance=1e-8)
    assert isinstance(limits.max_batch_size, int)
    assert serving_checks.parse_limits(Limits, []) == Limits()
    with pytest.raises(ValueError, match="--limit 'max_steps=3'.*max_batch_size"):
        serving_checks.parse_limits(Limits, ["max_steps=3"])
    with pytest.raises(ValueError, match="--limit 'max_batch_size=2.5'"):
        serving_checks.parse_limits(Limits, ["max_batch_size=2.5"])
    with pytest.raises(ValueError, match="max_batch_size must be a positive"):
        serving_checks.parse_limits(Limits, ["max_batch_size=0"])
    with pytest.raises(ValueError, match="min_tolerance <= max_tolerance"):
        serving_checks.parse_limits(Limits, ["min_tolerance=2"])


@tf.function(
    input_signature=[
        tf.TensorSpec([None, 2], tf.float32),
        tf.TensorSpec([None], tf.int32),
    ]
)
def _served(x, labels):
    checks = serving_checks.RequestChecks()
    checks.shape(x, "x", ("rows", 2))
    checks.rows(x, "x", 1, 4, "max_batch_size")
    checks.same_size(labels, "labels", 0, x, "x", 0)
    checks.finite(x, "x")
    checks.values_in(x, "x", 0.0, 1.0)
    checks.values_in(labels, "labels", 0, 2, why="3 classes")
    checks.strictly_increasing(labels, "labels")
    x, labels = checks.gate(x, labels)
    # Would fail with an error naming nothing if a bad label got through.
    return tf.gather(tf.eye(3), labels) * tf.reduce_sum(x)


def _error(x, labels):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _served(tf.constant(x, tf.float32), tf.constant(labels, tf.int32))
    return str(info.value)


def test_valid_requests_pass_unchanged():
    x = np.array([[0.1, 0.2], [0.3, 0.4]], np.float32)
    out = _served(tf.constant(x), tf.constant([0, 2]))
    np.testing.assert_allclose(out, np.eye(3)[[0, 2]] * x.sum(), rtol=1e-6)


def test_each_rule_names_the_input_and_the_first_broken_rule_wins():
    good = [[0.1, 0.2], [0.3, 0.4]]
    assert "x must have 1 to 4 rows" in _error(np.zeros((5, 2)), [0, 1, 2, 3, 4])
    assert "x must have 1 to 4 rows" in _error(np.zeros((0, 2)), [])
    assert "labels must have as many rows as x" in _error(good, [0])
    # NaN is also out of [0, 1]: the finiteness rule comes first and is reported.
    assert "x must be finite" in _error([[np.nan, 0.2], [0.3, 0.4]], [0, 1])
    assert "x must be in [0, 1]" in _error([[1.5, 0.2], [0.3, 0.4]], [0, 1])
    assert "labels must be in [0, 2] (3 classes)" in _error(good, [0, 3])
    assert "labels must be strictly increasing" in _error(good, [1, 1])
