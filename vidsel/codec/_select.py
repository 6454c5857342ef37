"""Codec-aware patch selection at an exact token budget, in one decode pass.

Pipeline (see docs/codec.md):

1. :func:`packet_index`: per-frame bit cost, picture types, which frames are references.
2. One decode pass over the frames other pictures need (B-frames nobody refers to are skipped,
   so every decoded picture is exact), in presentation order, on a decode-ahead thread (FFmpeg
   releases the GIL, so decoding overlaps the scoring). When the video has enough I- and
   P-frames, candidates, cut tests and anchors come from them only; reference B-frames are
   decoded so that later pictures stay exact and add their motion vectors to the energy, but
   are never converted.
   Per analysed frame: a block-grid change energy (motion vectors with camera compensation, or
   the pixel-difference fallback on the Y plane), a cut score (luma histogram change, intra
   share, bit-cost spike).
3. ``T = candidates_per_frame x budget`` candidate frames spread uniformly over the video; each
   candidate's token scores are the mean energy of the frames decoded since the previous
   candidate, mapped onto the token grid. A bounded pool keeps the best tokens seen so far
   together with their pixels; a candidate is converted to RGB only if one of its tokens beats
   the pool's floor, so nothing is decoded twice and few frames are converted in vain.
4. Anchors (dense frames): uniform, or adaptive (one at the start and one after each detected
   cut, gaps filled uniformly), never "every I-frame".
5. The motion budget (``budget - anchors x tokens_per_frame``) takes the best tokens of
   non-anchor candidates: the budget is spent exactly.

Pixels come from the same pass, converted exactly as :class:`vidsel.VideoReader` converts
(same swscale call and parameters, one cached swscale context, same display rotation), so they
equal ``reader.get_frames(..., size)`` crops; ``pixels="reader"`` re-reads them through the
reader instead (reference mode).
"""

from __future__ import annotations

import heapq
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._validate import check_choice, check_positive_int
from ..errors import CorruptVideoError, DecodeError, InvalidArgumentError, UnsupportedCodecError
from ..io._probe import apply_display_op, frame_display_transform, swaps_axes
from ._motion import (
    BLOCK,
    MV_CODECS,
    PtsUnreliable,
    decode_pass,
    luma_small,
    luma_step,
    mv_grid,
    prefetch,
    sequential,
    skip_mode,
)
from ._packets import PacketIndex, index_for
from ._result import PatchConfig, PatchSelection
from ._score import (
    CAMERA_MODELS,
    SIGNALS,
    Camera,
    block_overlap,
    cut_histogram,
    motion_energy,
    pixel_diff_energy,
)

__all__ = ["ANCHOR_POLICIES", "select_patches", "uniform_patches"]

logger = logging.getLogger(__name__)

AnchorPolicy = Literal["adaptive", "uniform"]
ANCHOR_POLICIES: tuple[str, ...] = ("adaptive", "uniform")
PixelMode = Literal["decode", "reader", "none"]
PIXEL_MODES: tuple[str, ...] = ("decode", "reader", "none")
SignalChoice = Literal["auto", "motion_vectors", "pixel_diff"]

#: Candidate frames per frame-equivalent of budget (64 sampled for 8 frames' worth, as the
#: official pipelines do).
CANDIDATES_PER_FRAME = 8
#: Share of the budget anchors get by default, and at most (adaptive, many cuts).
ANCHOR_SHARE = 0.25
MAX_ANCHOR_SHARE = 0.5
#: A cut score must exceed this AND stand out from the video's typical score.
CUT_MIN = 0.3
CUT_MAD = 8.0
#: Where no vectors exist, a cut is a mean absolute luma change (0-255) above
#: ``4 x recent level + CUT_DIFF_FLOOR``.
CUT_DIFF_FLOOR = 6.0
#: Weight of the bit-cost spike (a P/B packet much larger than its neighbours) in a cut score.
SPIKE_WEIGHT = 0.15
#: Two cuts closer than this (seconds) are one cut.
CUT_MIN_GAP_S = 1.0


@dataclass
class _Frame:
    """Per decoded frame bookkeeping (cheap scalars only)."""

    index: int
    cut: float


def _cut_threshold(scores: np.ndarray) -> float:
    if scores.size == 0:
        return CUT_MIN
    med = float(np.median(scores))
    mad = float(np.median(np.abs(scores - med)))
    return max(CUT_MIN, med + CUT_MAD * max(mad, 0.01))


