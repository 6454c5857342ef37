"""One small registry helper behind every pluggable strategy in vidsel and ovis_model.

Every registry (decode backends, video-level methods, array-level selectors, embedders, batch
executors, attention backends, CLI subcommands) is a :class:`Registry` and answers with the same
verbs: ``register`` (with an overwrite guard; also usable as a decorator), ``names`` (sorted),
``get`` (an unknown name raises one error shape that lists the choices), ``in``.

Example:
    >>> widgets: Registry[int] = Registry("widget")
    >>> widgets.register("one", 1)
    1
    >>> @widgets.register("two")
    ... def _two() -> int:
    ...     return 2
    >>> widgets.names()
    ('one', 'two')
    >>> widgets.get("three")
    Traceback (most recent call last):
    ...
    vidsel.errors.InvalidArgumentError: widget='three' is not registered; choose one of 'one', 'two'
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from .errors import InvalidArgumentError

__all__ = ["Registry"]

T = TypeVar("T")
_MISSING: Any = object()


class Registry(Generic[T]):
    """Named entries of one kind.

    Args:
        kind: what an entry is, used in messages (``"method"``, ``"backend"``...); also the
            argument name the "not registered" error names.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    @overload
    def register(self, name: str, entry: T, *, overwrite: bool = ...) -> T: ...

    @overload
    def register(self, name: str, *, overwrite: bool = ...) -> Callable[[T], T]: ...

    def register(self, name: str, entry: T = _MISSING, *,
                 overwrite: bool = False) -> T | Callable[[T], T]:
        """Add ``entry`` under ``name`` (or, without ``entry``, return a decorator that does).

        Raises:
            InvalidArgumentError: ``name`` is empty or not a string, or is already registered
                and ``overwrite`` is False.
        """
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"{self.kind} name {name!r} must be a non-empty string")

        def add(obj: T) -> T:
            if name in self._entries and not overwrite:
                raise InvalidArgumentError(
                    f"{self.kind} {name!r} is already registered; pass overwrite=True to "
                    f"replace it")
            self._entries[name] = obj
            return obj

        if entry is _MISSING:
            return add
        return add(entry)

    def unregister(self, name: str) -> T:
        """Remove and return the entry ``name`` (e.g. a test's temporary registration)."""
        self.get(name)
        return self._entries.pop(name)

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
            InvalidArgumentError: no such entry; the message lists the registered names.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            choices = ", ".join(map(repr, self.names())) or "(none registered)"
            raise InvalidArgumentError(
                f"{self.kind}={name!r} is not registered; choose one of {choices}") from None

    def __getitem__(self, name: str) -> T:
        """``registry[name]``: same as :meth:`get` (for code that used a plain dict)."""
        return self.get(name)

    def names(self) -> tuple[str, ...]:
        """Registered names, sorted."""
        return tuple(sorted(self._entries))

    def items(self) -> tuple[tuple[str, T], ...]:
        """(name, entry) pairs sorted by name."""
        return tuple(sorted(self._entries.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={list(self.names())})"
