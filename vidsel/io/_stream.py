"""One streaming decode pass over a video, for analyses that look at (almost) every frame.

:func:`decode_stream` decodes a stream once, in presentation order, and yields a
:class:`StreamFrame` per picture: its presentation index, picture type, exported motion
vectors, a cheap subsampled luma plane and, on demand, RGB pixels from the one
:class:`~vidsel.io.FrameConverter` (so they equal :class:`~vidsel.io.VideoReader` frames at the
same size and interpolation). :func:`decode_pass` runs an analysis over such a stream and owns
the fallback for unreliable timestamps: when decoded timestamps cannot be mapped to the packet
index, the pass restarts from the start counting frames in output order.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np

from .._validate import check_choice, check_positive_int
from ..errors import CorruptVideoError, DecodeError
from ._convert import DEFAULT_INTERPOLATION, FrameConverter, check_interpolation
from ._decode import DecodeStats, decode_packets
from ._probe import open_container
from ._types import PacketTable

__all__ = ["MV_DTYPE", "SKIP_MODES", "StreamFrame", "TimestampsUnreliable", "decode_pass",
           "decode_stream"]

logger = logging.getLogger(__name__)

#: FFmpeg ``skip_frame`` values a pass may use (see :meth:`vidsel.io.PacketIndex.skip_mode`).
SKIP_MODES: tuple[str, ...] = ("DEFAULT", "NONREF", "BIDIR", "NONINTRA", "NONKEY")

#: Row layout of FFmpeg's exported motion vectors (``AVMotionVector``), as
#: :attr:`StreamFrame.motion_vectors` holds them.
MV_DTYPE = np.dtype([("source", "<i4"), ("w", "u1"), ("h", "u1"), ("src_x", "<i2"),
                     ("src_y", "<i2"), ("dst_x", "<i2"), ("dst_y", "<i2"), ("flags", "<u8"),
                     ("motion_x", "<i4"), ("motion_y", "<i4"), ("motion_scale", "<u2")])

_PICT_TYPES = {1: "I", 2: "P", 3: "B"}
_HIGH_DEPTH = ("p10", "p12", "p14", "p16")

T = TypeVar("T", bound=PacketTable)
R = TypeVar("R")


class TimestampsUnreliable(DecodeError):
    """Decoded timestamps cannot be mapped to the packet index (they go backwards, e.g. in
    packed-bitstream AVI files). :func:`decode_pass` handles it by counting frames instead."""


class DamagedWhileThreaded(DecodeError):
    """Damaged data met by a threaded pass: FFmpeg's decoder threads then race on the
    concealed pictures (pixels vary run to run). :func:`decode_pass` restarts the pass
    single-threaded, which is deterministic."""


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

    def rgb(self, out_hw: tuple[int, int]) -> np.ndarray:
        """(H, W, 3) uint8 RGB as displayed, resized to the displayed ``out_hw`` (exactly what
        :class:`~vidsel.io.VideoReader` returns at that size and interpolation)."""
        return self.converter.rgb(self._frame, out_hw)

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


def decode_stream(table: PacketTable, *, skip: str = "DEFAULT", export_mvs: bool = False,
                  keep: np.ndarray | None = None, threads: int = 0,
                  interpolation: str = DEFAULT_INTERPOLATION, prefetch: int = 0
                  ) -> Iterator[StreamFrame]:
    """Decode the stream of ``table`` once, yielding a :class:`StreamFrame` per picture.

    Pictures are mapped to presentation indices by their timestamps (as the reader does);
    pictures whose timestamp is not in the table (discarded by an edit list) are dropped, and
    so are those of damaged packets. When ``table.pts_reliable`` is False, pictures are counted
    in output order instead (``skip`` must then be ``"DEFAULT"``) and the pass ends at the
    first damaged packet: the frames after it are missing rather than yielded under shifted
    indices (the reader's rule). Output is in presentation order.

    Args:
        table: a :class:`~vidsel.io.PacketTable` (or :class:`~vidsel.io.PacketIndex`) of the
            stream.
        skip: FFmpeg ``skip_frame`` (see :meth:`vidsel.io.PacketIndex.skip_mode`).
        export_mvs: export motion vectors (decoded single-threaded, whatever ``threads``
            says: frame threading loses or mismatches the side data, and slice threads make
            concealed pixels of damaged data vary from run to run).
        keep: (F,) bool over presentation indices: the other pictures are decoded (so that
            later pictures stay exact) but not yielded.
        threads: decoder threads (0: let FFmpeg choose).
        interpolation: swscale interpolation of :meth:`StreamFrame.rgb`.
        prefetch: decode this many pictures ahead on a worker thread (FFmpeg releases the GIL,
            so decoding overlaps the caller's work); 0 decodes in the caller's thread. Some
            decoders (VP8) write on into a picture already output when the data is damaged, so
            a picture read later differs from run to run: use 0 where pixels must be exact on
            damaged files (only motion-vector passes prefetch in vidsel).

    Raises:
        TimestampsUnreliable: decoded timestamps go backwards (use :func:`decode_pass`, which
            restarts counting frames, or pass ``table.sequential()``).
        CorruptVideoError: not a single picture could be decoded.

    On damaged data a threaded pass (``threads != 1``) can give different concealed pixels
    from run to run; :func:`decode_pass` restarts such a pass single-threaded, or pass
    ``threads=1``.
    """
    return _decode_stream(table, skip=skip, export_mvs=export_mvs, keep=keep, threads=threads,
                          interpolation=interpolation, prefetch=prefetch)


def _decode_stream(table: PacketTable, *, skip: str, export_mvs: bool, keep: np.ndarray | None,
                   threads: int, interpolation: str, prefetch: int,
                   stop_on_damage: bool = False) -> Iterator[StreamFrame]:
    """:func:`decode_stream`; with ``stop_on_damage`` a threaded pass that meets damaged data
    raises :class:`DamagedWhileThreaded` (for :func:`decode_pass` to restart it)."""
    check_choice("skip", skip, SKIP_MODES)
    interpolation = check_interpolation(interpolation)
    threads = check_positive_int("threads", threads, allow_zero=True)
    prefetch = check_positive_int("prefetch", prefetch, allow_zero=True)
    frames = _decode(table, skip, export_mvs, keep, threads, interpolation, stop_on_damage)
    return _prefetch(frames, prefetch) if prefetch else frames


def _decode(table: PacketTable, skip: str, export_mvs: bool, keep: np.ndarray | None,
            threads: int, interpolation: str, stop_on_damage: bool) -> Iterator[StreamFrame]:
    path = table.path
    container = open_container(path)
    try:
        stream: Any = container.streams[table.stream_index]
        ctx: Any = stream.codec_context
        if export_mvs:
            # one thread: frame threading loses or mismatches the side data, and slice threads
            # conceal damaged data differently from run to run without reporting an error
            # (fuzz finding); slice threading buys nothing measurable on typical streams
            ctx.options = {"flags2": "+export_mvs"}
            stream.thread_type = "SLICE"
            threads = 1
        else:
            stream.thread_type = "AUTO"
        ctx.thread_count = threads
        ctx.skip_frame = skip
        counting = not table.pts_reliable
        n = len(table)
        pts_to_index = {int(p): i for i, p in enumerate(table.pts)}
        converter: FrameConverter | None = None
        last = -1
        count = -1
        stats = DecodeStats()
        # frame threads, or slice threads with export_mvs
        stop = stop_on_damage and threads != 1
        for frame in decode_packets(container.demux(stream), ctx, path, stats,
                                    max_errors=0 if counting else None):
            if stop and (stats.damaged_packets or frame.is_corrupt):
                raise DamagedWhileThreaded(f"{path}: damaged data in a threaded pass")
            count += 1
            if counting:  # frame i is the i-th picture output (nothing skipped, nothing damaged)
                idx: int | None = count if count < n else None
            else:
                pts = frame.pts if frame.pts is not None else frame.dts
                idx = pts_to_index.get(int(pts)) if pts is not None else None
            if idx is not None and idx <= last:
                raise TimestampsUnreliable(f"{path}: decoded timestamps are not monotonic")
            if idx is None:
                continue
            last = idx
            if keep is not None and not keep[idx]:
                continue
            mvs = None
            if export_mvs:
                sd = frame.side_data.get("MOTION_VECTORS")
                mvs = sd.to_ndarray() if sd is not None else None
            if converter is None:
                converter = FrameConverter.for_frame(frame, interpolation=interpolation)
            yield StreamFrame(idx, frame, mvs, converter)
        if count < 0:
            raise CorruptVideoError(
                f"{path}: no frame of video stream {table.stream_index} ({table.codec}) could "
                f"be decoded ({stats.damaged_packets} damaged packets)", path=path)
        if counting and stats.damaged_packets:
            logger.warning("%s: damaged data while counting frames in output order: the %d "
                           "frames after output %d are left out", path, n - last - 1, last)
        elif stats.damaged_packets:
            logger.info("%s: %d damaged packets skipped during the decode pass", path,
                        stats.damaged_packets)
    finally:
        container.close()


def decode_pass(table: T, consume: Callable[[T, Iterator[StreamFrame]], R], *,
                skip: str = "DEFAULT", export_mvs: bool = False, keep: np.ndarray | None = None,
                threads: int = 0, interpolation: str = DEFAULT_INTERPOLATION,
                prefetch: int = 0) -> R:
    """Run ``consume(table, frames)`` over one :func:`decode_stream` pass and return its result.

    When a threaded pass meets damaged data, it is restarted single-threaded (decoder
    threads race on concealed pictures, so the pixels would vary from run to run); ``consume``
    is then called again, from scratch. When decoded timestamps prove unreliable, the pass is
    restarted from the start with
    ``table.sequential()`` (frames counted in output order, every picture decoded: ``skip`` and
    ``keep`` are dropped) and ``consume`` is called again, from scratch, with that table. A
    ``consume`` therefore keeps its state local to one call (it may re-plan from the table it
    is given).

    Args:
        table: the stream's :class:`~vidsel.io.PacketTable` / :class:`~vidsel.io.PacketIndex`.
        consume: the analysis; it iterates the frames (and may stop early).
        skip, export_mvs, keep, threads, interpolation, prefetch: see :func:`decode_stream`.
    """
    attempts = 0
    while True:
        attempts += 1
        frames = _decode_stream(table, skip=skip, export_mvs=export_mvs, keep=keep,
                                threads=threads, interpolation=interpolation,
                                prefetch=prefetch, stop_on_damage=True)
        try:
            return consume(table, frames)
        except DamagedWhileThreaded:
            logger.info("%s: damaged data; decoding again single-threaded (deterministic "
                        "error concealment)", table.path)
            threads = 1
        except TimestampsUnreliable:
            if not table.pts_reliable:  # pragma: no cover - counting never goes backwards
                raise
            logger.info("%s: decoded timestamps are unreliable; decoding sequentially",
                        table.path)
            table = table.sequential()
            skip, keep = "DEFAULT", None
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        if attempts >= 3:  # pragma: no cover - each restart removes one cause
            raise DecodeError(f"{table.path}: the decode pass could not be completed")


def _prefetch(items: Iterator[Any], depth: int = 6) -> Iterator[Any]:
    """Run a (decoding) iterator in a worker thread, ``depth`` items ahead of the consumer.

    FFmpeg releases the GIL while it decodes and scales, so the decode of the next frames
    overlaps the per-frame work done in Python. Exceptions raised by ``items`` are re-raised
    in the consumer; abandoning the returned iterator stops the worker.
    """
    q: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: tuple[int, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for it in items:
                if not put((0, it)):
                    break
        except BaseException as e:  # handed to the consumer
            put((1, e))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None and stop.is_set():
                with contextlib.suppress(Exception):
                    close()
        put((2, None))

    worker = threading.Thread(target=work, name="vidsel-decode-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = q.get()
            if kind == 0:
                yield value
            elif kind == 1:
                raise value
            else:
                return
    finally:
        stop.set()
        worker.join()