def _bit_spikes(index: PacketIndex, window: int = 31) -> np.ndarray:
    """(F,) float32 in [0, 1]: how much a non-key frame's packet exceeds its neighbours'."""
    size = index.size.astype(np.float64)
    out = np.zeros(len(size), np.float32)
    for kind in ("P", "B"):
        sel = np.flatnonzero((index.pict_type == kind) & ~index.is_keyframe)
        if len(sel) < 3:
            continue
        s = size[sel]
        w = min(window, len(s)) | 1
        padded = np.pad(s, w // 2, mode="edge")
        med = np.median(np.lib.stride_tricks.sliding_window_view(padded, w), axis=1)  # (len(s),)
        out[sel] = np.clip(np.log2(np.maximum(s, 1.0) / np.maximum(med, 1.0)) / 3.0, 0.0, 1.0)
    return out


def _grid_targets(num_frames: int, n: int) -> np.ndarray:
    """(n,) int64 centres of n equal segments of [0, num_frames)."""
    if n <= 0:
        return np.zeros(0, np.int64)
    return np.unique(np.floor((np.arange(n) + 0.5) * num_frames / n).astype(np.int64))


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


def tie_keys(frame: int, tokens: np.ndarray) -> np.ndarray:
    """(k,) int64 fixed pseudo-random keys of (frame, token): the deterministic tie-break
    between equal token scores (energies are clipped to [0, 1], so ties are common).

    A hash rather than "later frame / higher token wins" so that tied tokens spread over the
    video and the frame instead of piling into its end and its bottom-right corner; the
    scores themselves are never perturbed.
    """
    x = (np.asarray(tokens, np.uint64) * np.uint64(0x9E3779B97F4A7C15)
         + np.full(len(tokens), frame, np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))
    x ^= x >> np.uint64(31)  # splitmix64 finaliser
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(32)
    return (x >> np.uint64(1)).astype(np.int64)  # type: ignore[no-any-return]


def rank_tokens(scores: np.ndarray, keys: np.ndarray, frames: np.ndarray,
                tokens: np.ndarray) -> np.ndarray:
    """Order of tokens best first: higher score, then higher tie key (then later frame, higher
    token index, which only matter on a hash collision)."""
    return np.lexsort((-tokens, -frames, -keys, -scores))


class _TokenPool:
    """The best ``budget`` tokens seen so far (score, tie key, frame, token, pixels), in arrays.

    New tokens are appended in chunks; once twice the budget is pending the pool is cut back
    to the best ``budget`` by :func:`rank_tokens`. ``floor`` (score, tie key) is the worst kept
    token: one must rank above it to enter, so only frames with at least one such token are
    ever converted to RGB.
    """

    def __init__(self, budget: int, keep_pixels: bool) -> None:
        self.budget = budget
        self.keep_pixels = keep_pixels
        self.floor = -np.inf
        self.floor_key = -1
        self.size = 0
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                np.ndarray | None]] = []

    def better(self, frame: int, tok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(token indices, their tie keys) of one frame's tokens that would enter the pool."""
        good = np.flatnonzero(tok >= self.floor)
        keys = tie_keys(frame, good)
        if self.floor > -np.inf:
            above = (tok[good] > self.floor) | (keys > self.floor_key)
            good, keys = good[above], keys[above]
        return good, keys

    def add(self, frame: int, blocks: np.ndarray, scores: np.ndarray, keys: np.ndarray,
            crops: np.ndarray | None) -> None:
        self._parts.append((scores.astype(np.float64), keys.astype(np.int64),
                            np.full(len(blocks), frame, np.int64), blocks.astype(np.int64),
                            crops))
        self.size += len(blocks)
        if self.size >= 2 * self.budget:
            self._prune()

    def _prune(self) -> None:
        s, k, f, b, pix = self._concat()
        if len(s) > self.budget:
            keep = rank_tokens(s, k, f, b)[: self.budget]
            s, k, f, b = s[keep], k[keep], f[keep], b[keep]
            pix = None if pix is None else pix[keep]
        if len(s) >= self.budget:
            worst = rank_tokens(s, k, f, b)[-1]
            self.floor, self.floor_key = float(s[worst]), int(k[worst])
        self._parts = [(s, k, f, b, pix)]
        self.size = len(s)

    def _concat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                               np.ndarray | None]:
        if not self._parts:
            z = np.zeros(0, np.int64)
            return np.zeros(0), z, z, z, None
        if len(self._parts) == 1:
            return self._parts[0]
        s, k, f, b = (np.concatenate([p[i] for p in self._parts]) for i in range(4))
        pix = (np.concatenate([p[4] for p in self._parts])  # type: ignore[misc]
               if self.keep_pixels else None)
        return s, k, f, b, pix

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                              np.ndarray | None]:
        """(scores, tie keys, frames, tokens, pixels or None) of the best ``budget`` tokens."""
        self._prune()
        return self._concat()


