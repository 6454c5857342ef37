"""Stage 2 of :func:`~vidsel.codec.select_patches`: the decode pass.

One pass over the frames the plan decodes (a :func:`vidsel.io.decode_pass`: presentation
order, decode-ahead thread, unreliable timestamps handled by io). Per analysed frame: a
block-grid change energy (motion vectors with camera compensation, or the pixel-difference
fallback on the Y plane) and a cut score (luma histogram change, intra share, bit-cost spike).
Candidate frames pour the energy accumulated since the previous candidate into token scores
and offer their tokens to the :class:`~vidsel.codec._pool.TokenPool` (converted to RGB only
when one of them enters it); frames that may become anchors (grid frames, strong cuts, the
first frame) keep their RGB.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import DecodeError
from ..io import FrameConverter, StreamFrame
from ._motion import BLOCK, luma_step, mv_grid
from ._pixels import token_crops
from ._plan import Plan
from ._pool import PoolResult, TokenPool
from ._score import block_overlap, cut_histogram, motion_energy, pixel_diff_energy

__all__ = ["CUT_DIFF_FLOOR", "CUT_MIN", "SPIKE_WEIGHT", "Scan", "scan"]

logger = logging.getLogger(__name__)

#: A cut score must reach this to be kept as a possible cut.
CUT_MIN = 0.3
#: Where no vectors exist, a cut is a mean absolute luma change (0-255) above
#: ``4 x recent level + CUT_DIFF_FLOOR``.
CUT_DIFF_FLOOR = 6.0
#: Weight of the bit-cost spike (a P/B packet much larger than its neighbours) in a cut score.
SPIKE_WEIGHT = 0.15

class _Snapper:
    """Maps sorted target frames to the first decoded frame at or after each target."""

    def __init__(self, targets: np.ndarray) -> None:
        self.targets = targets
        self.pos = 0

    def hit(self, idx: int) -> bool:
        t = self.targets
        if self.pos >= len(t) or idx < t[self.pos]:
            return False
        while self.pos < len(t) and t[self.pos] <= idx:
            self.pos += 1
        return True


@dataclass(repr=False)
class Scan:
    """What the decode pass leaves for the later stages.

    Attributes:
        plan: the plan the pass ran (re-made on the counted index when io fell back to
            counting frames).
        cut_scores: (A,) float32 cut score of each analysed frame, in order.
        first_frame: the first analysed frame.
        candidates: (T,) int64 candidate frames.
        anchor_grids: {n: frames} the analysed frames the n-anchor grid targets snapped to.
        cut_store: the strongest possible cuts (score, frame), at most ``2 * n_max``.
        stored: {frame: (H, W, 3) uint8 RGB} of the frames that may become anchors (empty
            arrays without pixels).
        pool: the token pool's best ``budget`` tokens.
        conversions: RGB conversions done.
    """

    plan: Plan
    cut_scores: np.ndarray
    first_frame: int
    candidates: np.ndarray
    anchor_grids: dict[int, list[int]]
    cut_store: list[tuple[float, int]]
    stored: dict[int, np.ndarray] = field(default_factory=dict)
    pool: PoolResult | None = None
    conversions: int = 0

    @property
    def analysed(self) -> int:
        """Frames analysed."""
        return len(self.cut_scores)


def scan(plan: Plan, frames: Iterator[StreamFrame]) -> Scan:
    """Run the analysis over one decode pass (see the module doc)."""
    cfg = plan.config
    index = plan.index
    th, tw = cfg.token_grid
    keep = plan.keep
    use_mv = plan.use_mv
    n_max = plan.n_max
    adaptive = plan.anchors == "adaptive"
    keep_pixels = plan.keep_pixels
    cand_snap = _Snapper(plan.candidate_targets)
    grid_snaps = {n: _Snapper(t) for n, t in plan.anchor_targets.items()}
    pool = TokenPool(plan.budget, keep_pixels)
    stored: dict[int, np.ndarray] = {}  # frame -> RGB (H, W, 3) of anchor candidates
    grid_frames: dict[int, list[int]] = {n: [] for n in grid_snaps}
    cut_store: list[tuple[float, int]] = []  # min-heap of (cut score, frame)
    cuts_seen: list[float] = []
    first_frame = -1
    candidates: list[int] = []
    conv: FrameConverter | None = None
    ry = rx = np.zeros((0, 0), np.float32)
    gh = gw = 0
    lstep = 4
    prev_luma: np.ndarray | None = None
    prev_hist: np.ndarray | None = None
    acc: np.ndarray | None = None
    acc_n = 0
    mad_level = -1.0
    energy: np.ndarray

    def display(g: np.ndarray) -> np.ndarray:
        """A (Gh, Gw) coded-orientation grid as displayed."""
        if conv is None:  # pragma: no cover - set by the first frame, before any call
            raise DecodeError(f"{index.path}: internal error: no converter before the first "
                              f"frame")
        return conv.display(g[..., None])[..., 0]

    size: tuple[int, int] | None = None
    carry: np.ndarray | None = None  # (Th, Tw) token sums of energy from before a size change

    for sf in frames:
        idx = sf.index
        mvs = sf.motion_vectors
        if sf.coded_size != size:
            if conv is not None:
                # the frame size changes mid-stream (MPEG-PS / TS splices): energy so far
                # moves to token space, later frames use a grid of their own size, and the
                # luma difference restarts (the histogram still tests for a cut)
                logger.info("%s: the coded size (h, w) changes from %s to %s at frame %d",
                            index.path, size, sf.coded_size, idx)
                if acc is not None:
                    moved = ry @ display(acc) @ rx.T
                    carry = moved if carry is None else carry + moved
                    acc = None
                prev_luma = None
            conv = sf.converter
            size = h, w = sf.coded_size
            gh, gw = -(-h // BLOCK), -(-w // BLOCK)
            dh, dw = conv.display_size((h, w))
            dgh, dgw = display(np.zeros((gh, gw), np.float32)).shape
            # token-grid rows/cols <- display-grid cells (area shares)
            ry = block_overlap(th, dh, dgh, BLOCK, dh)  # (Th, dGh)
            rx = block_overlap(tw, dw, dgw, BLOCK, dw)  # (Tw, dGw)
            lstep = luma_step(h, w)
        if keep is not None and not keep[idx]:
            # a reference B-frame: its vectors join the motion energy (it is decoded anyway,
            # and the denser motion sampling finds more of the moving content); it is not a
            # candidate, not cut-tested and never converted
            if mvs is not None and len(mvs):
                flow, cov = mv_grid(mvs, (gh, gw))
                energy = motion_energy(flow, cov, camera=plan.camera)
                if acc is None:
                    acc = energy.astype(np.float32, copy=True)
                else:
                    acc += energy
                acc_n += 1
            continue
        luma = sf.luma(lstep)
        hist = cut_histogram(luma)
        hdist = 0.0 if prev_hist is None else 0.5 * float(np.abs(hist - prev_hist).sum())
        mad = 0.0 if prev_luma is None else float(np.abs(luma - prev_luma).mean())
        # where no vectors exist, a cut is a spike over the recent level of change
        diff_cut = min(1.0, mad / (4.0 * max(mad_level, 0.0) + CUT_DIFF_FLOOR))
        mad_level = mad if mad_level < 0 else 0.8 * mad_level + 0.2 * mad
        cut = hdist
        if use_mv and mvs is not None and len(mvs):
            flow, cov = mv_grid(mvs, (gh, gw))
            energy = motion_energy(flow, cov, camera=plan.camera)
            intra = float(1.0 - cov.mean())
            cut = max(hdist, 0.5 * intra) + SPIKE_WEIGHT * float(plan.spikes[idx])
        else:
            energy = pixel_diff_energy(luma, prev_luma, (gh, gw))
            cut = max(hdist, diff_cut)
            if not sf.key_frame:
                cut += SPIKE_WEIGHT * float(plan.spikes[idx])
        if prev_hist is None:
            cut = 0.0
        prev_luma, prev_hist = luma, hist
        cuts_seen.append(cut)
        if first_frame < 0:
            first_frame = idx
        if acc is None:
            acc = energy.astype(np.float32, copy=True)
        else:
            acc += energy
        acc_n += 1

        rgb: np.ndarray | None = None
        if cand_snap.hit(idx):
            candidates.append(idx)
            e = display(acc / acc_n)
            tmap = ry @ e @ rx.T  # (Th, Tw)
            if carry is not None:
                tmap = tmap + carry / acc_n
                carry = None
            acc, acc_n = None, 0
            tok = tmap.ravel()  # (Th*Tw,) token scores
            good, keys = pool.better(idx, tok)
            if len(good):
                crops = None
                if keep_pixels:
                    rgb = sf.rgb(cfg.frame_size)
                    crops = token_crops(rgb, cfg)[good]  # fancy index: a copy
                pool.add(idx, good, tok[good], keys, crops)
        want = [n for n, snap in grid_snaps.items() if snap.hit(idx)]
        for n in want:
            grid_frames[n].append(idx)
        first = len(cuts_seen) == 1
        cut_keep = adaptive and n_max > 0 and cut >= CUT_MIN and (
            len(cut_store) < 2 * n_max or cut > cut_store[0][0])
        if want or cut_keep or first:
            if keep_pixels:
                stored[idx] = rgb if rgb is not None else sf.rgb(cfg.frame_size)
            else:
                stored[idx] = np.zeros(0, np.uint8)
            if cut_keep:
                if len(cut_store) >= 2 * n_max:
                    _, old = heapq.heapreplace(cut_store, (cut, idx))
                    if (not any(old in g for g in grid_frames.values())
                            and old != first_frame):
                        stored.pop(old, None)
                else:
                    heapq.heappush(cut_store, (cut, idx))
    if conv is None:
        raise DecodeError(f"{index.path}: no frame could be decoded")
    logger.debug("%s: %d frames analysed (skip=%s), %d RGB conversions", index.path,
                 len(cuts_seen), plan.skip, conv.conversions)
    return Scan(plan=plan, cut_scores=np.array(cuts_seen, np.float32), first_frame=first_frame,
                candidates=np.asarray(candidates, np.int64), anchor_grids=grid_frames,
                cut_store=cut_store, stored=stored, pool=pool.result(),
                conversions=conv.conversions)
