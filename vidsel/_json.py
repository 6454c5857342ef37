"""The one JSON-safe converter every result's ``to_dict`` uses, and its inverse helpers.

Conventions (shared by every result type):

- numpy arrays become (nested) lists; numpy scalars become Python numbers;
- non-finite floats (NaN, +-inf) become ``None`` (JSON has no NaN); :func:`float_array` turns
  ``None`` back into NaN;
- ``Fraction`` becomes ``"num/den"``; paths become strings; tuples become lists;
- mappings keep string keys; dataclasses with ``to_dict`` are converted with it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = ["float_array", "int_array", "json_safe"]


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


def fraction(value: str | int | float | Fraction) -> Fraction:
    """``"num/den"`` (or a number) back to a :class:`Fraction`."""
    return Fraction(value)
