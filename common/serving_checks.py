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
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import tensorflow as tf

T = TypeVar("T")


class RequestChecks:
    """Collects chained assertions about one request's inputs.

    Usage inside a `tf.function`:

        checks = RequestChecks()
        checks.shape(x, "x", ("rows", 3))
        checks.finite(x, "x")
        checks.rows(x, "x", 1, 256, "max_batch_size")
        (x,) = checks.gate(x)

    Each check reads its input through the checks made before it (data
    dependencies, which the graph optimiser keeps, plus control dependencies on
    the assertions), so the first broken rule in the listed order is the one
    reported, and `gate` returns the inputs only after all checks have passed.
    """

    def __init__(self) -> None:
        self._ops: list[Any] = []
        self._checked: dict[Any, tf.Tensor] = {}

    def _current(self, x: tf.Tensor) -> tf.Tensor:
        return self._checked.get(x.ref(), x)

    def _add(self, make, x: tf.Tensor, replaces: bool = False) -> None:
        """Runs `make(current x)` after the previous check; it returns an
        assertion op, or (`replaces`) the checked version of `x`."""
        with tf.control_dependencies(self._ops[-1:]):
            out = make(self._current(x))
        if replaces:
            self._checked[x.ref()] = out
            self._ops.append(out.op)
        elif out is not None:
            self._ops.append(out)

    def shape(self, x: tf.Tensor, name: str, dims: Sequence[int | str]) -> None:
        """`x` has shape `dims`: ints are fixed sizes, strings name free ones.

        Checked at run time because a loaded signature can run its graph on a
        tensor its input spec does not describe (and TF Serving does not check
        shapes either). With a free dimension the shape is matched as a string
        (e.g. `"5,28,28,1"`), since the graph optimiser folds arithmetic on the
        static rank of `x` into constants; a fully fixed shape (a scalar) is
        folded whole, so it is checked by `tf.ensure_shape` ("Shape of tensor
        <name> [...] is not compatible with expected shape [...]").
        """
        if not any(isinstance(d, str) for d in dims):
            self._add(
                lambda v: tf.ensure_shape(
                    v, [int(d) for d in dims], name=f"{name}_shape_check"
                ),
                x,
                replaces=True,
            )
            return
        pattern = ",".join(r"\d+" if isinstance(d, str) else str(int(d)) for d in dims)
        wanted = ", ".join(str(d) for d in dims)

        def make(v):
            actual = tf.strings.reduce_join(
                tf.strings.as_string(tf.shape(v)), separator=","
            )
            return tf.debugging.Assert(
                tf.strings.regex_full_match(actual, pattern),
                [f"{name} must have shape [{wanted}], got", tf.shape(v)],
            )

        self._add(make, x)

    def finite(self, x: tf.Tensor, name: str) -> None:
        """Every value of `x` is finite (no NaN, no infinity)."""
        self._add(
            lambda v: tf.debugging.assert_all_finite(
                v, f"{name} must be finite (it holds NaN or Inf)"
            ),
            x,
            replaces=True,
        )

    def rows(
        self, x: tf.Tensor, name: str, low: int, high: int, limit_name: str
    ) -> None:
        """`x` has between `low` and `high` rows (its first axis)."""
        message = (
            f"{name} must have {low} to {high} rows ({limit_name} = {high} "
            "is fixed at export)"
        )

        def make(v):
            n = tf.shape(v, out_type=tf.int64)[0]
            return tf.debugging.Assert(
                tf.logical_and(n >= low, n <= high), [message + ", got", n]
            )

        self._add(make, x)

    def same_size(
        self,
        x: tf.Tensor,
        x_name: str,
        x_axis: int,
        y: tf.Tensor,
        y_name: str,
        y_axis: int,
        what: str = "rows",
    ) -> None:
        """`x` and `y` agree in size along the given axes."""
        y_now = self._current(y)

        def make(v):
            nx = tf.shape(v, out_type=tf.int64)[x_axis]
            ny = tf.shape(y_now, out_type=tf.int64)[y_axis]
            return tf.debugging.Assert(
                tf.equal(nx, ny),
                [f"{x_name} must have as many {what} as {y_name}, got", nx, "and", ny],
            )

        self._add(make, x)

    def values_in(
        self,
        x: tf.Tensor,
        name: str,
        low: float | int,
        high: float | int,
        why: str = "",
    ) -> None:
        """Every value of `x` lies in `[low, high]`."""
        message = f"{name} must be in [{low:g}, {high:g}]" + (
            f" ({why})" if why else ""
        )

        def make(v):
            inside = tf.logical_and(
                v >= tf.constant(low, v.dtype), v <= tf.constant(high, v.dtype)
            )
            return tf.debugging.Assert(
                tf.reduce_all(inside),
                [message + ", got min and max", tf.reduce_min(v), tf.reduce_max(v)],
            )

        self._add(make, x)

    def at_least(self, x: tf.Tensor, name: str, low: float, why: str = "") -> None:
        """Every value of `x` is at least `low`."""
        message = f"{name} must be >= {low:g}" + (f" ({why})" if why else "")
        self._add(
            lambda v: tf.debugging.Assert(
                tf.reduce_all(v >= tf.constant(low, v.dtype)),
                [message + ", got min", tf.reduce_min(v)],
            ),
            x,
        )

    def strictly_increasing(self, x: tf.Tensor, name: str) -> None:
        """The 1-D `x` is strictly increasing."""
        self._add(
            lambda v: tf.debugging.Assert(
                tf.reduce_all(v[1:] > v[:-1]),
                [f"{name} must be strictly increasing, got", v],
            ),
            x,
        )

    def gate(self, *tensors: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """`tensors`, readable only after every check has passed."""
        with tf.control_dependencies(self._ops):
            return tuple(tf.identity(self._current(t)) for t in tensors)


def check_limits(limits: Any) -> None:
    """Validates a limits dataclass: every `max_*` field a positive integer,
    `min_tolerance` and `max_tolerance` (if present) positive, finite and ordered.

    Raises:
        ValueError: naming the field.
    """
    for field in dataclasses.fields(limits):
        value = getattr(limits, field.name)
        if (
            field.name.startswith("max_")
            and field.name != "max_tolerance"
            and (not isinstance(value, int) or isinstance(value, bool) or value < 1)
        ):
            raise ValueError(f"{field.name} must be a positive integer, got {value!r}")
    low = getattr(limits, "min_tolerance", None)
    high = getattr(limits, "max_tolerance", None)
    if low is not None and not (
        isinstance(low, float | int)
        and math.isfinite(low)
        and math.isfinite(high)
        and 0 < low <= high
    ):
        raise ValueError(
            f"need 0 < min_tolerance <= max_tolerance (finite), got {low!r}, {high!r}"
        )


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
            raise ValueError(
                f"--limit {item!r}: expected field=value with field one "
                f"of {', '.join(fields)}"
            )
        kind = type(getattr(base, key))
        try:
            changes[key] = kind(value)
        except ValueError as e:
            raise ValueError(f"--limit {item!r}: {e}") from None
    limits = dataclasses.replace(base, **changes)
    check_limits(limits)
    return limits
