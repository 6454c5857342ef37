"""Stage 3 of :func:`~vidsel.codec.select_patches`: anchor frames (kept dense).

Uniform: the frames the uniform anchor grid snapped to. Adaptive: the first analysed frame and
one after each detected cut (strongest first, at least :data:`CUT_MIN_GAP_S` apart), gaps
filled from the uniform grid; never "every I-frame".
"""

from __future__ import annotations

import numpy as np

from ..io import PacketIndex
from ._scan import CUT_MIN, Scan

__all__ = ["CUT_MAD", "CUT_MIN_GAP_S", "choose_anchors"]

#: A cut score must exceed CUT_MIN AND stand out from the video's typical score by this many
#: median absolute deviations.
CUT_MAD = 8.0
#: Two cuts closer than this (seconds) are one cut.
CUT_MIN_GAP_S = 1.0


def cut_threshold(scores: np.ndarray) -> float:
    """The score a cut must reach: CUT_MIN, or more on videos with a high typical score."""
    if scores.size == 0:
        return CUT_MIN
    med = float(np.median(scores))
    mad = float(np.median(np.abs(scores - med)))
    return max(CUT_MIN, med + CUT_MAD * max(mad, 0.01))


def pick_cuts(store: list[tuple[float, int]], thr: float, index: PacketIndex,
              limit: int) -> list[int]:
    """Strongest cuts above ``thr``, at least CUT_MIN_GAP_S apart, at most ``limit``."""
    picked: list[int] = []
    sec = index.timestamps_s
    for score, f in store:
        if len(picked) >= limit or score < thr:
            break
        if all(abs(sec[f] - sec[p]) >= CUT_MIN_GAP_S for p in picked):
            picked.append(f)
    return picked


def fill_gaps(chosen: list[int], grid: list[int], total: int, num_frames: int) -> list[int]:
    """Add frames from ``grid`` into the largest gaps until ``total`` anchors."""
    out = sorted(set(chosen))
    pool = [g for g in grid if g not in out]
    while len(out) < total and pool:
        bounds = [0, *out, num_frames]
        gaps = np.diff(bounds)
        gi = int(np.argmax(gaps))
        mid = (bounds[gi] + bounds[gi + 1]) / 2
        best = min(pool, key=lambda g: abs(g - mid))
        out = sorted([*out, best])
        pool.remove(best)
    return out


def choose_anchors(scan: Scan) -> tuple[np.ndarray, list[int]]:
    """(anchor frames (A,) int64 sorted, detected cuts) of a finished decode pass."""
    plan = scan.plan
    n_def, n_max = plan.n_def, plan.n_max
    thr = cut_threshold(scan.cut_scores)
    cuts = pick_cuts(sorted(scan.cut_store, reverse=True), thr, plan.index, max(n_max - 1, 0))
    if n_max == 0:
        anchor_list: list[int] = []
    elif plan.anchors in ("uniform", "query"):  # fixed targets: the grid / the selector's
        anchor_list = scan.anchor_grids.get(n_def, [])[:n_def]
    else:
        n_total = min(max(1 + len(cuts), n_def), n_max)
        anchor_list = fill_gaps([scan.first_frame, *cuts][:n_total],
                                scan.anchor_grids.get(n_max, []), n_total,
                                plan.index.num_frames)
    return np.array(sorted(set(anchor_list)), np.int64), cuts
