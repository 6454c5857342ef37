"""Per-frame measurements of the codec pass, computed for a chunk of frames at once.

The decode pass (:func:`vidsel.codec._scan.scan`) hands its frames over in chunks of
consecutive pictures of one coded size; :func:`chunk_features` measures all of them with a few
array operations (one ``bincount`` for every motion vector of the chunk, one batched camera
fit, one histogram, stacked luma planes) instead of some forty small numpy calls per frame, and
the scan's sequential rules (cuts, fades, hollow frames, anchors, the token pool) then run on
the results. The measurements equal the per-frame functions of :mod:`vidsel.codec._score`
(:func:`~vidsel.codec._score.motion_energy`, :func:`~vidsel.codec._score.cut_histogram`, ...),
which are the one-frame case of the same code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._motion import mv_grids
from ._score import (
    Camera,
    block_means,
    cut_histograms,
    motion_energies,
    pixel_diff_energies,
)

__all__ = ["DARK_LUMA", "FADE_BLACK", "FADE_SAMPLES", "FLAT_LUMA", "Features", "chunk_features",
           "dark_flat", "fade_ratios"]

#: A block (16 px) is *dark and flat* (shows nothing) when its mean luma (the Y plane, 0-255,
#: video black = 16) is below DARK_LUMA and its standard deviation below FLAT_LUMA: about an
#: RGB patch mean < 20 and std < 4.
DARK_LUMA = 36.0
FLAT_LUMA = 4.0
#: Black levels a fade goes to or from: video range (16) and full range (0).
FADE_BLACK = (16.0, 0.0)
#: A change of at least FADE_MIN_MAD grey levels may be a fade (below it, no fade is fitted).
FADE_MIN_MAD = 1.0
#: The fade fit uses every third luma sample, or fewer where a picture has more than
#: FADE_SAMPLES of them (a 720p picture's 57,600 subsampled luma values: every eighth).
FADE_SAMPLES = 8000


def dark_flat(luma: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(N, Gh, Gw) bool: the blocks of N (coded-orientation) luma planes (N, h, w) that are
    dark and flat."""
    m = block_means(luma, grid)
    sq = block_means(luma * luma, grid)
    return (m < DARK_LUMA) & (sq - m * m < FLAT_LUMA * FLAT_LUMA)  # type: ignore[no-any-return]


