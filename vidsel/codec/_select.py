"""Codec-aware patch selection at an exact token budget, in one decode pass.

A staged pipeline (see docs/codec.md); each stage is a small module with a documented
data structure in between::

    packet_index -> make_plan (_plan.Plan) -> io.decode_pass + scan (_scan.Scan)
                 -> choose_anchors (_anchors) -> choose_tokens (_pool.Tokens)
                 -> pixels (_pixels) -> PatchSelection

Stages:

1. :func:`packet_index`: per-frame bit cost, picture types, which frames are references.
2. One decode pass over the frames other pictures need (B-frames nobody refers to are skipped,
   so every decoded picture is exact), in presentation order, on decode-ahead thread(s)
   (FFmpeg releases the GIL, so decoding overlaps the scoring). When the video has enough I-
   and P-frames, candidates, cut tests and anchors come from them only; reference B-frames are
   decoded so that later pictures stay exact and add their motion vectors to the energy, but
   are never converted.
   Per analysed frame: a block-grid change energy (motion vectors with camera compensation, or
   the pixel-difference fallback on the Y plane), a cut score (luma histogram change, intra
   share, bit-cost spike), measured for chunks of frames at once (:mod:`._features`). With
   ``crop="auto"`` the black bars are detected on a thread of their own while the index is
   built and the first pictures decode.
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
(:class:`vidsel.io.FrameConverter`, same interpolation; by a decode thread that is ahead of the
analysis, else by the analysis: :class:`vidsel.io.ConvertAhead`), so they equal
``reader.get_frames(..., size)`` crops; ``pixels="reader"`` re-reads them through the reader
instead (reference mode). Unreliable timestamps are handled inside :func:`vidsel.io.decode_pass`
(it restarts counting frames and the pass is re-planned on the counted index).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._validate import check_choice, check_positive_int
from ..errors import DecodeError, InvalidArgumentError, UnsupportedCodecError
from ..io import (
    DEFAULT_INTERPOLATION,
    ConvertAhead,
    Crop,
    CropSpec,
    LateCrop,
    PacketIndex,
    StreamFrame,
    check_interpolation,
    check_stream,
    decode_pass,
    index_for,
    resolve_crop,
)
from ..results import PatchConfig, PatchSelection
from ..select import uniform as uniform_frames
from ..selection import DEFAULT_EMBED_SIZE
from ._anchors import choose_anchors
from ._motion import MV_CODECS, PREFETCH
from ._pixels import decoded_pixels, reader_pixels, token_pixels_to_patches, tokens_to_patches
from ._plan import (
    ANCHOR_POLICIES,
    CANDIDATES_PER_FRAME,
    AnchorPolicy,
    Plan,
    anchor_counts,
    make_plan,
    resolve_budget,
)
from ._pool import choose_tokens, merge_pools
from ._relevance import (
    QUERY_ANCHORS,
    Relevance,
    check_relevance_share,
    nearest_rows,
    query_anchor_methods,
    query_relevance,
    relevance_curve,
)
from ._scan import CHUNK_FRAMES, CHUNK_PIXELS, Scan, scan
from ._score import CAMERA_MODELS, SIGNALS, Camera

__all__ = ["ANCHOR_POLICIES", "PIXEL_MODES", "check_patch_choices", "select_patches",
           "uniform_patches"]

logger = logging.getLogger(__name__)

PixelMode = Literal["decode", "reader", "none"]
PIXEL_MODES: tuple[str, ...] = ("decode", "reader", "none")
SignalChoice = Literal["auto", "motion_vectors", "pixel_diff"]


class _Bars:
    """The crop box of a selection: ``crop`` itself (checked at once, no file access), or
    (``"auto"``) the black bars, detected on a thread of their own once the packet index is
    there (:meth:`start`; the detection decodes a few keyframes while the decode pass
    starts)."""

    def __init__(self, crop: CropSpec, path: str | os.PathLike[str], stream: int | None
                 ) -> None:
        self._box: Crop | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._auto = isinstance(crop, str) and crop == "auto"
        self._where = (path, stream)
        if not self._auto:
            self._box = resolve_crop(crop, path, stream=stream)

    def start(self, index: PacketIndex) -> None:
        """Begin the detection (``"auto"``) on the file's packet index."""
        if self._auto and self._thread is None:
            self._thread = threading.Thread(target=self._detect, args=(index,),
                                            name="vidsel-borders", daemon=True)
            self._thread.start()

    def _detect(self, index: PacketIndex) -> None:
        try:
            self._box = resolve_crop("auto", self._where[0], stream=self._where[1], table=index)
        except BaseException as e:  # raised in the caller's thread by get()
            self._error = e

    def get(self, index: PacketIndex) -> Crop:
        """(top, bottom, left, right), waiting for the detection if needed."""
        self.start(index)
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        if self._box is None:  # pragma: no cover - _detect sets one or the other
            raise DecodeError("internal error: the bar detection gave no result")
        return self._box


