"""The PyAV backend's decode paths besides the planned exact one: keyframes only, and counting
frames from the start (streams whose timestamps cannot place pictures), plus the probe for
DivX packed B-frames that decides the latter. Functions of a :class:`PyAVBackend` ``b``."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ._bitstream import PackedBitstream, peek_parser
from ._decode import find_key_packet

__all__ = ["decode_keyframes", "decode_sequential", "packed_bitstream"]

logger = logging.getLogger(__name__)


def packed_bitstream(b: Any, probe: int = 64) -> bool:
    """Whether one of the first ``probe`` MPEG-4 packets holds two pictures (DivX packed
    B-frames)."""
    if b.table.codec != "mpeg4":
        return False
    peek = peek_parser("mpeg4", b._stream.codec_context.extradata)
    if peek is None:  # pragma: no cover - mpeg4 always has a parser
        return False
    b._seek_start()
    try:
        for pkt in itertools.islice(b._container.demux(b._stream), probe):
            if pkt.size:
                try:
                    peek(memoryview(pkt))
                except PackedBitstream:
                    logger.info("%s: packed-bitstream MPEG-4: frames are counted in output "
                                "order", b.path)
                    return True
                except (ValueError, IndexError):
                    continue
    except (b._av.error.FFmpegError, OSError, IndexError) as e:
        logger.debug("%s: packed-bitstream probe stopped: %s", b.path, e)
    return False


def decode_sequential(b: Any, targets: np.ndarray, out_hw: tuple[int, int],
                      sink: Callable[[int, np.ndarray], None]) -> list[int]:
    """Decode from the start, frame i being the i-th picture output (always exact).

    Counting only works while every packet decodes: after a damaged packet the count can
    no longer be trusted, so every target from there on is reported missing rather than
    returned under a wrong index.
    """
    wanted = set(int(t) for t in targets)
    last_needed = int(targets[-1])
    got: set[int] = set()
    count = -1
    # single-threaded: a damaged packet is reported when it is met (frame threads report
    # it later, after pictures the count would misplace)
    for frame in b._frames_from_start(threaded=False):
        if b.damaged_packets:
            logger.warning("%s: damaged data while counting frames sequentially; frames "
                           "after output %d cannot be indexed reliably", b.path, count)
            break
        count += 1
        if count in wanted:
            sink(count, b._convert(frame, out_hw))
            got.add(count)
        if count >= last_needed:
            break
    return sorted(wanted - got)


def decode_keyframes(b: Any, keys: np.ndarray, out_hw: tuple[int, int],
                     sink: Callable[[int, np.ndarray], None]) -> list[int]:
    """Decode only the keyframes ``keys`` (sorted, unique presentation indices)."""
    b._check_open()
    av = b._av
    missing: list[int] = []
    try:
        first = getattr(b, "_first_key", None)  # (index, picture) probed at open: once
        b._first_key = None
        for k in keys:
            k = int(k)
            if first is not None and first[0] == k:
                sink(k, b._convert(first[1], out_hw))
                continue
            want = int(b.table.pts[k])
            pos = b._seek_pos.get(k, k)
            frame = None
            while True:  # a seek landing after ``k``'s packet (MPEG-PS) is retried earlier
                if pos == 0 or not b._seek_to(int(b.table.pts[pos])):
                    pos = 0
                    b._seek_start()  # the packets before ``want`` are skipped below
                ctx = b._stream.codec_context
                ctx.skip_frame = "NONKEY"
                late = False
                try:
                    pkt, late = find_key_packet(b._container.demux(b._stream), want, k,
                                                b._pts_to_index, b.table.decode_order,
                                                pos > 0)
                    if pkt is not None and not late:
                        out = list(ctx.decode(pkt)) + list(ctx.decode(None))
                        frame = next((f for f in out if b._index_of(f) == k), None)
                except (av.error.FFmpegError, OSError, IndexError) as e:  # damaged data
                    logger.debug("%s: keyframe %d: %s", b.path, k, e)
                if not late:
                    break
                pos = b._seek_pos[k] = b._key_before(pos - 1)  # seek earlier
            if frame is None:
                missing.append(k)
                continue
            sink(k, b._convert(frame, out_hw))
    finally:
        b._stream.codec_context.skip_frame = "DEFAULT"
        b._seek_start()
    return missing
