"""Progress bars for long work: one helper, so every stage reports the same way.

Every long-running public function (decoding many frames, embedding, ``compare``) takes
``progress: bool | None = None``:

- ``False``: silent.
- ``True``: a tqdm bar on stderr.
- ``None`` (default): silent unless :func:`enable_progress` (the CLI calls it) switched bars on
  for the process, so a library call inside a notebook prints nothing it was not asked for.

The bar goes to stderr so stdout stays clean for JSON / pipes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_default = False


def enable_progress(on: bool = True) -> None:
    """Switch progress bars on (or off) for calls that pass ``progress=None``."""
    global _default
    _default = bool(on)


def progress_enabled(progress: bool | None) -> bool:
    """Whether a call with this ``progress`` argument shows a bar."""
    return _default if progress is None else bool(progress)


class _Silent:
    """The no-op stand-in for a tqdm bar (same calls, nothing printed)."""

    def __init__(self, iterable: Iterable[Any] | None = None) -> None:
        self._iterable = iterable

    def __iter__(self) -> Iterator[Any]:
        return iter(self._iterable if self._iterable is not None else ())

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "") -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    progress: bool | None = None,
) -> Any:
    """A tqdm bar on stderr when ``progress`` asks for one, else a silent stand-in.

    Use as an iterable wrapper (``for x in progress_bar(xs, desc=...)``) or as a context
    manager with ``update(n)``. Bars are left off the screen when done (``leave=False``).
    """
    if not progress_enabled(progress):
        return _Silent(iterable)
    from tqdm import tqdm  # third-party, imported when a bar is shown (keeps --help fast)

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                dynamic_ncols=True)
