"""Pixels out of decoded pictures: output-size arithmetic and the one RGB converter.

Every RGB array vidsel hands out (the reader's frames, the codec pass's patches) comes from
:class:`FrameConverter`, so equal arguments give byte-identical pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from av.video.reformatter import VideoReformatter

from .._validate import check_positive_int
from ..errors import InvalidArgumentError
from ._display import apply_display_op, frame_display_transform, swaps_axes

__all__ = ["DEFAULT_INTERPOLATION", "INTERPOLATIONS", "FrameConverter", "Size",
           "check_interpolation", "output_size"]

#: swscale interpolation used when resizing, unless a caller chooses another.
DEFAULT_INTERPOLATION = "BILINEAR"
#: swscale interpolations a resize may use (names are case-insensitive).
INTERPOLATIONS: tuple[str, ...] = ("AREA", "BICUBIC", "BICUBLIN", "BILINEAR", "FAST_BILINEAR",
                                   "GAUSS", "LANCZOS", "POINT", "SINC", "SPLINE", "X")


def check_interpolation(interpolation: object) -> str:
    """``interpolation`` as swscale's upper-case name.

    Raises:
        InvalidArgumentError: not one of :data:`INTERPOLATIONS` (the message lists them).
    """
    name = interpolation.upper() if isinstance(interpolation, str) else interpolation
    if name not in INTERPOLATIONS:
        raise InvalidArgumentError(
            f"interpolation={interpolation!r} is not allowed; choose one of "
            f"{', '.join(map(repr, INTERPOLATIONS))}")
    return name  # type: ignore[return-value]

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


class FrameConverter:
    """Decoded picture -> (H, W, 3) uint8 RGB as displayed, resized during the colour conversion.

    One swscale context is kept for the converter's lifetime (the same call and parameters as
    ``frame.to_ndarray()``, hence identical output, without building a context per frame);
    the display transform (rotation / flip from the display matrix) is applied afterwards.

    Args:
        interpolation: swscale interpolation for resizing (one of :data:`INTERPOLATIONS`:
            ``"BILINEAR"``, ``"AREA"``, ``"BICUBIC"``...); a picture already at the output
            size is not resampled.
        display_op: display operation (see :func:`vidsel.io.display_transform`); ``""`` for
            none.

    Attributes:
        conversions: pictures converted so far.
    """

    def __init__(self, *, interpolation: str = DEFAULT_INTERPOLATION,
                 display_op: str = "") -> None:
        self.interpolation = check_interpolation(interpolation)
        self.display_op = display_op
        self._reformatter = VideoReformatter()
        self.conversions = 0

    @classmethod
    def for_frame(cls, frame: Any, *, interpolation: str = DEFAULT_INTERPOLATION
                  ) -> FrameConverter:
        """A converter applying ``frame``'s display matrix (the stream's, in practice)."""
        return cls(interpolation=interpolation, display_op=frame_display_transform(frame)[2])

    def display_size(self, coded_hw: tuple[int, int]) -> tuple[int, int]:
        """(height, width) as displayed of a picture coded at ``coded_hw``."""
        h, w = coded_hw
        return (w, h) if swaps_axes(self.display_op) else (h, w)

    def display(self, arrays: np.ndarray) -> np.ndarray:
        """Apply the display transform to (..., H, W, C) arrays in coded orientation (e.g. a
        per-block grid with a trailing channel axis)."""
        return apply_display_op(arrays, self.display_op)

    def rgb(self, frame: Any, out_hw: tuple[int, int]) -> np.ndarray:
        """(out_h, out_w, 3) uint8 RGB of ``frame`` as displayed; ``out_hw`` is the displayed
        (height, width)."""
        oh, ow = out_hw
        ch, cw = (ow, oh) if swaps_axes(self.display_op) else (oh, ow)
        self.conversions += 1
        if (ch, cw) == (frame.height, frame.width):
            rgb = self._reformatter.reformat(frame, format="rgb24")
        else:
            rgb = self._reformatter.reformat(frame, width=cw, height=ch, format="rgb24",
                                             interpolation=self.interpolation)
        return apply_display_op(rgb.to_ndarray(), self.display_op)
