"""Deprecated aliases for renamed public names (kept for one release; see CHANGELOG.md).

- :func:`renamed_fields` — a dataclass whose field was renamed still accepts the old keyword
  in its constructor and answers the old attribute, both with a :class:`DeprecationWarning`.
- :func:`renamed_kwargs` — a function whose keyword argument was renamed still accepts it.
- :func:`warn_renamed` — the one message shape.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .errors import InvalidArgumentError

__all__ = ["renamed_fields", "renamed_kwargs", "warn_renamed"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: The release after which deprecated aliases are removed.
REMOVED_IN = "0.3"


def warn_renamed(where: str, old: str, new: str, *, stacklevel: int = 3) -> None:
    """Emit the DeprecationWarning for ``where.old`` renamed to ``where.new``."""
    warnings.warn(f"{where}.{old} is deprecated and will be removed in vidsel {REMOVED_IN}; "
                  f"use {where}.{new}", DeprecationWarning, stacklevel=stacklevel)


def _renamed(where: str, renames: Mapping[str, str], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with deprecated keyword names replaced by their new names (warning each)."""
    for old, new in renames.items():
        if old in kwargs:
            if new in kwargs:
                raise InvalidArgumentError(
                    f"{where}: give {new}= only ({old}= is its deprecated name)")
            warnings.warn(f"{where}({old}=...) is deprecated and will be removed in vidsel "
                          f"{REMOVED_IN}; use {where}({new}=...)", DeprecationWarning,
                          stacklevel=3)
            kwargs[new] = kwargs.pop(old)
    return kwargs


def renamed_fields(renames: Mapping[str, str]) -> Callable[[type[T]], type[T]]:
    """Class decorator for a (frozen) dataclass: ``{old_name: new_name}`` aliases.

    The constructor accepts ``old_name=`` (warning) and ``obj.old_name`` reads ``new_name``
    (warning). Apply it *above* ``@dataclass``.
    """

    def wrap(cls: type[T]) -> type[T]:
        init = cls.__init__  # type: ignore[misc]

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **_renamed(cls.__name__, renames, kwargs))

        cls.__init__ = __init__  # type: ignore[method-assign,misc]
        for old, new in renames.items():
            setattr(cls, old, _alias_property(cls.__name__, old, new))
        return cls

    return wrap


def _alias_property(owner: str, old: str, new: str) -> property:
    def get(self: Any) -> Any:
        warn_renamed(owner, old, new)
        return getattr(self, new)

    get.__doc__ = f"Deprecated alias of :attr:`{new}`."
    return property(get)


def renamed_kwargs(renames: Mapping[str, str]) -> Callable[[F], F]:
    """Function decorator: keyword ``old=`` still works (with a warning) as ``new=``."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **_renamed(fn.__name__, renames, kwargs))

        return inner  # type: ignore[return-value]

    return wrap
