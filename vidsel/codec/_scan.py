"""Stage 2 of :func:`~vidsel.codec.select_patches`: the decode pass.

One pass over the frames the plan decodes (a :func:`vidsel.io.decode_pass`: presentation
order, decode-ahead thread, unreliable timestamps handled by io). Per analysed frame: a
block-grid change energy (motion vectors with camera compensation, or the pixel-difference
fallback on the Y plane) and a cut score (luma histogram change, intra share, bit-cost spike),
measured for a chunk of frames at once (:func:`vidsel.codec._features.chunk_features`); the
rules below (fades, hollow frames, cuts, anchors, the token pool) then run frame by frame.
Candidate frames pour the energy accumulated since the previous candidate into token scores
and offer their tokens to the :class:`~vidsel.codec._pool.TokenPool` (converted to RGB only
when one of them enters it); frames that may become anchors (grid frames, strong cuts, the
first frame) keep their RGB.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from ..errors import DecodeError, InvalidArgumentError
from ..io import Crop, FrameConverter, StreamFrame
from ._features import (
    DARK_LUMA,
    FADE_BLACK,
    FADE_MIN_MAD,
    FLAT_LUMA,
    chunk_features,
)
from ._motion import BLOCK, luma_step
from ._pixels import token_crops
from ._plan import Plan
from ._pool import PoolResult, TokenPool
from ._score import block_overlap

__all__ = ["BLANK_STD", "CHUNK_FRAMES", "CHUNK_PIXELS", "CUT_DEFER_S", "CUT_DIFF_FLOOR", "CUT_MIN",
           "DARK_LUMA", "DARK_SCORE", "DIM_SHARE", "FADE_BLACK", "FADE_MIN_MAD", "FADE_RATIO",
           "FADE_RATIO_ON", "FLAT_LUMA", "FROZEN_MAD", "SPIKE_WEIGHT", "Scan", "scan"]

logger = logging.getLogger(__name__)

#: A cut score must reach this to be kept as a possible cut.
CUT_MIN = 0.3
#: Where no vectors exist, a cut is a mean absolute luma change (0-255) above
#: ``4 x recent level + CUT_DIFF_FLOOR``.
CUT_DIFF_FLOOR = 6.0
#: Weight of the bit-cost spike (a P/B packet much larger than its neighbours) in a cut score.
SPIKE_WEIGHT = 0.15
#: A block that is *dark and flat* (:func:`vidsel.codec._features.dark_flat`: mean luma below
#: DARK_LUMA, standard deviation below FLAT_LUMA) shows nothing: its change energy is zeroed,
#: and a token that is mostly such blocks scores DARK_SCORE (ranked after every token with
#: content).
DARK_SCORE = -1.0
#: Inside the crop, a frame is *blank* (black, white, a flat fade, a flash) when its luma std
#: is below BLANK_STD: its change energy is zeroed and it is never a cut. It is *hollow* when
#: blank, *dim* (DIM_SHARE of its luma below DARK_LUMA: black, or early in a fade from black),
#: *fading* (see FADE_RATIO) or *frozen* (mean absolute luma change from the previous analysed
#: frame below FROZEN_MAD): a hollow frame is no anchor when a later frame of the same
#: stretch is not hollow (the anchor target waits for it, up to the grid's next target).
BLANK_STD = 4.0
DIM_SHARE = 0.6
FROZEN_MAD = 0.05
#: A change of at least FADE_MIN_MAD grey levels that a global gain of the previous frame's
#: luma about black (FADE_BLACK) explains (residual below FADE_RATIO x the mean change) is a
#: fade: no cut (the cut score is scaled down in proportion) and the frame is hollow (a fade is
#: still going on).
FADE_RATIO = 0.3
#: ... and once a fade has begun, it goes on below FADE_RATIO_ON in the same direction.
FADE_RATIO_ON = 0.6
#: A cut met on a hollow frame (into a dim or frozen picture) is kept on the next frame that
#: is not hollow, unless none comes within CUT_DEFER_S seconds (a dark scene: kept there).
CUT_DEFER_S = 1.0
#: Frames measured at once (:func:`vidsel.codec._features.chunk_features`), fewer where
#: CHUNK_FRAMES pictures would hold more than CHUNK_PIXELS decoded pixels.
CHUNK_FRAMES = 32
CHUNK_PIXELS = 16_000_000


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
        crop: (top, bottom, left, right) displayed pixels cut off before the token grid is
            laid out (black bars); the token grid covers the rest.
        hollow: analysed frames that were blank, dim or frozen.
        relevance_pool: with a question, the best ``budget`` tokens by relevance
            (:meth:`~vidsel.codec._plan.Plan.relevance_tokens`); else None.
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
    crop: Crop = (0, 0, 0, 0)
    hollow: int = 0
    relevance_pool: PoolResult | None = None

    @property
    def analysed(self) -> int:
        """Frames analysed."""
        return len(self.cut_scores)


def _crop_overlap(n_out: int, length: int, lo: int, hi: int, n_cells: int) -> np.ndarray:
    """(n_out, n_cells) :func:`block_overlap` of a token axis laid over ``[lo, length - hi)``
    of a displayed axis of ``length`` pixels (the crop), against BLOCK-pixel cells."""
    if lo == 0 and hi == 0:
        return block_overlap(n_out, length, n_cells, BLOCK, length)
    step = (length - lo - hi) / n_out
    o0 = lo + np.arange(n_out)[:, None] * step
    o1 = o0 + step
    c0 = np.arange(n_cells)[None, :] * float(BLOCK)
    c1 = np.minimum(c0 + BLOCK, length)
    ov = np.clip(np.minimum(o1, c1) - np.maximum(o0, c0), 0.0, None)
    return (ov / np.maximum(c1 - c0, 1e-9)).astype(np.float32)  # type: ignore[no-any-return]


def _scaled_crop(crop: Crop, base: tuple[int, int], hw: tuple[int, int]) -> Crop:
    """``crop`` of a (display) picture of size ``base`` scaled to one of size ``hw`` (a
    mid-stream size change), each side rounded up to an even number."""
    if base == hw or not any(crop):
        return crop
    sy, sx = hw[0] / base[0], hw[1] / base[1]
    t, b, lft, r = (int(np.ceil(v * f / 2.0)) * 2
                    for v, f in zip(crop, (sy, sy, sx, sx), strict=True))
    return (t, b, lft, r)


def _chunks(frames: Iterator[StreamFrame]) -> Iterator[list[StreamFrame]]:
    """Consecutive frames of one coded size, at most CHUNK_FRAMES (and CHUNK_PIXELS)."""
    chunk: list[StreamFrame] = []
    size = (0, 0)
    cap = CHUNK_FRAMES
    for sf in frames:
        if chunk and (sf.coded_size != size or len(chunk) >= cap):
            yield chunk
            chunk = []
        if not chunk:
            size = sf.coded_size
            cap = max(1, min(CHUNK_FRAMES, CHUNK_PIXELS // max(1, size[0] * size[1])))
        chunk.append(sf)
    if chunk:
        yield chunk


def scan(plan: Plan, frames: Iterator[StreamFrame], *, crop: Crop = (0, 0, 0, 0)) -> Scan:
    """Run the analysis over one decode pass (see the module doc).

    ``crop`` = (top, bottom, left, right) displayed pixels (black bars) cut off before the
    token grid is laid out: token scores and pixels then cover the active picture only.
    """
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
    rpool = TokenPool(plan.budget, keep_pixels) if plan.relevance_share > 0 else None
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

    def display(g: np.ndarray) -> np.ndarray:
        """A (Gh, Gw) coded-orientation grid as displayed."""
        if conv is None:  # pragma: no cover - set by the first frame, before any call
            raise DecodeError(f"{index.path}: internal error: no converter before the first "
                              f"frame")
        return conv.display(g[..., None])[..., 0]

    size: tuple[int, int] | None = None
    carry: np.ndarray | None = None  # (Th, Tw) token sums of energy from before a size change
    base_hw: tuple[int, int] | None = None  # displayed size ``crop`` is given for
    box: Crop = crop  # the crop of the current picture size
    rgb_crop: Crop | None = None  # ``box``, None when nothing is cut
    dark = np.zeros((0, 0), bool)  # (Gh, Gw) dark and flat blocks of the current frame
    active = (slice(None), slice(None))  # the luma samples inside the crop
    hollow_n = 0
    prev_hollow = False
    fade_dir = 0.0  # +1 / -1 while a fade in / out goes on
    late_cut, late_t = 0.0, 0.0  # a cut met on a hollow frame, waiting for a content frame
    times = index.timestamps_s
    first_pending = False  # the first analysed frame is hollow: a later content frame replaces it
    pending: dict[int, int] = {}  # grid n -> a hollow frame its target snapped to

    for chunk in _chunks(frames):
        sf = chunk[0]
        if sf.coded_size != size:
            if conv is not None:
                # the frame size changes mid-stream (MPEG-PS / TS splices): energy so far
                # moves to token space, later frames use a grid of their own size, and the
                # luma difference restarts (the histogram still tests for a cut)
                logger.info("%s: the coded size (h, w) changes from %s to %s at frame %d",
                            index.path, size, sf.coded_size, sf.index)
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
            if base_hw is None:
                base_hw = (dh, dw)
            box = _scaled_crop(crop, base_hw, (dh, dw))
            if box[0] + box[1] >= dh or box[2] + box[3] >= dw:
                raise InvalidArgumentError(
                    f"{index.path}: crop (top, bottom, left, right) = {box} leaves nothing of "
                    f"the {dw}x{dh} picture")
            rgb_crop = box if any(box) else None
            ry = _crop_overlap(th, dh, box[0], box[1], dgh)  # (Th, dGh)
            rx = _crop_overlap(tw, dw, box[2], box[3], dgw)  # (Tw, dGw)
            lstep = luma_step(h, w)
            ct, cb, cl, cr = conv.coded_crop(box)  # in the luma plane's samples:
            active = (slice(ct // lstep, -(-(h - cb) // lstep)),
                      slice(cl // lstep, -(-(w - cr) // lstep)))
        # reference B-frames (not analysed) only add their vectors to the motion energy (they
        # are decoded anyway, and the denser motion sampling finds more of the moving
        # content); they are no candidates, not cut-tested and never converted
        analysed = np.array([keep is None or bool(keep[f.index]) for f in chunk], bool)
        lumas = [f.luma(lstep) for f, an in zip(chunk, analysed.tolist(), strict=True) if an]
        feats = chunk_features(
            [f.motion_vectors for f in chunk], analysed,
            np.stack(lumas) if lumas else np.zeros((0, 1, 1), np.float32), prev_luma,
            prev_hist, use_mv=use_mv, camera=plan.camera, grid=(gh, gw), active=active)
        prev_luma, prev_hist = feats.last_luma, feats.last_hist
        adds = feats.adds.tolist()
        rows = feats.rows.tolist()
        hdists, mads, has_prevs = feats.hdist.tolist(), feats.mad.tolist(), feats.has_prev.tolist()
        intras, ratios = feats.intra.tolist(), feats.ratio.tolist()
        directions, stds, dims = feats.direction.tolist(), feats.std.tolist(), feats.dim.tolist()
        j = -1
        for i, sf in enumerate(chunk):
            idx = sf.index
            if j + 1 >= len(rows) or rows[j + 1] != i:  # a reference B-frame
                if adds[i]:
                    if acc is None:
                        acc = feats.energy[i].copy()
                    else:
                        acc += feats.energy[i]
                    acc_n += 1
                continue
            j += 1
            hdist, mad, intra = hdists[j], mads[j], intras[j]
            # where no vectors exist, a cut is a spike over the recent level of change; the
            # first change measured sets that level (it cannot be told from ordinary motion)
            diff_cut = 0.0
            if has_prevs[j]:
                if mad_level >= 0:
                    diff_cut = min(1.0, mad / (4.0 * mad_level + CUT_DIFF_FLOOR))
                mad_level = mad if mad_level < 0 else 0.8 * mad_level + 0.2 * mad
            if not math.isnan(intra):  # motion vectors
                cut = max(hdist, 0.5 * intra) + SPIKE_WEIGHT * float(plan.spikes[idx])
            else:
                cut = max(hdist, diff_cut)
                if not sf.key_frame:
                    cut += SPIKE_WEIGHT * float(plan.spikes[idx])
            if not cuts_seen:  # the first analysed frame
                cut = 0.0
            # a fade goes on while the gain keeps moving the same way (hysteresis: a moving
            # object weighs more against the small change of one frame of a slow fade); below
            # FADE_MIN_MAD nothing is a fade
            ratio, direction = ratios[j], directions[j]
            fading = mad >= FADE_MIN_MAD and (ratio < FADE_RATIO or (
                fade_dir != 0.0 and direction == fade_dir and ratio < FADE_RATIO_ON))
            fade_dir = direction if fading else 0.0
            if fading:
                cut *= min(1.0, ratio / FADE_RATIO_ON)  # a fade or a gain change is no cut
            dark = feats.dark[j]
            blank = stds[j] < BLANK_STD
            hollow = (blank or fading or dims[j] >= DIM_SHARE
                      or (has_prevs[j] and mad < FROZEN_MAD))
            hollow_n += hollow
            # the change into or out of a blank frame shows nothing
            energy = np.zeros((gh, gw), np.float32) if blank else feats.energy[i]
            # a blank frame is no cut, nor a hollow one after a hollow one (a fade in from black,
            # a dip to black: between dark pictures a cut cannot be told from a fade)
            no_cut = blank or (prev_hollow and hollow)
            prev_hollow = hollow
            kept_cut = cut  # the score a cut is kept with here (the analysed score stays in cuts_seen)
            if hollow and not no_cut and cut >= CUT_MIN:  # a cut into a dim or frozen frame:
                if late_cut == 0.0:  # the anchor after it goes to the next frame with content
                    late_t = float(times[idx])
                late_cut, kept_cut = max(late_cut, cut), 0.0
            elif late_cut > 0.0 and not blank and (
                    not hollow or float(times[idx]) - late_t >= CUT_DEFER_S):
                kept_cut, late_cut = max(cut, late_cut), 0.0
            cuts_seen.append(cut)
            if first_frame < 0:
                first_frame = idx
                first_pending = hollow
            elif first_pending and not hollow:
                first_frame = idx  # the first frame with content replaces a black first frame
                first_pending = False
            if acc is None:
                acc = energy.astype(np.float32, copy=True)
            else:
                acc += energy
            acc_n += 1

            rgb: np.ndarray | None = None
            if cand_snap.hit(idx):
                candidates.append(idx)
                if dark.any():  # what this frame shows there is black: no change worth a token
                    acc[dark] = 0.0  # type: ignore[index]
                e = display(acc / acc_n)
                tmap = ry @ e @ rx.T  # (Th, Tw)
                if carry is not None:
                    tmap = tmap + carry / acc_n
                    carry = None
                acc, acc_n = None, 0
                if dark.any():  # tokens mostly black: after every token with content
                    tmap[ry @ display(dark.astype(np.float32)) @ rx.T > 0.5] = DARK_SCORE
                tok = tmap.ravel()  # (Th*Tw,) token scores
                good, keys = pool.better(idx, tok)
                # question relevance: a second pool ranks the tokens by relevance (None without)
                rtok = plan.relevance_tokens(idx, tok)
                rgood, rkeys = (rpool.better(idx, rtok) if rpool is not None and rtok is not None
                                else (good[:0], keys[:0]))
                if len(good) or len(rgood):
                    if keep_pixels:
                        rgb = sf.rgb(cfg.frame_size, crop=rgb_crop)
                    if len(good):  # the crops are copies (the pool holds no frame)
                        pool.add(idx, good, tok[good], keys,
                                 None if rgb is None else token_crops(rgb, cfg, good))
                    if rpool is not None and rtok is not None and len(rgood):
                        rpool.add(idx, rgood, rtok[rgood], rkeys,
                                  None if rgb is None else token_crops(rgb, cfg, rgood))
            # a grid target that snapped to a hollow frame waits for the next frame with content
            # (until the grid's next target: then the hollow frame stays, nothing better came)
            hits = [n for n, snap in grid_snaps.items() if snap.hit(idx)]
            want = []
            for n in grid_snaps:
                hit = n in hits
                if n in pending and (hit or not hollow):
                    late = pending.pop(n)
                    grid_frames[n].append(late if hit else idx)
                    if not hit:
                        want.append(n)
                if hit:
                    if hollow:
                        pending[n] = idx
                    else:
                        grid_frames[n].append(idx)
                    want.append(n)
            first = len(cuts_seen) == 1 or (first_frame == idx and len(cuts_seen) > 1)
            cut_keep = adaptive and n_max > 0 and kept_cut >= CUT_MIN and not no_cut and (
                len(cut_store) < 2 * n_max or kept_cut > cut_store[0][0])
            if want or cut_keep or first:
                if keep_pixels:
                    stored[idx] = rgb if rgb is not None else sf.rgb(cfg.frame_size, crop=rgb_crop)
                else:
                    stored[idx] = np.zeros(0, np.uint8)
                if cut_keep:
                    if len(cut_store) >= 2 * n_max:
                        _, old = heapq.heapreplace(cut_store, (kept_cut, idx))
                        if (not any(old in g for g in grid_frames.values())
                                and old != first_frame):
                            stored.pop(old, None)
                    else:
                        heapq.heappush(cut_store, (kept_cut, idx))
    if conv is None:
        raise DecodeError(f"{index.path}: no frame could be decoded")
    for n, f in pending.items():  # no frame with content after a hollow grid frame
        grid_frames[n].append(f)
    logger.debug("%s: %d frames analysed (skip=%s), %d RGB conversions", index.path,
                 len(cuts_seen), plan.skip, conv.conversions)
    return Scan(plan=plan, cut_scores=np.array(cuts_seen, np.float32), first_frame=first_frame,
                candidates=np.asarray(candidates, np.int64), anchor_grids=grid_frames,
                cut_store=cut_store, stored=stored, pool=pool.result(),
                relevance_pool=None if rpool is None else rpool.result(),
                conversions=conv.conversions, crop=crop, hollow=hollow_n)