def _token_crops(rgb: np.ndarray, cfg: PatchConfig) -> np.ndarray:
    """(Th*Tw, m*p, m*p, 3) token crops of an (H, W, 3) frame, row-major over tokens."""
    th, tw = cfg.token_grid
    u = cfg.patch_size * cfg.merge
    return rgb.reshape(th, u, tw, u, 3).transpose(0, 2, 1, 3, 4).reshape(th * tw, u, u, 3)


def _tokens_to_patches(frames: np.ndarray, tok_rc: np.ndarray, cfg: PatchConfig) -> np.ndarray:
    """(N, 3) patch positions of tokens (frames (k,), tok_rc (k, 2)) in token-major order."""
    m = cfg.merge
    dy, dx = np.divmod(np.arange(m * m), m)  # (m*m,) offsets inside a token, row-major
    rows = tok_rc[:, 0:1] * m + dy[None, :]  # (k, m*m)
    cols = tok_rc[:, 1:2] * m + dx[None, :]
    f = np.broadcast_to(frames[:, None], rows.shape)
    return np.stack([f, rows, cols], axis=-1).reshape(-1, 3).astype(np.int64)


def _token_pixels_to_patches(tok_pix: np.ndarray, cfg: PatchConfig) -> np.ndarray:
    """(k, m*p, m*p, 3) token crops -> (k*m*m, p, p, 3) patches, row-major inside a token."""
    m, p = cfg.merge, cfg.patch_size
    k = len(tok_pix)
    return (tok_pix.reshape(k, m, p, m, p, 3).transpose(0, 1, 3, 2, 4, 5)
            .reshape(k * m * m, p, p, 3))


class _Converter:
    """RGB conversion identical to the reader's (swscale BILINEAR, then display transform)."""

    def __init__(self, frame: Any, out_hw: tuple[int, int]) -> None:
        self.rotation, self.mirrored, self.op = frame_display_transform(frame)
        oh, ow = out_hw
        self.coded_out = (ow, oh) if swaps_axes(self.op) else (oh, ow)
        self.display_hw = ((frame.width, frame.height) if swaps_axes(self.op)
                           else (frame.height, frame.width))
        # One reformatter for the whole pass: swscale keeps its context (and filter tables)
        # between frames instead of building one per frame as ``frame.to_ndarray`` does; the
        # output is the same call with the same parameters, hence byte-identical.
        from av.video.reformatter import VideoReformatter

        self._rf = VideoReformatter()
        self.conversions = 0

    def rgb(self, frame: Any) -> np.ndarray:
        ch, cw = self.coded_out
        self.conversions += 1
        if (ch, cw) == (frame.height, frame.width):
            out = self._rf.reformat(frame, format="rgb24")
        else:
            out = self._rf.reformat(frame, format="rgb24", width=cw, height=ch,
                                    interpolation="BILINEAR")
        return apply_display_op(out.to_ndarray(), self.op)  # type: ignore[no-any-return]

    def grid(self, g: np.ndarray) -> np.ndarray:
        """Apply the display transform to a (Gh, Gw) coded-orientation grid."""
        return apply_display_op(g[..., None], self.op)[..., 0]  # type: ignore[no-any-return]


def _resolve_budget(budget_frames: int | None, budget_tokens: int | None,
                    cfg: PatchConfig) -> int:
    if budget_tokens is not None:
        return check_positive_int("budget_tokens", budget_tokens)
    if budget_frames is None:
        raise InvalidArgumentError("budget_frames=None needs budget_tokens")
    return check_positive_int("budget_frames", budget_frames) * cfg.tokens_per_frame


def _validate_common(anchors: str, camera: str, signal: str, pixels: str) -> None:
    check_choice("anchors", anchors, ANCHOR_POLICIES)
    check_choice("camera", camera, CAMERA_MODELS)
    check_choice("signal", signal, ("auto", *SIGNALS))
    check_choice("pixels", pixels, PIXEL_MODES)


