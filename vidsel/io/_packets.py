"""Packet index: per-frame bit cost, keyframes, picture types and GOPs, without decoding.

Built on :func:`packet_table` (presentation order, edit lists and hidden VP8/VP9 frames handled
there). Picture types are read from the bitstream where that is cheap and exact:

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

import av
import numpy as np

from ..errors import InvalidArgumentError, VidselError
from ._bitstream import PACKED_LOG, PackedBitstream, Peek, peek_parser, try_peek
from ._probe import check_built_for, check_path, check_stream, open_container, typed_table
from ._types import PacketIndex, PacketTable, PictSource

__all__ = ["BITSTREAM_TYPED", "index_for", "packet_index"]

logger = logging.getLogger(__name__)

#: Decoders whose picture types we parse from the packets (with
#: :func:`vidsel.io._bitstream.peek_parser`, shared with the reader).
BITSTREAM_TYPED = frozenset({"h264", "mpeg4", "mpeg1video", "mpeg2video"})


def _parse_types(path: str, stream_index: int, codec: str,
                 pts_to_index: dict[int, int], n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Bitstream picture types mapped to presentation indices, or None if unavailable."""
    try:
        container = open_container(path)
    except VidselError:  # pragma: no cover - packet_table opened it a moment ago
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
                    hit = try_peek(parse, memoryview(pkt))
                except PackedBitstream:
                    logger.info(PACKED_LOG, path)
                    return None
                if hit is not None:
                    kinds[idx], refs[idx] = hit
                    found += 1
        except (av.error.FFmpegError, OSError, IndexError) as e:  # IndexError: a new stream
            # mid-file (damaged FLV) that PyAV's stream list does not know
            logger.debug("%s: picture-type scan stopped: %s", path, e)
    finally:
        container.close()
    if found < max(1, n // 2):
        return None
    return kinds, refs


def _peeked_types(peeks: list[Peek], decode_order: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_parse_types`'s result from the peeks of the table's own demux pass (decode
    order, one per indexed packet; empty: none), or None where too few pictures told their
    type."""
    n = len(decode_order)
    if len(peeks) != n:
        return None
    kinds = np.full(n, "", dtype="<U1")
    refs = np.zeros(n, bool)
    found = [(j, hit) for j, hit in enumerate(peeks) if hit is not None]
    if len(found) < max(1, n // 2):
        return None
    pos = np.empty(n, np.int64)  # decode position -> presentation index
    pos[np.asarray(decode_order, np.int64)] = np.arange(n)
    at = pos[[j for j, _ in found]]
    kinds[at] = [hit[0] for _, hit in found]
    refs[at] = [hit[1] for _, hit in found]
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
    check_stream(stream)
    if index is None:
        return packet_index(path, stream=stream)
    if not isinstance(index, PacketIndex):
        raise InvalidArgumentError(f"index= must be a PacketIndex, got {type(index).__name__}")
    check_built_for(index, check_path(path), "index")
    return index


def packet_index(path: str | os.PathLike[str], *, stream: int | None = None,
                 table: PacketTable | None = None) -> PacketIndex:
    """Index every frame of a video from its packets, without decoding pictures.

    Costs milliseconds per minute of video (one demux pass; picture types are parsed from a few
    bytes of each packet where the codec allows it).

    Args:
        path: the video file.
        stream: which video stream (index among the video streams; default: the default one).
        table: the stream's :class:`PacketTable` when the caller has it already (e.g.
            ``reader.packet_table``): its demux pass is then not repeated.

    Returns:
        :class:`PacketIndex` in presentation order.

    Raises:
        VideoNotFoundError, NotAVideoError, NoVideoStreamError, UnsupportedCodecError,
        CorruptVideoError: from :func:`packet_table`.

    Example:
        >>> idx = packet_index("clip.mp4")                     # doctest: +SKIP
        >>> idx.pict_type[:8], idx.gop_starts                  # doctest: +SKIP
        (array(['I', 'B', 'B', 'P', ...]), array([0, 250, ...]))
    """
    t0 = time.perf_counter()
    peeks: list[Peek] | None = None
    if table is None:
        table, peeks = typed_table(path, stream)  # types from the same demux pass
    elif not isinstance(table, PacketTable) or isinstance(table, PacketIndex):
        raise InvalidArgumentError(f"table= must be a PacketTable, got {type(table).__name__}")
    n = len(table)
    inferred = _infer_types(table.is_keyframe, table.decode_order)
    kinds, refs = inferred, inferred != "B"
    source: PictSource = "inferred"
    reliable = table.pts_reliable
    if table.codec in BITSTREAM_TYPED and table.pts_reliable:
        if peeks is None:
            pts_to_index = {int(p): i for i, p in enumerate(table.pts)}
            parsed = _parse_types(table.path, table.stream_index, table.codec, pts_to_index, n)
        else:
            parsed = _peeked_types(peeks, table.decode_order)
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
        stream_index=table.stream_index, pts=table.pts, timestamps_s=table.timestamps_s,
        size=table.size, is_keyframe=table.is_keyframe, decode_order=table.decode_order,
        truncated=table.truncated, pts_reliable=reliable, pict_type=kinds,
        is_reference=np.asarray(refs, bool), pict_type_source=source, gop_index=gop,
        elapsed_s=elapsed)