def fade_ratios(luma: np.ndarray, prev: np.ndarray, mad: np.ndarray) -> np.ndarray:
    """(N,) float64: per frame, the mean residual of the best fit ``luma - k = gain * (prev -
    k)`` (a fade to or from black: the black level ``k``, 16 for video range or 0 for full
    range, stays put), over the frames' mean absolute difference ``mad`` (N,): near 0 for a
    fade, near 1 or more for motion, a cut or a change of tint (1 where ``mad`` <= 0).

    ``luma``, ``prev``: (N, h, w) luma planes and those of the previous frames (every third
    sample is used, or every ``ceil(h * w / FADE_SAMPLES)``-th where that is more).
    """
    n = len(luma)
    step = max(3, -(-luma[0].size // FADE_SAMPLES)) if n else 3
    x = prev.reshape(n, -1)[:, ::step].astype(np.float64)
    y = luma.reshape(n, -1)[:, ::step].astype(np.float64)
    best = np.full(n, np.inf)
    for k in FADE_BLACK:
        dx, dy = x - k, y - k
        var = np.einsum("ij,ij->i", dx, dx)
        gain = np.where(var > 1e-6, np.einsum("ij,ij->i", dx, dy) / np.maximum(var, 1e-6), 0.0)
        best = np.minimum(best, np.abs(dy - gain[:, None] * dx).mean(axis=1))
    mad = np.asarray(mad, np.float64)
    return np.where(mad > 0.0, best / np.where(mad > 0.0, mad, 1.0), 1.0)  # type: ignore[no-any-return]


@dataclass(frozen=True, repr=False)
class Features:
    """Measurements of a chunk of N frames, A of them analysed.

    Attributes:
        energy: (N, Gh, Gw) float32 change energy of each frame (zeros where it adds none).
        adds: (N,) bool: the frame adds its energy to the pass's accumulator (every analysed
            frame; a reference B-frame only with motion vectors).
        rows: (A,) int64 positions of the analysed frames in the chunk, in order.
        hdist: (A,) histogram distance to the previous analysed frame (0 for the first).
        mad: (A,) mean absolute luma change from the previous analysed frame of the same size
            (0 without one).
        has_prev: (A,) bool: there is such a previous frame.
        intra: (A,) share of intra-coded cells (NaN where the energy is a pixel difference).
        ratio: (A,) :func:`fade_ratios` (1 where ``mad`` < FADE_MIN_MAD).
        direction: (A,) sign of the mean luma change (0 where ``mad`` < FADE_MIN_MAD).
        dark: (A, Gh, Gw) bool :func:`dark_flat` blocks.
        std: (A,) luma standard deviation inside the crop.
        dim: (A,) share of the luma inside the crop below DARK_LUMA.
        last_luma, last_hist: the last analysed frame's luma plane and histogram (the next
            chunk's previous frame), or the ones handed in when nothing was analysed.
    """

    energy: np.ndarray
    adds: np.ndarray
    rows: np.ndarray
    hdist: np.ndarray
    mad: np.ndarray
    has_prev: np.ndarray
    intra: np.ndarray
    ratio: np.ndarray
    direction: np.ndarray
    dark: np.ndarray
    std: np.ndarray
    dim: np.ndarray
    last_luma: np.ndarray | None
    last_hist: np.ndarray | None


def chunk_features(mvs: Sequence[np.ndarray | None], analysed: np.ndarray,
                   luma: np.ndarray, prev_luma: np.ndarray | None,
                   prev_hist: np.ndarray | None, *, use_mv: bool, camera: Camera,
                   grid: tuple[int, int], active: tuple[slice, slice]) -> Features:
    """Measure a chunk of frames of one coded size.

    Args:
        mvs: N exported motion-vector arrays (None or empty: none).
        analysed: (N,) bool: the frames analysed (the others only add motion energy).
        luma: (A, h, w) float32 luma planes of the analysed frames (coded orientation).
        prev_luma: (h, w) luma of the previous analysed frame of the same size, or None.
        prev_hist: (HIST_BINS,) histogram of the previous analysed frame (any size), or None.
        use_mv: the change signal is motion vectors (frames without any fall back to pixel
            differences).
        camera: camera-motion compensation.
        grid: (Gh, Gw) block grid of the coded picture.
        active: the luma samples inside the crop (rows, columns).
    """
    n = len(mvs)
    gh, gw = grid
    rows = np.flatnonzero(analysed)
    a = len(rows)
    has_mv = np.array([m is not None and len(m) > 0 for m in mvs], bool)
    # reference B-frames add energy only with vectors; analysed frames always
    adds = analysed | has_mv
    energy = np.zeros((n, gh, gw), np.float32)
    intra = np.full(a, np.nan)
    mv_rows = np.flatnonzero(has_mv & (use_mv | ~analysed))
    if len(mv_rows):
        flow, cov = mv_grids([mvs[i] for i in mv_rows.tolist()], grid)  # type: ignore[misc]
        energy[mv_rows] = motion_energies(flow, cov, camera=camera)
        order = np.full(n, -1)
        order[rows] = np.arange(a)
        j = order[mv_rows]  # the analysed frames among them
        intra[j[j >= 0]] = 1.0 - cov[j >= 0].mean(axis=(1, 2))
    if not a:
        z = np.zeros(0)
        return Features(energy, adds, rows, z, z, np.zeros(0, bool), intra, z, z,
                        np.zeros((0, gh, gw), bool), z, z, prev_luma, prev_hist)
    hist = cut_histograms(luma)  # (A, B)
    hdist = np.zeros(a)
    hdist[1:] = 0.5 * np.abs(hist[1:] - hist[:-1]).sum(axis=1)
    if prev_hist is not None:
        hdist[0] = 0.5 * float(np.abs(hist[0] - prev_hist).sum())
    has_prev = np.ones(a, bool)
    if prev_luma is None or prev_luma.shape != luma.shape[1:]:
        has_prev[0] = False
        prev = np.concatenate([luma[:1], luma[:-1]])  # row 0 unused
    else:
        prev = np.concatenate([prev_luma[None], luma[:-1]])
    mad = np.abs(luma - prev).mean(axis=(1, 2)).astype(np.float64)
    mad[~has_prev] = 0.0
    # pixel differences where no vectors give the energy (the first frame: zeros)
    pd = np.flatnonzero(np.isnan(intra) & has_prev)
    if len(pd):
        energy[rows[pd]] = pixel_diff_energies(luma[pd], prev[pd], grid)
    ratio = np.ones(a)
    direction = np.zeros(a)
    fit = np.flatnonzero(mad >= FADE_MIN_MAD)
    if len(fit):
        ratio[fit] = fade_ratios(luma[fit], prev[fit], mad[fit])
        means = luma.mean(axis=(1, 2))
        pmeans = prev[fit].mean(axis=(1, 2))
        direction[fit] = np.sign(means[fit] - pmeans)
    seen = luma[(slice(None), *active)]  # (A, h', w') the picture inside the crop
    std = seen.std(axis=(1, 2)).astype(np.float64)
    dim = (seen < DARK_LUMA).mean(axis=(1, 2))
    return Features(energy, adds, rows, hdist, mad, has_prev, intra, ratio, direction,
                    dark_flat(luma, grid), std, dim, luma[-1], hist[-1])
