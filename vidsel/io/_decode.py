"""The one error-tolerant decode loop shared by the reader and the codec pass."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

__all__ = ["DecodeStats", "decode_packets", "find_key_packet"]

logger = logging.getLogger(__name__)


@dataclass
class DecodeStats:
    """What went wrong during one decode pass (filled in while it runs)."""

    damaged_packets: int = 0
    #: the demuxer stopped early (truncated / unreadable data); the message
    demux_error: str | None = None

    @property
    def damaged(self) -> int:
        """Damaged packets, counting an early demux stop as one."""
        return self.damaged_packets + (self.demux_error is not None)


def decode_packets(packets: Iterable[Any], ctx: Any, path: str, stats: DecodeStats, *,
                   max_errors: int | None = None) -> Iterator[Any]:
    """Decode ``packets`` with ``ctx``, surviving damaged data.

    A packet whose decode raises ``av.error.FFmpegError`` is counted in ``stats`` and skipped
    (after ``max_errors`` of them the stream ends; 0 ends it at the first one, as counting
    frames in output order needs). A demux error while iterating ``packets`` ends the stream
    after flushing the decoder (whatever FFmpeg error the demuxer
    reports on damaged data: invalid data, EOF, EPERM, ENOMEM). The flush packet (size 0) drains the decoder at the end.
    """
    try:
        for pkt in packets:
            try:
                frames = ctx.decode(pkt if pkt.size else None)
            except av.error.FFmpegError as e:
                stats.damaged_packets += 1
                logger.debug("%s: damaged packet at pts %s: %s", path, pkt.pts, e)
                if max_errors is not None and stats.damaged_packets > max_errors:
                    return
                continue
            yield from frames
    except (av.error.FFmpegError, OSError, IndexError) as e:  # damaged data: EOF, EPERM, ENOMEM,
        # or a stream that appears mid-file (FLV), unknown to PyAV's stream list (IndexError)
        logger.debug("%s: demux stopped: %s", path, e)
        stats.demux_error = str(e)
        with contextlib.suppress(av.error.FFmpegError):
            yield from ctx.decode(None)


def find_key_packet(packets: Iterable[Any], want: int, key: int, pts_map: dict[int, int],
                    order: np.ndarray, check_late: bool) -> tuple[Any | None, bool]:
    """The packet of keyframe ``key`` (presentation index, pts ``want``) among the ``packets``
    demuxed after a seek: the first keyframe packet at or after ``want``.

    Returns ``(packet, late)``. With ``check_late``, ``late`` is True when the seek landed after
    ``key``'s packet (MPEG-PS seeks by a coarse index and can land one packet after the
    keyframe): a packet later in decode order than ``key``'s comes first, the first keyframe
    packet is a later one, or the stream ends before any. The caller then seeks earlier.
    """
    key_pos = int(order[key])
    for pkt in packets:
        if not pkt.size:
            continue
        pts = None if pkt.pts is None else int(pkt.pts)
        if pkt.is_keyframe and (pts is None or pts >= want):
            return pkt, check_late and pts is not None and pts > want
        i = pts_map.get(pts) if pts is not None else None
        if check_late and i is not None and int(order[i]) > key_pos:
            return None, True
    return None, check_late
