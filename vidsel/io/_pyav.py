"""PyAV decode backend: GOP-aware exact decoding and keyframe-only decoding.

Exact mode plans one pass over the requested frames: targets are sorted, the decoder seeks only
when the next target lies beyond the next keyframe (otherwise decoding on is cheaper), each
needed stretch is decoded once with FFmpeg threading, and only the frames kept are converted to
RGB (and resized during that conversion). Decoded pictures are mapped to presentation indices
by their timestamps, so the result equals a full sequential decode.

Keyframe mode snaps each request to the nearest keyframe and decodes only keyframes
(``skip_frame = "NONKEY"``): about 30x cheaper, for candidate generation.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from typing import Any

import av
import numpy as np

from ..errors import CorruptVideoError, DecodeError
from ._bitstream import PackedBitstream, peek_parser
from ._convert import DEFAULT_INTERPOLATION, FrameConverter
from ._decode import DecodeStats, decode_packets
from ._display import frame_display_transform, swaps_axes
from ._probe import _index_stream, open_container, pick_video_stream
from ._stream import TimestampsUnreliable
from ._types import PacketTable

__all__ = ["PyAVBackend"]

#: Stretches (seek point to last target decoded before the next seek) up to this many frames
#: are decoded single-threaded: frame threading pays a pipeline refill after every seek, which
#: costs more than it gains on short GOPs (measured: 0.14 s vs 0.22 s for 32 frames of a
#: 10-frame-GOP clip; on 250-frame GOPs frame threading wins, 0.95 s vs 1.43 s).
SHORT_STRETCH = 24

#: Decoders that configure themselves from the bitstream and extradata, so a second
#: (single-threaded) decoder can be created for them without the demuxer's codec parameters.
_SELF_CONFIGURING = {"h264", "hevc", "mpeg4", "mpeg1video", "mpeg2video", "vp8", "vp9"}

logger = logging.getLogger(__name__)

class PyAVBackend:
    """Decode frames of one video stream with PyAV (FFmpeg).

    Args:
        path: the video file (already checked to exist).
        stream: video stream choice (see :func:`vidsel.io._probe.pick_video_stream`).
        threads: decoder threads; 0 lets FFmpeg choose.
        interpolation: swscale interpolation used when resizing.
    """

    name = "pyav"

    def __init__(self, path: str, *, stream: int | None = None, threads: int = 0,
                 interpolation: str = DEFAULT_INTERPOLATION) -> None:
        self._av = av
        self.path = path
        self._threads = threads
        self._interp = interpolation
        self._converter = FrameConverter(interpolation=interpolation)
        self._container = open_container(path)
        try:
            self._stream = pick_video_stream(self._container, path, stream)
            self.table: PacketTable = _index_stream(self._container, self._stream, path, av)
            self._pts_to_index = {int(p): i for i, p in enumerate(self.table.pts)}
            # Reference flag per picture (-1 unknown, 0 disposable, 1 reference), peeked lazily
            # from packet headers; only streams that reorder pictures (B-frames) have any to skip.
            self._ref_flags = np.full(len(self.table), -1, np.int8)
            reorders = not np.all(self.table.decode_order == np.arange(len(self.table)))
            self._peek = (peek_parser(self.table.codec, self._stream.codec_context.extradata)
                          if reorders else None)
            self._configure_threads("AUTO")
            self._probe_first_frame()
        except BaseException:
            self._container.close()
            raise
        self._sequential = not self.table.pts_reliable
        # Seek points: flagged keyframes, plus frame 0 (decoding from the start of the stream
        # is always valid, also when edit lists leave frames before the first keyframe).
        self._keyframes = np.union1d(self.table.keyframe_indices, [0]).astype(np.int64)
        self._undecodable: set[int] = set()
        self._single: Any = None
        self._stats = DecodeStats()

    # -- set-up ---------------------------------------------------------------------------
    def _configure_threads(self, kind: str) -> None:
        ctx = self._stream.codec_context
        try:
            ctx.thread_type = kind
            ctx.thread_count = self._threads
        except Exception:  # pragma: no cover - an open codec context refuses changes
            logger.debug("%s: could not set thread_type=%s", self.path, kind)

    def _probe_first_frame(self) -> None:
        """Decode the first picture: pixel format, coded size and display matrix."""
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
        self._converter = FrameConverter(interpolation=self._interp,
                                         display_op=self._display_op)
        self._reset()

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
        self._container.close()

    # -- low-level decode ---------------------------------------------------------------------
    def _reset(self) -> None:
        self._seek_start()

    def _seek_to(self, pts: int) -> None:
        self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)

    def _seek_start(self) -> None:
        """Go to the first keyframe of the file, discarded edit-list packets included."""
        self._container.seek(0, backward=True, any_frame=False)

    def _single_ctx(self) -> Any:
        """A second, single-threaded decoder for short stretches (None if not supported)."""
        if self._single is None and self.table.codec in _SELF_CONFIGURING and self._threads != 1:
            try:
                ctx = self._av.CodecContext.create(self.table.codec, "r")
                ctx.extradata = self._stream.codec_context.extradata
                ctx.thread_type = "NONE"
                self._single = ctx
            except (self._av.error.FFmpegError, ValueError) as e:  # pragma: no cover
                logger.debug("%s: no single-threaded decoder: %s", self.path, e)
                self._single = False
        return self._single or None

    def _frames_after_seek(self, *, max_errors: int | None = None,
                           keep: np.ndarray | None = None, ctx: Any = None) -> Iterator[Any]:
        """Yield decoded frames from the current position, surviving damaged packets.

        Args:
            max_errors: give up after this many damaged packets (None: never).
            keep: (n,) bool over presentation indices of the pictures the caller needs. When
                given, disposable pictures (no other picture references them) outside it are
                not sent to the decoder; each packet's reference flag is peeked from its
                bitstream header the first time it is met.
            ctx: decoder to use (default: the stream's own, frame-threaded one, which a seek
                flushes; any other is flushed here).
        """
        if ctx is None:
            ctx = self._stream.codec_context
        else:
            ctx.flush_buffers()
        self._stats = DecodeStats()
        return decode_packets(self._packets(keep), ctx, self.path, self._stats,
                              max_errors=max_errors)

    @property
    def damaged_packets(self) -> int:
        """Damaged packets met since the last seek (an early demux stop counts as one)."""
        return self._stats.damaged

    def _packets(self, keep: np.ndarray | None) -> Iterator[Any]:
        """Demuxed packets from the current position, leaving out the disposable pictures
        outside ``keep`` (each packet's reference flag is peeked once, then remembered)."""
        pts_map = self._pts_to_index
        peek = self._peek if keep is not None else None
        refs = self._ref_flags
        for pkt in self._container.demux(self._stream):
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
                     sink: Callable[[int, np.ndarray], None]) -> list[int]:
        """Decode the frames ``targets`` (sorted, unique) and hand each to ``sink``.

        Returns:
            The targets that could not be decoded (damaged or missing data).
        """
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

    def _open_stretch(self, t: int, keep: np.ndarray | None = None, span_end: int = -1
                      ) -> tuple[Iterator[Any], int] | None:
        """Seek so that decoding reaches frame ``t``; returns (frames, seek point) or None.

        Seeks to the keyframe at or before ``t``. If the demuxer lands after the target or at
        the end (a coarse or missing container index, as in MPEG-PS), retries from earlier
        keyframes and finally from the start of the file, which is always exact.
        """
        key = self._key_before(t)
        for attempt in range(4):
            if attempt == 3:
                key = 0
            if key == 0:
                self._seek_start()  # exact for every container, also index-less ones
            else:
                self._seek_to(int(self.table.pts[key]))
            short = max(t, span_end) - key <= SHORT_STRETCH
            frames = self._frames_after_seek(keep=keep,
                                             ctx=self._single_ctx() if short else None)
            first = next(frames, None)
            idx = None if first is None else self._index_of(first)
            if first is not None and idx is None:
                raise TimestampsUnreliable(f"{self.path}: decoded timestamps disagree with "
                                           "the packet index")
            if first is not None and idx is not None and (idx <= t or key == 0):
                return itertools.chain([first], frames), key
            if first is None and key == 0:
                return None
            logger.debug("%s: seek for frame %d landed on %s; retrying earlier", self.path, t, idx)
            # This seek point is unreliable in this container: plan without it from now on.
            self._keyframes = self._keyframes[self._keyframes != key]
            key = self._key_before(key - 1)
        return None  # pragma: no cover - the last attempt always returns

    def _decode_planned(self, targets: np.ndarray, out_hw: tuple[int, int],
                        sink: Callable[[int, np.ndarray], None]) -> list[int]:
        missing: list[int] = []
        n = len(targets)
        pos = 0
        frames: Iterator[Any] | None = None
        keep = None
        if self._peek is not None and n > 1:
            keep = np.zeros(len(self.table), bool)
            keep[targets] = True  # never skip a requested picture
        last = -1  # presentation index of the last frame decoded in the current stretch
        stretch_key = -1  # the seek point the current stretch started from

        def lose(i: int) -> None:
            missing.append(i)
            self._undecodable.add(i)

        while pos < n:
            t = int(targets[pos])
            if t in self._undecodable:
                missing.append(t)
                pos += 1
                continue
            if frames is None or last >= t or self._key_before(t) > max(last + 1, stretch_key):
                # Seek: nothing is open, or a keyframe lies between the decoder's position and
                # the target (decoding from there is cheaper than decoding on).
                # The stretch will run on to the last target before the next seek point.
                nxt = int(np.searchsorted(self._keyframes, t, side="right"))
                bound = int(self._keyframes[nxt]) if nxt < len(self._keyframes) else len(
                    self.table)
                span_end = int(targets[pos:][targets[pos:] < bound].max(initial=t))
                opened = self._open_stretch(t, keep, span_end)
                if opened is None:
                    lose(t)
                    pos += 1
                    frames = None
                    continue
                frames, stretch_key = opened
                last = -1
            ended = True
            for frame in frames:
                idx = self._index_of(frame)
                if idx is None or idx <= last:
                    raise TimestampsUnreliable(f"{self.path}: decoded timestamps disagree with "
                                           "the packet index")
                last = idx
                while pos < n and int(targets[pos]) <= idx:
                    tt = int(targets[pos])
                    if tt == idx:
                        sink(idx, self._convert(frame, out_hw))
                    else:  # the decoder passed it without producing it: damaged data
                        lose(tt)
                    pos += 1
                if pos >= n:
                    ended = False
                    break
                if self._key_before(int(targets[pos])) > max(last + 1, stretch_key):
                    ended = False
                    break  # the next target lies beyond the next keyframe: seek
            if ended:
                # The stream (or its readable part) ended before the pending target.
                lose(int(targets[pos]))
                pos += 1
                frames = None
        return missing

    def _decode_sequential(self, targets: np.ndarray, out_hw: tuple[int, int],
                           sink: Callable[[int, np.ndarray], None]) -> list[int]:
        """Decode from the start, frame i being the i-th picture output (always exact).

        Counting only works while every packet decodes: after a damaged packet the count can
        no longer be trusted, so every target from there on is reported missing rather than
        returned under a wrong index.
        """
        self._seek_start()
        wanted = set(int(t) for t in targets)
        last_needed = int(targets[-1])
        got: set[int] = set()
        count = -1
        for frame in self._frames_after_seek():
            if self.damaged_packets:
                logger.warning("%s: damaged data while counting frames sequentially; frames "
                               "after output %d cannot be indexed reliably", self.path, count)
                break
            count += 1
            if count in wanted:
                sink(count, self._convert(frame, out_hw))
                got.add(count)
            if count >= last_needed:
                break
        return sorted(wanted - got)

    # -- keyframe decode -----------------------------------------------------------------------
    def decode_keyframes(self, keys: np.ndarray, out_hw: tuple[int, int],
                         sink: Callable[[int, np.ndarray], None]) -> list[int]:
        """Decode only the keyframes ``keys`` (sorted, unique presentation indices)."""
        av = self._av
        ctx = self._stream.codec_context
        missing: list[int] = []
        ctx.skip_frame = "NONKEY"
        try:
            for k in keys:
                k = int(k)
                want = int(self.table.pts[k])
                self._seek_to(want)
                frame = None
                try:
                    for pkt in self._container.demux(self._stream):
                        if not pkt.size or not pkt.is_keyframe:
                            continue
                        if pkt.pts is not None and int(pkt.pts) < want:
                            continue
                        out = list(ctx.decode(pkt)) + list(ctx.decode(None))
                        frame = next((f for f in out if self._index_of(f) == k), None)
                        break
                except (av.error.InvalidDataError, av.error.EOFError) as e:
                    logger.debug("%s: keyframe %d: %s", self.path, k, e)
                if frame is None:
                    missing.append(k)
                    continue
                sink(k, self._convert(frame, out_hw))
        finally:
            ctx.skip_frame = "DEFAULT"
            self._reset()
        return missing

    def iter_sequential(self) -> Iterator[tuple[int, Any]]:
        """Every decoded frame in order with its presentation index (for diagnostics)."""
        self._seek_start()
        for count, frame in enumerate(self._frames_after_seek()):
            idx = count if self._sequential else self._index_of(frame)
            if idx is None:
                raise DecodeError(f"{self.path}: decoded frame with unknown timestamp")
            yield idx, frame
