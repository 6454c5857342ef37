"""The one JSON-safe converter every result's ``to_dict`` uses, and its inverse helpers.

Conventions (shared by every result type):

- numpy arrays become (nested) lists; numpy scalars become Python numbers;
- non-finite floats (NaN, +-inf) become ``None`` (JSON has no NaN); :func:`float_array` turns
  ``None`` back into NaN;
- ``Fraction`` becomes ``"num/den"``; paths become strings; tuples become lists;
- mappings keep string keys; dataclasses with ``to_dict`` are converted with it.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any, TypeVar

import numpy as np

from .errors import InvalidArgumentError

__all__ = ["float_array", "float_dict", "float_or_nan", "int_array", "json_safe",
           "reads_dict"]

F = TypeVar("F", bound=Callable[..., Any])


def json_safe(value: Any) -> Any:
    """A structure of dicts, lists, str, int, float, bool and None equal in meaning to ``value``.

    Example:
        >>> json_safe({"a": np.array([1.0, np.nan]), "b": Fraction(1, 30)})
        {'a': [1.0, None], 'b': '1/30'}
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "US":
            return value.astype(str).tolist()
        return json_safe(value.tolist())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return json_safe(to_dict())
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [json_safe(v) for v in items]
    return str(value)


def float_array(values: Sequence[Any] | None, *, dtype: Any = np.float64) -> np.ndarray | None:
    """Inverse of :func:`json_safe` for float arrays: ``None`` entries become NaN."""
    if values is None:
        return None
    return np.asarray([np.nan if v is None else v for v in values], dtype=dtype)


def int_array(values: Sequence[Any] | None, *, dtype: Any = np.int64) -> np.ndarray | None:
    """A (possibly nested) list of ints back to an array (None stays None)."""
    if values is None:
        return None
    return np.asarray(values, dtype=dtype)


def float_or_nan(value: Any) -> float:
    """A JSON number back to a float; ``None`` (JSON's NaN, see :func:`json_safe`) is NaN."""
    return math.nan if value is None else float(value)


def float_dict(values: Mapping[str, Any] | None) -> dict[str, float]:
    """A JSON ``{name: seconds}`` dict (e.g. ``timings_s``) back to floats; ``None`` values
    become NaN (``json_safe`` turned NaN into None), a missing dict is empty."""
    if values is None:
        return {}
    return {str(k): float_or_nan(v) for k, v in values.items()}


def reads_dict(fn: F) -> F:
    """Decorator for a ``from_dict(cls, data, ...)`` classmethod (apply it under
    ``@classmethod``): malformed input raises one error.

    ``data`` that is not a mapping, a missing key, or a value of the wrong type or shape
    (``KeyError`` / ``TypeError`` / ``ValueError`` / ``AttributeError`` / ``IndexError`` raised
    while reading it, or the type's own validation) becomes
    ``InvalidArgumentError("<Class>.from_dict: malformed input: ...")``.
    """

    @functools.wraps(fn)
    def from_dict(cls: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        where = f"{cls.__name__}.from_dict: malformed input"
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(
                f"{where}: expected a mapping (a to_dict() result), got {type(data).__name__}")
        try:
            return fn(cls, data, *args, **kwargs)
        except KeyError as e:
            raise InvalidArgumentError(f"{where}: missing key {e}") from e
        except (TypeError, ValueError, AttributeError, IndexError) as e:
            msg = str(e)
            if msg.startswith(f"{cls.__name__}.from_dict"):  # said it already
                raise InvalidArgumentError(msg) from e
            raise InvalidArgumentError(f"{where}: {msg}") from e

    return from_dict  # type: ignore[return-value]
