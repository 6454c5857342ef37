"""Pixels out of decoded pictures: output-size arithmetic and the one RGB converter.

Every RGB array vidsel hands out (the reader's frames, the codec pass's patches) comes from
:class:`FrameConverter`, so equal arguments give byte-identical pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from av.video.reformatter import VideoReformatter

from .._validate import check_positive_int
from ..errors import InvalidArgumentError
from ._compat import SWS_THREADS
from ._display import apply_display_op, frame_display_transform, swaps_axes

__all__ = ["DEFAULT_INTERPOLATION", "INTERPOLATIONS", "SWS_THREADS_MIN_PIXELS", "Crop",
           "FrameConverter", "Size", "check_crop", "check_interpolation", "coded_crop", "output_size"]

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
#: Pictures of fewer source pixels are converted by one swscale thread: starting swscale's
#: own threads costs some 0.05-0.1 ms a call, more than converting a small picture (measured:
#: 640x360 to RGB 0.19 ms with FFmpeg's threads, 0.09 ms with one; 112x80 0.09 vs 0.01 ms).
#: Larger pictures use FFmpeg's choice (faster alone, a little more CPU). The bytes are the
#: same either way.
SWS_THREADS_MIN_PIXELS = 1_000_000


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
        crop: (top, bottom, left, right) displayed pixels cut off every picture before the
            resize (None or zeros: the whole picture); :meth:`rgb` may override it per call.
        threads: swscale threads per conversion (0: FFmpeg's choice, one per CPU; 1 where
            other threads already keep the CPUs busy); None: 1 below
            :data:`SWS_THREADS_MIN_PIXELS` source pixels, else 0. Same bytes whatever the
            count.

    Attributes:
        conversions: pictures converted so far.
    """

    def __init__(self, *, interpolation: str = DEFAULT_INTERPOLATION,
                 display_op: str = "", crop: Crop | None = None,
                 threads: int | None = None) -> None:
        self.interpolation = check_interpolation(interpolation)
        self.display_op = display_op
        self.crop = check_crop(crop)
        self.threads = None if threads is None else check_positive_int("threads", threads,
                                                                        allow_zero=True)
        self._reformatter = VideoReformatter()
        self._cropper: _Cropper | None = None
        self.conversions = 0

    @classmethod
    def for_frame(cls, frame: Any, *, interpolation: str = DEFAULT_INTERPOLATION,
                  threads: int | None = None) -> FrameConverter:
        """A converter applying ``frame``'s display matrix (the stream's, in practice)."""
        return cls(interpolation=interpolation, display_op=frame_display_transform(frame)[2],
                   threads=threads)

    def display_size(self, coded_hw: tuple[int, int]) -> tuple[int, int]:
        """(height, width) as displayed of a picture coded at ``coded_hw``."""
        h, w = coded_hw
        return (w, h) if swaps_axes(self.display_op) else (h, w)

    def display(self, arrays: np.ndarray) -> np.ndarray:
        """Apply the display transform to (..., H, W, C) arrays in coded orientation (e.g. a
        per-block grid with a trailing channel axis)."""
        return apply_display_op(arrays, self.display_op)

    def rgb(self, frame: Any, out_hw: tuple[int, int], *, crop: Crop | None = None
            ) -> np.ndarray:
        """(out_h, out_w, 3) uint8 RGB of ``frame`` as displayed; ``out_hw`` is the displayed
        (height, width).

        ``crop`` (default: the converter's ``crop``) = (top, bottom, left, right) displayed
        pixels cut off before the resize: the picture ``[top:H-bottom, left:W-right]`` as
        displayed is scaled to ``out_hw`` by the same swscale call (the crop itself moves the
        planes' data pointers, FFmpeg's ``crop`` filter, no copy). Offsets must be even where
        the chroma planes are subsampled (:func:`vidsel.io.detect_borders` rounds them so).
        """
        crop = self.crop if crop is None else crop
        if crop is not None and any(crop):
            frame = self._cropped(frame, crop)
        oh, ow = out_hw
        ch, cw = (ow, oh) if swaps_axes(self.display_op) else (oh, ow)
        self.conversions += 1
        opts: dict[str, Any] = {}
        if SWS_THREADS:
            threads = self.threads
            if threads is None:
                threads = 1 if frame.width * frame.height < SWS_THREADS_MIN_PIXELS else 0
            opts["threads"] = threads
        if (ch, cw) == (frame.height, frame.width):
            rgb = self._reformatter.reformat(frame, format="rgb24", **opts)
        else:
            rgb = self._reformatter.reformat(frame, width=cw, height=ch, format="rgb24",
                                             interpolation=self.interpolation, **opts)
        return apply_display_op(rgb.to_ndarray(), self.display_op)

    def coded_crop(self, crop: Crop) -> Crop:
        """A displayed (top, bottom, left, right) crop as the coded picture's sides (before
        the display transform)."""
        return coded_crop(crop, self.display_op)

    def _cropped(self, frame: Any, crop: Crop) -> Any:
        """``frame`` cut to the displayed crop box (a new frame sharing the picture's data)."""
        coded = coded_crop(check_crop(crop) or (0, 0, 0, 0), self.display_op)
        key = (str(frame.format.name), int(frame.width), int(frame.height), coded)
        if self._cropper is None or self._cropper.key != key:
            self._cropper = _Cropper(key)
        return self._cropper(frame)


