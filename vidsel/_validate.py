"""Argument validation with one message shape: name the argument, the bad value, the allowed."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from .errors import InvalidArgumentError


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    """Raise :class:`InvalidArgumentError` unless ``value`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise InvalidArgumentError(
            f"{name}={value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}"
        )


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    """Return ``value`` as int if it is a (strictly) positive integer, else raise."""
    if isinstance(value, bool) or (not isinstance(value, (int,)) and not _is_np_int(value)):
        raise InvalidArgumentError(f"{name}={value!r} must be an integer")
    v = int(value)
    if v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else ">= 1"
        raise InvalidArgumentError(f"{name}={value!r} must be {bound}")
    return v


def check_finite_float(name: str, value: Any, *, what: str = "a number",
                       allow_bool: bool = True) -> float:
    """Return ``value`` as a finite float of any sign, else raise (``what`` names the kind of
    number in the message, e.g. ``"a number of seconds"``)."""
    if not allow_bool and isinstance(value, bool):
        raise InvalidArgumentError(f"{name}={value!r} must be {what}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name}={value!r} must be {what}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise InvalidArgumentError(f"{name}={value!r} must be finite")
    return v


def check_positive_float(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as float if it is a finite (strictly) positive number, else raise."""
    v = check_finite_float(name, value)
    if v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidArgumentError(f"{name}={value!r} must be {bound}")
    return v


def _is_np_int(value: Any) -> bool:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        return False
    return isinstance(value, np.integer)


def keyword_params(fn: Callable[..., Any], *, skip: int = 0) -> frozenset[str] | None:
    """Names ``fn`` accepts as keywords after its first ``skip`` parameters; None when it takes
    ``**kwargs`` (anything goes) or has no inspectable signature. What registries check option
    names against."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    ok = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in params[skip:] if p.kind in ok)


def unknown_keywords(fn: Callable[..., Any], options: Iterable[str], *, skip: int = 0
                     ) -> tuple[list[str], list[str]]:
    """``(unknown, accepted)``: the names of ``options`` that ``fn`` does not take as keywords
    (after its first ``skip`` parameters), sorted, and the ones it does; both empty when ``fn``
    takes ``**kwargs``. The check behind every "does not take" message of a loader."""
    names = keyword_params(fn, skip=skip)
    if names is None:
        return [], []
    return sorted(set(options) - names), sorted(names)
