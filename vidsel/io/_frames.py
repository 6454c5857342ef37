"""What a streaming decode pass hands its analysis per picture: :class:`StreamFrame` (index,
picture type, motion vectors, a cheap luma plane, RGB on demand) and :class:`ConvertAhead`
(candidate frames converted to RGB on the decode thread, right after decoding)."""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._ahead import IDLE_AHEAD
from ._convert import Crop, FrameConverter

__all__ = ["MV_DTYPE", "AheadFrame", "Conversion", "ConvertAhead", "IdleConversions", "LateCrop",
           "StreamFrame", "no_crop"]


#: Row layout of FFmpeg's exported motion vectors (``AVMotionVector``, 40 bytes with the C
#: struct's padding), as :attr:`StreamFrame.motion_vectors` holds them.
MV_DTYPE = np.dtype([("source", "i4"), ("w", "u1"), ("h", "u1"), ("src_x", "i2"),
                     ("src_y", "i2"), ("dst_x", "i2"), ("dst_y", "i2"), ("flags", "u8"),
                     ("motion_x", "i4"), ("motion_y", "i4"), ("motion_scale", "u2")],
                    align=True)  # native byte order, as the decoder writes them

_PICT_TYPES = {1: "I", 2: "P", 3: "B"}
_HIGH_DEPTH = ("p10", "p12", "p14", "p16")


class StreamFrame:
    """One decoded picture of a :func:`decode_stream` pass.

    Attributes:
        index: presentation index of the picture (frame ``i`` of the video).
        motion_vectors: (M,) :data:`MV_DTYPE` rows exported by the decoder, or None (not
            requested, or the picture carries none, e.g. an I-frame).
        converter: the pass's :class:`FrameConverter` (display transform, interpolation).
    """

    __slots__ = ("_frame", "converter", "index", "motion_vectors")

    def __init__(self, index: int, frame: Any, motion_vectors: np.ndarray | None,
                 converter: FrameConverter) -> None:
        self.index = index
        self._frame = frame
        self.motion_vectors = motion_vectors
        self.converter = converter

    @property
    def key_frame(self) -> bool:
        """The decoder flags the picture as a keyframe."""
        return bool(self._frame.key_frame)

    @property
    def pict_type(self) -> str:
        """Picture type as decoded: ``"I"``, ``"P"``, ``"B"`` or ``"S"`` (other)."""
        return _PICT_TYPES.get(int(self._frame.pict_type), "S")

    @property
    def coded_size(self) -> tuple[int, int]:
        """(height, width) of the decoded picture, before the display transform."""
        return int(self._frame.height), int(self._frame.width)

    def rgb(self, out_hw: tuple[int, int], *, crop: Crop | None = None) -> np.ndarray:
        """(H, W, 3) uint8 RGB as displayed, resized to the displayed ``out_hw`` (exactly what
        :class:`~vidsel.io.VideoReader` returns at that size and interpolation); ``crop`` =
        (top, bottom, left, right) displayed pixels cut off before the resize (see
        :meth:`vidsel.io.FrameConverter.rgb`)."""
        return self.converter.rgb(self._frame, out_hw, crop=crop)

    def luma(self, step: int) -> np.ndarray:
        """Subsampled luma (ceil(H/step), ceil(W/step)) float32 in [0, 255], coded orientation.

        Reads the Y plane in place for planar YUV / gray formats (no conversion); other
        formats go through swscale.
        """
        return _luma(self._frame, step)

    def __repr__(self) -> str:
        h, w = self.coded_size
        return f"StreamFrame(index={self.index}, {self.pict_type}, {w}x{h})"


