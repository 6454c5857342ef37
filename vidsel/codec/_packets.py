"""Packet index: per-frame bit cost, keyframes, picture types and GOPs, without decoding.

Built on :func:`vidsel.io.packet_table` (presentation order, edit lists and hidden VP8/VP9 frames
handled there). Picture types are read from the bitstream where that is cheap and exact:

- H.264: ``slice_type`` of the first slice NAL of each packet (AVCC or Annex B), plus
  ``nal_ref_idc`` (whether the picture is used as a reference);
- MPEG-4 part 2: ``vop_coding_type`` of the first VOP header;
- MPEG-1/2: ``picture_coding_type`` of the picture header.

For other codecs (HEVC, VP8, VP9, AV1, ...) types are *inferred*: keyframes are ``I``, frames
decoded after a later-displayed frame are ``B`` (reordered), the rest ``P``. ``pict_type_source``
says which of the two was used.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from ..io._bitstream import PackedBitstream, peek_parser
from ..io._types import _shape

__all__ = ["PacketIndex", "packet_index"]

logger = logging.getLogger(__name__)

PictSource = Literal["bitstream", "inferred"]

#: Decoders whose picture types we parse from the packets (with
#: :func:`vidsel.io._bitstream.peek_parser`, shared with the reader).
BITSTREAM_TYPED = frozenset({"h264", "mpeg4", "mpeg1video", "mpeg2video"})


@dataclass(frozen=True, repr=False)
class PacketIndex:
    """Per-frame packet facts in PRESENTATION order (frame ``i`` = i-th decoded frame).

    Attributes:
        path: the video file.
        codec: decoder name (``"h264"``, ``"hevc"``, ...).
        time_base: stream time base (seconds per pts tick).
        stream_index: container index of the video stream.
        pts: (F,) int64 presentation timestamps in ``time_base`` ticks.
        seconds: (F,) float64 presentation time in seconds (stream timeline).
        size: (F,) int64 packet size in bytes: the frame's bit cost.
        is_keyframe: (F,) bool, random-access point.
        decode_order: (F,) int64 position of the frame's packet in decode order.
        pict_type: (F,) ``<U1`` picture type per frame: ``"I"``, ``"P"``, ``"B"`` (``"S"`` for
            MPEG-4 sprite / SP / SI pictures).
        is_reference: (F,) bool, the picture may be used as a reference (exact for H.264 and
            MPEG-1/2/4; for inferred types, every non-``B`` frame).
        pict_type_source: ``"bitstream"`` (parsed) or ``"inferred"`` (see module doc).
        gop_index: (F,) int64 GOP each frame is decoded in (count of keyframes before it in
            decode order, minus one; frames before the first keyframe get 0).
        pts_reliable: decoded frames can be mapped to indices by pts (False for e.g. packed
            bitstream AVI: frames are then counted in output order and nothing is skipped).
        elapsed_s: wall time spent building the index.
    """

    path: str
    codec: str
    time_base: Fraction
    stream_index: int
    pts: np.ndarray
    seconds: np.ndarray
    size: np.ndarray
    is_keyframe: np.ndarray
    decode_order: np.ndarray
    pict_type: np.ndarray
    is_reference: np.ndarray
    pict_type_source: PictSource
    gop_index: np.ndarray
    pts_reliable: bool = True
    elapsed_s: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        n = len(self.pts)
        if n == 0:
            raise ValueError("PacketIndex needs at least one frame")
        for name in ("seconds", "size", "is_keyframe", "decode_order", "pict_type",
                     "is_reference", "gop_index"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"PacketIndex.{name} has {len(getattr(self, name))} rows, "
                                 f"expected {n}")
        if self.pict_type_source not in ("bitstream", "inferred"):
            raise ValueError(f"pict_type_source={self.pict_type_source!r}")

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def num_frames(self) -> int:
        return len(self.pts)

    @property
    def gop_starts(self) -> np.ndarray:
        """(G,) int64 presentation index of each keyframe (the GOP boundaries)."""
        return np.flatnonzero(self.is_keyframe).astype(np.int64)

    @property
    def duration_s(self) -> float:
        """Time from the first to the last frame plus one median frame duration."""
        if len(self.seconds) < 2:
            return 0.0
        return float(self.seconds[-1] - self.seconds[0] + np.median(np.diff(self.seconds)))

    def type_counts(self) -> dict[str, int]:
        """Number of frames per picture type, e.g. ``{"I": 2, "P": 34, "B": 79}``."""
        kinds, counts = np.unique(self.pict_type, return_counts=True)
        return {str(k): int(c) for k, c in zip(kinds, counts)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary with the per-frame arrays as lists."""
        return {
            "path": self.path, "codec": self.codec, "time_base": str(self.time_base),
            "stream_index": self.stream_index, "num_frames": self.num_frames,
            "pict_type_source": self.pict_type_source, "type_counts": self.type_counts(),
            "gop_starts": self.gop_starts.tolist(), "pts": self.pts.tolist(),
            "seconds": self.seconds.tolist(), "size": self.size.tolist(),
            "is_keyframe": self.is_keyframe.tolist(), "pict_type": self.pict_type.tolist(),
        }

    def __repr__(self) -> str:
        return (f"PacketIndex(path={self.path!r}, codec={self.codec!r}, frames={self.num_frames}, "
                f"gops={len(self.gop_starts)}, types={self.type_counts()} "
                f"({self.pict_type_source}), size={_shape(self.size)})")


