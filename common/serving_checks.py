"""In-graph validation of served requests, and the per-request limits of an export.

A served model is called by strangers, so every exported signature checks its
inputs inside the graph before computing anything: `RequestChecks` collects
`tf.debugging` assertions whose messages start with the input's name and state the
rule (`"num_steps must be in [0, 100] ..."`), chains them so the first broken rule
in the listed order is the one reported, and gates the inputs on them, so that no
computation (whose own errors would not name the input) runs on a bad request.

A rejected request raises `InvalidArgumentError` through `tf.saved_model.load`,
fails `saved_model_cli run` with that message, and is answered by TF Serving with
status INVALID_ARGUMENT and the message.

The limits of an export (batch sizes, inner steps, solver steps...) are frozen
dataclasses of the serving modules, fixed at export time (they are constants of
the graph), and written beside the model as `assets.extra/serving_limits.json` by
`common.export.export_for_serving`. `parse_limits` turns `field=value` strings (the
export commands' `--limit` flags) into such a dataclass.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any, TypeVar

import tensorflow as tf

T = TypeVar("T")


class RequestChecks:
    """Collects chained assertions about one request's inputs.

    Usage inside a `tf.function`:

        checks = RequestChecks()
        checks.finite(x, "x")
        checks.rows(x, "x", 1, 256, "max_batch_size")
        (x,) = checks.gate(x)
    """

    def __init__(self) -> None:
        self._ops: list[Any] = []

    def _add(self, make) -> None:
        with tf.control_dependencies(self._ops[-1:]):
            op = make()
        if op is not None:
            self._ops.append(op)

    def finite(self, x: tf.Tensor, name: str) -> None:
        """Every value of `x` is finite (no NaN, no infinity)."""
        self._add(lambda: tf.debugging.assert_all_finite(
            x, f"{name} must be finite (it holds NaN or Inf)"))

    def rows(self, x: tf.Tensor, name: str, low: int, high: int,
             limit_name: str) -> None:
        """`x` has between `low` and `high` rows (its first axis)."""
        n = tf.shape(x, out_type=tf.int64)[0]
        message = (f"{name} must have {low} to {high} rows ({limit_name} = {high} "
                   "is fixed at export)")
        self._add(lambda: tf.debugging.assert_greater_equal(
            n, tf.constant(low, tf.int64), message=message))
        self._add(lambda: tf.debugging.assert_less_equal(
            n, tf.constant(high, tf.int64), message=message))

    def same_size(self, x: tf.Tensor, x_name: str, x_axis: int, y: tf.Tensor,
                  y_name: str, y_axis: int, what: str = "rows") -> None:
        """`x` and `y` agree in size along the given axes."""
        nx = tf.shape(x, out_type=tf.int64)[x_axis]
        ny = tf.shape(y, out_type=tf.int64)[y_axis]
        self._add(lambda: tf.debugging.assert_equal(
            nx, ny, message=f"{x_name} must have as many {what} as {y_name}"))

    def values_in(self, x: tf.Tensor, name: str, low: float | int,
                  high: float | int, why: str = "") -> None:
        """Every value of `x` lies in `[low, high]`."""
        message = f"{name} must be in [{low:g}, {high:g}]" + (
            f" ({why})" if why else "")
        self._add(lambda: tf.debugging.assert_greater_equal(
            x, tf.constant(low, x.dtype), message=message))
        self._add(lambda: tf.debugging.assert_less_equal(
            x, tf.constant(high, x.dtype), message=message))

    def strictly_increasing(self, x: tf.Tensor, name: str) -> None:
        """The 1-D `x` is strictly increasing."""
        self._add(lambda: tf.debugging.Assert(
            tf.reduce_all(x[1:] > x[:-1]),
            [f"{name} must be strictly increasing, got", x]))

    def at_least(self, x: tf.Tensor, name: str, low: float, why: str = "") -> None:
        """Every value of `x` is at least `low`."""
        message = f"{name} must be >= {low:g}" + (f" ({why})" if why else "")
        self._add(lambda: tf.debugging.assert_greater_equal(
            x, tf.constant(low, x.dtype), message=message))

    def gate(self, *tensors: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """`tensors`, readable only after every check has passed."""
        with tf.control_dependencies(self._ops):
            return tuple(tf.identity(t) for t in tensors)


def check_limits(limits: Any) -> None:
    """Validates a limits dataclass: every `max_*` field a positive integer,
    `min_tolerance` and `max_tolerance` (if present) positive, finite and ordered.

    Raises:
        ValueError: naming the field.
    """
    for field in dataclasses.fields(limits):
        value = getattr(limits, field.name)
        if field.name.startswith("max_") and field.name != "max_tolerance" and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{field.name} must be a positive integer, got {value!r}")
    low = getattr(limits, "min_tolerance", None)
    high = getattr(limits, "max_tolerance", None)
    if low is not None and not (isinstance(low, float | int) and math.isfinite(low)
                                and math.isfinite(high) and 0 < low <= high):
        raise ValueError("need 0 < min_tolerance <= max_tolerance (finite), got "
                         f"{low!r}, {high!r}")


def parse_limits(cls: type[T], items: Iterable[str], base: T | None = None) -> T:
    """A limits dataclass from `field=value` strings (the `--limit` flags).

    Args:
        cls: The limits dataclass.
        items: `field=value` strings; ints for `max_*` fields, floats otherwise.
        base: Limits to start from (default `cls()`).

    Raises:
        ValueError: an unknown field or a malformed value, naming the item.
    """
    base = cls() if base is None else base
    fields = {f.name: f for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"--limit {item!r}: expected field=value with field one "
                             f"of {', '.join(fields)}")
        kind = type(getattr(base, key))
        try:
            changes[key] = kind(value)
        except ValueError as e:
            raise ValueError(f"--limit {item!r}: {e}") from None
    limits = dataclasses.replace(base, **changes)
    check_limits(limits)
    return limits

