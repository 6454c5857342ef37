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

import logging
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar

import numpy as np

from .._validate import check_choice, check_positive_int
from ..errors import CorruptVideoError, DecodeError, InvalidArgumentError
from ._ahead import Queue as _Queue
from ._ahead import decode_ahead
from ._convert import DEFAULT_INTERPOLATION, FrameConverter, check_interpolation
from ._decode import DecodeStats, decode_packets
from ._frames import (
    AheadFrame,
    Conversion,
    ConvertAhead,
    IdleConversions,
    LateCrop,
    StreamFrame,
    no_crop,
)
from ._parallel import default_workers, usable_cpus
from ._probe import open_container
from ._sidedata import frame_motion_vectors
from ._types import PacketTable

__all__ = ["SKIP_MODES", "SPLIT_CODECS", "TimestampsUnreliable", "auto_workers", "decode_ahead",
           "decode_pass", "decode_stream", "split_points"]

logger = logging.getLogger(__name__)

#: FFmpeg ``skip_frame`` values a pass may use (see :meth:`vidsel.io.PacketIndex.skip_mode`).
SKIP_MODES: tuple[str, ...] = ("DEFAULT", "NONREF", "BIDIR", "NONINTRA", "NONKEY")

T = TypeVar("T", bound=PacketTable)
R = TypeVar("R")


class TimestampsUnreliable(DecodeError):
    """Decoded timestamps cannot be mapped to the packet index (they go backwards, e.g. in
    packed-bitstream AVI files). :func:`decode_pass` handles it by counting frames instead."""


class DamagedWhileThreaded(DecodeError):
    """Damaged data met by a threaded pass: FFmpeg's decoder threads then race on the
    concealed pictures (pixels vary run to run). :func:`decode_pass` restarts the pass
    single-threaded, which is deterministic."""


def _converter(frame: Any, interpolation: str) -> FrameConverter:
    """The converter of a pass, made from its first picture (display matrix); one swscale
    thread (the pass's decoders keep the other CPUs busy)."""
    return FrameConverter.for_frame(frame, interpolation=interpolation, threads=1)


