"""Open containers with clear errors, pick the video stream and index its packets."""

from __future__ import annotations

import itertools
import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np

from ..errors import (
    CorruptVideoError,
    InvalidArgumentError,
    NotAVideoError,
    NoVideoStreamError,
    UnsupportedCodecError,
    VideoNotFoundError,
    VidselError,
)
from ._bitstream import PACKED_LOG, PackedBitstream, Peek, peek_parser, try_peek
from ._types import PacketTable

__all__ = ["VIDEO_KINDS", "VideoKind", "check_path", "check_stream", "is_video",
           "open_container", "packet_table", "pick_video_stream", "probe_kind"]

logger = logging.getLogger(__name__)

#: What :func:`probe_kind` says about a path.
VideoKind = Literal["video", "damaged", "not_video", "missing"]
VIDEO_KINDS: tuple[str, ...] = ("video", "damaged", "not_video", "missing")

#: Leading bytes (offset, signature) of container formats and elementary streams that hold
#: video. The ONE content rule that tells "a damaged video" from "not a video at all" when
#: FFmpeg refuses to open a file; the file's name never counts.
_VIDEO_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"), (4, b"skip"),
    (4, b"pnot"),  # MP4 / QuickTime / 3GP boxes
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM (EBML)
    (0, b"RIFF"),  # AVI
    (0, b"FLV"), (0, b"OggS"), (0, b"DKIF"), (0, b".RMF"),  # FLV, Ogg, IVF, RealMedia
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"),  # ASF / WMV
    (0, b"\x06\x0e\x2b\x34"),  # MXF
    (0, b"\x00\x00\x01"), (0, b"\x00\x00\x00\x01"),  # MPEG-PS / MPEG video / Annex B
)
_TS_PACKET = 188


def has_video_signature(path: str) -> bool:
    """Whether the file starts like a video container or stream (see ``_VIDEO_MAGIC``; MPEG-TS:
    two sync bytes 188 bytes apart). Judged by content only; False when unreadable."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_TS_PACKET + 1)
    except OSError:
        return False
    # MPEG-TS: the sync byte "G" starts two consecutive 188-byte packets (a single "G" byte
    # would call 1 in 256 random files a damaged video)
    if head[:1] == b"G" and (len(head) <= _TS_PACKET or head[_TS_PACKET:] == b"G"):
        return True
    return any(head[off:off + len(magic)] == magic for off, magic in _VIDEO_MAGIC)


def check_path(path: str | os.PathLike[str]) -> str:
    """Return ``path`` as a string after checking it names a readable, non-empty file.

    Raises:
        InvalidArgumentError: ``path`` is not a ``str`` or ``os.PathLike``.
        VideoNotFoundError: no such file, or not a regular file.
        NotAVideoError: the file is empty.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"path={path!r} must be a str or os.PathLike (a video file), got "
            f"{type(path).__name__}")
    try:
        p = Path(path)
    except TypeError as e:  # an os.PathLike whose __fspath__ gives no str
        raise InvalidArgumentError(f"path={path!r} is not a file path ({e})") from None
    if not p.exists():
        raise VideoNotFoundError(f"{p}: no such file")
    if not p.is_file():
        raise VideoNotFoundError(f"{p}: not a regular file")
    if p.stat().st_size == 0:
        raise NotAVideoError(f"{p}: the file is empty (0 bytes)")
    return str(p)


#: FFmpeg demuxers that turn non-video files into pictures: text-art renderers (any text file
#: "opens" as ANSI art) and (animated) image formats. vidsel refuses them as "not a video";
#: so do demuxers whose name ends in ``_pipe`` (single-image readers such as ``png_pipe``).
_NON_VIDEO_FORMATS = frozenset({"tty", "bin", "idf", "xbin", "adf", "image2", "image2pipe",
                                "lavfi", "gif", "apng", "webp", "ico"})
_STILL_FORMATS = frozenset({"image2", "image2pipe", "gif", "apng", "webp", "ico"})


def check_built_for(obj: Any, path: str | os.PathLike[str], name: str) -> None:
    """Raise :class:`InvalidArgumentError` unless ``obj.path`` (a table or index handed in as
    the argument ``name``) is the file ``path``."""
    try:
        same = os.path.samefile(obj.path, path)
    except OSError:  # the indexed file is gone
        same = False
    if not same:
        raise InvalidArgumentError(
            f"{name}= was built for {obj.path!r}, not for {os.fspath(path)!r}")


