"""Per-frame change energy on the block grid, camera-motion compensation and patch mapping.

Energies are normalised per frame into [0, 1] by a robust percentile so that one frame with
violent motion cannot take the whole budget, and a floor keeps noise in static frames from
being stretched to 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from ..registry import Registry

__all__ = ["CAMERA_MODELS", "SIGNALS", "block_overlap", "compensate", "cut_histogram",
           "motion_energy", "pixel_diff_energy", "robust_normalise"]

Camera = Literal["none", "median", "affine"]
CAMERA_MODELS: tuple[str, ...] = ("none", "median", "affine")
#: Change signals: decoder motion vectors, or the fallback pixel-difference energy.
SIGNALS: tuple[str, ...] = ("motion_vectors", "pixel_diff")

#: Percentile used to normalise a frame's energy (OneVision-Encoder uses the 95th).
NORM_PERCENTILE = 95.0
#: Below this compensated motion (pixels) nothing counts as moving.
MOTION_FLOOR_PX = 0.75
#: Below this mean absolute luma change (0-255) nothing counts as changing.
DIFF_FLOOR = 6.0
#: The affine camera model is fitted on at most this many grid cells (a regular subsample).
AFFINE_CELLS = 1200
#: Bins of the luma histogram used as a cut hint, and the most luma samples it is built from.
HIST_BINS = 32
HIST_SAMPLES = 20_000


def robust_normalise(energy: np.ndarray, floor: float,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """``energy / max(p95, floor)`` clipped to [0, 1] (float32, same shape)."""
    vals = energy if weights is None else energy[weights > 0.5]
    ref = _quantile(vals, NORM_PERCENTILE / 100.0) if vals.size else 0.0
    return np.clip(energy / max(ref, floor), 0.0, 1.0).astype(np.float32)  # type: ignore[no-any-return]


_GRIDS: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}


def _coords(gh: int, gw: int, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Affine designs [1, x, y] (normalised cell coordinates) of the full grid (G, 3) and of
    every ``s``-th cell (G', 3), and the subsample's x and y (G',) (cached)."""
    key = (gh, gw, s)
    hit = _GRIDS.get(key)
    if hit is None:
        yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float64)
        xx /= max(gw, 1)
        yy /= max(gh, 1)
        a_full = np.stack([np.ones(gh * gw), xx.ravel(), yy.ravel()], axis=1)
        x, y = xx[::s, ::s].ravel(), yy[::s, ::s].ravel()
        a = np.stack([np.ones_like(x), x, y], axis=1)
        hit = (a_full, a, x, y)
        if len(_GRIDS) < 32:
            _GRIDS[key] = hit
    return hit


def _quantile(v: np.ndarray, q: float) -> float:
    """``np.quantile(v, q)`` (linear interpolation) of a non-empty array, via one partition
    (without the generic-axis overhead of ``np.percentile``)."""
    v = v.ravel()
    pos = q * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    p = np.partition(v, (lo, hi)) if hi > lo else np.partition(v, lo)
    return float(p[lo] + (pos - lo) * (p[hi] - p[lo]))


def _median(v: np.ndarray) -> float:
    return _quantile(v, 0.5)


