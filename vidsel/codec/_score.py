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

__all__ = ["CAMERA_MODELS", "SIGNALS", "affine_fits", "block_means",
           "block_overlap", "compensate", "compensate_many", "cut_histogram", "cut_histograms",
           "masked_quantile", "motion_energies", "motion_energy", "pixel_diff_energies",
           "pixel_diff_energy", "robust_normalise", "robust_normalise_many"]

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


#: Rows longer than this are reduced one by one with a partition (a sort of every row costs
#: more there).
SORT_MAX = 2048


def masked_quantile(values: np.ndarray, mask: np.ndarray | None, q: float) -> np.ndarray:
    """(N,) per row of (N, G) ``values``: :func:`_quantile` of the entries under the row's
    ``mask`` (None: every entry), 0 where a row has none."""
    n, g = values.shape
    if g > SORT_MAX:
        out = np.zeros(n, values.dtype)
        for i in range(n):
            v = values[i] if mask is None else values[i][mask[i]]
            if v.size:
                out[i] = _quantile(v, q)
        return out
    if mask is None:
        srt = np.sort(values, axis=1)
        cnt = np.full(n, g, np.int64)
    else:
        srt = np.sort(np.where(mask, values, np.inf), axis=1)  # masked-out entries last
        cnt = np.count_nonzero(mask, axis=1)
    pos = q * (np.maximum(cnt, 1) - 1)  # (N,) float64
    lo = pos.astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(cnt, 1) - 1)
    rows = np.arange(n)
    some = cnt > 0
    p_lo = np.where(some, srt[rows, lo], 0).astype(values.dtype)  # empty rows: 0
    p_hi = np.where(some, srt[rows, hi], 0).astype(values.dtype)
    # as _quantile computes it: in the values' dtype
    return p_lo + (pos - lo).astype(values.dtype) * (p_hi - p_lo)  # type: ignore[no-any-return]


def robust_normalise_many(energy: np.ndarray, floor: float,
                          weights: np.ndarray | None = None) -> np.ndarray:
    """:func:`robust_normalise` of each of N frames: (N, ...) energies (and weights) ->
    (N, ...) float32."""
    n = len(energy)
    flat = energy.reshape(n, -1)
    mask = None if weights is None else weights.reshape(n, -1) > 0.5
    ref = masked_quantile(flat, mask, NORM_PERCENTILE / 100.0).astype(np.float64)
    den = np.maximum(ref, floor).astype(energy.dtype).reshape((n,) + (1,) * (energy.ndim - 1))
    return np.clip(energy / den, 0.0, 1.0).astype(np.float32)  # type: ignore[no-any-return]


def robust_normalise(energy: np.ndarray, floor: float,
                     weights: np.ndarray | None = None) -> np.ndarray:
    """``energy / max(p95, floor)`` clipped to [0, 1] (float32, same shape)."""
    return robust_normalise_many(energy[None], floor,  # type: ignore[no-any-return]
                                 None if weights is None else weights[None])[0]


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


def _rowdot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(N,) dot product of each row of two (N, G) arrays."""
    return np.einsum("ij,ij->i", u, v)  # type: ignore[no-any-return]


def _affine_coefs(fx: np.ndarray, fy: np.ndarray, w: np.ndarray, x: np.ndarray,
                  y: np.ndarray, a: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(N, 3, 2) affine coefficients (rows: constant, x, y; columns: dx, dy) of N flows
    ``fx``, ``fy`` (N, G') float64 on cells at ``x``, ``y`` (G',) (design ``a`` (G', 3)) with
    inter-coded weights ``w`` (N, G') (see :func:`affine_fits`)."""
    gh, gw = grid
    n = len(fx)
    coef = np.zeros((n, 3, 2))
    going = np.ones(n, bool)
    for _ in range(2):  # fit, then refit on the inliers (moving objects are outliers)
        sw = w.sum(axis=1)  # (N,)
        going &= sw >= 6
        if not going.any():
            break
        swd = np.where(going, sw, 1.0)
        mx, my = (w @ x) / swd, (w @ y) / swd
        dx, dy = x[None, :] - mx[:, None], y[None, :] - my[:, None]  # (N, G')
        wdx, wdy = w * dx, w * dy
        sxx, syy, sxy = _rowdot(wdx, dx), _rowdot(wdy, dy), _rowdot(wdx, dy)
        det = sxx * syy - sxy * sxy
        # both axes spanned (variance of at least a quarter cell) and not collinear
        ok = ((sxx > sw * (0.25 / gw) ** 2) & (syy > sw * (0.25 / gh) ** 2)
              & (det > 1e-6 * sxx * syy))
        safe = np.where(ok, det, 1.0)
        new = np.empty((n, 3, 2))
        for c, f in enumerate((fx, fy)):
            mf = _rowdot(w, f) / swd
            sxf, syf = _rowdot(wdx, f), _rowdot(wdy, f)
            bx = (syy * sxf - sxy * syf) / safe
            by = (sxx * syf - sxy * sxf) / safe
            new[:, 0, c], new[:, 1, c], new[:, 2, c] = mf - bx * mx - by * my, bx, by
        for i in np.flatnonzero(going & ~ok):  # inliers not spanning both axes: min-norm
            sq = np.sqrt(w[i])[:, None]
            fi = np.stack([fx[i], fy[i]], axis=1)  # (G', 2)
            new[i] = np.linalg.lstsq(a * sq, fi * sq, rcond=None)[0]
        coef[going] = new[going]
        rx = fx - (coef[:, 0, 0, None] + x * coef[:, 1, 0, None] + y * coef[:, 2, 0, None])
        ry = fy - (coef[:, 0, 1, None] + x * coef[:, 1, 1, None] + y * coef[:, 2, 1, None])
        res = np.sqrt(rx * rx + ry * ry)  # (N, G')
        med = masked_quantile(res, w > 0, 0.5)  # (N,) 0 where no inter cell
        w = np.where(going[:, None], w * (res <= np.maximum(3.0 * med, 1.0)[:, None]), w)
    return coef


