"""Output-size arithmetic shared by the decode backends."""

from __future__ import annotations

from collections.abc import Sequence

from .._validate import check_positive_int
from ..errors import InvalidArgumentError

__all__ = ["Size", "output_size"]

#: ``size`` argument: None (native), an int (short side) or (height, width).
Size = int | Sequence[int] | None

#: Largest side vidsel will resize to; guards against absurd arguments.
MAX_SIDE = 16384


def output_size(size: Size, height: int, width: int) -> tuple[int, int]:
    """Resolve a ``size`` argument against a displayed (height, width).

    Args:
        size: None keeps the native size; an int scales so the SHORT side equals it (aspect
            kept, rounded to the nearest integer, at least 1); a (h, w) pair is taken as is.

    Returns:
        (out_height, out_width) of the displayed frame.

    Example:
        >>> output_size(224, 1080, 1920)
        (224, 398)
    """
    if size is None:
        return height, width
    if isinstance(size, bool):
        raise InvalidArgumentError(f"size={size!r} must be None, an int or (height, width)")
    if isinstance(size, int) or hasattr(size, "__index__"):
        s = check_positive_int("size", size)
        if s > MAX_SIDE:
            raise InvalidArgumentError(f"size={size!r} must be <= {MAX_SIDE}")
        if height <= width:
            return s, max(1, round(width * s / height))
        return max(1, round(height * s / width)), s
    try:
        h, w = (int(v) for v in size)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"size={size!r} must be None, an int (short side) or (height, width)") from None
    for name, v in (("height", h), ("width", w)):
        if not 1 <= v <= MAX_SIDE:
            raise InvalidArgumentError(f"size={size!r}: {name} must be in [1, {MAX_SIDE}]")
    return h, w
