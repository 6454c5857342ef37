"""MDP3: relevance, DPP diversity and a segment dynamic programme for sequentiality.

Sun et al., "MDP3: A Training-free Approach for List-wise Frame Selection in Video-LLMs"
(arXiv 2501.02885, ICCV 2025), as shipped with Ovis2 (``plugin/mdp3.py``).

Objective of a set ``S``: ``(1/lam) sum_{i in S} log r_i^2 + log det K_S`` with ``K`` the
multi-Gaussian kernel and ``r_i = k(text, frame_i)``. The candidates are cut into consecutive
segments of ``m`` frames; a DP over (segment ``t``, frames selected so far ``c``) decides how many
frames each segment contributes; the reward of taking ``j`` frames in a segment is the greedy DPP
score of its best ``j`` picks conditioned on the last ``condition_size`` frames selected before it.
One greedy run per distinct conditioning yields the picks of every size at once (nested prefixes).

Two modes:

- ``"conditional"`` (default): a segment's reward is the *conditional gain* of its picks given the
  conditioning frames (``log det L_{C+P} - log det L_C`` on the weighted kernel), so the DP value of
  a path is a Markov approximation of the full objective; ragged last segments are allowed.
- ``"reference"``: the public implementation's behaviour exactly: *absolute* segment rewards (the
  conditioning frames' own relevance and self-similarity terms are counted again in every segment
  that takes frames; taking 0 frames scores 0), ``segment_size <= 0`` meaning one segment, ties to
  the lowest index / earliest DP state, and ``n`` must be a multiple of ``segment_size`` (the public
  code crashes otherwise; here that raises :class:`~vidsel.errors.InvalidArgumentError`).

Both modes coincide when there is a single segment. All greedy searches of one segment run
batched (one numpy step advances every conditioning at once) on the incremental-Cholesky
algorithm of :mod:`vidsel.select._dpp`, and only the segment-diagonal kernel blocks plus the rows
of the conditioning frames are ever computed: ``n = 3600, k = 64`` takes tens of milliseconds where
the public code takes minutes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

import numpy as np

from .._validate import check_choice, check_positive_int
from ..errors import InvalidArgumentError, VidselError
from ._dpp import DEFAULT_EPS, _as_f64, check_lam, greedy_batched, relevance_log_weights
from ._kernel import (
    DEFAULT_ALPHAS,
    KernelRows,
    check_alphas,
    log_relevance,
    multi_gaussian_kernel,
)

__all__ = ["MDP3_MODES", "OVIS_DEFAULTS", "mdp3", "mdp3_objective"]

logger = logging.getLogger(__name__)

Mode = Literal["conditional", "reference"]
MDP3_MODES: tuple[str, ...] = ("conditional", "reference")

#: What the Ovis plugin ships: 16 frames, lambda 0.2, one segment, condition size 1.
OVIS_DEFAULTS: dict[str, Any] = {
    "k": 16, "lam": 0.2, "segment_size": -1, "condition_size": 1, "alphas": DEFAULT_ALPHAS,
}


def mdp3(
    frame_embeds: Any,
    text_embed: Any,
    k: int,
    *,
    lam: float = 0.2,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    segment_size: int = 32,
    condition_size: int = 1,
    mode: Mode = "conditional",
) -> np.ndarray:
    """Select ``k`` of ``n`` frames with MDP3.

    Args:
        frame_embeds: (n, d) float frame embeddings (numpy or torch), L2-normalised.
        text_embed: (d,) float text embedding (or (1, d)).
        k: number of frames to select; ``k >= n`` returns every index.
        lam: trade-off ``lambda`` (``>= 1e-6``); relevance enters with weight ``1/lam``.
        alphas: bandwidths of the multi-Gaussian kernel (summed).
        segment_size: frames per segment ``m``; ``<= 0`` (or ``>= n``) means one segment, where
            MDP3 reduces to greedy conditional-kernel DPP. The Ovis plugin ships ``-1``.
        condition_size: how many previously selected frames condition a segment's picks.
        mode: ``"conditional"`` (conditional gains, ragged last segment) or ``"reference"``
            (the public implementation's exact behaviour; see the module docstring).

    Returns:
        (min(k, n),) int64 selected candidate indices, ascending.
    """
    check_choice("mode", mode, MDP3_MODES)
    x, t = _as_f64(frame_embeds, text_embed)
    k = check_positive_int("k", k)
    lam = check_lam(lam)
    alphas = check_alphas(alphas)
    condition_size = check_positive_int("condition_size", condition_size, allow_zero=True)
    if isinstance(segment_size, bool) or not isinstance(segment_size, (int, np.integer)):
        raise InvalidArgumentError(f"segment_size={segment_size!r} must be an integer")
    n = x.shape[0]
    if k >= n:
        return np.arange(n, dtype=np.int64)
    m = n if segment_size <= 0 else min(int(segment_size), n)
    if mode == "reference" and n % m:
        raise InvalidArgumentError(
            f"mode='reference' needs n a multiple of segment_size (the public implementation "
            f"fails with IndexError otherwise); got n={n}, segment_size={segment_size}; "
            f"use mode='conditional' for a ragged last segment"
        )
    return _mdp3_dp(x, t, k, lam=lam, alphas=alphas, m=m, cs=condition_size,
                    absolute=(mode == "reference"))


#: Above this many kernel entries the diagonal blocks are not precomputed (rows come lazily).
_MAX_BLOCK_ENTRIES = 1 << 22


def _mdp3_dp(
    x: np.ndarray, t: np.ndarray, k: int, *, lam: float, alphas: tuple[float, ...], m: int,
    cs: int, absolute: bool,
) -> np.ndarray:
    n = x.shape[0]
    kr = KernelRows(x, alphas)
    q_all = relevance_log_weights(x, t, lam=lam, alphas=alphas)  # (n,) relevance log-weights
    tiny = DEFAULT_EPS * kr.diag
    n_seg = math.ceil(n / m)
    blocks = kr.diagonal_blocks(m) if n_seg * m * m <= _MAX_BLOCK_ENTRIES else None
    width = max(cs, 1)
    targets = np.arange(k + 1)

    dp = np.full(k + 1, -np.inf)  # dp[c]: best value with c frames selected so far
    dp[0] = 0.0
    last = np.full((k + 1, width), -1, dtype=np.int64)  # last cs frames of each best path
    back: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    for s in range(n_seg):
        lo, hi = s * m, min((s + 1) * m, n)
        ms = hi - lo
        seg_idx = np.arange(lo, hi)
        starts = np.arange(min(k, lo) + 1)  # c = 0..min(k, frames before this segment)
        starts = starts[np.isfinite(dp[starts])]
        uniq, group = _group_conditions(last[starts, :cs] if cs else None, starts.size)
        nb = uniq.shape[0]
        min_start = np.full(nb, k, dtype=np.int64)
        np.minimum.at(min_start, group, starts)
        steps = int(min(ms, k - min_start.min()))  # picks any start can still take here
        c0, d2, cond_abs = _condition(kr, uniq, seg_idx, q_all, tiny)
        rows: Callable[[np.ndarray], np.ndarray]
        if blocks is not None:
            rows = partial(_block_rows, blocks[s, :ms, :ms])
        else:
            rows = partial(_lazy_rows, kr, lo, seg_idx)
        order, gains, _ = greedy_batched(
            rows, q_all[lo:hi], c0, d2, steps, tiny=tiny
        )
        prefix = np.zeros((nb, steps + 1))
        prefix[:, 1:] = np.cumsum(gains, axis=1)  # value of the best j picks, j = 0..steps
        if absolute:  # reference: a segment that takes frames re-counts its conditioning terms
            prefix[:, 1:] += cond_abs[:, None]
        # relaxation: cand[i, c'] = dp[starts[i]] + prefix[group[i], c' - starts[i]]
        jj = targets[None, :] - starts[:, None]  # (S, k+1) picks taken here
        ok = (jj >= 0) & (jj <= np.minimum(ms, k - starts)[:, None])
        vals = np.take_along_axis(prefix[group], np.clip(jj, 0, steps), axis=1)
        cand = np.where(ok, dp[starts][:, None] + vals, -np.inf)
        best = cand.argmax(axis=0)  # first maximum = lowest start, as the reference iterates
        new_dp = cand[best, targets]
        b_start, b_group = starts[best], group[best]
        b_j = targets - b_start
        new_last = _update_last(last, new_dp, b_start, b_j, b_group, order + lo, width)
        back.append((b_start, b_j, b_group, order + lo))
        dp, last = new_dp, new_last

    if not np.isfinite(dp[k]):  # pragma: no cover - k < n always has a path
        raise VidselError(f"internal error: the MDP3 dynamic programme found no path to "
                          f"k={k} (n={n})")
    out: list[np.ndarray] = []
    c = k
    for b_start, b_j, b_group, order in reversed(back):
        out.append(order[b_group[c], : b_j[c]])
        c = int(b_start[c])
    return np.sort(np.concatenate(out)).astype(np.int64)


def _block_rows(kseg: np.ndarray, sel: np.ndarray) -> np.ndarray:
    return kseg[sel]


def _lazy_rows(kr: KernelRows, lo: int, seg_idx: np.ndarray, sel: np.ndarray) -> np.ndarray:
    return kr.block(sel + lo, seg_idx)


def _group_conditions(conds: np.ndarray | None, n_starts: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct conditioning tuples (B, c) and each start's group (S,)."""
    if conds is None:
        return np.full((1, 0), -1, dtype=np.int64), np.zeros(n_starts, dtype=np.int64)
    if conds.shape[1] == 1:
        u, g = np.unique(conds[:, 0], return_inverse=True)
        return u[:, None], g.reshape(-1)
    u, g = np.unique(conds, axis=0, return_inverse=True)
    return u, g.reshape(-1)


def _update_last(
    last: np.ndarray, new_dp: np.ndarray, b_start: np.ndarray, b_j: np.ndarray,
    b_group: np.ndarray, order: np.ndarray, width: int,
) -> np.ndarray:
    """Last ``width`` frames (ascending, -1 left padding) of every new best path."""
    valid = np.isfinite(new_dp)
    new_last = last[b_start].copy()  # j = 0: unchanged
    took = valid & (b_j > 0)
    if not took.any():
        return new_last
    if width == 1:  # the last frame is the largest of the segment's picks
        cmax = np.maximum.accumulate(order, axis=1)  # (B, steps)
        new_last[took, 0] = cmax[b_group[took], b_j[took] - 1]
        return new_last
    for c_new in np.flatnonzero(took):
        prev = last[b_start[c_new]]
        picks = np.sort(order[b_group[c_new], : b_j[c_new]])
        seq = np.concatenate([prev[prev >= 0], picks])[-width:]
        new_last[c_new] = -1
        new_last[c_new, width - seq.size :] = seq
    return new_last


def _condition(
    kr: KernelRows, conds: np.ndarray, seg_idx: np.ndarray, q_all: np.ndarray, tiny: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial Cholesky state of the segment's candidates given each group's conditioning.

    Args:
        kr: kernel of all frames.
        conds: (B, c) conditioning frame indices per group, -1 = none (left padding).
        seg_idx: (ms,) the segment's frame indices.

    Returns:
        ``c0`` (B, c, ms) = ``L_C^{-1} K[C, seg]``, ``d2`` (B, ms) = conditional variances, and
        ``cond_abs`` (B,) = the conditioning frames' own score ``sum q + log det K_C`` (what the
        reference mode adds to every non-empty segment reward).
    """
    nb, c = conds.shape
    ms = seg_idx.size
    valid = conds >= 0  # (B, c)
    if not valid.any():
        return np.zeros((nb, 0, ms)), np.full((nb, ms), kr.diag), np.zeros(nb)
    flat = np.unique(conds[valid])
    pos = np.searchsorted(flat, np.where(valid, conds, flat[0]))  # (B, c) row in `flat`
    kx = np.where(valid[:, :, None], kr.block(flat, seg_idx)[pos], 0.0)  # (B, c, ms)
    if c == 1:
        lf = np.where(valid, np.sqrt(kr.diag), 1.0)[:, :, None]  # (B, 1, 1)
        c0 = kx / lf
    else:
        kff = kr.block(flat, flat)[pos[:, :, None], pos[:, None, :]]  # (B, c, c)
        eye = np.eye(c)[None]
        kff = np.where(valid[:, :, None] & valid[:, None, :], kff, eye)  # pad: identity
        lf = np.linalg.cholesky(kff + eye * tiny)  # near-duplicate conditioning stays factorable
        c0 = np.linalg.solve(lf, kx)
    d2 = kr.diag - np.einsum("bcm,bcm->bm", c0, c0)
    logdet = 2.0 * np.log(np.abs(np.diagonal(lf, axis1=1, axis2=2))).sum(axis=1)  # pads: log 1
    qsum = np.where(valid, q_all[np.where(valid, conds, 0)], 0.0).sum(axis=1)
    return c0, d2, qsum + logdet


def mdp3_objective(
    frame_embeds: Any, text_embed: Any, selected: Sequence[int], *, lam: float = 0.2,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
) -> float:
    """The set objective ``(1/lam) sum_{i in S} log r_i^2 + log det K_S`` in float64."""
    x, t = _as_f64(frame_embeds, text_embed)
    lam = check_lam(lam)
    alphas = check_alphas(alphas)
    idx = np.asarray(selected, dtype=np.int64)
    logr = log_relevance(x[idx], t, alphas=alphas)
    ks = np.asarray(multi_gaussian_kernel(x[idx], alphas=alphas))
    sign, logdet = np.linalg.slogdet(ks)
    if sign <= 0:
        return float("-inf")
    return float((2.0 / lam) * logr.sum() + logdet)
