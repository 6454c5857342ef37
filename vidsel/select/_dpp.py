"""Greedy MAP inference for DPPs: the fast incremental-Cholesky algorithm.

Chen, Zhang and Zhou, "Fast Greedy MAP Inference for Determinantal Point Process to Improve
Recommendation Diversity" (NeurIPS 2018). For every candidate ``i`` keep ``c_i`` (its row of the
Cholesky factor of the selected set, grown by one entry per step) and ``d_i^2`` (its conditional
variance given the selected set = the marginal gain ``det L_{S+i} / det L_S``). A step picks
``argmax d_i^2``, then updates all candidates with one kernel row::

    e_i   = (L[j, i] - <c_j, c_i>) / d_j
    c_i  <- [c_i, e_i]
    d_i^2 <- d_i^2 - e_i^2

``O(n k^2)`` time and ``O(n k)`` memory; the kernel rows can be produced lazily, so the ``n x n``
matrix never has to exist.

Conditional (relevance-weighted) kernels ``L = D K D`` with ``D = diag(w)`` are run in log space:
``det(D K D)_S = prod_{i in S} w_i^2 det K_S``, so the gain of ``i`` is ``2 log w_i + log d_i^2(K)``
with ``d_i^2`` tracked on the unweighted ``K`` (whose diagonal is constant). That keeps the
numbers O(1) even with MDP3's ``w = r^(1/lambda)`` (``r^10`` spans many orders of magnitude).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._validate import check_positive_float, check_positive_int
from ..errors import InvalidArgumentError
from ._kernel import (
    DEFAULT_ALPHAS,
    KernelRows,
    _is_torch,
    _torch,
    check_alphas,
    log_relevance,
    multi_gaussian_kernel,
    numeric_array,
    sq_distances,
)

__all__ = ["MIN_LAM", "dpp", "dpp_greedy"]

logger = logging.getLogger(__name__)

#: Relative floor of a conditional variance below which a candidate counts as a numerical
#: duplicate of the selected set (its gain has vanished).
DEFAULT_EPS = 1e-10


#: Smallest accepted ``lam``: relevance enters as ``(2 / lam) log r``, and below this the
#: log-weights (and sums of them over a selection) leave the range where float64 keeps them
#: finite and comparable.
MIN_LAM = 1e-6


def check_lam(lam: Any) -> float:
    """``lam`` as a float in ``[MIN_LAM, inf)``, else :class:`InvalidArgumentError`."""
    v = check_positive_float("lam", lam)
    if v < MIN_LAM:
        raise InvalidArgumentError(
            f"lam={lam!r} is too small: relevance is weighted by 2/lam, which must stay "
            f"finite; use lam >= {MIN_LAM:g}"
        )
    return v


def relevance_log_weights(x: np.ndarray, t: np.ndarray, *, lam: float,
                          alphas: tuple[float, ...]) -> np.ndarray:
    """``q_i = (2 / lam) log r_i`` (n,) float64, checked finite."""
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        q = (2.0 / lam) * log_relevance(x, t, alphas=alphas)
    if not np.isfinite(q).all():
        bad = int(np.flatnonzero(~np.isfinite(q))[0])
        raise InvalidArgumentError(
            f"relevance log-weight of candidate {bad} is {q[bad]} (lam={lam:g}): the relevance "
            f"underflows; use a larger lam or L2-normalised embeddings"
        )
    return q


def greedy_batched(
    rows: Callable[[np.ndarray], np.ndarray],
    q: np.ndarray,
    c0: np.ndarray,
    d2: np.ndarray,
    steps: int,
    *,
    tiny: float,
    stop_tol: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``B`` independent Chen greedy searches over the same ``m`` candidates at once.

    Args:
        rows: ``rows(sel) -> (B, m)`` float64 kernel rows ``K[sel_b, :]`` over the candidates.
        q: (m,) float64 log-weight of every candidate (``2 log w_i``; zeros for a plain DPP).
        c0: (B, c, m) float64 initial Cholesky columns from conditioning items (c may be 0).
        d2: (B, m) float64 conditional variances after conditioning; modified in place.
        steps: number of picks (<= m).
        tiny: floor of ``d^2``: a candidate at the floor is a numerical duplicate of what was
            selected; it scores ``q + log(tiny)`` (instead of ``-inf``) and, if picked, updates
            nothing.
        stop_tol: for ``B == 1``: stop as soon as the picked item's ``d^2 <= stop_tol``
            (that pick is dropped).

    Returns:
        ``order`` (B, s) int64 picks in pick order, ``gains`` (B, s) float64 = ``q + log d^2`` of
        each pick (non-increasing along a row), ``dsel`` (B, s) float64 = ``d^2`` of each pick;
        ``s = steps`` unless stopped early. Ties go to the lowest candidate index.
    """
    b, c, m = c0.shape
    cmat = np.empty((b, m, c + steps), dtype=np.float64)  # row i: candidate i's Cholesky row
    cmat[:, :, :c] = c0.transpose(0, 2, 1)
    order = np.empty((b, steps), dtype=np.int64)
    dsel_all = np.empty((b, steps), dtype=np.float64)
    ar = np.arange(b)
    np.maximum(d2, tiny, out=d2)
    # argmax of q + log d2 == argmax of exp(q - max q) * d2 (no log per step) unless the weights
    # span so many orders of magnitude that exp() would underflow: then stay in log space.
    ratio = m == 0 or float(q.max() - q.min()) < 600.0
    if ratio:
        wq = np.maximum(np.exp(q - q.max()), 1e-300)
        wb = np.repeat(wq[None, :], b, axis=0)  # (B, m); -1 marks picked candidates
    else:
        wb = np.repeat(q[None, :], b, axis=0)  # (B, m); -inf marks picked candidates
    picked_mark = -1.0 if ratio else -np.inf
    done = steps
    for j in range(steps):
        score = wb * d2 if ratio else wb + np.log(d2)  # (B, m)
        sel = score.argmax(axis=1)  # first maximum -> lowest index on ties
        dsel = d2[ar, sel]
        if stop_tol is not None and b == 1 and dsel[0] <= stop_tol:
            done = j
            break
        order[:, j] = sel
        dsel_all[:, j] = dsel
        wb[ar, sel] = picked_mark
        if j == steps - 1:
            break
        jj = c + j
        e = rows(sel)  # (B, m)
        if jj:
            csel = cmat[ar, sel, :jj]  # (B, jj): the picks' Cholesky rows
            e = e - np.matmul(cmat[:, :, :jj], csel[:, :, None])[:, :, 0]
        e *= np.where(dsel > tiny, 1.0 / np.sqrt(dsel), 0.0)[:, None]
        cmat[:, :, jj] = e
        d2 -= e * e
        np.maximum(d2, tiny, out=d2)
    order = order[:, :done]
    dsel_all = dsel_all[:, :done]
    gains = q[order] + np.log(dsel_all)
    return order, gains, dsel_all