def affine_fits(flow: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Robust least-squares affine models of N flows; returns the (N, Gh, Gw, 2) model fields.

    Per frame the model is ``f(x, y) = c + bx * x + by * y`` per component, fitted by weighted
    least squares in closed form (weighted means plus a 2 x 2 solve) on the inter-coded cells
    of ``coverage`` (N, Gh, Gw), then refitted on the inliers (residual <= max(3 x median,
    1 px)) so moving objects do not bias the camera model. Degenerate inlier sets (e.g. one
    row of cells) fall back to a minimum-norm ``lstsq``. Large grids are fitted on a regular
    subsample of about AFFINE_CELLS cells (every cell where the subsample holds fewer than 6
    inter cells). All frames at once: some 30 microseconds per frame.
    """
    n, gh, gw = coverage.shape
    s = 1
    while (gh // s) * (gw // s) > AFFINE_CELLS:
        s += 1
    steps = np.full(n, s)
    if s > 1:  # few inter cells: the subsample could miss them all
        few = np.count_nonzero(coverage[:, ::s, ::s] > 0.5, axis=(1, 2)) < 6
        steps[few] = 1
    out = np.empty((n, gh * gw, 2), np.float32)
    for step in np.unique(steps).tolist():
        rows = np.flatnonzero(steps == step)
        a_full, a, x, y = _coords(gh, gw, step)
        sub = flow[rows][:, ::step, ::step]
        fx = sub[..., 0].reshape(len(rows), -1).astype(np.float64)  # (n', G')
        fy = sub[..., 1].reshape(len(rows), -1).astype(np.float64)
        w = (coverage[rows][:, ::step, ::step].reshape(len(rows), -1) > 0.5).astype(np.float64)
        coef = _affine_coefs(fx, fy, w, x, y, a, (gh, gw))  # (n', 3, 2)
        xf, yf = a_full[:, 1], a_full[:, 2]
        for c in range(2):
            out[rows, :, c] = (coef[:, 0, c, None] + xf * coef[:, 1, c, None]
                               + yf * coef[:, 2, c, None])
    return out.reshape(n, gh, gw, 2)


def _affine_fit(flow: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """:func:`affine_fits` of one (Gh, Gw, 2) flow: the (Gh, Gw, 2) model field."""
    return affine_fits(flow[None], coverage[None])[0]  # type: ignore[no-any-return]


def compensate(flow: np.ndarray, coverage: np.ndarray, camera: Camera) -> np.ndarray:
    """Remove camera motion from a (Gh, Gw, 2) flow; returns the residual flow.

    ``"median"`` subtracts the per-frame median of dx and dy over inter-coded cells (what
    OneVision-Encoder does); ``"affine"`` subtracts a robust affine fit (also removes zoom and
    rotation); ``"none"`` keeps the raw vectors.
    """
    return compensate_many(flow[None], coverage[None], camera)[0]  # type: ignore[no-any-return]


def compensate_many(flow: np.ndarray, coverage: np.ndarray, camera: Camera) -> np.ndarray:
    """:func:`compensate` of N frames: (N, Gh, Gw, 2) flows, (N, Gh, Gw) coverage."""
    if camera == "none":
        return flow
    inter = coverage > 0.5
    some = np.asarray(inter.any(axis=(1, 2)))  # (N,) frames with an inter cell (else: as they are)
    if camera == "median":
        out = flow.copy()
        for i in np.flatnonzero(some):
            out[i] = flow[i] - np.median(flow[i][inter[i]], axis=0)  # (2,)
        return out
    return np.where(some[:, None, None, None], flow - affine_fits(flow, coverage), flow)


def motion_energies(flow: np.ndarray, coverage: np.ndarray, *, camera: Camera) -> np.ndarray:
    """:func:`motion_energy` of N frames: (N, Gh, Gw, 2) flows, (N, Gh, Gw) coverage ->
    (N, Gh, Gw) float32 in [0, 1]."""
    res = compensate_many(flow, coverage, camera)
    mag = np.hypot(res[..., 0], res[..., 1])
    e = robust_normalise_many(mag, MOTION_FLOOR_PX, coverage)
    return (coverage * e + (1.0 - coverage)).astype(np.float32)  # type: ignore[no-any-return]


def motion_energy(flow: np.ndarray, coverage: np.ndarray, *, camera: Camera) -> np.ndarray:
    """Normalised motion energy (Gh, Gw) float32 in [0, 1] of one frame.

    Intra-coded cells (no vector) count as fully changed: their content was not predictable
    from the reference.
    """
    return motion_energies(flow[None], coverage[None],  # type: ignore[no-any-return]
                           camera=camera)[0]


def _cell_sums(img: np.ndarray, axis: int, n_cells: int, cell: int) -> np.ndarray:
    """Sums over ``cell`` consecutive samples along ``axis`` of ``img`` padded to ``n_cells *
    cell`` samples by repeating its last sample: ``cell`` strided slices added up."""
    length = img.shape[axis]
    total: np.ndarray | None = None
    for k in range(cell):
        if n_cells * cell == length:
            part = img[(slice(None),) * axis + (slice(k, None, cell),)]
        else:
            part = np.take(img, np.minimum(np.arange(n_cells) * cell + k, length - 1), axis=axis)
        if total is None:
            total = part.astype(np.float32, copy=True)
        else:
            total += part
    return total  # type: ignore[return-value]


def block_means(img: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(N, Gh, Gw) float32 mean of each of N 2-D arrays (N, H, W) over a grid of equal cells
    of ``ceil(H / Gh) x ceil(W / Gw)`` samples (edge cells repeat the last row / column).

    Cell sums are strided slices added up (on integer samples, 8-bit luma and its square,
    every sum is exact), divided by the cell size.
    """
    gh, gw = grid
    h, w = img.shape[1:]
    ch, cw = -(-h // gh), -(-w // gw)
    sums = _cell_sums(_cell_sums(img, 2, gw, cw), 1, gh, ch)
    return sums / np.float32(ch * cw)  # type: ignore[no-any-return]


def pixel_diff_energies(luma: np.ndarray, prev: np.ndarray, grid: tuple[int, int]
                        ) -> np.ndarray:
    """:func:`pixel_diff_energy` of N frames against their previous ones: (N, h, w) luma and
    (N, h, w) previous luma -> (N, Gh, Gw) float32."""
    return robust_normalise_many(block_means(np.abs(luma - prev), grid), DIFF_FLOOR)


def pixel_diff_energy(luma: np.ndarray, prev: np.ndarray | None,
                      grid: tuple[int, int]) -> np.ndarray:
    """Fallback signal: normalised mean |luma - previous| per cell, (Gh, Gw) float32 in [0, 1].

    The first analysed frame (no previous frame) gets zeros.
    """
    if prev is None or prev.shape != luma.shape:
        return np.zeros(grid, np.float32)
    return pixel_diff_energies(luma[None], prev[None], grid)[0]  # type: ignore[no-any-return]


def cut_histograms(luma: np.ndarray) -> np.ndarray:
    """(N, HIST_BINS) float32 normalised luma histograms of (N, h, w) luma planes."""
    while luma[0].size > HIST_SAMPLES:  # a histogram needs no more samples than this
        luma = luma[:, ::2, ::2]
    # luma is in [0, 255]: the bin index needs no clip below 0, and 255 falls in the last bin
    bins = (luma * (HIST_BINS / 256.0)).astype(np.intp)
    h = np.stack([np.bincount(b.ravel(), minlength=HIST_BINS)[:HIST_BINS] for b in bins])
    h = h.astype(np.float32)
    return h / np.maximum(h.sum(axis=1, keepdims=True), 1.0)  # type: ignore[no-any-return]


def cut_histogram(luma: np.ndarray) -> np.ndarray:
    """(HIST_BINS,) float32 normalised luma histogram (for cut hints)."""
    return cut_histograms(luma[None])[0]  # type: ignore[no-any-return]


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