def _luma(frame: Any, step: int) -> np.ndarray:
    name = frame.format.name
    h, w = frame.height, frame.width
    if name.startswith(("yuv", "yuvj", "nv12", "nv21", "gray")) and "a" not in name[3:4]:
        plane = frame.planes[0]
        high = any(k in name for k in _HIGH_DEPTH)
        dtype = np.dtype("<u2") if high else np.dtype(np.uint8)
        item = dtype.itemsize
        buf = np.frombuffer(plane, dtype=np.uint8)
        rows = buf[: plane.line_size * h].reshape(h, plane.line_size)
        y = rows[::step, : w * item]
        if high:
            y = y.copy().view(dtype)[:, ::step].astype(np.float32)
            bits = int(next(k for k in _HIGH_DEPTH if k in name)[1:])
            return y * (255.0 / ((1 << bits) - 1))  # type: ignore[no-any-return]
        return y[:, ::step].astype(np.float32)  # type: ignore[no-any-return]
    gray = frame.reformat(format="gray", width=max(1, -(-w // step)),
                          height=max(1, -(-h // step))).to_ndarray()
    return gray.astype(np.float32)  # type: ignore[no-any-return]


@dataclass(frozen=True, eq=False)
class ConvertAhead:
    """RGB conversions a decode pass shares between its decode thread(s) and the consumer.

    The first yielded frame among the ``analysed`` ones at or after each target gets a
    :class:`Conversion` to RGB at the displayed ``size`` (and ``crop``): a decode thread does
    it while it would otherwise wait for a consumer that is behind (its queue is full), the
    consumer when it asks first (:meth:`StreamFrame.rgb` with the same size, crop,
    interpolation and display transform; other requests convert on demand). Either way it is
    the same swscale call, so the same bytes: the conversions (a few ms each) go to whichever
    thread has time, which changes no result.

    Attributes:
        size: displayed (height, width) of the RGB arrays.
        targets: (T,) int64 presentation indices, sorted (as a consumer's snapping grid).
        analysed: (F,) bool over presentation indices: the frames that may snap to a target
            (None: every yielded frame).
        crop: (top, bottom, left, right) displayed pixels cut off before the resize (None:
            the whole picture), or a :class:`LateCrop` set once the pass has started.
        batch: (most pictures, most pixels) the consumer takes at once (the codec pass
            analyses a chunk of ``min(pictures, pixels // picture size)``): a decode thread
            with a batch of pictures waiting for the consumer converts first. None: the
            consumer counts as behind from :data:`vidsel.io._ahead.IDLE_AHEAD` pictures.
    """

    size: tuple[int, int]
    targets: np.ndarray
    analysed: np.ndarray | None = None
    crop: Crop | LateCrop | None = None
    batch: tuple[int, int] | None = None

    def snapper(self, start: int = 0) -> Callable[[int], bool]:
        """``hit(idx)`` called on each analysed frame in order: True for the first one at or
        after a pending target (targets before ``start`` are ignored)."""
        targets = np.asarray(self.targets, np.int64)
        pos = int(np.searchsorted(targets, start))

        def hit(idx: int) -> bool:
            nonlocal pos
            if pos >= len(targets) or idx < targets[pos]:
                return False
            while pos < len(targets) and targets[pos] <= idx:
                pos += 1
            return True

        return hit


def no_crop(crop: Any) -> Any:
    return None if crop is None or not any(crop) else tuple(crop)


class LateCrop:
    """A :class:`ConvertAhead` crop known only after the pass has started (e.g. black bars
    detected while the first pictures decode): :meth:`set` it before the consumer asks for
    RGB; decode threads convert nothing ahead until then."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._crop: Crop | None = None

    def set(self, crop: Crop | None) -> None:
        self._crop = no_crop(crop)
        self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def get(self) -> Crop | None:
        """The crop (None: the whole picture); waits until it is set."""
        self._ready.wait()
        return self._crop


class Conversion:
    """One RGB conversion of a decoded picture, done once by whichever thread runs it first
    (see :class:`ConvertAhead`); the others get the same array."""

    __slots__ = ("__weakref__", "_crop", "_frame", "_lock", "rgb", "size")

    def __init__(self, frame: Any, size: tuple[int, int], crop: Crop | LateCrop | None) -> None:
        self._frame = frame
        self._lock = threading.Lock()
        self.size = size
        self._crop = crop
        self.rgb: np.ndarray | None = None

    @property
    def ready(self) -> bool:
        """The crop is known (a :class:`LateCrop` may not be yet)."""
        return not isinstance(self._crop, LateCrop) or self._crop.ready

    @property
    def crop(self) -> Crop | None:
        """(top, bottom, left, right) cut off before the resize, or None."""
        return self._crop.get() if isinstance(self._crop, LateCrop) else self._crop

    def run(self, converter: FrameConverter, *, wait: bool = True) -> np.ndarray | None:
        """The (H, W, 3) RGB, converted now by ``converter`` unless done already; None
        without ``wait`` when another thread is converting it."""
        if not self._lock.acquire(blocking=wait):
            return None
        try:
            if self.rgb is None:
                crop = self.crop
                kw = {"crop": crop} if crop is not None else {}
                self.rgb = converter.rgb(self._frame, self.size, **kw)
                self._frame = None
            return self.rgb
        finally:
            self._lock.release()


class IdleConversions:
    """The conversions a decode thread may do while its consumer is behind: ``add`` as frames
    are decoded, call the object when the thread would otherwise wait (True: it converted
    one). Conversions the consumer has done, or dropped with their frame, are skipped; the
    thread's own converter does the work (swscale contexts are not shared)."""

    def __init__(self, interpolation: str, batch: tuple[int, int] | None = None) -> None:
        self.interpolation = interpolation
        self.converter: FrameConverter | None = None
        self._pending: deque[weakref.ref[Conversion]] = deque()
        self._batch = batch
        #: pictures waiting for the consumer from which it counts as behind (the decoding
        #: thread then converts first): :attr:`ConvertAhead.batch` for the first picture's
        #: size, else IDLE_AHEAD
        self.ahead = IDLE_AHEAD

    @classmethod
    def for_pass(cls, interpolation: str, convert_ahead: ConvertAhead | None
                 ) -> IdleConversions:
        """A decode thread's idle conversions for a pass with ``convert_ahead``'s batch."""
        return cls(interpolation, None if convert_ahead is None else convert_ahead.batch)

    def add(self, conversion: Conversion, frame: Any) -> None:
        if self.converter is None:
            self.converter = FrameConverter.for_frame(frame, interpolation=self.interpolation,
                                                      threads=1)  # beside the decoders
            if self._batch is not None:
                most, pixels = self._batch
                self.ahead = max(1, min(most, pixels // max(1, frame.width * frame.height)))
        pending = self._pending
        while pending and _settled(pending[0]):
            pending.popleft()
        pending.append(weakref.ref(conversion))

    def __call__(self) -> bool:
        while self._pending:
            c = self._pending[0]()
            if c is not None and not c.ready:  # the crop is not known yet: nothing to do
                return False
            self._pending.popleft()
            if c is None or c.rgb is not None or self.converter is None:
                continue
            if c.run(self.converter, wait=False) is not None:
                return True
        return False


def _settled(ref: weakref.ref[Conversion]) -> bool:
    c = ref()
    return c is None or c.rgb is not None


class AheadFrame(StreamFrame):
    """A :class:`StreamFrame` with a shared :class:`Conversion` to RGB (see
    :class:`ConvertAhead`)."""

    __slots__ = ("_ahead",)

    def __init__(self, index: int, frame: Any, motion_vectors: np.ndarray | None,
                 converter: FrameConverter, ahead: tuple[Any, ...]) -> None:
        super().__init__(index, frame, motion_vectors, converter)
        self._ahead = ahead  # (size, display_op, interpolation, Conversion)

    def rgb(self, out_hw: tuple[int, int], *args: Any, **kwargs: Any) -> np.ndarray:
        size, op, interp, conversion = self._ahead
        conv = self.converter
        if not args and set(kwargs) <= {"crop"}:
            want = kwargs.get("crop")
            if want is None:
                want = getattr(conv, "crop", None)
            if (tuple(out_hw) == size and conv.display_op == op
                    and conv.interpolation == interp and no_crop(want) == conversion.crop):
                conv.conversions += 1
                return conversion.run(conv)  # type: ignore[no-any-return]
        return super().rgb(out_hw, *args, **kwargs)  # type: ignore[no-any-return]