def _reader_pixels(path: str, frames: np.ndarray, tok_rc: np.ndarray, cfg: PatchConfig,
                   stream: int | None, chunk: int = 32) -> np.ndarray:
    """Token crops (k, m*p, m*p, 3) of (frames[k], tok_rc[k]) read through VideoReader."""
    from vidsel.io import VideoReader

    u = cfg.patch_size * cfg.merge
    out = np.zeros((len(frames), u, u, 3), np.uint8)
    uniq = np.unique(frames)
    with VideoReader(path, stream=stream) as reader:
        for s in range(0, len(uniq), chunk):
            part = uniq[s:s + chunk]
            imgs = reader.get_frames(part, size=cfg.frame_size)  # (c, H, W, 3)
            for j, f in enumerate(part):
                sel = np.flatnonzero(frames == f)
                r, c = tok_rc[sel, 0], tok_rc[sel, 1]
                crops = _token_crops(imgs[j], cfg)
                out[sel] = crops[r * cfg.token_grid[1] + c]
    return out


def _dense(path: str, index: PacketIndex, cfg: PatchConfig, budget: int, frames: np.ndarray,
           pixels: PixelMode, stream: int | None, method: str, signal: str,
           timings: dict[str, float], t0: float) -> PatchSelection:
    """Whole frames (uniform sampling, or a video shorter than the budget)."""
    th, tw = cfg.token_grid
    rr, cc = np.divmod(np.arange(th * tw), tw)
    tok_f = np.repeat(frames, th * tw)
    tok_rc = np.stack([np.tile(rr, len(frames)), np.tile(cc, len(frames))], axis=1)
    positions = _tokens_to_patches(tok_f, tok_rc, cfg)
    t1 = time.perf_counter()
    pix = None
    if pixels != "none":
        pix = _token_pixels_to_patches(_reader_pixels(path, tok_f, tok_rc, cfg, stream), cfg)
    timings["pixels"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    n = len(positions)
    return PatchSelection(
        path=index.path, method=method, config=cfg, positions=positions,
        timestamps=index.seconds[positions[:, 0]], is_anchor=np.ones(n, bool),
        scores=np.full(n, np.nan, np.float32), pixels=pix, anchor_frames=frames,
        candidate_frames=np.zeros(0, np.int64), cut_frames=np.zeros(0, np.int64),
        budget_tokens=budget, num_frames=index.num_frames, duration_s=index.duration_s,
        signal=signal, fallback=False, timings=timings)


def uniform_patches(path: str | os.PathLike[str], *, budget_frames: int = 8,
                    patch_size: int = 14, merge: int = 2,
                    frame_size: int | Sequence[int] = 392, pixels: PixelMode = "decode",
                    stream: int | None = None, index: PacketIndex | None = None
                    ) -> PatchSelection:
    """The uniform baseline: ``budget_frames`` whole frames at the centres of equal segments.

    Same result type and token accounting as :func:`select_patches` (method ``"uniform"``).
    Pixels always go through :class:`vidsel.VideoReader`. ``index`` must be a
    :class:`PacketIndex` of ``path`` (else :class:`~vidsel.errors.InvalidArgumentError`).
    """
    check_choice("pixels", pixels, PIXEL_MODES)
    cfg = PatchConfig.make(patch_size=patch_size, merge=merge, frame_size=frame_size)
    n = check_positive_int("budget_frames", budget_frames)
    t0 = time.perf_counter()
    index = index_for(path, index, stream)
    timings = {"index": time.perf_counter() - t0}
    frames = _grid_targets(index.num_frames, min(n, index.num_frames))
    return _dense(index.path, index, cfg, n * cfg.tokens_per_frame, frames, pixels, stream,
                  "uniform", "none", timings, t0)


def select_patches(
    path: str | os.PathLike[str],
    *,
    budget_frames: int | None = 8,
    budget_tokens: int | None = None,
    patch_size: int = 14,
    merge: int = 2,
    frame_size: int | Sequence[int] = 392,
    anchors: AnchorPolicy = "adaptive",
    num_anchors: int | None = None,
    camera: Camera = "affine",
    signal: SignalChoice = "auto",
    candidates_per_frame: int = CANDIDATES_PER_FRAME,
    pixels: PixelMode = "decode",
    stream: int | None = None,
    index: PacketIndex | None = None,
) -> PatchSelection:
    """Spend a token budget on dense anchor frames plus the most changing patches of many frames.

    Args:
        path: the video file.
        budget_frames: budget in frame-equivalents (``budget_frames x tokens_per_frame``
            tokens, i.e. the cost of that many uniform frames).
        budget_tokens: budget in merged tokens; when given it replaces ``budget_frames``.
        patch_size: patch side in pixels (14 for LLaVA-OneVision-2, 16 for Ovis2.5).
        merge: patches merged per side into one token (2 = 2x2).
        frame_size: frames are resized to this (int: square side; or (height, width)); each
            side a multiple of ``patch_size * merge`` (392 for LLaVA-OV-2, 448 for Ovis2.5).
        anchors: ``"adaptive"`` (start + after each detected cut, gaps filled uniformly) or
            ``"uniform"``.
        num_anchors: anchor frames (default a quarter of the budget; adaptive may use up to
            half of it when the video has many cuts).
        camera: camera-motion compensation of motion vectors: ``"affine"`` (robust fit),
            ``"median"`` (subtract the median vector) or ``"none"``.
        signal: ``"auto"`` uses motion vectors when the codec exports them (H.264, MPEG-1/2/4)
            and falls back to pixel differences otherwise (HEVC, VP8/9, AV1...); the fallback
            is reported in ``result.signal`` / ``result.fallback``.
        candidates_per_frame: candidate frames per frame-equivalent of budget.
        pixels: ``"decode"`` keeps pixels from the analysis pass (one decode); ``"reader"``
            reads the contributing frames again through :class:`vidsel.VideoReader`
            (reference mode, same values, slower); ``"none"`` skips pixels.
        stream: video stream (index among the video streams).
        index: a :class:`PacketIndex` already built for ``path`` (checked: an index of
            another file is an error).

    Returns:
        :class:`PatchSelection` with exactly ``budget`` tokens (fewer only if the whole video is
        smaller than the budget, in which case every frame is kept dense).

    Raises:
        InvalidArgumentError: bad option values (e.g. ``num_anchors`` above
            ``budget // tokens_per_frame``), or an ``index`` of another file.
        UnsupportedCodecError: ``signal="motion_vectors"`` on a codec without vectors.
        CorruptVideoError: damaged or truncated data left too few frames to fill the budget.
        DecodeError: the budget cannot be filled for another reason (e.g. a very low
            ``candidates_per_frame``).
    """
    _validate_common(anchors, camera, signal, pixels)
    cfg = PatchConfig.make(patch_size=patch_size, merge=merge, frame_size=frame_size)
    budget = _resolve_budget(budget_frames, budget_tokens, cfg)
    cpf = check_positive_int("candidates_per_frame", candidates_per_frame)
    tpf = cfg.tokens_per_frame
    if num_anchors is not None:
        num_anchors = check_positive_int("num_anchors", num_anchors, allow_zero=True)
        if num_anchors > budget // tpf:
            raise InvalidArgumentError(
                f"num_anchors={num_anchors} does not fit the budget of {budget} tokens: at most "
                f"{budget // tpf} anchor frames of {tpf} tokens")
    t0 = time.perf_counter()
    index = index_for(path, index, stream)
    timings = {"index": time.perf_counter() - t0}
    F = index.num_frames
    if F * tpf <= budget:
        logger.info("%s: %d frames x %d tokens fit the budget of %d: keeping every frame",
                    index.path, F, tpf, budget)
        return _dense(index.path, index, cfg, budget, np.arange(F, dtype=np.int64), pixels,
                      stream, "codec", "none", timings, t0)

    use_mv = index.codec in MV_CODECS and signal in ("auto", "motion_vectors")
    if signal == "motion_vectors" and index.codec not in MV_CODECS:
        raise UnsupportedCodecError(
            f"{index.path}: codec {index.codec!r} exports no motion vectors; use signal='auto' "
            f"or 'pixel_diff'")
    sig = "motion_vectors" if use_mv else "pixel_diff"
    fallback = not use_mv and signal == "auto"
    if fallback:
        logger.info("%s: codec %r has no motion vectors; using the pixel-difference fallback",
                    index.path, index.codec)

    # -- anchor counts -------------------------------------------------------------------------
    bf = budget / tpf  # frame-equivalents (may be fractional with budget_tokens)
    if num_anchors is not None:
        n_def = n_max = num_anchors
    else:
        # at least one anchor once the budget holds two frames; a single frame's worth of
        # budget goes entirely to motion tokens spread over the video
        n_def = min(max(1 if bf >= 2 else 0, round(bf * ANCHOR_SHARE)), budget // tpf)
        n_max = min(max(n_def, int(bf * MAX_ANCHOR_SHARE)), budget // tpf)
    if anchors == "uniform":
        n_max = n_def

    # -- which frames to decode / candidates ---------------------------------------------------
    skip = skip_mode(index, "reference")
    decodable = {"DEFAULT": F, "BIDIR": int((index.pict_type != "B").sum()),
                 "NONREF": int(index.is_reference.sum())}[skip]
    if decodable * tpf < budget + n_max * tpf or not index.pts_reliable:
        skip, decodable = "DEFAULT", F
    n_want = int(np.ceil(cpf * bf))
    # Candidates, cut tests and anchors come from I- and P-frames only when there are enough of
    # them: reference B-frames are then decoded so that the pictures after them stay exact and
    # add their motion vectors to the energy, but they are never converted to RGB.
    keep: np.ndarray | None = None
    non_b = index.pict_type != "B"
    n_ip = int(non_b.sum())
    if index.pts_reliable and n_ip < decodable and n_ip * tpf >= budget + n_max * tpf:
        # candidates snap to the next analysed frame: restrict to I+P only if that loses (almost)
        # none of them (fewer candidates would crowd more motion tokens into each)
        ip = np.flatnonzero(non_b)
        snapped = ip[np.minimum(np.searchsorted(ip, _grid_targets(F, min(n_want, n_ip))),
                                len(ip) - 1)]
        if len(np.unique(snapped)) >= 0.98 * min(n_want, decodable):
            keep, decodable = non_b, n_ip
    n_cand = min(n_want, decodable)
    cand_snap = _Snapper(_grid_targets(F, n_cand))
    grid_snaps = {n: _Snapper(_grid_targets(F, n)) for n in {n_def, n_max} if n > 0}
    spikes = _bit_spikes(index)
    keep_pixels = pixels == "decode"

    # -- the pass ------------------------------------------------------------------------------
    th, tw = cfg.token_grid
    pool = _TokenPool(budget, keep_pixels)
    stored: dict[int, np.ndarray] = {}  # frame -> RGB (H, W, 3) of anchor candidates
    grid_frames: dict[int, list[int]] = {n: [] for n in grid_snaps}
    cut_store: list[tuple[float, int]] = []  # min-heap of (cut score, frame)
    frames_seen: list[_Frame] = []
    candidates: list[int] = []
    conv: _Converter | None = None
    ry = rx = np.zeros((0, 0), np.float32)
    gh = gw = 0
    lstep = 4
    prev_luma: np.ndarray | None = None
    prev_hist: np.ndarray | None = None
    acc: np.ndarray | None = None
    acc_n = 0
    mad_level = -1.0
    energy: np.ndarray
    t1 = time.perf_counter()
    try:
        for idx, frame, mvs in prefetch(decode_pass(index.path, index, skip=skip,
                                                    export_mvs=use_mv,
                                                    keep=None if use_mv else keep)):
            if conv is None:
                conv = _Converter(frame, cfg.frame_size)
                gh, gw = -(-frame.height // BLOCK), -(-frame.width // BLOCK)
                dh, dw = conv.display_hw
                dgh, dgw = conv.grid(np.zeros((gh, gw), np.float32)).shape
                # token-grid rows/cols <- display-grid cells (area shares)
                ry = block_overlap(th, dh, dgh, BLOCK, dh)  # (Th, dGh)
                rx = block_overlap(tw, dw, dgw, BLOCK, dw)  # (Tw, dGw)
                lstep = luma_step(frame.height, frame.width)
            if keep is not None and not keep[idx]:
                # a reference B-frame: its vectors join the motion energy (it is decoded
                # anyway, and the denser motion sampling finds more of the moving content); it
                # is not a candidate, not cut-tested and never converted
                if mvs is not None and len(mvs):
                    flow, cov = mv_grid(mvs, (gh, gw))
                    energy = motion_energy(flow, cov, camera=camera)
                    if acc is None:
                        acc = energy.astype(np.float32, copy=True)
                    else:
                        acc += energy
                    acc_n += 1
                continue
            luma = luma_small(frame, lstep)
            hist = cut_histogram(luma)
            hdist = 0.0 if prev_hist is None else 0.5 * float(np.abs(hist - prev_hist).sum())
            mad = 0.0 if prev_luma is None else float(np.abs(luma - prev_luma).mean())
            # where no vectors exist, a cut is a spike over the recent level of change
            diff_cut = min(1.0, mad / (4.0 * max(mad_level, 0.0) + CUT_DIFF_FLOOR))
            mad_level = mad if mad_level < 0 else 0.8 * mad_level + 0.2 * mad
            cut = hdist
            if use_mv and mvs is not None and len(mvs):
                flow, cov = mv_grid(mvs, (gh, gw))
                energy = motion_energy(flow, cov, camera=camera)
                intra = float(1.0 - cov.mean())
                cut = max(hdist, 0.5 * intra) + SPIKE_WEIGHT * float(spikes[idx])
            else:
                energy = pixel_diff_energy(luma, prev_luma, (gh, gw))
                cut = max(hdist, diff_cut)
                if not frame.key_frame:
                    cut += SPIKE_WEIGHT * float(spikes[idx])
            if prev_hist is None:
                cut = 0.0
            prev_luma, prev_hist = luma, hist
            frames_seen.append(_Frame(idx, cut))
            if acc is None:
                acc = energy.astype(np.float32, copy=True)
            else:
                acc += energy
            acc_n += 1

            rgb: np.ndarray | None = None
            if cand_snap.hit(idx):
                candidates.append(idx)
                e = conv.grid(acc / acc_n)
                acc, acc_n = None, 0
                tok = (ry @ e @ rx.T).ravel()  # (Th*Tw,) token scores
                good, keys = pool.better(idx, tok)
                if len(good):
                    crops = None
                    if keep_pixels:
                        rgb = conv.rgb(frame)
                        crops = _token_crops(rgb, cfg)[good]  # fancy index: a copy
                    pool.add(idx, good, tok[good], keys, crops)
            want = [n for n, snap in grid_snaps.items() if snap.hit(idx)]
            for n in want:
                grid_frames[n].append(idx)
            first = len(frames_seen) == 1
            cut_keep = anchors == "adaptive" and cut >= CUT_MIN and (
                len(cut_store) < 2 * n_max or cut > cut_store[0][0])
            if want or cut_keep or first:
                if keep_pixels:
                    stored[idx] = rgb if rgb is not None else conv.rgb(frame)
                else:
                    stored[idx] = np.zeros(0, np.uint8)
                if cut_keep:
                    if len(cut_store) >= 2 * n_max:
                        _, old = heapq.heapreplace(cut_store, (cut, idx))
                        if (not any(old in g for g in grid_frames.values())
                                and old != frames_seen[0].index):
                            stored.pop(old, None)
                    else:
                        heapq.heappush(cut_store, (cut, idx))
    except PtsUnreliable:
        return select_patches(
            path, budget_frames=budget_frames, budget_tokens=budget_tokens,
            patch_size=patch_size, merge=merge, frame_size=frame_size, anchors=anchors,
            num_anchors=num_anchors, camera=camera, signal=signal,
            candidates_per_frame=candidates_per_frame, pixels=pixels, stream=stream,
            index=sequential(index))
    if conv is None:
        raise DecodeError(f"{index.path}: no frame could be decoded")
    timings["decode"] = time.perf_counter() - t1
    logger.debug("%s: %d frames analysed (skip=%s), %d RGB conversions", index.path,
                 len(frames_seen), skip, conv.conversions)

    # -- anchors -------------------------------------------------------------------------------
    t2 = time.perf_counter()
    cut_scores = np.array([f.cut for f in frames_seen], np.float32)
    thr = _cut_threshold(cut_scores)
    cuts = _pick_cuts(sorted(cut_store, reverse=True), thr, index, max(n_max - 1, 0))
    first_frame = frames_seen[0].index
    if n_max == 0:
        anchor_list: list[int] = []
    elif anchors == "uniform":
        anchor_list = grid_frames.get(n_def, [])[:n_def]
    else:
        n_total = min(max(1 + len(cuts), n_def), n_max)
        anchor_list = _fill_gaps([first_frame, *cuts][:n_total],
                                 grid_frames.get(n_max, []), n_total, F)
    anchor_arr = np.array(sorted(set(anchor_list)), np.int64)

    # -- motion tokens -------------------------------------------------------------------------
    k_motion = budget - len(anchor_arr) * tpf
    pool_s, pool_k, pool_f, pool_b, pool_pix = pool.result()
    sel_rows = np.flatnonzero(~np.isin(pool_f, anchor_arr))
    sel_rows = sel_rows[rank_tokens(pool_s[sel_rows], pool_k[sel_rows], pool_f[sel_rows],
                                    pool_b[sel_rows])[:k_motion]]
    if len(sel_rows) < k_motion:
        # the promise is an exact budget (a video smaller than the budget was handled above)
        msg = (f"{index.path}: only {len(sel_rows)} of {k_motion} motion tokens could be "
               f"filled from {len(candidates)} candidate frames ({len(frames_seen)} of "
               f"{decodable} frames analysed)")
        if len(frames_seen) < decodable:
            raise CorruptVideoError(f"{msg}: frames are missing (damaged or truncated data)",
                                    path=index.path)
        raise DecodeError(f"{msg}; lower the budget or raise candidates_per_frame")
    # tokens: anchors (all), motion (chosen), sorted by (frame, token row, col)
    a_f = np.repeat(anchor_arr, tpf)
    a_b = np.tile(np.arange(tpf), len(anchor_arr))
    m_f = pool_f[sel_rows]
    m_b = pool_b[sel_rows]
    m_s = pool_s[sel_rows].astype(np.float32)
    tok_f = np.concatenate([a_f, m_f])
    tok_b = np.concatenate([a_b, m_b])
    tok_s = np.concatenate([np.full(len(a_f), np.nan, np.float32), m_s])
    tok_a = np.concatenate([np.ones(len(a_f), bool), np.zeros(len(m_f), bool)])
    # source row of each token: anchors -> -1 - (k-th anchor frame), motion -> pool row
    src = np.concatenate([-1 - np.repeat(np.arange(len(anchor_arr)), tpf), sel_rows])
    order = np.lexsort((tok_b, tok_f))
    tok_f, tok_b, tok_s, tok_a, src = (tok_f[order], tok_b[order], tok_s[order], tok_a[order],
                                       src[order])
    if len(tok_f) != budget or len(np.unique(tok_f * tpf + tok_b)) != budget:
        raise DecodeError(f"{index.path}: internal error: {len(tok_f)} tokens (duplicates "
                          f"included) selected for a budget of {budget}")
    tok_rc = np.stack(np.divmod(tok_b, tw), axis=1)
    positions = _tokens_to_patches(tok_f, tok_rc, cfg)
    timings["select"] = time.perf_counter() - t2

    # -- pixels --------------------------------------------------------------------------------
    t3 = time.perf_counter()
    pix: np.ndarray | None = None
    if pixels == "decode":
        u = cfg.patch_size * cfg.merge
        tok_pix = np.empty((len(tok_f), u, u, 3), np.uint8)
        mot = ~tok_a
        if pool_pix is not None and mot.any():
            tok_pix[mot] = pool_pix[src[mot]]
        for k, f in enumerate(anchor_arr.tolist()):
            rows = np.flatnonzero(src == -1 - k)
            tok_pix[rows] = _token_crops(stored[f], cfg)[tok_b[rows]]
        pix = _token_pixels_to_patches(tok_pix, cfg)
    elif pixels == "reader":
        pix = _token_pixels_to_patches(
            _reader_pixels(index.path, tok_f, tok_rc, cfg, stream), cfg)
    timings["pixels"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    m2 = cfg.merge ** 2
    result = PatchSelection(
        path=index.path, method="codec", config=cfg, positions=positions,
        timestamps=index.seconds[positions[:, 0]], is_anchor=np.repeat(tok_a, m2),
        scores=np.repeat(tok_s, m2), pixels=pix, anchor_frames=anchor_arr,
        candidate_frames=np.asarray(candidates, np.int64),
        cut_frames=np.asarray(sorted(cuts), np.int64), budget_tokens=budget, num_frames=F,
        duration_s=index.duration_s, signal=sig, fallback=fallback, timings=timings)
    logger.debug("%s: %r in %.2f s", index.path, result, timings["total"])
    return result


def _pick_cuts(store: list[tuple[float, int]], thr: float, index: PacketIndex,
               limit: int) -> list[int]:
    """Strongest cuts above ``thr``, at least CUT_MIN_GAP_S apart, at most ``limit``."""
    picked: list[int] = []
    sec = index.seconds
    for score, f in store:
        if len(picked) >= limit or score < thr:
            break
        if all(abs(sec[f] - sec[p]) >= CUT_MIN_GAP_S for p in picked):
            picked.append(f)
    return picked


def _fill_gaps(chosen: list[int], grid: list[int], total: int, num_frames: int) -> list[int]:
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


#: Registry of selection methods by name (what ``compare`` and the CLI offer).
METHODS: dict[str, Callable[..., PatchSelection]] = {
    "codec": select_patches, "uniform": uniform_patches}