def _greedy_torch(kmat: Any, q: Any | None, k: int, tiny: float) -> tuple[Any, Any]:
    """Chen greedy on a torch kernel (n, n) on its device, no host sync inside the loop.

    Returns (order (k,) long, dsel (k,) float): the caller truncates at the first ``dsel <= tol``.
    """
    torch = _torch()
    n = kmat.shape[0]
    d2 = torch.diagonal(kmat).clone().to(torch.float64 if kmat.dtype == torch.float64 else
                                         torch.float32)
    cmat = torch.zeros((k, n), dtype=d2.dtype, device=kmat.device)
    order = torch.empty(k, dtype=torch.long, device=kmat.device)
    dsel = torch.empty(k, dtype=d2.dtype, device=kmat.device)
    picked = torch.zeros(n, dtype=torch.bool, device=kmat.device)
    neg_inf = torch.tensor(float("-inf"), dtype=d2.dtype, device=kmat.device)
    for j in range(k):
        score = torch.clamp_min(d2, tiny)
        if q is not None:
            score = q + torch.log(score)
        score = torch.where(picked, neg_inf, score)
        sel = torch.argmax(score)
        order[j] = sel
        ds = d2[sel]
        dsel[j] = ds
        picked[sel] = True
        if j == k - 1:
            break
        e = kmat[sel].to(d2.dtype) - cmat[:j, sel] @ cmat[:j]
        e = e * torch.where(ds > tiny, torch.rsqrt(torch.clamp_min(ds, tiny)), 0.0)
        cmat[j] = e
        d2 = d2 - e * e
    return order, dsel


def _stop_tol(diag_max: float, eps: float) -> float:
    """Absolute gain floor of :func:`dpp_greedy`: ``eps * max(diag(L))``, or ``eps`` itself
    when the diagonal has no positive entry (the same on the numpy and torch paths)."""
    return eps * diag_max if diag_max > 0 else eps


def _sym_rtol(dtype: Any) -> float:
    """Relative symmetry tolerance for a kernel of ``dtype``: ``sqrt(machine eps)``."""
    try:
        return float(np.sqrt(np.finfo(dtype).eps))
    except (TypeError, ValueError):  # integer kernels: compared in float64
        return float(np.sqrt(np.finfo(np.float64).eps))