def decode_stream(table: PacketTable, *, skip: str = "DEFAULT", export_mvs: bool = False,
                  keep: np.ndarray | None = None, threads: int = 0,
                  interpolation: str = DEFAULT_INTERPOLATION, prefetch: int = 0,
                  convert_ahead: ConvertAhead | None = None) -> Iterator[StreamFrame]:
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
        convert_ahead: RGB conversions done right after decoding, on the decoding thread
            (see :class:`ConvertAhead`; same bytes as :meth:`StreamFrame.rgb`).

    Raises:
        TimestampsUnreliable: decoded timestamps go backwards (use :func:`decode_pass`, which
            restarts counting frames, or pass ``table.sequential()``).
        CorruptVideoError: not a single picture could be decoded.

    On damaged data a threaded pass (``threads != 1``) can give different concealed pixels
    from run to run; :func:`decode_pass` restarts such a pass single-threaded, or pass
    ``threads=1``.
    """
    return _decode_stream(table, skip=skip, export_mvs=export_mvs, keep=keep, threads=threads,
                          interpolation=interpolation, prefetch=prefetch,
                          convert_ahead=convert_ahead)


def _decode_stream(table: PacketTable, *, skip: str, export_mvs: bool, keep: np.ndarray | None,
                   threads: int, interpolation: str, prefetch: int,
                   convert_ahead: ConvertAhead | None = None, workers: int | None = 1,
                   stop_on_damage: bool = False) -> Iterator[StreamFrame]:
    """:func:`decode_stream`; with ``stop_on_damage`` a threaded pass that meets damaged data
    raises :class:`DamagedWhileThreaded` (for :func:`decode_pass` to restart it); with
    ``workers > 1`` the stream may be decoded as independent stretches in parallel
    (:func:`_parallel`; any damage, or anything unexpected, raises :class:`_SplitFailed`)."""
    check_choice("skip", skip, SKIP_MODES)
    interpolation = check_interpolation(interpolation)
    threads = check_positive_int("threads", threads, allow_zero=True)
    prefetch = check_positive_int("prefetch", prefetch, allow_zero=True)
    workers = auto_workers() if workers is None else check_positive_int("workers", workers)
    if convert_ahead is not None and not isinstance(convert_ahead, ConvertAhead):
        raise InvalidArgumentError(
            f"convert_ahead must be a ConvertAhead or None, not {type(convert_ahead).__name__}")
    if workers > 1:
        spans = _stretches(table, workers)
        if len(spans) > 1:
            return _parallel(table, spans, workers, skip=skip, export_mvs=export_mvs,
                             keep=keep, threads=threads, interpolation=interpolation,
                             convert_ahead=convert_ahead)
    if not prefetch:  # converting ahead in the caller's thread would only convert in vain
        convert_ahead = None
    idle = IdleConversions.for_pass(interpolation, convert_ahead)
    frames = _decode(table, skip, export_mvs, keep, threads, interpolation, stop_on_damage,
                     convert_ahead, idle)
    return decode_ahead(frames, prefetch, idle=idle) if prefetch else frames


def _decode(table: PacketTable, skip: str, export_mvs: bool, keep: np.ndarray | None,
            threads: int, interpolation: str, stop_on_damage: bool,
            convert_ahead: ConvertAhead | None = None,
            idle: IdleConversions | None = None) -> Iterator[StreamFrame]:
    converter: FrameConverter | None = None
    for idx, frame, mvs, ahead in _pictures(table, skip, export_mvs, keep, threads,
                                            interpolation, stop_on_damage, convert_ahead,
                                            idle=idle):
        if converter is None:
            converter = _converter(frame, interpolation)
        if ahead is None:
            yield StreamFrame(idx, frame, mvs, converter)
        else:
            yield AheadFrame(idx, frame, mvs, converter, ahead)


#: A stretch of the stream decoded on its own: (start pts or None for the file's start, stop
#: pts (the next stretch's first packet) or None for the end, first presentation index).
_Span = tuple[int | None, int | None, int]


class _SplitFailed(DecodeError):
    """A stretch of a parallel pass met damaged data or an unexpected stream layout:
    :func:`decode_pass` decodes the whole stream again sequentially."""


def _span_packets(packets: Iterator[Any], span: _Span, table: PacketTable,
                  pts_to_index: dict[int, int]) -> Iterator[Any]:
    """The packets of one stretch: from the packet of pts ``start`` (those a seek lands on
    before it are dropped) up to, not including, the packet of pts ``stop``; then a flush."""
    start, stop, _ = span
    started = start is None
    first_pos = -1 if start is None else int(table.decode_order[pts_to_index[start]])
    for pkt in packets:
        pts = None if pkt.pts is None else int(pkt.pts)
        if not started:
            if pts == start:
                started = True
            else:
                i = pts_to_index.get(pts) if pts is not None else None
                if not pkt.size or (i is not None and int(table.decode_order[i]) > first_pos):
                    raise _SplitFailed(f"{table.path}: a seek missed the keyframe at pts {start}")
                continue
        if stop is not None and pts == stop:
            break
        if not pkt.size:  # the demuxer's own flush packet (end of file)
            break
        yield pkt
    if not started:
        raise _SplitFailed(f"{table.path}: a seek missed the keyframe at pts {start}")
    import av  # local: the flush packet (size 0) drains the decoder

    yield av.Packet()


def _pictures(table: PacketTable, skip: str, export_mvs: bool, keep: np.ndarray | None,
              threads: int, interpolation: str, stop_on_damage: bool,
              convert_ahead: ConvertAhead | None, span: _Span | None = None,
              idle: IdleConversions | None = None, container: Any = None
              ) -> Generator[tuple[int, Any, np.ndarray | None, tuple[Any, ...] | None],
                             None, None]:
    """(presentation index, decoded picture, motion vectors, shared RGB conversion or None)
    of each picture to yield; with ``span``, of one stretch (any damage raises
    :class:`_SplitFailed`). ``convert_ahead``'s conversions are queued on ``idle`` (the
    decoding thread's, see :class:`IdleConversions`).

    ``container``: an open container of ``table.path`` to decode with (a worker's, for all
    its stretches: the decoder is flushed before each one and keeps its picture buffers,
    where a fresh decoder would allocate and zero new ones for every stretch); it stays open.
    """
    if idle is None:
        idle = IdleConversions.for_pass(interpolation, convert_ahead)
    path = table.path
    own = container is None
    if own:
        container = open_container(path)
    try:
        stream: Any = container.streams[table.stream_index]
        ctx: Any = stream.codec_context
        if ctx.is_open:  # a worker's decoder, after an earlier stretch
            ctx.flush_buffers()
        else:
            if export_mvs:
                # one thread: frame threading loses or mismatches the side data, and slice
                # threads conceal damaged data differently from run to run without reporting
                # an error (fuzz finding); slice threading buys nothing measurable on typical
                # streams
                ctx.options = {"flags2": "+export_mvs"}
                stream.thread_type = "SLICE"
            else:
                stream.thread_type = "AUTO"
            ctx.thread_count = 1 if export_mvs else threads
        ctx.skip_frame = skip
        counting = not table.pts_reliable
        n = len(table)
        pts_to_index = {int(p): i for i, p in enumerate(table.pts)}
        last = -1
        count = -1
        stats = DecodeStats()
        packets: Iterator[Any]
        if span is None:
            packets = container.demux(stream)
        else:
            if span[0] is not None:
                container.seek(span[0], stream=stream, backward=True)
            packets = _span_packets(container.demux(stream), span, table, pts_to_index)
        hit: Callable[[int], bool] | None = None
        size: tuple[int, int] = (0, 0)
        if convert_ahead is not None:
            hit = convert_ahead.snapper(0 if span is None else span[2])
            size = (int(convert_ahead.size[0]), int(convert_ahead.size[1]))
        crop = (None if convert_ahead is None else convert_ahead.crop
                if isinstance(convert_ahead.crop, LateCrop) else no_crop(convert_ahead.crop))
        analysed = None if convert_ahead is None else convert_ahead.analysed
        # frame threads, or slice threads with export_mvs
        stop = span is not None or (stop_on_damage and threads != 1)
        for frame in decode_packets(packets, ctx, path, stats,
                                    max_errors=0 if counting else None):
            if stop and (stats.damaged_packets or frame.is_corrupt):
                if span is not None:
                    raise _SplitFailed(f"{path}: damaged data in a stretch of a parallel pass")
                raise DamagedWhileThreaded(f"{path}: damaged data in a threaded pass")
            count += 1
            if counting:  # frame i is the i-th picture output (nothing skipped, nothing damaged)
                idx: int | None = count if count < n else None
            else:
                pts = frame.pts if frame.pts is not None else frame.dts
                idx = pts_to_index.get(int(pts)) if pts is not None else None
            if idx is not None and idx <= last:
                if span is not None:
                    raise _SplitFailed(f"{path}: timestamps go backwards in a stretch")
                raise TimestampsUnreliable(f"{path}: decoded timestamps are not monotonic")
            if idx is None:
                continue
            last = idx
            if keep is not None and not keep[idx]:
                continue
            mvs = frame_motion_vectors(frame) if export_mvs else None
            ahead = None
            if hit is not None and (analysed is None or (idx < len(analysed) and analysed[idx])
                                    ) and hit(idx):
                # converted by this thread when its consumer is behind, else by the consumer
                conversion = Conversion(frame, size, crop)
                idle.add(conversion, frame)
                conv = idle.converter
                ahead = (size, conv.display_op, conv.interpolation,  # type: ignore[union-attr]
                         conversion)
            yield idx, frame, mvs, ahead
        if span is not None:
            if stats.damaged_packets or stats.demux_error:
                raise _SplitFailed(f"{path}: damaged data in a stretch of a parallel pass")
            return
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
        if own:
            container.close()


#: Codecs whose streams a parallel pass may cut at keyframes (H.264: a keyframe that no
#: picture around it crosses in presentation order starts an independent stretch).
SPLIT_CODECS = frozenset({"h264"})
#: Fewest frames of a stretch of a parallel pass (each stretch opens the file and seeks),
#: and of the last one.
MIN_STRETCH = 48
MIN_TAIL = 16
#: Stretches per worker: short stretches keep every worker busy with little held memory.
STRETCHES_PER_WORKER = 6
#: Decoded pictures a parallel pass may hold ahead of its consumer, all workers together.
AHEAD_BYTES = 256 << 20
#: Most decode workers :func:`auto_workers` gives.
MAX_AUTO_WORKERS = 4


def auto_workers() -> int:
    """Decode workers of a parallel pass by default: the reader's rule
    (:func:`vidsel.io._parallel.default_workers`: ``VIDSEL_DECODE_WORKERS`` when set, e.g. by
    ``vidsel batch`` worker processes to their share of the CPUs), else the cores this
    process may use, at most ``MAX_AUTO_WORKERS`` (2 on a 2-core machine: one more decoder
    beside the consumer)."""
    return default_workers(MAX_AUTO_WORKERS)


def split_points(table: PacketTable) -> np.ndarray:
    """(k,) int64 presentation indices of the keyframes where a decoder may start afresh and
    give the same pictures as a sequential decode: every packet before the keyframe's in
    decode order is presented before it, every packet from it on at or after it (no open-GOP
    leading pictures cross it). Empty unless ``table.pts_reliable``."""
    n = len(table)
    if n < 2 or not table.pts_reliable:
        return np.zeros(0, np.int64)
    by_dec = np.argsort(np.asarray(table.decode_order), kind="stable")  # presentation index
    # of each decode position
    seen_max = np.maximum.accumulate(by_dec)
    rest_min = np.minimum.accumulate(by_dec[::-1])[::-1]
    ok = np.zeros(n, bool)
    ok[1:] = (seen_max[:-1] < by_dec[1:]) & (rest_min[1:] == by_dec[1:])
    ok &= np.asarray(table.is_keyframe, bool)[by_dec]
    return np.sort(by_dec[ok]).astype(np.int64)


def _stretches(table: PacketTable, workers: int) -> list[_Span]:
    """The stretches a parallel pass decodes (one span for the whole stream when the stream
    cannot or need not be cut)."""
    whole: list[_Span] = [(None, None, 0)]
    if table.codec not in SPLIT_CODECS or workers < 2:
        return whole
    n = len(table)
    cuts = split_points(table)
    target = max(MIN_STRETCH, -(-n // (STRETCHES_PER_WORKER * workers)))
    starts = [0]
    for k in cuts.tolist():
        if k - starts[-1] >= target and n - k >= MIN_TAIL:
            starts.append(k)
    if len(starts) < 2:
        return whole
    pts = table.pts
    spans: list[_Span] = []
    for j, s in enumerate(starts):
        start = None if j == 0 else int(pts[s])
        stop = int(pts[starts[j + 1]]) if j + 1 < len(starts) else None
        spans.append((start, stop, s))
    return spans


def _frame_bytes(frame: Any) -> int:
    try:
        return max(1, sum(int(p.buffer_size) for p in frame.planes))
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - defensive
        return int(frame.width) * int(frame.height) * 3


def _parallel(table: PacketTable, spans: list[_Span], workers: int, *, skip: str,
              export_mvs: bool, keep: np.ndarray | None, threads: int, interpolation: str,
              convert_ahead: ConvertAhead | None) -> Iterator[StreamFrame]:
    """Decode ``spans`` with ``workers`` threads (stretch ``j`` on thread ``j % workers``, each
    with a decoder of its own), merged in presentation order: the consumer reads stretch
    ``j`` while the next ones decode. A stretch's pictures are those of a sequential decode
    (it starts at a clean keyframe, :func:`split_points`); any damage, a missed seek or a
    timestamp out of order raises :class:`_SplitFailed` (the caller decodes sequentially).
    At most ``AHEAD_BYTES`` of decoded pictures wait for the consumer."""
    queues = [_Queue() for _ in spans]
    stop = threading.Event()
    # frame threads of a pixel pass share the cores with the other workers
    per_thread = threads if threads else max(1, usable_cpus() // workers)

    def work(first: int) -> None:
        idle = IdleConversions.for_pass(interpolation, convert_ahead)  # this thread's
        container = None  # one container and decoder for all this worker's stretches
        try:
            for j in range(first, len(spans), workers):
                q = queues[j]
                try:
                    if container is None:
                        container = open_container(table.path)
                    frames = _pictures(table, skip, export_mvs, keep, per_thread,
                                       interpolation, False, convert_ahead, span=spans[j],
                                       idle=idle, container=container)
                    try:
                        sized = False
                        for item in frames:
                            if not sized:  # a worker holds two queues at most
                                q.cap = max(2, AHEAD_BYTES
                                            // (2 * workers * _frame_bytes(item[1])))
                                sized = True
                            if not q.put((0, item), stop, idle):
                                return
                    finally:
                        frames.close()
                except BaseException as e:  # handed to the consumer
                    q.put((1, e), stop)
                    return
                q.put((2, None), stop)
        finally:
            if container is not None:
                container.close()

    pool = [threading.Thread(target=work, args=(t,), name=f"vidsel-decode-{t}", daemon=True)
            for t in range(min(workers, len(spans)))]
    for t in pool:
        t.start()
    converter: FrameConverter | None = None
    yielded = 0
    try:
        for q in queues:
            while True:
                kind, value = q.get()
                if kind == 2:
                    break
                if kind == 1:
                    if isinstance(value, Exception):  # the sequential pass decides
                        raise _SplitFailed(f"{table.path}: a stretch failed: {value!r}")
                    raise value
                idx, frame, mvs, ahead = value
                if converter is None:
                    converter = _converter(frame, interpolation)
                yielded += 1
                if ahead is None:
                    yield StreamFrame(idx, frame, mvs, converter)
                else:
                    yield AheadFrame(idx, frame, mvs, converter, ahead)
        if not yielded:
            raise _SplitFailed(f"{table.path}: no picture in a parallel pass")
    finally:
        stop.set()
        for q in queues:
            with q.cond:
                q.cond.notify_all()
        for t in pool:
            t.join()


def decode_pass(table: T, consume: Callable[[T, Iterator[StreamFrame]], R], *,
                skip: str = "DEFAULT", export_mvs: bool = False, keep: np.ndarray | None = None,
                threads: int = 0, interpolation: str = DEFAULT_INTERPOLATION,
                prefetch: int = 0, workers: int | None = 1,
                convert_ahead: ConvertAhead | None = None) -> R:
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
        skip, export_mvs, keep, threads, interpolation, prefetch, convert_ahead: see
            :func:`decode_stream`.
        workers: decode independent stretches of the stream in parallel, on this many
            threads, each with its own decoder (H.264 streams whose keyframes start clean
            stretches, :func:`split_points`; other streams decode sequentially). The frames
            reach ``consume`` in presentation order and are the same pictures as a
            sequential pass gives (motion vectors included); a stretch that meets damaged
            data, or anything unexpected, makes the pass start again sequentially (``consume``
            is then called again, from scratch). 1: sequential; None: :func:`auto_workers`.
    """
    attempts = 0
    while True:
        attempts += 1
        frames = _decode_stream(table, skip=skip, export_mvs=export_mvs, keep=keep,
                                threads=threads, interpolation=interpolation,
                                prefetch=prefetch, convert_ahead=convert_ahead,
                                workers=workers, stop_on_damage=True)
        try:
            return consume(table, frames)
        except _SplitFailed as e:
            logger.info("%s: decoding sequentially (%s)", table.path, e)
            workers = 1
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
            convert_ahead = None  # planned on the other table
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        if attempts >= 4:  # pragma: no cover - each restart removes one cause
            raise DecodeError(f"{table.path}: the decode pass could not be completed")
