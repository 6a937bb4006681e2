"""Central validation helpers (statsmodels ``float_like`` / sklearn param-validation style).

Every message names the parameter, the constraint and the value received.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from rwe.exceptions import InvalidParameterError

ALTERNATIVES = ("two-sided", "less", "greater")


def check_level(value: object, name: str = "confidence_level") -> float:
    """Return ``value`` as a float in (0, 1) or raise :class:`InvalidParameterError`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be a real number in (0, 1), got {value!r}")
    if not 0 < float(value) < 1:
        raise InvalidParameterError(f"{name} must lie in (0, 1), got {value!r}")
    return float(value)


def check_choice(value: object, name: str, options: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``options``; the message lists the valid choices."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise InvalidParameterError(
            f"{name}={value!r} is not valid; choose one of: {', '.join(map(repr, options))}"
        )
    return value


def check_alternative(value: object) -> str:
    return check_choice(value, "alternative", ALTERNATIVES)


def check_int(value: object, name: str, *, minimum: int | None = None) -> int:
    """Integer check with scipy's message shape."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        bound = f" not less than {minimum}" if minimum is not None else ""
        raise InvalidParameterError(f"{name} must be an integer{bound}, but got {value!r}")
    if minimum is not None and value < minimum:
        raise InvalidParameterError(
            f"{name} must be an integer not less than {minimum}, but got {value!r}"
        )
    return int(value)


def check_real(value: object, name: str, *, low: float | None = None, high: float | None = None,
               low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise InvalidParameterError(f"{name} must be finite, got {value!r}")
    if low is not None and (v < low or (v == low and not low_inclusive)):
        op = ">=" if low_inclusive else ">"
        raise InvalidParameterError(f"{name} must be {op} {low}, got {value!r}")
    if high is not None and (v > high or (v == high and not high_inclusive)):
        op = "<=" if high_inclusive else "<"
        raise InvalidParameterError(f"{name} must be {op} {high}, got {value!r}")
    return v


def as_1d(values: Any, name: str, *, dtype: Any = None, allow_nan: bool = False) -> np.ndarray:
    """Convert to a 1-d numpy array, naming ``name`` in the error when that fails."""
    try:
        arr = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(f"{name} could not be converted to an array: {exc}") from None
    if arr.ndim != 1:
        raise InvalidParameterError(
            f"{name} is required to be 1-dimensional but has shape {arr.shape}"
        )
    if not allow_nan and arr.dtype.kind == "f" and np.isnan(arr).any():
        raise InvalidParameterError(f"{name} contains NaN at positions {first_rows(np.isnan(arr))}")
    return arr


def as_binary(values: Any, name: str = "y_true") -> np.ndarray:
    """Return a boolean array from 0/1 or bool labels; anything else is an error."""
    arr = as_1d(values, name)
    if arr.dtype == bool:
        return arr
    uniq = np.unique(arr)
    if not np.isin(uniq, [0, 1]).all():
        raise InvalidParameterError(
            f"{name} must be binary (0/1 or bool), got values {uniq[:5].tolist()}"
        )
    return arr.astype(bool)


def first_rows(mask: np.ndarray, k: int = 5) -> list[int]:
    """Up to ``k`` positions where ``mask`` is true (for error messages)."""
    return np.flatnonzero(np.asarray(mask))[:k].tolist()
