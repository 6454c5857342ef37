"""Question relevance for :func:`~vidsel.codec.select_patches` (query-aware codec input).

Before the decode pass, the candidate frames are scored against the question by
:func:`vidsel.selection.select_frames` itself: the same candidates, embedder and embedding
cache (a ``select_frames`` call on the same video, model and pool costs no decoding and no
image encoding). That gives

- a relevance curve over the whole timeline: cosine similarities interpolated in time between
  the scored frames and min-max normalised to [0, 1] over the video (a flat curve, where the
  question tells the frames apart by less than :data:`FLAT`, is 1 everywhere: no reweighting);
- optionally, the anchor frames, chosen by a frame selector (``mdp3``, ``dpp``, ``topk``, ...)
  among the same candidates.

With ``patch_relevance``, the question also says *where* in a frame: the scored frames are
read again as the tokens see them (the active picture, at the selection's frame size), their
patches embedded (:meth:`vidsel.embed.Embedder.embed_patches`, SigLIP / SigLIP2), and each
patch's cosine similarity to the question averaged onto the token grid by area and min-max
normalised over the video ("patch maps"; a flat map is 1 everywhere). A frame's token then has
relevance ``r * p``: the frame's relevance ``r`` times its region's ``p`` in the map of the
nearest scored frame in time.

The decode pass keeps a second token pool ranked by relevance (``r * (1 + m) / 2`` for the
frame's (or token's) relevance ``r`` and the token's change score ``m``,
:meth:`vidsel.codec._plan.Plan.relevance_tokens`); ``relevance_share`` of the motion budget
is spent from it and the rest on the most changing tokens, as without a question
(:func:`vidsel.codec._pool.choose_tokens`). ``relevance_share = 0`` is the motion-only
selection.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validate import check_choice
from ..embed import load_embedder
from ..errors import InvalidArgumentError, UnsupportedRequestError
from ..io import Crop, PacketIndex, VideoReader
from ..results import PatchConfig
from ..select import available_selectors, get_selector
from ..selection import pool_size, select_frames
from ._score import block_overlap

__all__ = ["FLAT", "QUERY_ANCHORS", "Relevance", "area_weights", "check_relevance_share",
           "nearest_rows", "patch_maps", "query_anchor_methods", "query_relevance"]

logger = logging.getLogger(__name__)

#: A relevance curve whose cosine range (max - min over the scored frames) is below this is
#: flat: the question does not tell the frames apart, and the curve is 1 everywhere.
FLAT = 1e-6
#: The anchor policy used with a question when none is given.
QUERY_ANCHORS = "mdp3"


def query_anchor_methods() -> tuple[str, ...]:
    """Frame selectors that can choose anchors by relevance: every registered selector that
    scores frames (``topk``, ``dpp``, ``mdp3``, ``mdp3-reference``, ``bolt``, ``aks`` and
    plugins)."""
    return tuple(n for n in available_selectors() if get_selector(n).needs != "none")


def check_relevance_share(weight: object) -> float:
    """``relevance_share`` (named ``weight`` here) as a float in [0, 1].

    Raises:
        InvalidArgumentError: not a real number in [0, 1].
    """
    if isinstance(weight, bool) or not isinstance(weight, (int, float, np.integer,
                                                           np.floating)):
        raise InvalidArgumentError(
            f"relevance_share={weight!r} must be a number in [0, 1] (0: motion only, 1: "
            f"relevance only)")
    w = float(weight)
    if not 0.0 <= w <= 1.0:  # NaN fails too
        raise InvalidArgumentError(
            f"relevance_share={weight!r} must be in [0, 1] (0: motion only, 1: relevance "
            f"only)")
    return w


@dataclass(frozen=True, repr=False)
class Relevance:
    """The question's relevance over a video.

    Attributes:
        frames: (n,) int64 scored (candidate) frames, ascending.
        scores: (n,) float32 cosine similarity of each scored frame to the question.
        curve: (F,) float32 relevance of every frame in [0, 1] (time interpolation of
            ``scores``, min-max normalised; 1 everywhere when flat).
        anchors: (A,) int64 frames the anchor selector chose (empty when none was asked).
        embedder: the embedder's spec name.
        cache_hit: the frame embeddings came from the cache.
        timings_s: seconds per step of the embedding selection.
        patch_maps: (n, Th * Tw) float32 region relevance in [0, 1] of each scored frame's
            tokens (row-major token grid over the active picture), or None (frame relevance
            only).
    """

    frames: np.ndarray
    scores: np.ndarray
    curve: np.ndarray
    anchors: np.ndarray
    embedder: str
    cache_hit: bool
    timings_s: dict[str, float] = field(default_factory=dict)
    patch_maps: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"Relevance(scored={len(self.frames)}, anchors={self.anchors.tolist()}, "
                f"embedder={self.embedder!r}, cache_hit={self.cache_hit}, "
                f"patch_maps={self.patch_maps is not None})")


def nearest_rows(scored_ts: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """(F,) int64: for each time of ``ts``, the position in ``scored_ts`` (ascending) of the
    nearest one (the earlier on a tie)."""
    st = np.asarray(scored_ts, np.float64)
    t = np.asarray(ts, np.float64)
    hi = np.clip(np.searchsorted(st, t), 1, max(len(st) - 1, 1))
    lo = hi - 1
    if len(st) == 1:
        return np.zeros(len(t), np.int64)
    pick_hi = np.abs(st[hi] - t) < np.abs(t - st[lo])
    return np.where(pick_hi, hi, lo).astype(np.int64)  # type: ignore[no-any-return]


def area_weights(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) float64: the share of each output cell covered by each input cell, when
    both split one axis evenly (rows sum to 1)."""
    # in units of 1 / (n_out * n_in) of the axis every boundary is a whole number:
    # block_overlap gives overlap / input width, the share wanted is overlap / output width
    share = block_overlap(n_out, n_out * n_in, n_in, n_out, n_out * n_in)
    return share.astype(np.float64) * (n_out / n_in)  # type: ignore[no-any-return]


