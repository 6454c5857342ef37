"""Motion vectors from the decoder's export (through :func:`vidsel.io.decode_pass`).

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

import logging
import os
import time
from collections.abc import Iterator, Sequence

import numpy as np

from .._validate import check_choice, check_positive_int
from ..errors import DecodeError, UnsupportedCodecError
from ..io import FRAME_SETS, MV_DTYPE, FrameSet, PacketIndex, StreamFrame, decode_pass, index_for
from ..results import MotionFields

__all__ = ["BLOCK", "LUMA_STEP", "MV_CODECS", "luma_step", "motion_vectors", "mv_grid", "mv_grids"]

logger = logging.getLogger(__name__)

#: Decoders that export motion vectors.
MV_CODECS = frozenset({"h264", "mpeg4", "mpeg2video", "mpeg1video", "h263", "msmpeg4v3"})
#: Grid cell of the motion fields, in coded pixels (the macroblock size of MV codecs).
BLOCK = 16
#: Luma subsampling step used for pixel-difference energy and cut hints.
LUMA_STEP = 4
#: Pictures decoded ahead of the analysis, on a worker thread.
PREFETCH = 16

_MV_DTYPE = MV_DTYPE  # the name the tests knew


def _concat(arrs: list[np.ndarray]) -> np.ndarray:
    """Structured arrays of one dtype, concatenated as raw bytes (numpy copies structured
    items one by one, several times slower)."""
    dtype = arrs[0].dtype
    if all(a.dtype == dtype and a.flags.c_contiguous for a in arrs):
        return np.concatenate([a.view(np.uint8) for a in arrs]).view(dtype)
    return np.concatenate(arrs)  # pragma: no cover - PyAV hands out contiguous arrays


def mv_grids(arrs: Sequence[np.ndarray], grid: tuple[int, int], block: int = BLOCK
             ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mv_grid` of N frames at once (one ``np.bincount`` over all their vectors).

    Args:
        arrs: N (M_i,) structured arrays of exported vectors (:data:`vidsel.io.MV_DTYPE`).
        grid: (Gh, Gw) cells.

    Returns:
        flow (N, Gh, Gw, 2) float32, coverage (N, Gh, Gw) float32.
    """
    gh, gw = grid
    n, g = len(arrs), gh * gw
    lens = [len(a) for a in arrs]
    if not sum(lens):
        return np.zeros((n, gh, gw, 2), np.float32), np.zeros((n, gh, gw), np.float32)
    arr = _concat([a for a in arrs if len(a)]) if n > 1 else arrs[0]
    future = arr["source"] > 0
    # block area in cells (float64: bincount weights are float64 anyway)
    area = np.multiply(arr["w"], arr["h"], dtype=np.float64) * (1.0 / (block * block))
    # along the motion: dst - src for past references, src - dst for future ones
    k = area / np.maximum(arr["motion_scale"], 1)  # >= 0
    np.copysign(k, future - 0.5, out=k)  # negative for past references
    gy = np.minimum(np.maximum(arr["dst_y"] // block, 0), gh - 1).astype(np.intp)
    gx = np.minimum(np.maximum(arr["dst_x"] // block, 0), gw - 1)
    cell = gy * gw + gx  # (M,) flat cell index inside its frame
    if n > 1:
        cell += np.repeat(np.arange(n, dtype=np.intp) * g, lens)
    m = n * g
    wsum = np.bincount(cell, weights=area, minlength=m)
    sx = np.bincount(cell, weights=arr["motion_x"] * k, minlength=m)
    sy = np.bincount(cell, weights=arr["motion_y"] * k, minlength=m)
    inv = 1.0 / np.maximum(wsum, 1e-9)
    flow = np.empty((m, 2), np.float32)
    flow[:, 0] = sx * inv
    flow[:, 1] = sy * inv
    # B-frames carry two rows per block (past and future): coverage counts the area once.
    if future.any():
        fut = np.bincount(cell, weights=np.where(future, area, 0.0), minlength=m)
        cov = np.maximum(wsum - fut, fut)
    else:
        cov = wsum
    cov = np.minimum(cov, 1.0).astype(np.float32).reshape(n, gh, gw)
    return flow.reshape(n, gh, gw, 2), cov


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
    flow, cov = mv_grids([arr], grid, block)
    return flow[0], cov[0]


def luma_step(height: int, width: int) -> int:
    """Luma subsampling step for a picture: LUMA_STEP, doubled (up to 16) while the short side
    keeps more than 200 samples. Always a divisor of BLOCK, so luma cells align with blocks."""
    step = LUMA_STEP
    while min(height, width) / step > 200 and step < BLOCK:
        step *= 2
    return step


def _regrid(flow: np.ndarray, cov: np.ndarray, grid: tuple[int, int],
            scale: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A (gh, gw, 2) flow and (gh, gw) coverage of a picture of another size, resampled
    (nearest cell) onto ``grid``; vectors scaled by ``scale`` = (sy, sx) to its pixels."""
    rows = np.minimum(np.arange(grid[0]) * cov.shape[0] // grid[0], cov.shape[0] - 1)
    cols = np.minimum(np.arange(grid[1]) * cov.shape[1] // grid[1], cov.shape[1] - 1)
    fl = flow[rows][:, cols] * np.array([scale[1], scale[0]], np.float32)  # (dx, dy)
    return fl.astype(np.float32), cov[rows][:, cols]


def _fields(index: PacketIndex, frames: Iterator[StreamFrame]) -> MotionFields:
    """One decode pass: each frame's vectors on the BLOCK grid."""
    t0 = time.perf_counter()
    idx_l: list[int] = []
    types: list[str] = []
    flows: list[np.ndarray] = []
    covs: list[np.ndarray] = []
    grid: tuple[int, int] | None = None
    coded = (0, 0)
    for sf in frames:
        if grid is None:
            coded = sf.coded_size
            grid = (-(-coded[0] // BLOCK), -(-coded[1] // BLOCK))
        mvs = sf.motion_vectors
        if mvs is None:
            mvs = np.zeros(0, MV_DTYPE)
        size = sf.coded_size
        if size == coded:
            fl, cv = mv_grid(mvs, grid)
        else:  # the frame size changed mid-stream: resample onto the first frame's grid
            fl, cv = _regrid(*mv_grid(mvs, (-(-size[0] // BLOCK), -(-size[1] // BLOCK))),
                             grid, (coded[0] / size[0], coded[1] / size[1]))
        idx_l.append(sf.index)
        types.append(sf.pict_type)
        flows.append(fl)
        covs.append(cv)
    if grid is None:
        raise DecodeError(f"{index.path}: no frame could be decoded for motion vectors")
    flow = np.stack(flows)
    cov = np.stack(covs)
    return MotionFields(
        path=index.path, codec=index.codec, indices=np.asarray(idx_l, np.int64),
        pict_type=np.asarray(types, "<U1"), flow=flow, coverage=cov,
        intra_share=(1.0 - cov.mean(axis=(1, 2))).astype(np.float32), block=BLOCK,
        coded_size=coded, elapsed_s=time.perf_counter() - t0)


def motion_vectors(path: str | os.PathLike[str], *, frames: FrameSet = "ip",
                   stream: int | None = None, index: PacketIndex | None = None,
                   threads: int = 0, workers: int | None = None) -> MotionFields:
    """Motion fields of every analysed frame, from the decoder's motion-vector export.

    Args:
        path: the video file (H.264, MPEG-1/2 or MPEG-4 part 2).
        frames: ``"ip"`` decodes I- and P-frames only (about 2x cheaper than all frames; the
            vectors are exact, the skipped B-frames get none); ``"reference"`` keeps the
            B-frames other pictures refer to; ``"all"`` decodes everything.
        stream: video stream (see :func:`vidsel.io.packet_index`).
        index: a :class:`~vidsel.io.PacketIndex` already built for ``path`` (saves the demux;
            checked: an index of another file is an :class:`~vidsel.errors.InvalidArgumentError`).
        threads: accepted for compatibility; motion-vector passes decode single-threaded
            (threads lose side data or make damaged data decode differently run to run).
        workers: decoders working on independent stretches of the stream at once (H.264; see
            :func:`vidsel.io.decode_pass`), each single-threaded: the same fields as one
            sequential decoder. None: one per core, at most 4; 1: sequential.

    Returns:
        :class:`~vidsel.results.MotionFields` on a 16 px grid of the coded picture.

    Raises:
        UnsupportedCodecError: the codec exports no motion vectors (HEVC, VP8, VP9, AV1...):
            use :func:`select_patches`, which falls back to pixel differences.
        CorruptVideoError: no frame could be decoded.
    """
    check_choice("frames", frames, FRAME_SETS)
    threads = check_positive_int("threads", threads, allow_zero=True)
    if workers is not None:
        workers = check_positive_int("workers", workers)
    index = index_for(path, index, stream)
    if index.codec not in MV_CODECS:
        raise UnsupportedCodecError(
            f"{index.path}: codec {index.codec!r} exports no motion vectors (supported: "
            f"{', '.join(sorted(MV_CODECS))}); select_patches falls back to pixel differences")
    return decode_pass(index, _fields, skip=index.skip_mode(frames), export_mvs=True,
                       threads=threads, prefetch=PREFETCH, workers=workers)
