"""Codec-aware patch selection at an exact token budget, in one decode pass.

A staged pipeline (see docs/codec.md); each stage is a small module with a documented
data structure in between::

    packet_index -> make_plan (_plan.Plan) -> io.decode_pass + scan (_scan.Scan)
                 -> choose_anchors (_anchors) -> choose_tokens (_pool.Tokens)
                 -> pixels (_pixels) -> PatchSelection

Stages:

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

Pixels come from the same pass, converted by the reader's own converter
(:class:`vidsel.io.FrameConverter`, same interpolation), so they equal
``reader.get_frames(..., size)`` crops; ``pixels="reader"`` re-reads them through the reader
instead (reference mode). Unreliable timestamps are handled inside :func:`vidsel.io.decode_pass`
(it restarts counting frames and the pass is re-planned on the counted index).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np

from .._validate import check_choice, check_positive_int
from ..errors import DecodeError, InvalidArgumentError, UnsupportedCodecError
from ..io import (
    DEFAULT_INTERPOLATION,
    PacketIndex,
    StreamFrame,
    check_interpolation,
    check_stream,
    decode_pass,
    index_for,
)
from ..results import PatchConfig, PatchSelection
from ..select import uniform as uniform_frames
from ._anchors import choose_anchors
from ._motion import MV_CODECS, PREFETCH
from ._pixels import decoded_pixels, reader_pixels, token_pixels_to_patches, tokens_to_patches
from ._plan import (
    ANCHOR_POLICIES,
    CANDIDATES_PER_FRAME,
    AnchorPolicy,
    Plan,
    make_plan,
    resolve_budget,
)
from ._pool import choose_tokens
from ._scan import Scan, scan
from ._score import CAMERA_MODELS, SIGNALS, Camera

__all__ = ["ANCHOR_POLICIES", "PIXEL_MODES", "select_patches", "uniform_patches"]

logger = logging.getLogger(__name__)

PixelMode = Literal["decode", "reader", "none"]
PIXEL_MODES: tuple[str, ...] = ("decode", "reader", "none")
SignalChoice = Literal["auto", "motion_vectors", "pixel_diff"]


def _dense(index: PacketIndex, cfg: PatchConfig, budget: int, frames: np.ndarray,
           pixels: PixelMode, stream: int | None, method: str, interpolation: str,
           timings: dict[str, float], t0: float) -> PatchSelection:
    """Whole frames (uniform sampling, or a video shorter than the budget)."""
    th, tw = cfg.token_grid
    rr, cc = np.divmod(np.arange(th * tw), tw)
    tok_f = np.repeat(frames, th * tw)
    tok_rc = np.stack([np.tile(rr, len(frames)), np.tile(cc, len(frames))], axis=1)
    positions = tokens_to_patches(tok_f, tok_rc, cfg)
    t1 = time.perf_counter()
    pix = None
    if pixels != "none":
        pix = token_pixels_to_patches(
            reader_pixels(index.path, tok_f, tok_rc, cfg, stream, interpolation), cfg)
    timings["pixels"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    n = len(positions)
    return PatchSelection(
        path=index.path, method=method, config=cfg, positions=positions,
        timestamps_s=index.timestamps_s[positions[:, 0]], is_anchor=np.ones(n, bool),
        scores=np.full(n, np.nan, np.float32), pixels=pix, anchor_frames=frames,
        candidate_frames=np.zeros(0, np.int64), cut_frames=np.zeros(0, np.int64),
        budget_tokens=budget, num_frames=index.num_frames, duration_s=index.duration_s,
        signal="none", fallback=False, timings_s=timings)


def uniform_patches(path: str | os.PathLike[str], *, budget_frames: int = 8,
                    patch_size: int = 14, merge: int = 2,
                    frame_size: int | Sequence[int] = 392, pixels: PixelMode = "decode",
                    stream: int | None = None, index: PacketIndex | None = None,
                    interpolation: str = DEFAULT_INTERPOLATION) -> PatchSelection:
    """The uniform baseline: ``budget_frames`` whole frames, the frames the ``uniform`` method
    (``vidsel.run_method("uniform", path, budget=budget_frames)``) picks: evenly spaced, first
    and last frame included (:func:`vidsel.select.uniform` over every frame).

    Same result type and token accounting as :func:`select_patches` (method ``"uniform"``).
    Pixels always go through :class:`vidsel.VideoReader`. ``index`` must be a
    :class:`~vidsel.io.PacketIndex` of ``path`` (else
    :class:`~vidsel.errors.InvalidArgumentError`).
    """
    check_choice("pixels", pixels, PIXEL_MODES)
    interpolation = check_interpolation(interpolation)
    check_stream(stream)
    cfg = PatchConfig.make(patch_size=patch_size, merge=merge, frame_size=frame_size)
    n = check_positive_int("budget_frames", budget_frames)
    t0 = time.perf_counter()
    index = index_for(path, index, stream)
    timings = {"index": time.perf_counter() - t0}
    frames = uniform_frames(index.num_frames, n)  # the `uniform` method's frames
    return _dense(index, cfg, n * cfg.tokens_per_frame, frames, pixels, stream, "uniform",
                  interpolation, timings, t0)


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
    interpolation: str = DEFAULT_INTERPOLATION,
    threads: int = 1,
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
        index: a :class:`~vidsel.io.PacketIndex` already built for ``path`` (checked: an
            index of another file is an error).
        interpolation: swscale interpolation of the resize to ``frame_size`` (the reader's
            default, ``"BILINEAR"``); pixels equal ``VideoReader(path,
            interpolation=...).get_frames(frames, size=frame_size)`` crops. (On damaged data
            the decoder conceals errors from whatever it decoded before, so the pass's
            pixels may differ from the reader's, which decodes from the previous keyframe;
            ``pixels="reader"`` gives the reader's.)
        threads: decoder threads of a pixel-difference pass (HEVC, VP8/9, AV1...): 1 (the
            default) gives the same result on every run, damaged files included; 0 lets
            FFmpeg choose (faster on high-resolution HEVC/VP9/AV1 on many cores, but on
            damaged data FFmpeg's threads may conceal errors differently from run to run
            without reporting it). Motion-vector passes always decode single-threaded.

    Returns:
        :class:`~vidsel.results.PatchSelection` with exactly ``budget`` tokens (fewer only if the whole video is
        smaller than the budget, in which case every frame is kept dense).

    Raises:
        InvalidArgumentError: bad option values (e.g. ``num_anchors`` above
            ``budget // tokens_per_frame``), or an ``index`` of another file.
        UnsupportedCodecError: ``signal="motion_vectors"`` on a codec without vectors.
        CorruptVideoError: damaged or truncated data left too few frames to fill the budget.
        DecodeError: the budget cannot be filled for another reason (e.g. a very low
            ``candidates_per_frame``).
    """
    check_choice("anchors", anchors, ANCHOR_POLICIES)
    check_choice("camera", camera, CAMERA_MODELS)
    check_choice("signal", signal, ("auto", *SIGNALS))
    check_choice("pixels", pixels, PIXEL_MODES)
    interpolation = check_interpolation(interpolation)
    check_stream(stream)
    cfg = PatchConfig.make(patch_size=patch_size, merge=merge, frame_size=frame_size)
    budget = resolve_budget(budget_frames, budget_tokens, cfg)
    cpf = check_positive_int("candidates_per_frame", candidates_per_frame)
    threads = check_positive_int("threads", threads, allow_zero=True)
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
        return _dense(index, cfg, budget, np.arange(F, dtype=np.int64), pixels, stream,
                      "codec", interpolation, timings, t0)
    if signal == "motion_vectors" and index.codec not in MV_CODECS:
        raise UnsupportedCodecError(
            f"{index.path}: codec {index.codec!r} exports no motion vectors; use signal='auto' "
            f"or 'pixel_diff'")

    # 1. plan
    def plan_for(idx: PacketIndex) -> Plan:
        return make_plan(idx, cfg, budget, anchors=anchors, num_anchors=num_anchors,
                         camera=camera, signal=signal, candidates_per_frame=cpf,
                         keep_pixels=pixels == "decode")

    plan = plan_for(index)
    if plan.fallback:
        logger.info("%s: codec %r has no motion vectors; using the pixel-difference fallback",
                    index.path, index.codec)

    # 2. the decode pass (io re-plans on a counted index when timestamps prove unreliable)
    def consume(idx: PacketIndex, frames: Iterator[StreamFrame]) -> Scan:
        return scan(plan if idx is index else plan_for(idx), frames)

    t1 = time.perf_counter()
    sc = decode_pass(index, consume, skip=plan.skip, export_mvs=plan.use_mv,
                     keep=plan.stream_keep, interpolation=interpolation,
                     # pixel-difference passes read pictures that some decoders (VP8) still
                     # write to on damaged data: no decode-ahead there (deterministic)
                     prefetch=PREFETCH if plan.use_mv else 0, threads=threads)
    plan = sc.plan
    timings["decode"] = time.perf_counter() - t1

    # 3. anchors, 4. tokens
    t2 = time.perf_counter()
    anchor_frames, cuts = choose_anchors(sc)
    if sc.pool is None:  # pragma: no cover - scan() always leaves a pool
        raise DecodeError(f"{index.path}: internal error: the decode pass left no token pool")
    tokens = choose_tokens(sc.pool, anchor_frames, budget, tpf, path=index.path,
                           candidates=len(sc.candidates), analysed=sc.analysed,
                           decodable=plan.decodable)
    tok_rc = np.stack(np.divmod(tokens.tokens, cfg.token_grid[1]), axis=1)
    positions = tokens_to_patches(tokens.frames, tok_rc, cfg)
    timings["select"] = time.perf_counter() - t2

    # 5. pixels
    t3 = time.perf_counter()
    pix: np.ndarray | None = None
    if pixels == "decode":
        pix = decoded_pixels(tokens, sc.pool[4], anchor_frames, sc.stored, cfg)
    elif pixels == "reader":
        pix = token_pixels_to_patches(
            reader_pixels(index.path, tokens.frames, tok_rc, cfg, stream, interpolation), cfg)
    timings["pixels"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    m2 = cfg.merge ** 2
    result = PatchSelection(
        path=index.path, method="codec", config=cfg, positions=positions,
        timestamps_s=index.timestamps_s[positions[:, 0]],
        is_anchor=np.repeat(tokens.is_anchor, m2), scores=np.repeat(tokens.scores, m2),
        pixels=pix, anchor_frames=anchor_frames, candidate_frames=sc.candidates,
        cut_frames=np.asarray(sorted(cuts), np.int64), budget_tokens=budget, num_frames=F,
        duration_s=index.duration_s, signal=plan.signal, fallback=plan.fallback,
        timings_s=timings)
    logger.debug("%s: %r in %.2f s", index.path, result, timings["total"])
    return result
