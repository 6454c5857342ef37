"""Motion vectors from the decoder's export, and the decode pass the codec pipeline runs on.

Only H.264 and MPEG-1/2/4 part 2 export motion vectors (FFmpeg ``flags2=+export_mvs``). They
are read with SLICE threading: FRAME/AUTO threading loses or mismatches the side data. Vectors
are accumulated on a block grid (16 px macroblocks of the coded picture) with ``np.bincount``;
blocks without a vector are intra-coded (new content: a high share flags a cut).

Sign convention: FFmpeg gives ``src = dst + motion / motion_scale`` with the source block in the
reference picture. We report the displacement *along the motion* (from the past to the present):
``dst - src`` for past references and ``src - dst`` for future ones, in pixels of the coded
picture per reference distance (a P-frame after two B-frames spans three frame intervals).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .._validate import check_choice, check_positive_int
from ..errors import CorruptVideoError, DecodeError
from ..io._decode import DecodeStats, decode_packets
from ..io._types import _shape
from ._packets import PacketIndex, index_for

__all__ = ["MV_CODECS", "MotionFields", "PtsUnreliable", "motion_vectors"]

logger = logging.getLogger(__name__)

#: Decoders that export motion vectors.
MV_CODECS = frozenset({"h264", "mpeg4", "mpeg2video", "mpeg1video", "h263", "msmpeg4v3"})
#: Grid cell of the motion fields, in coded pixels (the macroblock size of MV codecs).
BLOCK = 16
#: Luma subsampling step used for pixel-difference energy and cut hints.
LUMA_STEP = 4

class PtsUnreliable(Exception):
    """Decoded timestamps cannot be mapped to presentation indices (internal signal)."""


def sequential(index: PacketIndex) -> PacketIndex:
    """The same index, flagged so that decode passes count frames instead of reading pts."""
    import dataclasses

    logger.info("%s: decoded timestamps are unreliable; decoding sequentially", index.path)
    return dataclasses.replace(index, pts_reliable=False)


FrameSet = Literal["reference", "ip", "all"]
FRAME_SETS: tuple[str, ...] = ("reference", "ip", "all")


@dataclass(frozen=True, repr=False)
class MotionFields:
    """Per-frame motion on a block grid, for the frames a decode pass produced.

    Attributes:
        path: the video file.
        codec: decoder name.
        frame_indices: (T,) int64 presentation indices of the analysed frames (ascending).
        pict_type: (T,) ``<U1`` picture type of each analysed frame (from the decoder).
        flow: (T, Gh, Gw, 2) float32 mean displacement (dx, dy) along the motion, in coded
            pixels, of each ``block`` x ``block`` cell (0 where no vector: intra or keyframe).
        coverage: (T, Gh, Gw) float32 share of the cell's area that carries a vector (0 = intra).
        intra_share: (T,) float32 share of the picture without vectors (1.0 for I-frames; a
            value near 1 on a P-frame is a cut hint).
        block: cell side in coded pixels.
        coded_size: (height, width) of the decoded pictures (before rotation metadata).
        elapsed_s: wall time of the decode pass.
    """

    path: str
    codec: str
    frame_indices: np.ndarray
    pict_type: np.ndarray
    flow: np.ndarray
    coverage: np.ndarray
    intra_share: np.ndarray
    block: int
    coded_size: tuple[int, int]
    elapsed_s: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        t = len(self.frame_indices)
        if self.flow.ndim != 4 or self.flow.shape[0] != t or self.flow.shape[-1] != 2:
            raise ValueError(f"flow must be (T, Gh, Gw, 2) with T={t}, got {self.flow.shape}")
        if self.coverage.shape != self.flow.shape[:3]:
            raise ValueError(f"coverage {self.coverage.shape} does not match flow "
                             f"{self.flow.shape[:3]}")
        if len(self.pict_type) != t or len(self.intra_share) != t:
            raise ValueError("pict_type / intra_share must have one entry per frame")
        if t > 1 and not np.all(np.diff(self.frame_indices) > 0):
            raise ValueError("frame_indices must be strictly increasing")

    def __len__(self) -> int:
        return len(self.frame_indices)

    @property
    def grid(self) -> tuple[int, int]:
        """(Gh, Gw) cells per frame."""
        return int(self.flow.shape[1]), int(self.flow.shape[2])

    def magnitude(self) -> np.ndarray:
        """(T, Gh, Gw) float32 vector length in pixels."""
        return np.hypot(self.flow[..., 0], self.flow[..., 1])

    def mean_flow(self) -> np.ndarray:
        """(T, 2) coverage-weighted mean (dx, dy) per frame (a global-motion estimate)."""
        w = self.coverage
        s = w.sum(axis=(1, 2))
        num = (self.flow * w[..., None]).sum(axis=(1, 2))
        return (num / np.maximum(s, 1e-9)[:, None]).astype(np.float32)

    def __repr__(self) -> str:
        return (f"MotionFields(path={self.path!r}, codec={self.codec!r}, frames={len(self)}, "
                f"grid={self.grid}, block={self.block}, flow={_shape(self.flow)})")


# -- per-frame helpers ------------------------------------------------------------------------


def mv_grid(arr: np.ndarray, grid: tuple[int, int], block: int = BLOCK
            ) -> tuple[np.ndarray, np.ndarray]:
    """Accumulate one frame's exported vectors onto a (Gh, Gw) cell grid.

    Args:
        arr: (M,) structured array from ``side_data["MOTION_VECTORS"].to_ndarray()``.
        grid: (Gh, Gw) cells.

    Returns:
        flow (Gh, Gw, 2) float32 area-weighted mean displacement along the motion (pixels),
        coverage (Gh, Gw) float32 share of each cell's area with a vector (clipped to 1).
    """
    gh, gw = grid
    if len(arr) == 0:
        return np.zeros((gh, gw, 2), np.float32), np.zeros((gh, gw), np.float32)
    future = arr["source"] > 0
    # block area in cells (float64: bincount weights are float64 anyway)
    area = np.multiply(arr["w"], arr["h"], dtype=np.float64) * (1.0 / (block * block))
    # along the motion: dst - src for past references, src - dst for future ones
    k = area / np.maximum(arr["motion_scale"], 1)
    np.negative(k, out=k, where=~future)
    gy = np.minimum(np.maximum(arr["dst_y"] // block, 0), gh - 1).astype(np.intp)
    gx = np.minimum(np.maximum(arr["dst_x"] // block, 0), gw - 1)
    cell = gy * gw + gx  # (M,) flat cell index
    n = gh * gw
    wsum = np.bincount(cell, weights=area, minlength=n)
    sx = np.bincount(cell, weights=arr["motion_x"] * k, minlength=n)
    sy = np.bincount(cell, weights=arr["motion_y"] * k, minlength=n)
    inv = 1.0 / np.maximum(wsum, 1e-9)
    flow = np.empty((n, 2), np.float32)
    flow[:, 0] = sx * inv
    flow[:, 1] = sy * inv
    # B-frames carry two rows per block (past and future): coverage counts the area once.
    if future.any():
        fut = np.bincount(cell, weights=np.where(future, area, 0.0), minlength=n)
        cov = np.maximum(wsum - fut, fut)
    else:
        cov = wsum
    cov = np.minimum(cov, 1.0).astype(np.float32).reshape(gh, gw)
    return flow.reshape(gh, gw, 2), cov


def prefetch(items: Iterator[Any], depth: int = 6) -> Iterator[Any]:
    """Run a (decoding) iterator in a worker thread, ``depth`` items ahead of the consumer.

    FFmpeg releases the GIL while it decodes and scales, so the decode of the next frames
    overlaps the per-frame scoring done in Python. Exceptions raised by ``items`` are re-raised
    in the consumer; abandoning the returned iterator stops the worker.
    """
    import queue
    import threading

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

    worker = threading.Thread(target=work, name="vidsel-codec-decode", daemon=True)
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


_HIGH_DEPTH = ("p10", "p12", "p14", "p16")


def luma_step(height: int, width: int) -> int:
    """Luma subsampling step for a picture: LUMA_STEP, doubled (up to 16) while the short side
    keeps more than 200 samples. Always a divisor of BLOCK, so luma cells align with blocks."""
    step = LUMA_STEP
    while min(height, width) / step > 200 and step < BLOCK:
        step *= 2
    return step


def luma_small(frame: Any, step: int = LUMA_STEP) -> np.ndarray:
    """Subsampled luma (ceil(H/step), ceil(W/step)) float32 in [0, 255] of a decoded frame.

    Reads the Y plane in place for planar YUV / gray formats (no conversion); other formats go
    through swscale.
    """
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


# -- the decode pass ----------------------------------------------------------------------------


def skip_mode(index: PacketIndex, frames: FrameSet) -> str:
    """FFmpeg ``skip_frame`` value for a frame set.

    ``"ip"`` drops every B-frame (cheapest; pictures after a skipped reference B-frame may be
    damaged, motion vectors are not). ``"reference"`` drops what no other picture needs: B-frames
    when none of them is a reference, else only non-reference pictures (pixels stay exact).
    """
    if frames == "all" or not index.pts_reliable:
        return "DEFAULT"
    if frames == "ip":
        return "BIDIR"
    b = index.pict_type == "B"
    if not b.any():
        return "DEFAULT"
    if index.pict_type_source == "bitstream" and not np.any(index.is_reference & b):
        return "BIDIR"
    return "NONREF"


def decode_pass(path: str, index: PacketIndex, *, skip: str, export_mvs: bool,
                threads: int = 0, keep: np.ndarray | None = None
                ) -> Iterator[tuple[int, Any, np.ndarray | None]]:
    """Decode the stream once, yielding (presentation index, av.VideoFrame, vectors or None).

    Frames are mapped to presentation indices by pts (as the reader does); frames whose pts is
    not in the index (discarded by an edit list) are dropped, and so are those of damaged
    packets. When the index says pts are unreliable, frames are counted in output order instead
    (``skip`` must then be ``"DEFAULT"``), and the pass ends at the first damaged packet: the
    frames after it are missing rather than yielded under shifted indices (as the reader does).
    Output is in presentation order. ``keep`` (a (F,) bool mask over presentation indices)
    decodes but does not yield the other frames (e.g. reference B-frames that are decoded only
    so that later pictures stay exact).

    Raises:
        PtsUnreliable: decoded timestamps go backwards (retry with :func:`sequential`).
        CorruptVideoError: not a single frame could be decoded.
    """
    import av

    container = av.open(path, metadata_errors="ignore")
    try:
        stream: Any = container.streams[index.stream_index]
        ctx: Any = stream.codec_context
        if export_mvs:
            ctx.options = {"flags2": "+export_mvs"}
            stream.thread_type = "SLICE"
        else:
            stream.thread_type = "AUTO"
        ctx.thread_count = threads
        ctx.skip_frame = skip
        counting = not index.pts_reliable
        pts_to_index = {int(p): i for i, p in enumerate(index.pts)}
        last = -1
        count = -1
        stats = DecodeStats()
        for frame in decode_packets(container.demux(stream), stream.codec_context, path, stats,
                                    max_errors=0 if counting else None):
            count += 1
            if counting:  # frame i is the i-th picture output (nothing skipped, nothing damaged)
                idx: int | None = count if count < index.num_frames else None
            else:
                pts = frame.pts if frame.pts is not None else frame.dts
                idx = pts_to_index.get(int(pts)) if pts is not None else None
            if idx is not None and idx <= last:
                # decoded timestamps go backwards (e.g. packed-bitstream AVI): the pts mapping
                # cannot be trusted; callers retry counting frames in output order
                raise PtsUnreliable(f"{path}: decoded timestamps are not monotonic")
            if idx is None:
                continue
            last = idx
            if keep is not None and not keep[idx]:
                continue
            mvs = None
            if export_mvs:
                sd = frame.side_data.get("MOTION_VECTORS")
                mvs = sd.to_ndarray() if sd is not None else None
            yield idx, frame, mvs
        if count < 0:
            raise CorruptVideoError(
                f"{path}: no frame of video stream {index.stream_index} ({index.codec}) could "
                f"be decoded ({stats.damaged_packets} damaged packets)", path=path)
        if counting and stats.damaged_packets:
            logger.warning("%s: damaged data while counting frames in output order: the %d "
                           "frames after output %d are left out", path,
                           index.num_frames - last - 1, last)
        elif stats.damaged_packets:
            logger.info("%s: %d damaged packets skipped during the codec pass", path,
                        stats.damaged_packets)
    finally:
        container.close()


def motion_vectors(path: str | os.PathLike[str], *, frames: FrameSet = "ip",
                   stream: int | None = None, index: PacketIndex | None = None,
                   threads: int = 0) -> MotionFields:
    """Motion fields of every analysed frame, from the decoder's motion-vector export.

    Args:
        path: the video file (H.264, MPEG-1/2 or MPEG-4 part 2).
        frames: ``"ip"`` decodes I- and P-frames only (about 2x cheaper than all frames; the
            vectors are exact, the skipped B-frames get none); ``"reference"`` keeps the
            B-frames other pictures refer to; ``"all"`` decodes everything.
        stream: video stream (see :func:`packet_index`).
        index: a :class:`PacketIndex` already built for ``path`` (saves the demux; checked: an
            index of another file is an :class:`~vidsel.errors.InvalidArgumentError`).
        threads: decoder threads (0 lets FFmpeg choose; SLICE threading is always used).

    Returns:
        :class:`MotionFields` on a 16 px grid of the coded picture.

    Raises:
        UnsupportedCodecError: the codec exports no motion vectors (HEVC, VP8, VP9, AV1...):
            use :func:`select_patches`, which falls back to pixel differences.
        CorruptVideoError: no frame could be decoded.
    """
    from ..errors import UnsupportedCodecError

    check_choice("frames", frames, FRAME_SETS)
    threads = check_positive_int("threads", threads, allow_zero=True)
    index = index_for(path, index, stream)
    if index.codec not in MV_CODECS:
        raise UnsupportedCodecError(
            f"{index.path}: codec {index.codec!r} exports no motion vectors (supported: "
            f"{', '.join(sorted(MV_CODECS))}); select_patches falls back to pixel differences")
    t0 = time.perf_counter()
    idx_l: list[int] = []
    types: list[str] = []
    flows: list[np.ndarray] = []
    covs: list[np.ndarray] = []
    grid: tuple[int, int] | None = None
    coded = (0, 0)
    try:
        for i, frame, mvs in prefetch(decode_pass(index.path, index, skip=skip_mode(index, frames),
                                                  export_mvs=True, threads=threads)):
            if grid is None:
                coded = (frame.height, frame.width)
                grid = (-(-frame.height // BLOCK), -(-frame.width // BLOCK))
            fl, cv = mv_grid(mvs if mvs is not None else np.zeros(0, _MV_DTYPE), grid)
            idx_l.append(i)
            types.append({1: "I", 2: "P", 3: "B"}.get(int(frame.pict_type), "S"))
            flows.append(fl)
            covs.append(cv)
    except PtsUnreliable:
        return motion_vectors(path, frames=frames, index=sequential(index), threads=threads)
    if grid is None:
        raise DecodeError(f"{index.path}: no frame could be decoded for motion vectors")
    flow = np.stack(flows)
    cov = np.stack(covs)
    return MotionFields(
        path=index.path, codec=index.codec, frame_indices=np.asarray(idx_l, np.int64),
        pict_type=np.asarray(types, "<U1"), flow=flow, coverage=cov,
        intra_share=(1.0 - cov.mean(axis=(1, 2))).astype(np.float32), block=BLOCK,
        coded_size=coded, elapsed_s=time.perf_counter() - t0)


_MV_DTYPE = np.dtype([("source", "<i4"), ("w", "u1"), ("h", "u1"), ("src_x", "<i2"),
                      ("src_y", "<i2"), ("dst_x", "<i2"), ("dst_y", "<i2"), ("flags", "<u8"),
                      ("motion_x", "<i4"), ("motion_y", "<i4"), ("motion_scale", "<u2")])