def check_patch_choices(options: Mapping[str, Any]) -> None:
    """Check the :func:`select_patches` options with a fixed set of values (``camera``,
    ``signal``, ``pixels``, ``interpolation``; absent ones are not checked) without reading
    anything: :func:`select_patches` and the method registry run it, the registry before a
    video is read or an embedder loaded.

    Raises:
        InvalidArgumentError: a value :func:`select_patches` would refuse.
    """
    for name, choices in (("camera", CAMERA_MODELS), ("signal", ("auto", *SIGNALS)),
                          ("pixels", PIXEL_MODES)):
        if name in options:
            check_choice(name, options[name], choices)
    if "interpolation" in options:
        check_interpolation(options["interpolation"])


def _dense(index: PacketIndex, cfg: PatchConfig, budget: int, frames: np.ndarray,
           pixels: PixelMode, stream: int | None, method: str, interpolation: str,
           timings: dict[str, float], t0: float, crop: Crop = (0, 0, 0, 0)) -> PatchSelection:
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
            reader_pixels(index.path, tok_f, tok_rc, cfg, stream, interpolation, crop=crop),
            cfg)
    timings["pixels"] = time.perf_counter() - t1
    timings["total"] = time.perf_counter() - t0
    n = len(positions)
    return PatchSelection(
        path=index.path, method=method, config=cfg, positions=positions,
        timestamps_s=index.timestamps_s[positions[:, 0]], is_anchor=np.ones(n, bool),
        scores=np.full(n, np.nan, np.float32), pixels=pix, anchor_frames=frames,
        candidate_frames=np.zeros(0, np.int64), cut_frames=np.zeros(0, np.int64),
        budget_tokens=budget, num_frames=index.num_frames, duration_s=index.duration_s,
        signal="none", fallback=False, timings_s=timings, crop=crop)


@dataclass(frozen=True)
class _Query:
    """How a selection uses its question: ``anchors`` is the plan's policy, ``anchor_method``
    the frame selector choosing anchors (or None), ``share`` the share of the motion budget
    spent by relevance."""

    question: str
    anchors: AnchorPolicy
    anchor_method: str | None
    share: float

    @property
    def active(self) -> bool:
        """The question is embedded (it weighs tokens or chooses anchors)."""
        return self.share > 0 or self.anchor_method is not None

    def params(self, rel: Relevance | None) -> dict[str, Any]:
        """What the result records of the question's use (empty when unused)."""
        if rel is None:
            return {}
        out = {"anchors": self.anchor_method or self.anchors, "relevance_share": self.share,
               "embedder": rel.embedder, "relevance_frames": len(rel.frames)}
        if rel.patch_maps is not None:
            out["patch_relevance"] = True
        return out


