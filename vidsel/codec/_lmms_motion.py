"""``score_mode="mvwarp"`` of the lmms-video-utils reference mode: the codec metadata pass and
the motion-compensated residual, bit-exact with lmms-video-utils 0.1.0 on CPU torch.

lmms-video-utils' ``CodecMetadataIndex`` decodes with FFmpeg frame threads and
``flags2=+export_mvs``: frame ``i`` = the ``i``-th picture the decoder outputs, its "packet
size" = the size of the packet whose decode call returned it (0 for further pictures of the
same call), which depends on the threads. Its motion vectors are those of a single-threaded
decode except when its threads race: then a few random frames lose or get mismatched side data
and two of its own calls differ. Here the sizes come from a frame-threaded pass like its own
(which also gives the sampled pictures' RGB) and the vectors from a single-threaded pass
(:func:`vidsel.io.decode_stream`), so the result is repeatable and equals lmms-video-utils'
whenever its threads did not race. Vectors are painted onto a per-pixel field, the later row
winning where blocks overlap.

The residual: ``|luma(cur) - luma(warp(prev, mv(cur)))|`` where the frame has vectors,
``|luma(cur) - luma(prev)|`` otherwise; torch's ``grid_sample`` (bilinear, border padding,
align_corners=False) is reproduced with its float32 fused multiply-adds (see
:mod:`._lmms_ops`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CorruptVideoError
from ..io import FrameConverter, PacketTable, decode_stream, open_container
from ._lmms_ops import block_sums, fma, linear_weights, luma

__all__ = ["CodecMeta", "mvwarp_scores", "resize_field", "scan_meta"]

_F32 = np.float32


@dataclass(frozen=True)
class CodecMeta:
    """Sampled pictures of one metadata pass.

    Attributes:
        rgb: (S, H, W, 3) uint8 pictures as decoded (the ``frame.to_ndarray("rgb24")`` call).
        motion: S motion-vector tables (structured arrays) or None (no side data).
        packet_size: (S,) int64 "packet size" of each sampled picture (see the module doc).
        num_frames: pictures the decoder output.
    """

    rgb: np.ndarray
    motion: list[np.ndarray | None]
    packet_size: np.ndarray
    num_frames: int


def scan_meta(table: PacketTable, sampled: np.ndarray) -> CodecMeta:
    """The sampled pictures, their packet sizes as lmms-video-utils attributes them, and their
    motion vectors.

    Two passes: FFmpeg frame threads (as lmms-video-utils' metadata pass: which decode call
    returns a picture, hence its "packet size", depends on the threads) keeping the sampled
    pictures' RGB; then a single-threaded motion-vector pass (what lmms-video-utils' pass
    exports whenever its threads do not race, and the same every run).

    Raises:
        CorruptVideoError: the decoder failed, or a sampled picture never came out.
    """
    path = table.path
    where = {int(f): i for i, f in enumerate(sampled)}
    rgb: list[np.ndarray | None] = [None] * len(sampled)
    sizes = np.zeros(len(sampled), np.int64)
    converter = FrameConverter()
    count = 0
    with open_container(path) as container:
        stream: Any = container.streams[table.stream_index]
        stream.thread_type = "AUTO"
        try:
            for packet in container.demux(stream):
                size = int(packet.size or 0)
                for j, frame in enumerate(packet.decode()):
                    i = where.get(count)
                    if i is not None:
                        sizes[i] = size if j == 0 else 0
                        rgb[i] = converter.rgb(frame, (frame.height, frame.width))
                    count += 1
        except Exception as e:  # FFmpeg's errors; lmms-video-utils has no recovery either
            raise CorruptVideoError(f"{path}: decoding failed at picture {count} "
                                    f"({type(e).__name__}: {e})", path=path) from e
    missing = [int(sampled[i]) for i, x in enumerate(rgb) if x is None]
    if missing:
        raise CorruptVideoError(f"{path}: {len(missing)} sampled pictures were not decoded "
                                f"(first {missing[0]}; {count} pictures output)", path=path,
                                missing=tuple(missing))
    keep = np.zeros(len(table), bool)
    keep[sampled[sampled < len(table)]] = True
    motion: list[np.ndarray | None] = [None] * len(sampled)
    for sf in decode_stream(table, export_mvs=True, threads=1, keep=keep, prefetch=4):
        i = where.get(sf.index)
        if i is not None:  # a copy: a view of the side data would keep the picture alive
            mv = sf.motion_vectors
            motion[i] = None if mv is None else mv.copy()
    return CodecMeta(rgb=np.stack(rgb), motion=motion,  # type: ignore[arg-type]
                     packet_size=sizes, num_frames=count)


def dense_field(mvs: np.ndarray | None, h: int, w: int) -> np.ndarray:
    """(h, w, 2) float32 per-pixel motion (dx, dy) in pixels: each row's block
    ``[dst - size // 2, + size)`` (clipped) painted in table order, later rows winning."""
    if mvs is None or len(mvs) == 0:
        return np.zeros((h, w, 2), _F32)
    bw, bh = mvs["w"].astype(np.int64), mvs["h"].astype(np.int64)
    x0 = np.maximum(0, mvs["dst_x"].astype(np.int64) - bw // 2)
    y0 = np.maximum(0, mvs["dst_y"].astype(np.int64) - bh // 2)
    x1, y1 = np.minimum(w, x0 + bw), np.minimum(h, y0 + bh)
    scale = mvs["motion_scale"].astype(np.float64)
    scale[scale == 0] = 1.0
    vec = np.stack([mvs["motion_x"] / scale, mvs["motion_y"] / scale], -1).astype(_F32)
    # paint on the coarsest grid every block edge lies on (4 px for H.264 partitions)
    c = int(np.gcd.reduce(np.concatenate([x0, y0, bw, bh, [0]])))
    c = max(c, 1)
    gh, gw = -(-h // c), -(-w // c)
    cy0, cx0 = y0 // c, x0 // c  # (M,)
    cy1 = np.minimum(gh, np.where(y1 > y0, -(-y1 // c), cy0))
    cx1 = np.minimum(gw, np.where(x1 > x0, -(-x1 // c), cx0))
    cbh, cbw = bh // c, bw // c
    owner = np.full((gh, gw), -1, np.int64)  # the last row covering each cell
    rows = np.arange(len(mvs))
    for sy, sx in {(int(a), int(b)) for a, b in zip(cbh, cbw)}:
        m = (cbh == sy) & (cbw == sx)
        r, ys, xs, ye, xe = rows[m], cy0[m], cx0[m], cy1[m], cx1[m]
        for dy in range(sy):
            for dx in range(sx):
                yy, xx = ys + dy, xs + dx
                ok = (yy < ye) & (xx < xe)
                if not ok.any():
                    continue
                yy, xx, rr = yy[ok], xx[ok], r[ok]
                # equal cells within one assignment: rows ascend, so the last (largest) wins
                owner[yy, xx] = np.maximum(owner[yy, xx], rr)
    if c > 1:
        owner = np.repeat(np.repeat(owner, c, axis=0), c, axis=1)[:h, :w]
    # owner -1 (no block) picks the zero row
    return np.concatenate([np.zeros((1, 2), _F32), vec])[owner + 1]  # type: ignore[no-any-return]


def resize_field(field: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """(H, W, 2) float32 -> (oh, ow, 2): torch bilinear resize, then dx *= ow / W and
    dy *= oh / H (lmms-video-utils' ``_resize_field``)."""
    h, w, _ = field.shape
    oh, ow = out_hw
    if (h, w) == (oh, ow):
        return field
    hi0, hi1, hw0, hw1 = linear_weights(h, oh)
    wi0, wi1, ww0, ww1 = linear_weights(w, ow)
    t = np.add(field[:, wi0] * ww0.astype(np.float64)[None, :, None],
               field[:, wi1] * ww1[None, :, None], dtype=np.float64,
               out=np.empty((h, ow, 2), _F32), casting="same_kind")  # (H, ow, 2)
    out = np.add(t[hi0] * hw0.astype(np.float64)[:, None, None], t[hi1] * hw1[:, None, None],
                 dtype=np.float64, out=np.empty((oh, ow, 2), _F32), casting="same_kind")
    out[..., 0] *= _F32(float(ow) / float(w))
    out[..., 1] *= _F32(float(oh) / float(h))
    return out


def warp(prev: np.ndarray, mv: np.ndarray) -> np.ndarray:
    """``grid_sample(prev, base + mv)`` as lmms-video-utils' ``_warp_with_grid_sample``.

    Args:
        prev: (H, W, 3) float32 picture.
        mv: (H, W, 2) float32 displacement (dx, dy) in pixels.

    Returns:
        (H, W, 3) float32.
    """
    h, w, _ = prev.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=_F32), np.arange(h, dtype=_F32))
    coords = []
    for base, d, size in ((gx, mv[..., 0], w), (gy, mv[..., 1], h)):
        norm = ((_F32(2) * (base + d) + _F32(1)) / _F32(size) - _F32(1)).astype(_F32)
        pix = fma(norm + _F32(1), np.float64(_F32(size) / _F32(2)), np.float64(-0.5))
        coords.append(np.minimum(_F32(size - 1), np.maximum(pix, _F32(0))).astype(_F32))
    x, y = coords
    xw, yn = np.floor(x), np.floor(y)
    we = (x - xw).astype(_F32)
    ea = (_F32(1) - we).astype(_F32)
    no = (y - yn).astype(_F32)
    so = (_F32(1) - no).astype(_F32)
    weights = (so * ea, so * we, no * ea, no * we)  # nw, ne, sw, se, float32
    xi, yi = xw.astype(np.int64), yn.astype(np.int64)
    # a zero row and column stand for the out-of-range neighbours of the last row / column
    pad = np.zeros((h + 1, w + 1, 3), _F32)
    pad[:h, :w] = prev
    flat = pad.reshape(-1, 3)
    base = (yi * (w + 1) + xi).reshape(-1)  # (H*W,)
    acc = (flat[base] * weights[0].reshape(-1, 1)).astype(_F32)  # (H*W, 3), nw
    for off, wt in zip((1, w + 1, w + 2), weights[1:]):  # ne, sw, se: fused multiply-adds
        acc = fma(flat[base + off], wt.reshape(-1, 1), acc)
    return acc.reshape(h, w, 3)


def _luma_float(f: np.ndarray) -> np.ndarray:
    """(..., 3) float32 -> (...) float32 luma in torch's op order."""
    return (_F32(0.299) * f[..., 0] + _F32(0.587) * f[..., 1]  # type: ignore[no-any-return]
            + _F32(0.114) * f[..., 2])


def mvwarp_scores(frames: np.ndarray, fields: np.ndarray, bitcost: np.ndarray | None,
                  block_px: int, weight: float = 0.5,
                  mapper: Callable[..., Iterable[np.ndarray]] = map) -> np.ndarray:
    """Block scores of one group (lmms-video-utils' ``mvwarp_score``).

    Args:
        frames: (n, H, W, 3) uint8 resized pictures.
        fields: (n, H, W, 2) float32 resized motion fields.
        bitcost: (n,) packet sizes, or None (``bitcost_score_mode="off"``).
        block_px: block side in pixels.
        weight: ``bitcost_score_weight`` (additive: ``score * (1 + weight * normalised size)``).
        mapper: ``map`` or a thread pool's ``map`` (one residual per call).

    Returns:
        (n - 1, H // block_px, W // block_px) float32; row j scores picture j + 1.
    """
    lum = [luma(f) for f in frames]  # (H, W) each, exact for integer pixels

    def residual(j: int) -> np.ndarray:
        if np.any(fields[j] != 0):
            warped = warp(frames[j - 1].astype(_F32), fields[j])
            return np.abs(lum[j] - _luma_float(warped))  # type: ignore[no-any-return]
        return np.abs(lum[j] - lum[j - 1])  # type: ignore[no-any-return]

    score = block_sums(np.stack(list(mapper(residual, range(1, len(frames))))), block_px)
    if bitcost is None:
        return score
    bc = np.asarray(bitcost, _F32)[1: len(frames)]
    lo, hi = bc.min(), bc.max()
    denom = max(_F32(hi - lo), _F32(1e-8))
    norm = ((bc - lo).astype(_F32) / denom).astype(_F32)
    w = (_F32(1) + (_F32(weight) * norm).astype(_F32)).astype(_F32)
    return (score * w[:, None, None]).astype(_F32)  # type: ignore[no-any-return]
