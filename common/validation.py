"""Checks for config fields, each raising a `ValueError` that names the field.

Configs call these in `__post_init__`, so a bad value fails before any work and
the message says which field (and so which flag) to fix.

Example:
    >>> require_positive("batch_size", 32)
    >>> require_positive("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be > 0, got 0
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from typing import Any


def _finite_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def require_int(name: str, value: Any) -> None:
    """`value` is an int (a bool is not): count fields."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")


def require_positive(name: str, value: Any) -> None:
    """`value` is a finite number > 0."""
    if _finite_number(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def require_non_negative(name: str, value: Any) -> None:
    """`value` is a finite number >= 0."""
    if _finite_number(name, value) < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def require_all_positive(name: str, values: Iterable[Any]) -> None:
    """Every entry of `values` is a finite number > 0 (and there is at least one)."""
    values = list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    for v in values:
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float)
            or not (math.isfinite(v) and v > 0)
        ):
            raise ValueError(f"{name} must hold numbers > 0, got {tuple(values)!r}")


def require_fraction(
    name: str, value: Any, *, open_low: bool = False, open_high: bool = False
) -> None:
    """`value` lies in [0, 1] (either end excluded on request)."""
    v = _finite_number(name, value)
    low_bad = v <= 0 if open_low else v < 0
    high_bad = v >= 1 if open_high else v > 1
    if low_bad or high_bad:
        interval = f"{'(' if open_low else '['}0, 1{')' if open_high else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def require_one_of(name: str, value: Any, choices: Collection[Any]) -> None:
    """`value` is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}"
        )