def _check_kernel_stats(finite: bool, asym: float, amax: float, dmin: float,
                        rtol: float) -> None:
    """Raise unless the kernel is finite, symmetric (to ``rtol * max|L|``) and has a
    non-negative diagonal (to the same tolerance)."""
    if not finite:
        raise InvalidArgumentError("L contains NaN or inf; a DPP kernel must be finite")
    atol = rtol * amax
    if asym > atol:
        raise InvalidArgumentError(
            f"L must be symmetric: max |L - L.T| = {asym:.3g} exceeds {atol:.3g} "
            f"({rtol:.1e} x max|L|)"
        )
    if dmin < -atol:
        raise InvalidArgumentError(
            f"L must have a non-negative diagonal (a PSD kernel), got min diag(L) = {dmin:.6g}"
        )


def dpp_greedy(L: Any, k: int, *, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Greedy MAP of a DPP with PSD kernel ``L``: indices in pick order.

    Each step adds the item maximising ``det L_{S+i}``; the first pick is ``argmax diag(L)``.
    Stops early, returning fewer than ``k`` indices, when the best remaining gain ``d_i^2`` is
    ``<= eps * max(diag(L))`` (``<= eps`` when no diagonal entry is positive): the kernel
    restricted to the rest is numerically singular.

    Args:
        L: (n, n) symmetric PSD numpy array or torch tensor (any device; the torch path runs
            there and syncs once to validate and once at the end).
        k: number of items to pick (clamped to n).
        eps: relative gain floor.

    Returns:
        (<= k,) int64 numpy array of indices in pick order.

    Raises:
        InvalidArgumentError: ``L`` is not square, holds NaN / inf, is not symmetric (beyond
            ``sqrt(machine eps) * max|L|``) or has a negative diagonal entry.
    """
    k = check_positive_int("k", k)
    eps = check_positive_float("eps", eps)
    if not _is_torch(L):
        L = numeric_array("L", L)
    if len(L.shape) != 2 or L.shape[0] != L.shape[1]:
        raise InvalidArgumentError(f"L must be a square (n, n) matrix, got shape {tuple(L.shape)}")
    n = int(L.shape[0])
    k = min(k, n)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if _is_torch(L):
        torch = _torch()
        if not L.is_floating_point():
            L = L.double()
        diag_t = torch.diagonal(L)
        # one host sync for every check: finite, asymmetry, max|L|, min and max of the diagonal
        stats = torch.stack([
            torch.isfinite(L).all().to(torch.float64),
            (L - L.T).abs().max().to(torch.float64),
            L.abs().max().to(torch.float64),
            diag_t.min().to(torch.float64),
            diag_t.max().to(torch.float64),
        ]).cpu().tolist()
        _check_kernel_stats(bool(stats[0]), stats[1], stats[2], stats[3],
                            float(torch.finfo(L.dtype).eps) ** 0.5)
        tol = _stop_tol(stats[4], eps)
        order_t, dsel_t = _greedy_torch(L, None, k, tiny=tol)
        order = order_t.cpu().numpy().astype(np.int64)
        dsel = dsel_t.double().cpu().numpy()
        bad = np.flatnonzero(dsel <= tol)
        return order[: bad[0]] if bad.size else order
    src = np.asarray(L)
    lm = src.astype(np.float64, copy=False)
    diag = np.diagonal(lm).copy()
    finite = bool(np.isfinite(lm).all())
    _check_kernel_stats(finite, float(np.abs(lm - lm.T).max()) if finite else 0.0,
                        float(np.abs(lm).max()) if finite else 0.0,
                        float(diag.min()) if finite else 0.0, _sym_rtol(src.dtype))
    tol = _stop_tol(float(diag.max()), eps)
    order_np, _, _ = greedy_batched(
        lambda sel: lm[sel], np.zeros(n), np.zeros((1, 0, n)), diag[None, :].copy(), k,
        tiny=tol, stop_tol=tol,
    )
    return order_np[0]


def dpp(
    frame_embeds: Any,
    text_embed: Any,
    k: int,
    *,
    lam: float = 0.2,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    return_order: bool = False,
) -> np.ndarray:
    """Conditional-kernel DPP: greedy MAP of ``diag(r^(1/lam)) K diag(r^(1/lam))``.

    The objective is ``(1/lam) sum_{i in S} log r_i^2 + log det K_S`` (MDP3 without the segment
    programme); ``r_i = k(text, frame_i)``. Kernel rows are computed lazily from the embeddings
    (``O(n k d)``), so the ``n x n`` kernel is never built. Near-duplicate candidates are not
    dropped: once every remaining gain has vanished the rest are picked by relevance, so exactly
    ``min(k, n)`` indices come back.

    Args:
        frame_embeds: (n, d) float array (numpy or torch; L2-normalised embeddings).
        text_embed: (d,) float array.
        k: frames to select.
        lam: relevance/diversity trade-off ``lambda`` (``>= 1e-6``; smaller = more relevance).
        alphas: kernel bandwidths.
        return_order: return indices in greedy pick order instead of ascending.

    Returns:
        (min(k, n),) int64 indices, ascending (or in pick order).
    """
    k = check_positive_int("k", k)
    lam = check_lam(lam)
    alphas = check_alphas(alphas)
    if _is_torch(frame_embeds) and frame_embeds.device.type != "cpu":
        return _dpp_torch(frame_embeds, text_embed, k, lam=lam, alphas=alphas,
                          return_order=return_order)
    x, t = _as_f64(frame_embeds, text_embed)
    n = x.shape[0]
    k = min(k, n)
    q = relevance_log_weights(x, t, lam=lam, alphas=alphas)
    kr = KernelRows(x, alphas, dot_dtype=_dot_dtype(frame_embeds))
    diag = kr.diag
    def rows(sel: np.ndarray) -> np.ndarray:
        return kr.block(sel)  # (len(sel), n): no copy of the (n, d) embeddings per call

    order, _, _ = greedy_batched(
        rows, q, np.zeros((1, 0, n)), np.full((1, n), diag), k, tiny=DEFAULT_EPS * diag
    )
    out = order[0]
    return out if return_order else np.sort(out)


def _dpp_torch(
    frame_embeds: Any, text_embed: Any, k: int, *, lam: float, alphas: tuple[float, ...],
    return_order: bool,
) -> np.ndarray:
    """GPU path of :func:`dpp`: the full kernel on the device (one matmul), Chen greedy there."""
    torch = _torch()
    x = frame_embeds.detach().float()
    t = torch.as_tensor(text_embed.detach() if _is_torch(text_embed) else
                        np.asarray(text_embed)).float().to(x.device)
    if t.ndim == 2 and t.shape[0] == 1:
        t = t[0]
    _check_embed_shapes(tuple(x.shape), tuple(t.shape),
                        finite=bool(torch.isfinite(x).all() & torch.isfinite(t).all()))
    t = t.reshape(1, -1)
    n = x.shape[0]
    k = min(k, n)
    kmat = multi_gaussian_kernel(x, alphas=alphas)  # (n, n)
    d2t = sq_distances(t, x)[0]  # (n,)
    a = torch.tensor(alphas, dtype=x.dtype, device=x.device)[:, None]
    logr = torch.logsumexp(-d2t[None, :] / (2.0 * a), dim=0)  # (n,)
    q = (2.0 / lam) * logr
    if not bool(torch.isfinite(q).all()):
        raise InvalidArgumentError(
            f"relevance log-weights are not finite (lam={lam:g}): the relevance underflows; "
            f"use a larger lam or L2-normalised embeddings")
    diag = float(len(alphas))
    order_t, _ = _greedy_torch(kmat, q, k, tiny=DEFAULT_EPS * diag)
    out = order_t.cpu().numpy().astype(np.int64)
    return out if return_order else np.sort(out)


def _as_f64(frame_embeds: Any, text_embed: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert (n, d) frame and (d,) text embeddings to float64 numpy."""
    x = _to_numpy(frame_embeds, "frame_embeds").astype(np.float64, copy=False)
    t = _to_numpy(text_embed, "text_embed").astype(np.float64, copy=False)
    if t.ndim == 2 and t.shape[0] == 1:
        t = t[0]
    _check_embed_shapes(x.shape, t.shape,
                        finite=bool(np.isfinite(x).all() and np.isfinite(t).all()))
    return x, t


def _check_embed_shapes(xshape: tuple[int, ...], tshape: tuple[int, ...], *,
                        finite: bool) -> None:
    """One message shape for (n, d) frame and (d,) text embeddings, numpy or torch."""
    if len(xshape) != 2:
        raise InvalidArgumentError(f"frame_embeds must be (n, d), got shape {xshape}")
    if len(tshape) != 1 or tshape[0] != xshape[1]:
        raise InvalidArgumentError(
            f"text_embed must be (d,) with d = {xshape[1]}, got shape {tshape}"
        )
    if xshape[0] == 0:
        raise InvalidArgumentError("frame_embeds has no rows (n = 0)")
    if not finite:
        raise InvalidArgumentError("frame_embeds / text_embed contain NaN or inf")


def _to_numpy(a: Any, name: str = "array") -> np.ndarray:
    """A numpy array of numbers from a torch tensor (on any device) or array-like ``a``.

    Raises:
        InvalidArgumentError: ``a`` is not numeric (named ``name`` in the message).
    """
    if _is_torch(a):
        return np.asarray(a.detach().float().cpu().numpy() if a.dtype.is_floating_point
                          and a.dtype.itemsize < 4 else a.detach().cpu().numpy())
    return numeric_array(name, a)


def _dot_dtype(a: Any) -> Any:
    """float32 dot products for float32 (or lower) inputs, float64 for float64 inputs."""
    dt = getattr(a, "dtype", None)
    if dt is not None and (str(dt).endswith("float64") or dt == np.float64):
        return np.float64
    return np.float32
