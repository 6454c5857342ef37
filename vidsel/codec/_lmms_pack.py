"""Groups, scores and canvas packing of the lmms-video-utils reference mode.

One group = consecutive sampled frames ``[s, e)``; it becomes one I-canvas (its first frame,
whole) and ``images_per_group - 1`` P-canvases. P-canvas ``r`` takes the ``hp * wp`` best
``block_px``-pixel blocks of the frames of its slice of the group, each block's score being
its frame-difference energy attenuated by its rank within its frame
(``score / sqrt(1 + 0.5 rank)``) and by 0.15 where an earlier P-canvas of the group already
took that block position.

Layout of one canvas's positions (patch grid ``(hp * block) x (wp * block)``, row-major):
cell ``(ph, pw)`` holds ``(t, h, w)``, the source frame and the patch row and column in that
frame, or ``(-1, -1, -1)`` for an empty cell. Worked example (block 2, a 2 x 3-block canvas):
a P-canvas whose first pick is block (row 4, col 7) of frame 90 has cells (0, 0), (0, 1),
(1, 0), (1, 1) = (90, 8, 14), (90, 8, 15), (90, 9, 14), (90, 9, 15).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._lmms_ops import block_sums, topk_set

__all__ = ["Packed", "canvas_grid", "framediff_scores", "pack_group", "uniform_groups"]

_F32 = np.float32
#: Rank attenuation ``1 / sqrt(1 + LAMBDA * rank)`` and the penalty of a block position an
#: earlier P-canvas of the same group took (lmms-video-utils' constants).
ATTENUATION_LAMBDA = 0.5
SEEN_PENALTY = 0.15


def canvas_grid(max_pixels: int, block_px: int, src_h: int, src_w: int) -> tuple[int, int]:
    """(rows, cols) of blocks of a canvas: about ``max_pixels`` pixels at the source's aspect
    ratio (lmms-video-utils' ``_canvas_grid``, Python rounding included)."""
    target = max(1, max_pixels // (block_px * block_px))
    if src_h <= 0 or src_w <= 0:
        side = max(1, math.isqrt(target))
        return side, side
    ratio = src_w / src_h
    hp = max(1, round(math.sqrt(target / ratio)))
    wp = max(1, round(hp * ratio))
    while hp * wp > target and wp > 1:
        wp -= 1
    while hp * wp > target and hp > 1:
        hp -= 1
    return hp, wp


def uniform_groups(n_frames: int, n_groups: int, max_group_frames: int) -> list[tuple[int, int]]:
    """``n_groups`` near-equal consecutive ranges ``[s, e)`` of sampled frames (the first
    ``n_frames % n_groups`` one longer), each clamped to ``max_group_frames`` frames; frames
    after the last group are left out, as in lmms-video-utils' ``uniform_gop``."""
    if n_frames <= 0 or n_groups <= 0:
        return []
    base, rem = divmod(n_frames, n_groups)
    groups: list[tuple[int, int]] = []
    start = 0
    for g in range(n_groups):
        size = base + (1 if g < rem else 0)
        if size <= 0:
            continue
        end = min(n_frames, start + max(min(size, max_group_frames), 1))
        if end > start:
            groups.append((start, end))
        start = end
        if start >= n_frames:
            break
    return groups


@dataclass(frozen=True)
class Packed:
    """The canvases of one group.

    Attributes:
        canvases: (C, H, W, 3) uint8, C = images_per_group (I-canvas first).
        positions: (C, H/patch * W/patch, 3) int64 (t, h, w) per patch cell, -1 if empty.
        scores: (C, H/patch * W/patch) float32 frame-difference energy of the cell's block
            (NaN for I-canvas and empty cells).
        tie_ambiguous: P-canvases where equal non-zero scores of one frame straddle the pick
            boundary (torch's unstable argsort may then rank them otherwise).
    """

    canvases: np.ndarray
    positions: np.ndarray
    scores: np.ndarray
    tie_ambiguous: int


def framediff_scores(lum: np.ndarray, block_px: int) -> np.ndarray:
    """(n, H, W) float32 luma of a group -> (n - 1, H / b, W / b) float32 block sums of
    ``|luma[j] - luma[j - 1]|`` (row j - 1 scores frame j)."""
    return block_sums(np.abs(lum[1:] - lum[:-1]), block_px)


def pack_group(frames: np.ndarray, scores: np.ndarray, frame_ids: np.ndarray,
               grid: tuple[int, int], block: int, patch: int, images_per_group: int) -> Packed:
    """Pack one group.

    Args:
        frames: (n, H, W, 3) uint8 resized frames of the group, H = rows * block * patch.
        scores: (n - 1, rows, cols) float32 block scores; row j scores frame j + 1.
        frame_ids: (n,) int64 source frame index of each.
        grid: (rows, cols) of blocks per canvas.
        block, patch: patches per block side, pixels per patch side.
        images_per_group: canvases per group (1 I + the rest P).
    """
    n = len(frames)
    hb, wb = grid
    gh, gw = hb * block, wb * block  # patch grid of a canvas
    canvases = [frames[0]]
    ii, jj = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    positions = [np.stack([np.full((gh, gw), frame_ids[0]), ii, jj], -1).reshape(-1, 3)]
    cell_scores = [np.full(gh * gw, np.nan, _F32)]
    seen = np.zeros(hb * wb, bool)
    ambiguous = 0
    p_count = images_per_group - 1
    for r in range(p_count):
        f0 = max(0, round(r * n / p_count))
        f1 = min(len(scores), round((r + 1) * n / p_count))
        sel = np.zeros(0, np.int64)
        sub = scores[f0:f1].reshape(max(f1 - f0, 0), hb * wb)  # (nf, hb*wb)
        if f1 > f0:
            order = np.argsort(-sub, axis=1, kind="stable")  # descending, ties by position
            rank = np.empty_like(sub)
            np.put_along_axis(rank, order, np.arange(hb * wb, dtype=_F32)[None], axis=1)
            att = (sub * (_F32(1) / np.sqrt(_F32(1) + _F32(ATTENUATION_LAMBDA) * rank))
                   ).astype(_F32)
            if seen.any():
                att = (att * np.where(seen, _F32(SEEN_PENALTY), _F32(1))[None]).astype(_F32)
            flat = att.reshape(-1)
            sel = topk_set(flat, min(hb * wb, flat.size))  # sorted = (frame, bh, bw) order
            ambiguous += _tie_straddles(sub, sel)
        canvas, pos, sc = _p_canvas(frames, frame_ids, scores, sel, f0, grid, block, patch)
        canvases.append(canvas)
        positions.append(pos)
        cell_scores.append(sc)
        seen[sel % (hb * wb)] = True
    return Packed(canvases=np.stack(canvases), positions=np.stack(positions),
                  scores=np.stack(cell_scores), tie_ambiguous=ambiguous)


def _p_canvas(frames: np.ndarray, frame_ids: np.ndarray, scores: np.ndarray, sel: np.ndarray,
              f0: int, grid: tuple[int, int], block: int, patch: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Blocks ``sel`` (flat (frame, bh, bw) indices into ``scores[f0:]``, sorted) laid out
    row-major over the canvas's block grid; the rest black with positions -1."""
    hb, wb = grid
    bp = block * patch
    k = len(sel)
    local, rem = np.divmod(sel, hb * wb)
    bh, bw = np.divmod(rem, wb)
    src = f0 + local + 1  # group frame of each pick (score row j is frame j+1)
    h, w = hb * bp, wb * bp
    cells = np.zeros((hb * wb, bp, bp, 3), np.uint8)
    if k:
        fb = frames.reshape(len(frames), hb, bp, wb, bp, 3)
        cells[:k] = fb[src, bh, :, bw]  # (k, bp, bp, 3)
    canvas = cells.reshape(hb, wb, bp, bp, 3).transpose(0, 2, 1, 3, 4).reshape(h, w, 3)
    pos = np.full((hb * wb, block, block, 3), -1, np.int64)
    sc = np.full((hb * wb, block, block), np.nan, _F32)
    dh, dw = np.meshgrid(np.arange(block), np.arange(block), indexing="ij")  # (block, block)
    pos[:k, :, :, 0] = frame_ids[src][:, None, None]
    pos[:k, :, :, 1] = bh[:, None, None] * block + dh
    pos[:k, :, :, 2] = bw[:, None, None] * block + dw
    sc[:k] = scores[src - 1, bh, bw][:, None, None]
    flat_pos = pos.reshape(hb, wb, block, block, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 3)
    flat_sc = sc.reshape(hb, wb, block, block).transpose(0, 2, 1, 3).reshape(-1)
    return canvas, flat_pos, flat_sc


def _tie_straddles(sub: np.ndarray, sel: np.ndarray) -> int:
    """1 when some frame has equal non-zero scores of which only part was picked, else 0."""
    flat = np.zeros(sub.size, bool)
    flat[sel] = True
    for row, pk in zip(sub, flat.reshape(sub.shape)):
        vals, inv, counts = np.unique(row, return_inverse=True, return_counts=True)
        dup = (counts > 1) & (vals != 0)
        if not dup.any():
            continue
        for u in np.flatnonzero(dup):
            members = pk[inv == u]
            if members.any() and not members.all():
                return 1
    return 0
