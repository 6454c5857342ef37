"""PyAV decode backend: GOP-aware exact decoding and keyframe-only decoding.

Exact mode plans one pass over the requested frames: targets are sorted and grouped by their
seek point (the keyframe at or before each), each group is decoded in one stretch by a fresh
decoder that starts at that keyframe's packet, and only the frames kept are converted to RGB
(and resized during that conversion). Decoded pictures are mapped to presentation indices by
their timestamps, so the result equals a full sequential decode; on damaged data a frame's
pixels depend only on its seek point, never on what else was requested or read before.

Independent stretches (one per seek point) are decoded in parallel by up to ``workers``
threads, each with its own demuxer and decoder (FFmpeg releases the GIL while it decodes,
demuxes and converts); the pixels do not depend on how many workers there are.

Keyframe mode snaps each request to the nearest keyframe and decodes only keyframes
(``skip_frame = "NONKEY"``): 6-16x cheaper than exact decoding in ``benchmarks/decode.py``
(depends on GOP length and frame count), for candidate generation.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Any

import av
import numpy as np

from ..errors import CorruptVideoError, DecodeError
from ._bitstream import PackedBitstream, peek_parser
from ._compat import decoder_threads, fresh_decoders_supported
from ._convert import DEFAULT_INTERPOLATION, FrameConverter
from ._decode import DecodeStats, decode_packets
from ._display import frame_display_transform, swaps_axes
from ._modes import decode_keyframes, decode_sequential, packed_bitstream
from ._parallel import (
    Sink,
    Stretch,
    decode_parallel,
    default_workers,
    parallel_workers,
    spawn_clone,
    usable_cpus,
)
from ._probe import _index_stream, open_container, pick_video_stream
from ._stream import TimestampsUnreliable
from ._types import PacketTable

__all__ = ["PyAVBackend"]

#: Stretches (seek point to last target decoded before the next seek) up to this many frames
#: are decoded single-threaded: frame threading pays a pipeline refill after every seek, which
#: costs more than it gains on short GOPs (measured: 0.14 s vs 0.22 s for 32 frames of a
#: 10-frame-GOP clip; on 250-frame GOPs frame threading wins, 0.95 s vs 1.43 s).
SHORT_STRETCH = 24

#: Decoders that configure themselves from the bitstream and extradata (plus the reorder
#: delay), so a fresh decoder per stretch can be created without the demuxer's parameters.
_SELF_CONFIGURING = {"h264", "hevc", "mpeg4", "mpeg1video", "mpeg2video", "vp8", "vp9", "flv",
                     "h263", "mjpeg", "libdav1d", "vp6f"}

#: Packets looked at for the stream's first known one after a seek to the start.
_START_CHECK = 64

#: Sample aspect ratios outside [MIN_SAR, 1 / MIN_SAR] are damaged data and ignored.
MIN_SAR = Fraction(1, 8)

logger = logging.getLogger(__name__)


class _LandedLate(DecodeError):
    """A seek landed after the packet decoding must start at (internal signal)."""


class PyAVBackend:
    """Decode frames of one video stream with PyAV (FFmpeg).

    Args:
        path: the video file (already checked to exist).
        stream: video stream choice (see :func:`vidsel.io._probe.pick_video_stream`).
        threads: decoder threads; 0 lets FFmpeg choose (with parallel stretches: the usable
            CPUs shared out among the stretch decoders running at once).
        interpolation: swscale interpolation used when resizing.
        workers: stretches (seek point to last target) decoded at once in exact mode, each by
            its own demuxer and decoder in a thread; None: :func:`default_workers`; 1 decodes
            them one after the other.
    """

    name = "pyav"

    def __init__(self, path: str, *, stream: int | None = None, threads: int = 0,
                 interpolation: str = DEFAULT_INTERPOLATION, workers: int | None = None,
                 crop: tuple[int, int, int, int] | None = None,
                 table: PacketTable | None = None) -> None:
        self._av = av
        self._crop = crop
        self.path = path
        self._threads = threads
        self.workers = default_workers() if workers is None else max(1, int(workers))
        self._clones: list[PyAVBackend] = []  # extra demuxer + decoder per parallel worker
        self._interp = interpolation
        self._converter = FrameConverter(interpolation=interpolation, crop=crop)
        self._closed = False
        self._container = open_container(path)
        try:
            self._stream = pick_video_stream(self._container, path, stream)
            self.table: PacketTable = (  # a table handed in (same stream) saves the demux
                table if table is not None and table.stream_index == self._stream.index
                else _index_stream(self._container, self._stream, path, av))
            self._pts_to_index = {int(p): i for i, p in enumerate(self.table.pts)}
            # Reference flag per picture (-1 unknown, 0 disposable, 1 reference), peeked lazily
            # from packet headers; only streams that reorder pictures (B-frames) have any to skip.
            self._ref_flags = np.full(len(self.table), -1, np.int8)
            reorders = not np.all(self.table.decode_order == np.arange(len(self.table)))
            self._peek = (peek_parser(self.table.codec, self._stream.codec_context.extradata)
                          if reorders else None)
            self._configure_threads("AUTO")
            self._probe_first_frame()
            packed = packed_bitstream(self)  # DivX packed B-frames (see _modes)
        except BaseException:
            self._container.close()
            raise
        # Frames are counted in output order where timestamps cannot place them: missing or
        # repeated ones, and DivX packed B-frames (FFmpeg's guessed timestamps come out of the
        # decoder shuffled). Decided once, from the packets, so that a request never changes
        # how later ones are decoded.
        self._sequential = not self.table.pts_reliable or packed
        # Seek points: flagged keyframes, plus frame 0 (decoding from the start of the stream
        # is always valid, also when edit lists leave frames before the first keyframe).
        self._keyframes = np.union1d(self.table.keyframe_indices, [0]).astype(np.int64)
        self._undecodable: set[int] = set()
        # Seek point -> the earlier keyframe the demuxer must be positioned at to reach it.
        self._seek_pos: dict[int, int] = {}
        self._fresh_ok = fresh_decoders_supported(self._stream.codec_context)
        self._stats = DecodeStats()
        self._drain = False  # end the current stretch's packets with a flush (see _packets)

    # -- set-up ---------------------------------------------------------------------------
    def _configure_threads(self, kind: str) -> None:
        ctx = self._stream.codec_context
        try:
            ctx.thread_type = kind
            ctx.thread_count = self._threads
        except Exception:  # pragma: no cover - an open codec context refuses changes
            logger.debug("%s: could not set thread_type=%s", self.path, kind)

    def _probe_first_frame(self) -> None:
        """Decode the first picture (pixel format, coded size, display matrix) in the stream's
        own decoder: the first packet with data, then a drain, so the frame-threaded decoder
        gives it at once, not after three or four (a 1080p H.264 file opens in 26 ms, was 39);
        on damaged data it reads on."""
        def first() -> Iterator[Any]:
            for pkt in self._packets(None):
                yield pkt
                if pkt.size:
                    yield self._av.Packet()
                    return
        self._seek_start()
        self._stats, self._drain = DecodeStats(), False
        frame = next(decode_packets(first(), self._stream.codec_context, self.path,
                                    self._stats), None)
        # a clean keyframe probed on the first try is what keyframe mode decodes for its index:
        # kept, so that keyframe mode (the border detection) does not decode it twice
        key = frame is not None and not self._stats.damaged and bool(frame.key_frame)
        idx = self._index_of(frame) if key else None
        self._first_key = None if idx is None else (idx, frame)
        if frame is None:  # damaged data at the start (a seek resets the drained decoder)
            self._seek_start()
            frame = next(self._frames_after_seek(max_errors=64), None)
        if frame is None:
            raise CorruptVideoError(
                f"{self.path}: no frame of video stream {self._stream.index} "
                f"({self.table.codec}) could be decoded", path=self.path)
        self.coded_height = int(frame.height)
        self.coded_width = int(frame.width)
        self.pix_fmt = str(frame.format.name)
        self.rotation, self.mirrored, self._display_op = frame_display_transform(frame)
        self.sample_aspect_ratio = self._read_sar()
        self._converter = FrameConverter(interpolation=self._interp,
                                         display_op=self._display_op, crop=self._crop)
        self._seek_start()

    def _read_sar(self) -> Fraction:
        """Sample (pixel) aspect ratio of the coded pictures: the bitstream's (which the decoder
        has read by now), else the container's; 1 when unset or absurd (damaged data)."""
        for sar in (self._stream.codec_context.sample_aspect_ratio,
                    self._stream.sample_aspect_ratio):
            if sar is not None and sar > 0:
                if MIN_SAR <= sar <= 1 / MIN_SAR:
                    return Fraction(sar)
                logger.warning("%s: sample aspect ratio %s ignored (out of range)", self.path, sar)
        return Fraction(1)

    @property
    def display_sample_aspect_ratio(self) -> Fraction:
        """Sample aspect ratio along the displayed width (inverted by a 90 / 270 rotation)."""
        sar = self.sample_aspect_ratio
        return 1 / sar if swaps_axes(self._display_op) else sar

    @property
    def display_size(self) -> tuple[int, int]:
        """(height, width) after the display transform."""
        if swaps_axes(self._display_op):
            return self.coded_width, self.coded_height
        return self.coded_height, self.coded_width

    @property
    def header_num_frames(self) -> int:
        return int(self._stream.frames or 0)

    def close(self) -> None:
        self._closed = True
        self._first_key = None
        for clone in self._clones:
            clone.close()
        self._clones = []
        self._container.close()

    def _spawn(self) -> PyAVBackend:
        """Another worker on the same file (see :func:`~vidsel.io._parallel.spawn_clone`)."""
        return spawn_clone(  # type: ignore[no-any-return]
            self, open_container, stats=DecodeStats,
            converter=lambda: FrameConverter(interpolation=self._interp,
                                             display_op=self._display_op, crop=self._crop,
                                             threads=1))  # beside the other workers

    # -- low-level decode ---------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise DecodeError(f"{self.path}: the reader is closed; open a new VideoReader "
                              "to read from this file")

    def _seek_to(self, pts: int) -> bool:
        """Seek to the keyframe at or before ``pts``; False where the demuxer refuses (the
        position is then unknown: seek to the start next)."""
        try:
            self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        except self._av.error.FFmpegError as e:
            logger.debug("%s: seek to pts %d failed: %s", self.path, pts, e)
            return False
        return True

    def _seek_start(self) -> None:
        """Go to the first keyframe of the file, discarded edit-list packets included.

        Damaged or unseekable files can refuse ``seek(0)`` (FFmpeg answers EPERM); the file is
        then opened again, which puts the demuxer at its start.
        """
        self._check_open()
        try:
            self._container.seek(0, backward=True, any_frame=False)
            return
        except self._av.error.FFmpegError as e:
            logger.debug("%s: seek to the start failed (%s); reopening the file", self.path, e)
        self._reopen()

    def _reopen(self) -> None:
        container = open_container(self.path)
        try:
            stream = container.streams[self._stream.index]
            ctx = self._stream.codec_context
            new_ctx = stream.codec_context
            for attr in ("thread_type", "thread_count", "skip_frame"):
                try:
                    setattr(new_ctx, attr, getattr(ctx, attr))
                except (AttributeError, ValueError, self._av.error.FFmpegError):
                    logger.debug("%s: could not carry %s over", self.path, attr)
        except BaseException:
            container.close()
            raise
        self._container.close()
        self._container = container
        self._stream = stream

    def _fresh_ctx(self, *, threads: int) -> Any:
        """A new decoder for one stretch (None where the codec needs the demuxer's parameters:
        the stream's own decoder is then used).

        A fresh decoder per stretch, not a flushed one: FFmpeg's flush keeps some state (e.g.
        H.264 error concealment), so on damaged data a frame's pixels would otherwise depend
        on what was decoded before. ``threads``: 1 single-threaded (short stretches: frame
        threading refills its pipeline after every seek), else FFmpeg's threads (0: auto).
        """
        if self._fresh_ok and self.table.codec in _SELF_CONFIGURING:
            try:
                ctx: Any = self._av.CodecContext.create(self.table.codec, "r")
                own = self._stream.codec_context
                ctx.extradata = own.extradata
                # the reorder delay the demuxer knows (else H.264 guesses it while decoding and
                # outputs the first pictures of a stretch out of order)
                ctx.reorder_depth = own.reorder_depth
                if threads != 1:
                    ctx.thread_type = "AUTO"
                    ctx.thread_count = threads
                else:
                    ctx.thread_type = "NONE"
                return ctx
            except (self._av.error.FFmpegError, ValueError) as e:  # pragma: no cover
                logger.debug("%s: no stand-alone decoder: %s", self.path, e)
                self._fresh_ok = False
        return None

    def _frames_after_seek(self, *, max_errors: int | None = None,
                           keep: np.ndarray | None = None, ctx: Any = None,
                           start: int = 0, at_start: bool = False,
                           ) -> Iterator[Any]:
        """Yield decoded frames from the current position, surviving damaged packets.

        Args:
            max_errors: give up after this many damaged packets (None: never).
            keep: (n,) bool over presentation indices of the pictures the caller needs. When
                given, disposable pictures (no other picture references them) outside it are
                not sent to the decoder; each packet's reference flag is peeked from its
                bitstream header the first time it is met.
            ctx: decoder to use (default: the stream's own, frame-threaded one, which a seek
                flushes; any other is flushed here).
            start: presentation index of the keyframe to start decoding at (see
                :meth:`_packets`); 0 decodes from the current position.
            at_start: the demuxer was sent to the start of the stream (see :meth:`_packets`).
        """
        if ctx is None:
            ctx = self._stream.codec_context
        else:
            ctx.flush_buffers()
        self._stats = DecodeStats()
        self._drain = False
        packets = self._packets(keep, start, at_start)
        return decode_packets(packets, ctx, self.path, self._stats, max_errors=max_errors)

    @property
    def damaged_packets(self) -> int:
        """Damaged packets met since the last seek (an early demux stop counts as one)."""
        return self._stats.damaged

    def _packets(self, keep: np.ndarray | None, start: int = 0,
                 at_start: bool = False) -> Iterator[Any]:
        """Demuxed packets from the current position, leaving out the disposable pictures
        outside ``keep`` (each packet's reference flag is peeked once, then remembered).

        With ``start`` > 0, packets before frame ``start``'s own packet are dropped; a packet
        decoded after it met first raises :class:`_LandedLate` (the seek went too far).
        With ``start`` == 0 and ``at_start``, the first packet of a known frame must be the
        stream's first, else :class:`_LandedLate` is raised: a seek to the start goes by
        timestamp, so on damaged data it depends on what the demuxer indexed before.
        """
        pts_map = self._pts_to_index
        peek = self._peek if keep is not None else None
        refs = self._ref_flags
        packets = self._container.demux(self._stream)
        order = self.table.decode_order
        if start == 0 and at_start:
            # held back until checked, so that no picture is decoded before the check
            head: list[Any] = []
            for pkt in packets:
                head.append(pkt)
                i = pts_map.get(int(pkt.pts)) if pkt.size and pkt.pts is not None else None
                if i is not None and int(order[i]) > 0:
                    raise _LandedLate
                if i is not None or len(head) >= _START_CHECK:
                    break
            yield from head
        elif start > 0:
            start_pts, start_pos = int(self.table.pts[start]), int(order[start])
            for pkt in packets:
                if pkt.pts is None or not pkt.size:
                    continue
                if int(pkt.pts) == start_pts:
                    yield pkt
                    break
                i = pts_map.get(int(pkt.pts))
                if i is not None and int(order[i]) > start_pos:
                    raise _LandedLate
        for pkt in packets:
            if self._drain:
                yield self._av.Packet()  # size 0: the decoder outputs what it holds
                return
            if peek is not None and pkt.size and pkt.pts is not None and not pkt.is_keyframe:
                i = pts_map.get(int(pkt.pts))
                if i is not None and not keep[i]:  # type: ignore[index]
                    if refs[i] < 0:
                        try:
                            hit = peek(memoryview(pkt))
                        except (ValueError, IndexError, PackedBitstream):
                            hit = None
                        refs[i] = 1 if hit is None or hit[1] else 0
                    if refs[i] == 0:
                        continue
            yield pkt

    def _index_of(self, frame: Any) -> int | None:
        pts = frame.pts if frame.pts is not None else frame.dts
        if pts is None:
            return None
        return self._pts_to_index.get(int(pts))

    def _convert(self, frame: Any, out_hw: tuple[int, int]) -> np.ndarray:
        """RGB (H, W, 3) uint8 as displayed, resized during the colour conversion (the one
        :class:`~vidsel.io.FrameConverter`, one swscale context for the reader's lifetime)."""
        return self._converter.rgb(frame, out_hw)

    # -- exact decode ----------------------------------------------------------------------
    def decode_exact(self, targets: np.ndarray, out_hw: tuple[int, int],
                     sink: Sink) -> list[int]:
        """Decode the frames ``targets`` (sorted, unique) and hand each to ``sink``.

        Returns:
            The targets that could not be decoded (damaged or missing data).
        """
        self._check_open()
        targets = np.asarray(targets, np.int64)
        if len(targets) == 0:
            return []
        if self._sequential:
            return self._decode_sequential(targets, out_hw, sink)
        try:
            return self._decode_planned(targets, out_hw, sink)
        except TimestampsUnreliable:
            logger.info("%s: decoded timestamps disagree with the packet index; "
                        "switching to sequential decoding", self.path)
            self._sequential = True
            return self._decode_sequential(targets, out_hw, sink)

    def _key_before(self, idx: int) -> int:
        pos = int(np.searchsorted(self._keyframes, idx, side="right")) - 1
        return int(self._keyframes[max(pos, 0)])

    def _open_stretch(self, key: int, keep: np.ndarray | None, threads: int,
                      ) -> Iterator[Any] | None:
        """Decoded frames from the seek point ``key`` on, in a fresh decoder; None when
        nothing can be decoded from there.

        Decoding always starts at ``key``'s own packet (frame 0: at the start of the stream,
        edit-list discards included), whatever packet the demuxer lands on, so a frame's pixels
        depend only on its seek point, never on what was decoded before or on the demuxer's
        index. The demuxer is positioned at ``key``, else (it lands after ``key``: a coarse or
        missing index, as in MPEG-PS, or it refuses to seek) at earlier keyframes and finally
        at the start of the file; seek positions found unreliable are not used again. A seek
        to the start that lands late (damaged data: it goes by timestamp too) reopens the
        file, which puts the demuxer where the packet index was read from.
        """
        pos = self._seek_pos.get(key, key)
        reopened = False  # the file was reopened: the demuxer is at its start
        while True:
            if not reopened and (pos == 0 or not self._seek_to(int(self.table.pts[pos]))):
                pos = 0
                self._seek_start()
            frames = self._frames_after_seek(keep=keep, start=key,
                                             at_start=pos == 0 and not reopened,
                                             ctx=self._fresh_ctx(threads=threads))
            try:
                first = next(frames, None)
            except _LandedLate:
                if pos == 0:
                    if reopened:  # the seek point's packet is not in the stream
                        return None
                    logger.debug("%s: seek to the start landed late; reopening", self.path)
                    self._reopen()
                    reopened = True
                    continue
                logger.debug("%s: seek for frame %d landed late; seeking earlier", self.path, key)
                pos = self._key_before(pos - 1)
                self._seek_pos[key] = pos
                continue
            if first is None:
                return None
            return itertools.chain([first], frames)

    def _frames_from_start(self, *, threaded: bool) -> Iterator[Any]:
        """Decoded frames from the start of the stream, in a fresh decoder (a seek to the start
        that lands late reopens the file: see :meth:`_open_stretch`)."""
        return self._open_stretch(0, None, self._threads if threaded else 1) or iter(())

    def _decode_group(self, key: int, group: list[int], keep: np.ndarray | None,
                      threads: int, out_hw: tuple[int, int], sink: Sink
                      ) -> tuple[list[int], bool]:
        """Decode the targets ``group`` (sorted) in one stretch from the seek point ``key``
        with ``threads`` decoder threads (1: single-threaded).

        A fast stretch (``keep`` given or frame threads) stopping at its last target drains the
        decoder and checks those pictures too: a reference decoded before a B-frame target
        is output after it, and its damage (concealment) changes the target's pixels.

        Returns (each picture produced goes to ``sink`` as soon as it is converted):
            (targets not produced, whether the stretch met damaged data:
            a packet the decoder refused, a picture FFmpeg flags as corrupt (error
            concealment ran) or one the packet index cannot place).
        """
        got: set[int] = set()
        threaded = threads != 1
        frames = self._open_stretch(key, keep, threads)
        if frames is None:
            return list(group), True
        done, last, damaged, stopped = 0, -1, False, False
        for frame in frames:
            idx = self._index_of(frame)
            damaged |= bool(self.damaged_packets or frame.is_corrupt)
            if idx is None or idx <= last:
                # Damaged data (streams without usable timestamps are decoded sequentially):
                # a picture that cannot be placed is dropped, never returned under a guessed
                # index.
                logger.debug("%s: dropped a picture with timestamp %s (damaged data)",
                             self.path, frame.pts)
                damaged = True
                continue
            last = idx
            while done < len(group) and group[done] <= idx:
                if group[done] == idx:
                    sink(idx, self._convert(frame, out_hw))
                    got.add(idx)
                done += 1  # else the decoder passed it without producing it: damaged data
            if done >= len(group):
                stopped = True
                break
        damaged |= self.damaged_packets > 0
        if stopped and not damaged and (keep is not None or threaded):
            self._drain = True  # no further packet: the pictures the decoder holds come out
            for frame in frames:
                idx = self._index_of(frame)
                damaged |= bool(frame.is_corrupt) or idx is None or idx <= last
                last = -1 if idx is None else idx
            damaged |= self.damaged_packets > 0
        lost = [t for t in group if t not in got]
        return lost, damaged or bool(lost)

    def _decode_planned(self, targets: np.ndarray, out_hw: tuple[int, int],
                        sink: Sink) -> list[int]:
        """Decode ``targets`` grouped by seek point, each group in one stretch from its
        keyframe (see :meth:`_open_stretch`); up to ``workers`` stretches at once.

        The fast stretch leaves out disposable pictures no target needs and may use frame
        threading; on clean data that changes nothing. Where the stretch meets damaged data,
        error concealment makes pictures depend on what the decoder was fed, so the group is
        decoded again canonically: every packet from the seek point, single-threaded. Either
        way a frame's pixels do not depend on what else is requested or was read before, nor
        on the number of workers. ``sink`` is called as each picture is converted, from the
        workers' threads (the caller's too), in no set order, again for a picture a canonical
        redo replaces; a frame in the returned list is missing even if it went to the sink.
        """
        missing: list[int] = []
        keep = None
        if self._peek is not None:
            keep = np.zeros(len(self.table), bool)
            keep[targets] = True  # never skip a requested picture
        pos = np.searchsorted(self._keyframes, targets, side="right") - 1
        starts = self._keyframes[np.maximum(pos, 0)]
        groups: list[tuple[int, list[int]]] = []
        for key in np.unique(starts):
            group = [int(t) for t in targets[starts == key]]
            missing.extend(t for t in group if t in self._undecodable)
            group = [t for t in group if t not in self._undecodable]
            if group:
                groups.append((int(key), group))
        workers = parallel_workers([g[-1] - key + 1 for key, g in groups], self.workers,
                                    self.coded_width * self.coded_height,
                                    threaded=decoder_threads(self._stream.codec_context))
        if workers > 1:
            results: Iterable[Stretch] = self._decode_parallel(groups, keep, out_hw, workers, sink)
        else:
            results = (self._decode_stretch(key, group, keep, out_hw, self._threads, sink)
                       for key, group in groups)
        for lost in results:
            missing.extend(lost)
            self._undecodable.update(lost)
        return missing

    def _decode_stretch(self, key: int, group: list[int], keep: np.ndarray | None,
                        out_hw: tuple[int, int], threads: int, sink: Sink) -> Stretch:
        """One group's pictures: the fast stretch, redone canonically on damaged data."""
        if group[-1] - key <= SHORT_STRETCH:
            threads = 1
        lost, damaged = self._decode_group(key, group, keep, threads, out_hw, sink)
        if damaged and (keep is not None or threads != 1):
            logger.debug("%s: damaged data after frame %d; decoding its GOP canonically",
                         self.path, key)
            lost, _ = self._decode_group(key, group, None, 1, out_hw, sink)
        return lost

    def _decode_parallel(self, groups: list[tuple[int, list[int]]], keep: np.ndarray | None,
                         out_hw: tuple[int, int], workers: int, sink: Sink) -> Iterator[Stretch]:
        """The ``groups`` on ``workers`` threads: this backend and clones of it (kept for the
        reader's lifetime), each decoder with the usable CPUs divided by the workers
        (``threads=0``), at least one."""
        threads = self._threads or max(1, -(-usable_cpus() // workers))
        return decode_parallel(  # missing clones are made on the worker threads
            [self, *self._clones[:workers - 1]], groups,
            lambda b, key, group: b._decode_stretch(key, group, keep, out_hw, threads, sink),
            workers=workers, spawn=self._spawn, spawned=self._clones)

    def _decode_sequential(self, targets: np.ndarray, out_hw: tuple[int, int],
                           sink: Sink) -> list[int]:
        """Decode from the start, frame i being the i-th picture output (always exact; see
        :func:`vidsel.io._modes.decode_sequential`)."""
        return decode_sequential(self, targets, out_hw, sink)

    # -- keyframe decode -----------------------------------------------------------------------
    def decode_keyframes(self, keys: np.ndarray, out_hw: tuple[int, int],
                         sink: Sink) -> list[int]:
        """Decode only the keyframes ``keys`` (sorted, unique presentation indices)."""
        return decode_keyframes(self, keys, out_hw, sink)