def _affine_fit(flow: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Robust least-squares affine model of the flow; returns the (Gh, Gw, 2) model field.

    The model is ``f(x, y) = c + bx * x + by * y`` per component, fitted by weighted least
    squares in closed form (weighted means plus a 2 x 2 solve: no per-frame ``lstsq``) on the
    inter-coded cells, then refitted on the inliers (residual <= max(3 x median, 1 px)) so
    moving objects do not bias the camera model. Degenerate inlier sets (e.g. one row of
    cells) fall back to a minimum-norm ``lstsq``. Large grids are fitted on a regular subsample
    of about AFFINE_CELLS cells. About 0.05 ms per frame.
    """
    gh, gw = coverage.shape
    # fit on at most ~AFFINE_CELLS cells (every s-th row and column): same model, less work
    s = 1
    while (gh // s) * (gw // s) > AFFINE_CELLS:
        s += 1
    if s > 1 and np.count_nonzero(coverage[::s, ::s] > 0.5) < 6:
        s = 1  # few inter cells: the subsample could miss them all
    a_full, a, x, y = _coords(gh, gw, s)
    f = flow[::s, ::s].reshape(-1, 2).astype(np.float64)  # (G', 2)
    w = (coverage[::s, ::s].ravel() > 0.5).astype(np.float64)
    coef = np.zeros((3, 2))  # rows: constant, x, y (uncentred)
    for _ in range(2):  # fit, then refit on the inliers (moving objects are outliers)
        sw = float(w.sum())
        if sw < 6:
            break
        mx, my = float(w @ x) / sw, float(w @ y) / sw
        mf = (w @ f) / sw  # (2,)
        dx, dy = x - mx, y - my
        wdx, wdy = w * dx, w * dy
        sxx, syy, sxy = float(wdx @ dx), float(wdy @ dy), float(wdx @ dy)
        det = sxx * syy - sxy * sxy
        # both axes spanned (variance of at least a quarter cell) and not collinear
        if (sxx > sw * (0.25 / gw) ** 2 and syy > sw * (0.25 / gh) ** 2
                and det > 1e-6 * sxx * syy):
            sxf, syf = wdx @ f, wdy @ f  # (2,)
            bx = (syy * sxf - sxy * syf) / det
            by = (sxx * syf - sxy * sxf) / det
            coef = np.stack([mf - bx * mx - by * my, bx, by])
        else:  # the inliers do not span both axes: minimum-norm solution
            sq = np.sqrt(w)[:, None]
            coef = np.linalg.lstsq(a * sq, f * sq, rcond=None)[0]
        d = f - a @ coef
        res = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
        inl = res[w > 0]
        med = _median(inl) if inl.size else 0.0
        w = w * (res <= max(3.0 * med, 1.0))
    return (a_full @ coef).reshape(gh, gw, 2).astype(np.float32)  # type: ignore[no-any-return]


def compensate(flow: np.ndarray, coverage: np.ndarray, camera: Camera) -> np.ndarray:
    """Remove camera motion from a (Gh, Gw, 2) flow; returns the residual flow.

    ``"median"`` subtracts the per-frame median of dx and dy over inter-coded cells (what
    OneVision-Encoder does); ``"affine"`` subtracts a robust affine fit (also removes zoom and
    rotation); ``"none"`` keeps the raw vectors.
    """
    if camera == "none":
        return flow
    inter = coverage > 0.5
    if not inter.any():
        return flow
    if camera == "median":
        med = np.median(flow[inter], axis=0)  # (2,)
        return flow - med
    return flow - _affine_fit(flow, coverage)


def motion_energy(flow: np.ndarray, coverage: np.ndarray, *, camera: Camera) -> np.ndarray:
    """Normalised motion energy (Gh, Gw) float32 in [0, 1] of one frame.

    Intra-coded cells (no vector) count as fully changed: their content was not predictable
    from the reference.
    """
    res = compensate(flow, coverage, camera)
    mag = np.hypot(res[..., 0], res[..., 1])
    e = robust_normalise(mag, MOTION_FLOOR_PX, coverage)
    return (coverage * e + (1.0 - coverage)).astype(np.float32)  # type: ignore[no-any-return]


def block_mean(img: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mean of a 2-D array over a (Gh, Gw) grid of equal cells (edge cells may be partial)."""
    gh, gw = grid
    h, w = img.shape
    ch, cw = -(-h // gh), -(-w // gw)
    pad = np.pad(img, ((0, gh * ch - h), (0, gw * cw - w)), mode="edge")
    return pad.reshape(gh, ch, gw, cw).mean(axis=(1, 3))  # type: ignore[no-any-return]


def pixel_diff_energy(luma: np.ndarray, prev: np.ndarray | None,
                      grid: tuple[int, int]) -> np.ndarray:
    """Fallback signal: normalised mean |luma - previous| per cell, (Gh, Gw) float32 in [0, 1].

    The first analysed frame (no previous frame) gets zeros.
    """
    if prev is None or prev.shape != luma.shape:
        return np.zeros(grid, np.float32)
    diff = block_mean(np.abs(luma - prev), grid)
    return robust_normalise(diff, DIFF_FLOOR)


def cut_histogram(luma: np.ndarray) -> np.ndarray:
    """(HIST_BINS,) float32 normalised luma histogram (for cut hints)."""
    while luma.size > HIST_SAMPLES:  # a histogram needs no more samples than this
        luma = luma[::2, ::2]
    # luma is in [0, 255]: the bin index needs no lower clip
    b = np.minimum((luma.ravel() * (HIST_BINS / 256.0)).astype(np.intp), HIST_BINS - 1)
    h = np.bincount(b, minlength=HIST_BINS).astype(np.float32)
    return h / max(float(h.sum()), 1.0)  # type: ignore[no-any-return]


def block_overlap(n_out: int, out_len: float, n_cells: int, cell: float,
                  length: float) -> np.ndarray:
    """(n_out, n_cells) share of each grid cell that falls inside each output interval.

    Output interval ``i`` covers ``[i, i + 1) * out_len / n_out`` in the same pixel units as
    the cells ``[j, j + 1) * cell`` (clipped to ``length``).
    """
    step = out_len / n_out
    o0 = np.arange(n_out)[:, None] * step
    o1 = o0 + step
    c0 = np.arange(n_cells)[None, :] * cell
    c1 = np.minimum(c0 + cell, length)
    ov = np.clip(np.minimum(o1, c1) - np.maximum(o0, c0), 0.0, None)
    return (ov / np.maximum(c1 - c0, 1e-9)).astype(np.float32)  # type: ignore[no-any-return]


#: Registry of per-frame energy functions by signal name (one per entry of :data:`SIGNALS`).
EnergyFn = Callable[..., np.ndarray]
ENERGY: Registry[EnergyFn] = Registry("signal")
ENERGY.register("motion_vectors", motion_energy)
ENERGY.register("pixel_diff", pixel_diff_energy)