def _check_query(question: str | None, embedder: Any, share: float | None,
                 anchors: str | None) -> _Query:
    """Validate the question options of :func:`select_patches` (before any decoding)."""
    if question is not None and (not isinstance(question, str) or not question.strip()):
        raise InvalidArgumentError(f"question={question!r} must be a non-empty str or None")
    if share is not None:
        share = check_relevance_share(share)
    if question is None:
        if embedder is not None:
            raise InvalidArgumentError(
                "embedder= scores relevance to a question and needs question=; leave both "
                "out for the motion-only selection")
        if share:
            raise InvalidArgumentError(
                f"relevance_share={share!r} needs a question (and an embedder)")
        if anchors is not None and anchors not in ANCHOR_POLICIES:
            if anchors in query_anchor_methods():
                raise InvalidArgumentError(
                    f"anchors={anchors!r} chooses anchors by relevance and needs a question "
                    f"(and an embedder); without one use 'adaptive' or 'uniform'")
            check_choice("anchors", anchors, ANCHOR_POLICIES)
        return _Query("", anchors or "adaptive", None, 0.0)  # type: ignore[arg-type]
    if embedder is None:
        raise InvalidArgumentError(
            "question= needs an embedder to score relevance (e.g. embedder='hf:/path/to/siglip')"
            "; without one, leave question out for the motion-only selection")
    w = 0.5 if share is None else share
    if anchors is None:
        anchors = QUERY_ANCHORS if w > 0 else "adaptive"
    if anchors in ANCHOR_POLICIES:
        return _Query(question, anchors, None, w)  # type: ignore[arg-type]
    check_choice("anchors", anchors, (*ANCHOR_POLICIES, *query_anchor_methods()))
    return _Query(question, "query", anchors, w)


def uniform_patches(path: str | os.PathLike[str], *, budget_frames: int = 8,
                    patch_size: int = 14, merge: int = 2,
                    frame_size: int | Sequence[int] = 392, pixels: PixelMode = "decode",
                    stream: int | None = None, index: PacketIndex | None = None,
                    interpolation: str = DEFAULT_INTERPOLATION,
                    crop: CropSpec = "auto") -> PatchSelection:
    """The uniform baseline: ``budget_frames`` whole frames, the frames the ``uniform`` method
    (``vidsel.run_method("uniform", path, budget=budget_frames)``) picks: evenly spaced, first
    and last frame included (:func:`vidsel.select.uniform` over every frame).

    Same result type and token accounting as :func:`select_patches` (method ``"uniform"``).
    Pixels always go through :class:`vidsel.VideoReader`. ``index`` must be a
    :class:`~vidsel.io.PacketIndex` of ``path`` (else
    :class:`~vidsel.errors.InvalidArgumentError`). ``crop`` as in :func:`select_patches`.
    """
    check_choice("pixels", pixels, PIXEL_MODES)
    interpolation = check_interpolation(interpolation)
    check_stream(stream)
    cfg = PatchConfig.make(patch_size=patch_size, merge=merge, frame_size=frame_size)
    n = check_positive_int("budget_frames", budget_frames)
    t0 = time.perf_counter()
    bars = _Bars(crop, path, stream)
    index = index_for(path, index, stream)
    timings = {"index": time.perf_counter() - t0}
    box = bars.get(index)
    timings["borders"] = time.perf_counter() - t0 - timings["index"]
    frames = uniform_frames(index.num_frames, n)  # the `uniform` method's frames
    return _dense(index, cfg, n * cfg.tokens_per_frame, frames, pixels, stream, "uniform",
                  interpolation, timings, t0, crop=box)


