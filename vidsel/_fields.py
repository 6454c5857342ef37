"""What every result dataclass shares: one ``__eq__`` over its fields, and array coercion.

Result types hold numpy arrays, so the ``__eq__`` a dataclass writes (a tuple comparison)
raises ``ValueError: The truth value of an array ... is ambiguous``. Every result type is
declared ``@dataclass(..., eq=False)`` and inherits :class:`FieldsEq` instead:

- two results are equal when they are of the same type and every field declared with
  ``compare=True`` (the default) is equal; fields declared ``compare=False`` (wall times) are
  skipped;
- arrays are equal when their shapes match, their dtype kinds match (``int32`` equals
  ``int64``, ``float32`` equals ``float64``; a float never equals an int array) and their
  values match, NaN equal to NaN (:func:`numpy.array_equal` with ``equal_nan``); two empty
  arrays of the same shape are equal whatever their dtypes;
- mappings are equal key by key (recursively), lists and tuples element by element (a tuple
  equals a list with equal items: JSON has no tuples), floats with NaN equal to NaN;
- results are unhashable (``__hash__ = None``): they hold mutable arrays.

Pixels are compared like any other array: ``to_dict`` leaves them out, so a result rebuilt with
``from_dict`` equals the original with its pixels set to None (see each type's ``from_dict``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .errors import InvalidArgumentError

__all__ = ["FieldsEq", "as_array", "coerce_arrays", "values_equal"]


def values_equal(a: Any, b: Any) -> bool:
    """Whether two field values are equal under the rules of the module doc."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.shape != b.shape:
            return False
        if a.size == 0:  # nothing to compare (JSON keeps no dtype of an empty list)
            return True
        if _kind(a) != _kind(b):
            return False
        nan = a.dtype.kind in "fc" and b.dtype.kind in "fc"
        return bool(np.array_equal(a, b, equal_nan=nan))
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)) or set(a) != set(b):
            return False
        return all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))):
            return False
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (float, np.floating)) and isinstance(b, (float, np.floating)):
        return bool(a == b or (math.isnan(a) and math.isnan(b)))
    return bool(a == b)


def _kind(a: np.ndarray) -> str:
    """dtype kind with signed and unsigned integers merged (``"i"``)."""
    k = a.dtype.kind
    return "i" if k == "u" else k


class FieldsEq:
    """Mixin giving a dataclass the shared field-wise ``__eq__`` (declare it ``eq=False``)."""

    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.compare and not values_equal(getattr(self, f.name), getattr(other, f.name)):
                return False
        return True


def as_array(owner: str, name: str, value: Any, *, dtype: Any = None) -> np.ndarray:
    """``value`` as an ndarray of at least one dimension (a list or tuple is converted), or
    :class:`~vidsel.errors.InvalidArgumentError` naming ``owner.name``.

    Args:
        owner: the result type's name, for the message.
        name: the field's name.
        dtype: convert to this dtype (None keeps an array's own dtype).
    """
    try:
        arr = np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(
            f"{owner}.{name} must be an array, got {type(value).__name__} ({e})") from None
    if arr.dtype == object or arr.ndim == 0:
        raise InvalidArgumentError(
            f"{owner}.{name} must be an array, got {type(value).__name__}")
    return arr


def coerce_arrays(obj: Any, names: Mapping[str, Any] | tuple[str, ...], *,
                  optional: Mapping[str, Any] | tuple[str, ...] = ()) -> None:
    """Replace each field of the (frozen) dataclass ``obj`` named in ``names`` that is not an
    ndarray (e.g. a list) by :func:`as_array` of it; ``optional`` fields may also be None.

    ``names`` / ``optional`` may map each name to the dtype a list is converted to (the
    field's documented dtype; None infers it); arrays keep their own dtype.
    """
    owner = type(obj).__name__
    spec = {**_spec(names), **_spec(optional)}
    for name, dtype in spec.items():
        value = getattr(obj, name)
        if value is None and name in optional:
            continue
        if not isinstance(value, np.ndarray):
            object.__setattr__(obj, name, as_array(owner, name, value, dtype=dtype))


def _spec(names: Mapping[str, Any] | tuple[str, ...]) -> dict[str, Any]:
    return dict(names) if isinstance(names, Mapping) else dict.fromkeys(names)