def check_patch_embedder(embedder: Any) -> None:
    """Raise :class:`~vidsel.errors.UnsupportedRequestError` unless ``embedder`` (loaded) gives
    patch features."""
    if not getattr(embedder, "supports_patches", False):
        raise UnsupportedRequestError(
            f"patch_relevance=True needs an embedder that gives patch features (an 'hf:' "
            f"SigLIP / SigLIP2 checkpoint); {getattr(embedder, 'name', embedder)!r} does not")


def patch_maps(path: str, frames: np.ndarray, question: str, embedder: Any,
               cfg: PatchConfig, crop: Crop, stream: int | None, interpolation: str,
               chunk: int = 32) -> np.ndarray:
    """(n, Th * Tw) float32 patch maps of ``frames`` (see the module doc): each frame read as
    the tokens see it (``crop`` cut off, resized to ``cfg.frame_size``, the same call as the
    selection's pixels), its patches embedded and compared with the question, averaged onto
    the token grid, min-max normalised over all of them (1 everywhere when flat). A frame
    that cannot be decoded again (damaged data) gets a map of ones: its tokens keep their
    frame's relevance (logged).

    Raises:
        UnsupportedRequestError: the embedder gives no patch features.
    """
    check_patch_embedder(embedder)
    th, tw = cfg.token_grid
    text = np.asarray(embedder.embed_text(question), np.float32)  # (d,)
    maps = np.full((len(frames), th * tw), np.nan, np.float32)
    opts: dict[str, Any] = {"crop": tuple(crop)} if any(crop) else {}
    with VideoReader(path, stream=stream, interpolation=interpolation, **opts) as reader:
        for s in range(0, len(frames), chunk):
            part = np.asarray(frames[s:s + chunk], np.int64)
            batch = reader.decode(np.unique(part), size=cfg.frame_size, on_missing="skip")
            have = np.asarray(batch.indices, np.int64)  # ascending, damaged frames left out
            if not len(have):
                continue
            feats = embedder.embed_patches(batch.frames, progress=False)  # (c, gh, gw, d)
            sims = feats @ text  # (c, gh, gw)
            ry = area_weights(th, sims.shape[1])  # (Th, gh)
            rx = area_weights(tw, sims.shape[2])  # (Tw, gw)
            vals = np.einsum("ty,cyx,ux->ctu", ry, sims, rx).reshape(len(have), th * tw)
            pos = np.minimum(np.searchsorted(have, part), len(have) - 1)
            ok = have[pos] == part
            maps[s + np.flatnonzero(ok)] = vals[pos[ok]]
    got = ~np.isnan(maps[:, 0])
    if not got.all():
        logger.warning("%s: %d of %d scored frames could not be decoded again; their tokens "
                       "keep their frame's relevance", path, int((~got).sum()), len(frames))
    lo, hi = (float(maps[got].min()), float(maps[got].max())) if got.any() else (0.0, 0.0)
    if hi - lo < FLAT:
        return np.ones_like(maps)
    out = np.clip((maps - lo) / (hi - lo), 0.0, 1.0)
    out[~got] = 1.0
    return out.astype(np.float32)  # type: ignore[no-any-return]