def select_patches(
    path: str | os.PathLike[str],
    *,
    budget_frames: int | None = 8,
    budget_tokens: int | None = None,
    patch_size: int = 14,
    merge: int = 2,
    frame_size: int | Sequence[int] = 392,
    anchors: str | None = None,
    num_anchors: int | None = None,
    camera: Camera = "affine",
    signal: SignalChoice = "auto",
    candidates_per_frame: int = CANDIDATES_PER_FRAME,
    pixels: PixelMode = "decode",
    stream: int | None = None,
    index: PacketIndex | None = None,
    interpolation: str = DEFAULT_INTERPOLATION,
    threads: int = 1,
    workers: int | None = None,
    crop: CropSpec = "auto",
    question: str | None = None,
    embedder: Any = None,
    relevance_share: float | None = None,
    relevance_candidates: int | str | None = None,
    anchor_params: Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    embed_size: int | None = DEFAULT_EMBED_SIZE,
    embedder_options: Mapping[str, Any] | None = None,
    patch_relevance: bool = False,
) -> PatchSelection:
    """Spend a token budget on dense anchor frames plus the most changing patches of many frames,
    optionally steered by a question.

    Args:
        path: the video file.
        budget_frames: budget in frame-equivalents (``budget_frames x tokens_per_frame``
            tokens, i.e. the cost of that many uniform frames).
        budget_tokens: budget in merged tokens; when given it replaces ``budget_frames``.
        patch_size: patch side in pixels (14 for LLaVA-OneVision-2, 16 for Ovis2.5).
        merge: patches merged per side into one token (2 = 2x2).
        frame_size: frames are resized to this (int: square side; or (height, width)); each
            side a multiple of ``patch_size * merge`` (392 for LLaVA-OV-2, 448 for Ovis2.5).
        anchors: ``"adaptive"`` (start + after each detected cut, gaps filled uniformly),
            ``"uniform"``, or (with a question) the name of a frame selector that scores
            relevance (``"mdp3"``, ``"dpp"``, ``"topk"``, ``"bolt"``, ``"aks"``, ...), which
            then picks the anchors among the scored frames. Default: ``"adaptive"``; with a
            question and ``relevance_share > 0``, ``"mdp3"`` (relevant, diverse, in order;
            the anchor count is the same as without a question).
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
        workers: decoders working at once on independent stretches of an H.264 stream (cut
            at keyframes no picture crosses; each stretch single-threaded, frames merged in
            presentation order): the result is identical to a sequential pass (damaged data
            falls back to one). None: one per core, at most 4; 1: sequential.
        crop: black bars to leave out: ``"auto"`` (default) finds letterbox / pillarbox bars
            with :func:`vidsel.io.detect_borders` (cropdetect-like, on a few keyframes);
            ``"none"`` uses the whole picture; or (top, bottom, left, right) displayed pixels.
            The cropped picture is resized to ``frame_size``: no token is spent on a bar,
            positions index the grid of the cropped picture and ``result.crop`` maps them
            back to the source (see :class:`~vidsel.results.PatchSelection`).
        question: the question the tokens should serve (needs ``embedder``). Its relevance
            to the frames (scored by :func:`vidsel.selection.select_frames` on the same
            candidates, embedder and embedding cache) decides where part of the motion budget
            goes along the timeline (``relevance_share``) and, by default, which frames are
            anchors (see ``anchors``).
        embedder: an :class:`vidsel.embed.Embedder` or spec (as ``select_frames``); needed
            with ``question``.
        relevance_share: the knob between motion and relevance, in [0, 1]: the share of
            the motion budget (``budget`` minus the anchors' tokens) spent on the tokens best
            by relevance (``r * (1 + m) / 2``: the frame's relevance ``r``, min-max normalised
            over the video, and the token's change score ``m``); the rest goes to the most
            changing tokens elsewhere, as without a question, so motion away from what the
            question names keeps its coverage. 0 gives exactly the motion-only selection
            (the question is then not even embedded unless a selector chooses the anchors);
            1 spends the whole motion budget by relevance. Default: 0.5 with a question.
        relevance_candidates: frames scored for relevance (``select_frames``'s
            ``candidates`` spec; default ``vidsel.selection.pool_size``: 128 up to a 32-frame
            budget, ``4 x budget_frames`` above, as ``select_frames`` uses).
        anchor_params: parameters of the anchor selector (e.g. ``{"lam": 0.2}`` for mdp3).
        cache_dir, embed_size, embedder_options: as :func:`vidsel.selection.select_frames`
            (the same cache: a ``select_frames`` call on the same video, model and
            candidates has already paid for the frame embeddings).
        patch_relevance: also weigh *where* in a frame the question points: the scored
            frames are read again as the tokens see them and their patches embedded
            (:meth:`vidsel.embed.Embedder.embed_patches`: 'hf:' SigLIP / SigLIP2), and a
            token's relevance becomes its frame's ``r`` times its region's, from the nearest
            scored frame (see :mod:`vidsel.codec._relevance`). Costs a second read and
            forward pass over the scored frames (not cached). Needs a question and
            ``relevance_share > 0``; False (default): every token of a frame has the frame's
            relevance.

    Returns:
        :class:`~vidsel.results.PatchSelection` with exactly ``budget`` tokens (fewer only if the whole video is
        smaller than the budget, in which case every frame is kept dense).

    Raises:
        InvalidArgumentError: bad option values (e.g. ``num_anchors`` above
            ``budget // tokens_per_frame``, a ``relevance_share`` outside [0, 1], a
            question without an embedder, a selector anchor policy without a question), or
            an ``index`` of another file.
        MissingDependencyError, ModelNotAvailableError: the embedder cannot be loaded.
        UnsupportedRequestError: ``patch_relevance`` with an embedder that gives no patch
            features.
        UnsupportedCodecError: ``signal="motion_vectors"`` on a codec without vectors.
        CorruptVideoError: damaged or truncated data left too few frames to fill the budget.
        DecodeError: the budget cannot be filled for another reason (e.g. a very low
            ``candidates_per_frame``).
    """
    query = _check_query(question, embedder, relevance_share, anchors)
    if not isinstance(patch_relevance, bool):
        raise InvalidArgumentError(f"patch_relevance={patch_relevance!r} must be True or False")
    if patch_relevance and query.share == 0.0:
        raise InvalidArgumentError(
            "patch_relevance=True weighs the tokens spent by relevance: it needs a question, "
            "an embedder and relevance_share > 0")
    if question is None:
        given = [name for name, value in (("cache_dir", cache_dir),
                                          ("relevance_candidates", relevance_candidates),
                                          ("anchor_params", anchor_params),
                                          ("embedder_options", embedder_options))
                 if value is not None]
        if given:
            raise InvalidArgumentError(
                f"{', '.join(given)}: only used with a question (question= and embedder=); "
                f"the motion-only selection embeds nothing")
    check_patch_choices({"camera": camera, "signal": signal, "pixels": pixels})
    interpolation = check_interpolation(interpolation)
    check_stream(stream)
    cfg = PatchConfig.make(patch_size=patch_size, merge=merge, frame_size=frame_size)
    budget = resolve_budget(budget_frames, budget_tokens, cfg)
    cpf = check_positive_int("candidates_per_frame", candidates_per_frame)
    threads = check_positive_int("threads", threads, allow_zero=True)
    if workers is not None:
        workers = check_positive_int("workers", workers)
    tpf = cfg.tokens_per_frame
    if num_anchors is not None:
        num_anchors = check_positive_int("num_anchors", num_anchors, allow_zero=True)
        if num_anchors > budget // tpf:
            raise InvalidArgumentError(
                f"num_anchors={num_anchors} does not fit the budget of {budget} tokens: at most "
                f"{budget // tpf} anchor frames of {tpf} tokens")
    t0 = time.perf_counter()
    bars = _Bars(crop, path, stream)  # "auto": detected on the index while the decode
    index = index_for(path, index, stream)  # pass starts
    bars.start(index)
    timings = {"index": time.perf_counter() - t0, "borders": 0.0}
    F = index.num_frames
    if F * tpf <= budget:
        logger.info("%s: %d frames x %d tokens fit the budget of %d: keeping every frame",
                    index.path, F, tpf, budget)
        box = bars.get(index)
        timings["borders"] = time.perf_counter() - t0 - timings["index"]
        return _dense(index, cfg, budget, np.arange(F, dtype=np.int64), pixels, stream,
                      "codec", interpolation, timings, t0, crop=box)
    if signal == "motion_vectors" and index.codec not in MV_CODECS:
        raise UnsupportedCodecError(
            f"{index.path}: codec {index.codec!r} exports no motion vectors; use signal='auto' "
            f"or 'pixel_diff'")

    # 0. the question's relevance (select_frames on the same candidates, embedder and cache)
    rel: Relevance | None = None
    if query.active:
        n_query = anchor_counts(budget, tpf, num_anchors)[0] if query.anchor_method else 0
        patches = None
        if patch_relevance:  # the maps cover the active picture: the bars first
            t = time.perf_counter()
            patches = (cfg, bars.get(index), interpolation)
            timings["borders"] += time.perf_counter() - t
        rel = query_relevance(index, query.question, embedder, budget_frames=budget / tpf,
                              num_anchors=n_query, anchor_method=query.anchor_method,
                              stream=stream, candidates=relevance_candidates,
                              cache_dir=cache_dir, embed_size=embed_size,
                              embedder_options=embedder_options, params=anchor_params,
                              patches=patches)
        timings.update(rel.timings_s)

    # 1. plan
    def plan_for(idx: PacketIndex) -> Plan:
        curve = None
        query_anchors = None
        if rel is not None:
            # on a re-counted index (unreliable timestamps) the curve follows the times
            curve = (rel.curve if idx is index else
                     relevance_curve(idx, index.timestamps_s[rel.frames], rel.scores))
            query_anchors = np.minimum(rel.anchors, idx.num_frames - 1)
        rows = None
        if rel is not None and rel.patch_maps is not None:
            rows = nearest_rows(index.timestamps_s[rel.frames], idx.timestamps_s)
        return make_plan(idx, cfg, budget, anchors=query.anchors,
                         num_anchors=num_anchors, camera=camera, signal=signal,
                         candidates_per_frame=cpf, keep_pixels=pixels == "decode",
                         relevance=curve, relevance_share=query.share,
                         query_anchors=query_anchors,
                         patch_maps=None if rel is None else rel.patch_maps, patch_rows=rows)

    plan = plan_for(index)
    if plan.fallback:
        logger.info("%s: codec %r has no motion vectors; using the pixel-difference fallback",
                    index.path, index.codec)

    # 2. the decode pass (io re-plans on a counted index when timestamps prove unreliable)
    late = LateCrop()  # the bars, once known

    def consume(idx: PacketIndex, frames: Iterator[StreamFrame]) -> Scan:
        first = next(frames, None)  # the decoders start before the bars are known
        t = time.perf_counter()
        box = bars.get(index)
        late.set(box)
        timings["borders"] += time.perf_counter() - t
        return scan(plan if idx is index else plan_for(idx),
                    frames if first is None else itertools.chain([first], frames), crop=box)

    t1 = time.perf_counter()
    # the frames the scan converts (candidates, anchor grids, the first frame) are converted
    # by a decode thread that is ahead of the analysis, else by the analysis (same bytes)
    ahead = None
    if pixels == "decode":
        targets = np.unique(np.concatenate([np.zeros(1, np.int64), plan.candidate_targets,
                                            *plan.anchor_targets.values()]))
        ahead = ConvertAhead(size=cfg.frame_size, targets=targets, analysed=plan.keep,
                             crop=late, batch=(CHUNK_FRAMES, CHUNK_PIXELS))
    sc = decode_pass(index, consume, skip=plan.skip, export_mvs=plan.use_mv,
                     keep=plan.stream_keep, interpolation=interpolation,
                     # pixel-difference passes read pictures that some decoders (VP8) still
                     # write to on damaged data: no decode-ahead there (deterministic)
                     prefetch=PREFETCH if plan.use_mv else 0, threads=threads,
                     workers=workers, convert_ahead=ahead)
    plan = sc.plan
    timings["decode"] = time.perf_counter() - t1
    box = bars.get(index)

    # 3. anchors, 4. tokens
    t2 = time.perf_counter()
    anchor_frames, cuts = choose_anchors(sc)
    if sc.pool is None:  # pragma: no cover - scan() always leaves a pool
        raise DecodeError(f"{index.path}: internal error: the decode pass left no token pool")
    pool, rel_rows = merge_pools(sc.pool, sc.relevance_pool)
    tokens = choose_tokens(pool, anchor_frames, budget, tpf, path=index.path,
                           candidates=len(sc.candidates), analysed=sc.analysed,
                           decodable=plan.decodable, relevance_rows=rel_rows,
                           relevance_share=plan.relevance_share)
    tok_rc = np.stack(np.divmod(tokens.tokens, cfg.token_grid[1]), axis=1)
    positions = tokens_to_patches(tokens.frames, tok_rc, cfg)
    timings["select"] = time.perf_counter() - t2

    # 5. pixels
    t3 = time.perf_counter()
    pix: np.ndarray | None = None
    if pixels == "decode":
        pix = decoded_pixels(tokens, pool[4], anchor_frames, sc.stored, cfg)
    elif pixels == "reader":
        pix = token_pixels_to_patches(
            reader_pixels(index.path, tokens.frames, tok_rc, cfg, stream, interpolation,
                          crop=box), cfg)
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
        timings_s=timings, question=query.question if rel is not None else None,
        params=query.params(rel),
        relevance_frames=None if rel is None else rel.frames,
        relevance_scores=None if rel is None else rel.scores, crop=box)
    logger.debug("%s: %r in %.2f s", index.path, result, timings["total"])
    return result