def open_container(path: str | os.PathLike[str]) -> Any:
    """``av.open`` with vidsel's errors: missing, empty, damaged or non-video files.

    When FFmpeg refuses the file, its content decides (never its name): a file that starts
    like a video container (:func:`has_video_signature`) is a damaged video
    (:class:`CorruptVideoError`), anything else is not a video (:class:`NotAVideoError`), as
    in :func:`probe_kind`.
    """
    path = check_path(path)
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.FileNotFoundError as e:  # pragma: no cover - raced with check_path
        raise VideoNotFoundError(f"{path}: no such file") from e
    except av.error.PermissionError as e:
        raise VideoNotFoundError(f"{path}: permission denied") from e
    except av.error.FFmpegError as e:
        if not has_video_signature(path):
            raise NotAVideoError(
                f"{path}: not a video file (no known container format)") from e
        raise CorruptVideoError(
            f"{path}: the container header is damaged or truncated and cannot be read "
            f"({e.__class__.__name__}: {getattr(e, 'strerror', e)})", path=path) from e
    fmt = str(getattr(container.format, "name", "") or "")
    names = set(fmt.split(","))
    if names & _NON_VIDEO_FORMATS or fmt.endswith("_pipe"):
        container.close()
        kind = "an image" if (names & _STILL_FORMATS or fmt.endswith("_pipe")) else "text"
        raise NotAVideoError(f"{path}: not a video file (FFmpeg reads it as {kind}, "
                             f"format {fmt!r})")
    return container