def relevance_curve(index: PacketIndex, scored_ts: np.ndarray, scores: np.ndarray
                    ) -> np.ndarray:
    """(F,) float32 in [0, 1]: ``scores`` at times ``scored_ts`` interpolated to every frame of
    ``index`` (constant beyond the ends) and min-max normalised (1 everywhere when flat)."""
    ts = np.asarray(scored_ts, np.float64)
    s = np.asarray(scores, np.float64)
    order = np.argsort(ts, kind="stable")
    raw = np.interp(np.asarray(index.timestamps_s, np.float64), ts[order], s[order])
    lo, hi = float(s.min()), float(s.max())
    if hi - lo < FLAT:
        return np.ones(index.num_frames, np.float32)
    return np.clip((raw - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)  # type: ignore[no-any-return]


def query_relevance(index: PacketIndex, question: str, embedder: Any, *, budget_frames: float,
                    num_anchors: int, anchor_method: str | None, stream: int | None,
                    candidates: int | str | None, cache_dir: str | os.PathLike[str] | None,
                    embed_size: int | None, embedder_options: Mapping[str, Any] | None,
                    params: Mapping[str, Any] | None,
                    patches: tuple[PatchConfig, Crop, str] | None = None) -> Relevance:
    """Score the question over the video of ``index`` (see the module doc).

    Args:
        index: the video's packet index.
        question: the question.
        embedder: an :class:`vidsel.embed.Embedder` or a spec (as ``select_frames``).
        budget_frames: the budget in frame-equivalents (sizes the default pool).
        num_anchors: anchors the selector picks (0: none, only the curve).
        anchor_method: the frame selector choosing anchors (None: no anchors).
        stream: the video stream.
        candidates: the scored pool (``select_frames``'s spec; None: :func:`pool_size`, as
            ``select_frames`` and ``vidsel.qwen`` use: 128 frames up to a 32-frame budget).
        cache_dir, embed_size, embedder_options: as :func:`vidsel.selection.select_frames`.
        params: parameters of the anchor selector.
        patches: (token geometry, crop, interpolation) to also compute the patch maps of
            the scored frames (None: frame relevance only).

    Raises:
        InvalidArgumentError: bad options (as ``select_frames``).
        MissingDependencyError, ModelNotAvailableError: the embedder cannot be loaded.
        UnsupportedRequestError: ``patches`` with an embedder that gives no patch features.
    """
    if not isinstance(question, str) or not question.strip():
        raise InvalidArgumentError(f"question={question!r} must be a non-empty str")
    method = anchor_method if (anchor_method is not None and num_anchors > 0) else "topk"
    check_choice("anchors", method, query_anchor_methods())
    k = num_anchors if anchor_method is not None and num_anchors > 0 else 1
    if candidates is None:
        candidates = pool_size(index.num_frames, max(1, int(np.ceil(budget_frames))))
    t0 = time.perf_counter()
    if patches is not None:  # one model for the frames and their patches
        embedder = load_embedder(embedder, **dict(embedder_options or {}))
        embedder_options = None
        check_patch_embedder(embedder)  # before any decoding
    with VideoReader(index.path, stream=stream) as reader:
        sel = select_frames(reader, question, k, method=method, embedder=embedder,
                            candidates=candidates, cache_dir=cache_dir,
                            params=params if method == anchor_method else None,
                            embed_size=embed_size,
                            embedder_options=embedder_options)
    if sel.candidate_timestamps_s is None or sel.candidate_scores is None:  # pragma: no cover
        raise InvalidArgumentError(f"selector {method!r} returned no relevance curve")
    cand_ts = np.asarray(sel.candidate_timestamps_s, np.float64)
    frames = np.searchsorted(np.asarray(index.timestamps_s, np.float64), cand_ts - 1e-9)
    frames = np.clip(frames, 0, index.num_frames - 1).astype(np.int64)
    scores = np.asarray(sel.candidate_scores, np.float32)
    curve = relevance_curve(index, cand_ts, scores)
    anchors = (np.asarray(sel.indices, np.int64) if anchor_method is not None and num_anchors
               else np.zeros(0, np.int64))
    timings = {f"relevance_{k_}": v for k_, v in sel.timings_s.items()}
    maps = None
    if patches is not None:
        t1 = time.perf_counter()
        cfg, crop, interpolation = patches
        maps = patch_maps(index.path, frames, question, embedder, cfg, crop, stream,
                          interpolation)
        timings["relevance_patches"] = time.perf_counter() - t1
    timings["relevance"] = time.perf_counter() - t0
    rel = Relevance(frames=frames, scores=scores, curve=curve, anchors=np.unique(anchors),
                    embedder=str(sel.params.get("embedder", "")), cache_hit=sel.cache_hit,
                    timings_s=timings, patch_maps=maps)
    logger.debug("%s: %r", index.path, rel)
    return rel