def _parse_types(path: str, stream_index: int, codec: str,
                 pts_to_index: dict[int, int], n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Bitstream picture types mapped to presentation indices, or None if unavailable."""
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError:  # pragma: no cover - packet_table opened it a moment ago
        return None
    kinds = np.full(n, "", dtype="<U1")
    refs = np.zeros(n, bool)
    try:
        vs = container.streams[stream_index]
        parse = peek_parser(codec, vs.codec_context.extradata)
        if parse is None:
            return None
        found = 0
        try:
            for pkt in container.demux(vs):
                if not pkt.size or pkt.pts is None:
                    continue
                idx = pts_to_index.get(int(pkt.pts))
                if idx is None:
                    continue
                try:
                    hit = parse(memoryview(pkt))
                except (ValueError, IndexError):
                    hit = None
                except PackedBitstream:
                    logger.info("%s: packed-bitstream MPEG-4: frames are counted in output "
                                "order", path)
                    return None
                if hit is not None:
                    kinds[idx], refs[idx] = hit
                    found += 1
        except (av.error.FFmpegError, OSError) as e:
            logger.debug("%s: picture-type scan stopped: %s", path, e)
    finally:
        container.close()
    if found < max(1, n // 2):
        return None
    return kinds, refs


def _infer_types(is_keyframe: np.ndarray, decode_order: np.ndarray) -> np.ndarray:
    """I for keyframes; B for frames decoded after a later-presented frame; P otherwise."""
    n = len(decode_order)
    # suffix minimum of decode order over frames presented AFTER i
    suffix_min = np.minimum.accumulate(decode_order[::-1])[::-1]
    later_min = np.empty(n, np.int64)
    later_min[:-1] = suffix_min[1:]
    later_min[-1] = np.iinfo(np.int64).max
    kinds = np.where(decode_order > later_min, "B", "P").astype("<U1")
    kinds[is_keyframe] = "I"
    return kinds


def index_for(path: str | os.PathLike[str], index: PacketIndex | None,
              stream: int | None = None) -> PacketIndex:
    """``index`` after checking it was built for ``path``, or a new :func:`packet_index`.

    Raises:
        InvalidArgumentError: ``index`` is not a :class:`PacketIndex` of the file ``path``.
        VideoNotFoundError: ``path`` does not exist.
    """
    if index is None:
        return packet_index(path, stream=stream)
    from ..errors import InvalidArgumentError
    from ..io._probe import check_path

    if not isinstance(index, PacketIndex):
        raise InvalidArgumentError(f"index= must be a PacketIndex, got {type(index).__name__}")
    checked = check_path(path)
    try:
        same = os.path.samefile(index.path, checked)
    except OSError:  # the indexed file is gone
        same = False
    if not same:
        raise InvalidArgumentError(
            f"index= was built for {index.path!r}, not for {os.fspath(path)!r}")
    return index


def packet_index(path: str | os.PathLike[str], *, stream: int | None = None) -> PacketIndex:
    """Index every frame of a video from its packets, without decoding pictures.

    Costs milliseconds per minute of video (two demux passes; picture types are parsed from a few
    bytes of each packet where the codec allows it).

    Args:
        path: the video file.
        stream: which video stream (index among the video streams; default: the default one).

    Returns:
        :class:`PacketIndex` in presentation order.

    Raises:
        VideoNotFoundError, NotAVideoError, NoVideoStreamError, UnsupportedCodecError,
        CorruptVideoError: from :func:`vidsel.io.packet_table`.

    Example:
        >>> idx = packet_index("clip.mp4")                     # doctest: +SKIP
        >>> idx.pict_type[:8], idx.gop_starts                  # doctest: +SKIP
        (array(['I', 'B', 'B', 'P', ...]), array([0, 250, ...]))
    """
    from vidsel.io import packet_table

    t0 = time.perf_counter()
    table = packet_table(path, stream)
    n = len(table)
    inferred = _infer_types(table.is_keyframe, table.decode_order)
    kinds, refs, source = inferred, inferred != "B", "inferred"
    reliable = table.pts_reliable
    if table.codec in BITSTREAM_TYPED and table.pts_reliable:
        pts_to_index = {int(p): i for i, p in enumerate(table.pts)}
        parsed = _parse_types(table.path, table.stream_index, table.codec, pts_to_index, n)
        if parsed is None and table.codec == "mpeg4":
            reliable = False  # packed bitstream (or unparsable): never map frames by pts
        if parsed is not None:
            pk, pr = parsed
            hole = pk == ""
            kinds = np.where(hole, inferred, pk).astype("<U1")
            refs = np.where(hole, inferred != "B", pr)
            source = "bitstream"
    # GOP membership follows decode order.
    by_decode = np.argsort(table.decode_order, kind="stable")
    gop_dec = np.maximum(np.cumsum(table.is_keyframe[by_decode]) - 1, 0)
    gop = np.empty(n, np.int64)
    gop[by_decode] = gop_dec
    elapsed = time.perf_counter() - t0
    logger.debug("%s: packet index of %d frames in %.1f ms", table.path, n, elapsed * 1e3)
    return PacketIndex(
        path=table.path, codec=table.codec, time_base=table.time_base,
        stream_index=table.stream_index, pts=table.pts, seconds=table.seconds, size=table.size,
        is_keyframe=table.is_keyframe, decode_order=table.decode_order, pict_type=kinds,
        is_reference=np.asarray(refs, bool), pict_type_source=source,  # type: ignore[arg-type]
        gop_index=gop, pts_reliable=reliable, elapsed_s=elapsed)