def probe_kind(path: str | os.PathLike[str]) -> VideoKind:
    """What ``path`` is, judged by its content (never its name); reads the header only and
    never raises.

    Returns:
        ``"video"``: FFmpeg opens it as a container (not as an image or text) holding a video
        stream with a decoder (cover art does not count).
        ``"damaged"``: a video vidsel cannot read: it starts like a video container (a known
        signature) but FFmpeg cannot open it (damaged or truncated header), or its video
        stream has no decoder in this FFmpeg build.
        ``"not_video"``: anything else that exists: empty, text, random bytes (whatever the
        suffix, e.g. ``notes.mp4``), still or animated images, audio-only files.
        ``"missing"``: no regular file at ``path`` (nothing there, a folder, unreadable, or
        ``path`` is not a path at all, e.g. None).

    Example:
        >>> probe_kind("clip.mp4"), probe_kind("notes.mp4")      # doctest: +SKIP
        ('video', 'not_video')
    """
    try:
        spath = check_path(path)
        container = open_container(spath)
    except (VideoNotFoundError, InvalidArgumentError):
        return "missing"
    except CorruptVideoError:
        return "damaged"
    except (VidselError, OSError, ValueError, av.error.FFmpegError):
        return "not_video"
    try:
        pick_video_stream(container, spath, None)
        return "video"
    except UnsupportedCodecError:
        return "damaged"
    except (VidselError, OSError, ValueError, av.error.FFmpegError):
        return "not_video"
    finally:
        container.close()


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a video file vidsel can read: ``probe_kind(path) == "video"``.

    Judged by content (never the suffix); reads the header only; never raises: missing, empty,
    text, still-image, audio-only, damaged and unreadable files are all False.

    Example:
        >>> is_video("clip.mp4"), is_video("notes.txt")          # doctest: +SKIP
        (True, False)
    """
    return probe_kind(path) == "video"


def check_stream(stream: object) -> int | None:
    """``stream`` checked: None (the default stream) or an index >= 0 among the video streams.

    Raises:
        InvalidArgumentError: anything else (the message names the argument).
    """
    if stream is None:
        return None
    if isinstance(stream, bool) or not isinstance(stream, (int, np.integer)) or stream < 0:
        raise InvalidArgumentError(
            f"stream={stream!r} must be None (the default video stream) or an index >= 0 "
            f"among the file's video streams")
    return int(stream)


def pick_video_stream(container: Any, path: str, stream: int | None) -> Any:
    """Return the requested video stream, or the container's default one.

    Args:
        stream: None for the default (the stream FFmpeg marks as default, else the first
            decodable one), or an index into ``container.streams.video`` (0-based, counting video
            streams only).

    Raises:
        InvalidArgumentError: ``stream`` is neither None nor an int >= 0.
        NoVideoStreamError: no (such) video stream.
        UnsupportedCodecError: no decoder for the stream's codec.
    """
    stream = check_stream(stream)
    videos = [s for s in container.streams.video
              if not (s.disposition and "attached_pic" in str(s.disposition).lower())]
    if not videos:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise NoVideoStreamError(
            f"{path}: no video stream (streams found: {', '.join(kinds)})")
    if stream is not None:
        if not 0 <= stream < len(videos):
            raise NoVideoStreamError(
                f"{path}: video stream {stream} requested but the file has {len(videos)}")
        chosen = videos[stream]
    else:
        defaults = [s for s in videos if "default" in str(s.disposition).lower()]
        chosen = (defaults or videos)[0]
    try:
        ctx = chosen.codec_context
        name = ctx.name
    except (av.error.FFmpegError, ValueError, AttributeError) as e:  # no decoder for the codec
        raise UnsupportedCodecError(
            f"{path}: video stream {chosen.index} uses a codec this FFmpeg build cannot decode "
            f"({e})") from e
    if ctx is None or not name:
        raise UnsupportedCodecError(f"{path}: video stream {chosen.index} has no decoder")
    return chosen


# -- VP8 / VP9: which packets produce a picture --------------------------------------------------

def _vp9_frame_shown(buf: bytes) -> bool:
    """Whether one VP9 frame (not a superframe) outputs a picture."""
    if not buf:
        return False
    b = buf[0]
    if (b >> 6) != 0b10:  # frame_marker
        return True
    profile = ((b >> 5) & 1) | (((b >> 4) & 1) << 1)
    pos = 4
    if profile == 3:
        pos += 1
    bit = lambda k: (int.from_bytes(buf[:2].ljust(2, b"\0"), "big") >> (15 - k)) & 1  # noqa: E731
    if bit(pos):  # show_existing_frame
        return True
    return bool(bit(pos + 2))  # skip frame_type, read show_frame


def _vp9_packet_shown(data: bytes) -> bool:
    """Whether a VP9 packet (possibly a superframe) outputs a picture."""
    if not data:
        return False
    last = data[-1]
    if (last & 0xE0) == 0xC0:
        frames = (last & 0x7) + 1
        mag = ((last >> 3) & 0x3) + 1
        index_size = 2 + mag * frames
        if len(data) >= index_size and data[-index_size] == last:
            sizes = []
            idx = data[-index_size + 1:-1]
            for f in range(frames):
                sizes.append(int.from_bytes(idx[f * mag:(f + 1) * mag], "little"))
            off = 0
            shown = False
            for sz in sizes:
                shown |= _vp9_frame_shown(data[off:off + sz])
                off += sz
            return shown
    return _vp9_frame_shown(data)


def _vp8_packet_shown(data: bytes) -> bool:
    return bool(data) and bool((data[0] >> 4) & 1)


_SHOWN_CHECK = {"vp9": _vp9_packet_shown, "libvpx-vp9": _vp9_packet_shown,
                "vp8": _vp8_packet_shown, "libvpx": _vp8_packet_shown}


def packet_table(path: str | os.PathLike[str], stream: int | None = None) -> PacketTable:
    """Index the frames of a video stream from its packets, without decoding.

    Costs milliseconds per minute of video (demuxing only). Frames are returned in presentation
    order. Handles edit lists (discarded packets are skipped), VP8/VP9 hidden frames (packets
    that show no picture are skipped), truncated files (the table stops where the data ends and
    ``truncated`` is set) and containers without presentation timestamps (``pts_reliable`` is
    False; the reader then decodes sequentially).

    Args:
        path: the video file.
        stream: which video stream (see :func:`pick_video_stream`).

    Raises:
        VideoNotFoundError, NotAVideoError, NoVideoStreamError, UnsupportedCodecError,
        CorruptVideoError: as their names say; a stream with no frame at all is corrupt.
    """
    return _table(path, stream, None)


def typed_table(path: str | os.PathLike[str], stream: int | None = None
                ) -> tuple[PacketTable, list[Peek]]:
    """:func:`packet_table` plus each indexed packet's bitstream peek, in decode order, from
    the same demux pass (see :func:`_index_stream`: an empty list where there are none)."""
    peeks: list[Peek] = []
    return _table(path, stream, peeks), peeks


def _table(path: str | os.PathLike[str], stream: int | None,
           peeks: list[Peek] | None) -> PacketTable:
    spath = check_path(path)
    check_stream(stream)
    container = open_container(spath)
    try:
        vs = pick_video_stream(container, spath, stream)
        return _index_stream(container, vs, spath, av, peeks)
    finally:
        container.close()


#: Demuxers whose header holds a complete sample table (every packet's size and offset), so
#: fewer packets than it lists means the file was cut (the demuxer stops quietly at EOF).
_SAMPLE_TABLE_FORMATS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2"})


def _sample_table_cut(container: Any, vs: Any, demuxed: int) -> bool:
    """Whether an MP4 / QuickTime file holds fewer packets than its sample table lists (a
    cleanly cut ``mdat``: the demuxer reports no error, it just ends early). Fragmented files
    list no samples in the header (``frames`` is 0) and never count as cut here."""
    names = set(str(getattr(container.format, "name", "") or "").split(","))
    listed = int(vs.frames or 0)
    return bool(names & _SAMPLE_TABLE_FORMATS) and 0 < demuxed < listed


#: A timestamp this many median frame steps away from its neighbours (in decode order) is
#: damaged data, not a pause: one corrupt FLV tag must not stretch a 17 s clip to 70 minutes.
_OUTLIER_STEPS = 50


def _repair_pts(pts_l: list[int | None], dts_l: list[int], path: str) -> tuple[np.ndarray, int]:
    """Presentation timestamps (decode order) with missing and outlier values filled in.

    An outlier is a pts far (``_OUTLIER_STEPS`` median steps) from the median of its
    neighbours in decode order. Missing and outlier values are put into the holes of the
    regular timeline that the other frames leave (one hole per lost value, frames after the
    last timestamp at the end), in decode order; when the holes do not fit, the packet's dts
    (else the previous value + 1) is used. Returns (pts, number of values replaced): any
    replacement makes the table ``pts_reliable=False`` (decoded sequentially, always exact).
    """
    known = np.array([p is not None for p in pts_l], bool)
    raw = np.array([p if p is not None else 0 for p in pts_l], np.int64)
    if known.sum() >= 5:
        vals = raw[known]
        steps = np.abs(np.diff(np.sort(vals)))
        step = float(np.median(steps[steps > 0])) if np.any(steps > 0) else 0.0
        # a value is within `half` neighbour steps of its window's median: with no step in
        # decode order over 50 / half median steps (any stream without damage), no outlier
        half = 4
        if step > 0 and half * int(np.abs(np.diff(vals)).max()) > _OUTLIER_STEPS * step:
            padded = np.pad(vals.astype(np.float64), half, mode="edge")
            windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
            local = np.median(windows, axis=1)
            outlier = np.abs(vals - local) > _OUTLIER_STEPS * step
            if outlier.any():
                logger.warning("%s: %d presentation timestamp(s) far off the timeline (damaged "
                               "data) are ignored", path, int(outlier.sum()))
                idx = np.flatnonzero(known)[outlier]
                known[idx] = False
    lost = np.flatnonzero(~known)
    if len(lost) == 0:
        return raw, 0
    good = np.sort(raw[known])
    holes: list[int] = []
    if len(good) >= 2:
        steps = np.diff(good)
        step = float(np.median(steps[steps > 0])) if np.any(steps > 0) else 0.0
        if step > 0:
            for a, b in itertools.pairwise(good):
                k = round((b - a) / step) - 1
                if len(holes) + k > len(lost):  # more holes than lost values: no fit (and a
                    holes = []                   # wild gap must not build 1e8 of them)
                    break
                holes.extend(int(a + round(j * (b - a) / (k + 1))) for j in range(1, k + 1))
            else:
                extra = len(lost) - len(holes)
                holes.extend(int(good[-1] + round(j * step)) for j in range(1, extra + 1))
    if len(holes) == len(lost):
        raw[lost] = sorted(holes)
    else:
        for i in lost:
            raw[i] = dts_l[i] if dts_l[i] is not None else (raw[i - 1] + 1 if i else 0)
    return raw, len(lost)


def _index_stream(container: Any, vs: Any, path: str, av: Any,
                  peeks: list[Peek] | None = None) -> PacketTable:
    """The stream's :class:`PacketTable` from one demux pass. With ``peeks`` (an empty list)
    and a codec :func:`~vidsel.io._bitstream.peek_parser` knows, each indexed packet's
    (picture type, is_reference) is appended to it in decode order (None where the packet
    tells nothing); it is left empty where the codec has no parser or an MPEG-4 packet holds
    two pictures (DivX packed B-frames)."""
    codec = vs.codec_context.name
    shown_check = _SHOWN_CHECK.get(codec)
    parse = None if peeks is None else peek_parser(codec, vs.codec_context.extradata)
    pts_l: list[int | None] = []
    dts_l: list[int] = []
    size_l: list[int] = []
    key_l: list[bool] = []
    truncated = False
    last_corrupt = False  # the last packet kept is flagged corrupt (FFmpeg: data missing)
    demuxed = 0  # every packet of the stream, edit-list discards and hidden frames included
    try:
        for pkt in container.demux(vs):
            size = pkt.size
            if size or pkt.dts is not None:  # not the flush packet at the end
                demuxed += 1
            if not size or pkt.is_discard:
                continue
            if shown_check is not None and not shown_check(bytes(pkt)):
                continue
            pts_l.append(None if pkt.pts is None else int(pkt.pts))
            dts_l.append(int(pkt.dts) if pkt.dts is not None else len(dts_l))
            size_l.append(int(size))
            key_l.append(bool(pkt.is_keyframe))
            last_corrupt = bool(pkt.is_corrupt)
            if parse is not None:
                try:
                    peeks.append(try_peek(parse, memoryview(pkt)))  # type: ignore[union-attr]
                except PackedBitstream:
                    logger.info(PACKED_LOG, path)
                    parse = None
                    peeks.clear()  # type: ignore[union-attr]
    except (av.error.FFmpegError, OSError, IndexError) as e:
        # Damaged data: FFmpeg reports invalid data, EOF, EPERM or even ENOMEM (a damaged size
        # field asking for gigabytes), and PyAV an IndexError for a stream that appears
        # mid-file (FLV); the packets read so far are the readable part.
        truncated = True
        logger.warning("%s: demuxing stopped after %d packets: %s", path, len(pts_l), e)
    if last_corrupt and len(pts_l) > 1:
        # A packet cut by the end of the file (FFmpeg returns what is there, flagged corrupt)
        # is not a frame: it cannot be decoded, so it is neither counted nor indexed.
        truncated = True
        logger.warning("%s: the last packet is incomplete (the file ends inside it); it is "
                       "not counted as a frame", path)
        for lst in (pts_l, dts_l, size_l, key_l):
            lst.pop()
        if peeks:
            peeks.pop()
    if not truncated and _sample_table_cut(container, vs, demuxed):
        truncated = True
        logger.warning("%s: the file ends before its data: %d of the %d packets its sample "
                       "table lists are present", path, demuxed, int(vs.frames or 0))
    if not pts_l:
        raise CorruptVideoError(f"{path}: video stream {vs.index} ({codec}) holds no frames",
                                path=path)
    pts, missing_pts = _repair_pts(pts_l, dts_l, path)
    order = np.argsort(pts, kind="stable")
    pts_sorted = pts[order]
    reliable = missing_pts == 0 and bool(np.all(np.diff(pts_sorted) > 0))
    if not reliable:
        logger.info("%s: presentation timestamps are missing or repeated; frames are indexed in "
                    "decode order and decoded sequentially", path)
    if key_l and not key_l[0]:
        logger.debug("%s: the first packet is not flagged as a keyframe", path)
    tb = vs.time_base or Fraction(1, 1)
    seconds = pts_sorted.astype(np.float64) * float(tb)
    return PacketTable(
        path=path, stream_index=int(vs.index), codec=codec, time_base=Fraction(tb),
        pts=pts_sorted, timestamps_s=seconds, size=np.asarray(size_l, np.int64)[order],
        is_keyframe=np.asarray(key_l, bool)[order], decode_order=order.astype(np.int64),
        truncated=truncated, pts_reliable=reliable)