#: A crop box: (top, bottom, left, right) pixels cut off each side of the displayed picture.
Crop = tuple[int, int, int, int]


def check_crop(crop: object) -> Crop | None:
    """``crop`` as a tuple of four ints >= 0 (None stays None).

    Raises:
        InvalidArgumentError: not four non-negative integers.
    """
    if crop is None:
        return None
    vals: tuple[Any, ...] = ()
    if isinstance(crop, Iterable) and not isinstance(crop, (str, bytes)):
        vals = tuple(crop)
    if (len(vals) != 4 or any(isinstance(v, bool) or not hasattr(v, "__index__")
                              or int(v) < 0 for v in vals)):
        raise InvalidArgumentError(
            f"crop={crop!r} must be (top, bottom, left, right): four integers >= 0")
    return (int(vals[0]), int(vals[1]), int(vals[2]), int(vals[3]))


def coded_crop(crop: Crop, display_op: str) -> Crop:
    """Map a displayed (top, bottom, left, right) crop onto the coded picture.

    The display transform maps coded -> displayed; each displayed side is one coded side.
    """
    t, b, lft, r = crop
    if not display_op:
        return crop
    # probe: where does each coded side end up after the display op? Apply the op to a
    # tiny array whose cells name the coded sides and read them back.
    probe = np.zeros((3, 3, 1), np.int8)
    probe[0, 1], probe[2, 1], probe[1, 0], probe[1, 2] = 1, 2, 3, 4  # top, bottom, left, right
    shown = apply_display_op(probe, display_op)[..., 0]
    side = {int(shown[0, 1]): t, int(shown[2, 1]): b, int(shown[1, 0]): lft,
            int(shown[1, 2]): r}
    return (side[1], side[2], side[3], side[4])


class _Cropper:
    """FFmpeg's ``crop`` filter for one (pixel format, size, coded crop): a cropped frame
    shares the input's buffers (only the data pointers move)."""

    def __init__(self, key: tuple[str, int, int, Crop]) -> None:
        import av
        import av.filter  # local: only cropping converters need a filter graph

        fmt, w, h, (t, b, lft, r) = key
        if t + b >= h or lft + r >= w:
            raise InvalidArgumentError(
                f"crop (top, bottom, left, right) = {(t, b, lft, r)} leaves nothing of a "
                f"{w}x{h} picture")
        self.key = key
        self._graph = av.filter.Graph()
        src = self._graph.add_buffer(width=w, height=h, format=av.VideoFormat(fmt),
                                     time_base=Fraction(1, 1))
        flt = self._graph.add("crop", f"w={w - lft - r}:h={h - t - b}:x={lft}:y={t}:exact=1")
        sink = self._graph.add("buffersink")
        src.link_to(flt)
        flt.link_to(sink)
        self._graph.configure()

    def __call__(self, frame: Any) -> Any:
        self._graph.push(frame)
        return self._graph.pull()
