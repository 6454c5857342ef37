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

The decode pass keeps a second token pool ranked by relevance (``r * (1 + m) / 2`` for the
frame's relevance ``r`` and the token's change score ``m``,
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
from ..errors import InvalidArgumentError
from ..io import PacketIndex, VideoReader
from ..select import available_selectors, get_selector
from ..selection import pool_size, select_frames

__all__ = ["FLAT", "QUERY_ANCHORS", "Relevance", "check_relevance_share", "query_anchor_methods",
           "query_relevance"]

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
    """

    frames: np.ndarray
    scores: np.ndarray
    curve: np.ndarray
    anchors: np.ndarray
    embedder: str
    cache_hit: bool
    timings_s: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"Relevance(scored={len(self.frames)}, anchors={self.anchors.tolist()}, "
                f"embedder={self.embedder!r}, cache_hit={self.cache_hit})")


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
                    params: Mapping[str, Any] | None) -> Relevance:
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

    Raises:
        InvalidArgumentError: bad options (as ``select_frames``).
        MissingDependencyError, ModelNotAvailableError: the embedder cannot be loaded.
    """
    if not isinstance(question, str) or not question.strip():
        raise InvalidArgumentError(f"question={question!r} must be a non-empty str")
    method = anchor_method if (anchor_method is not None and num_anchors > 0) else "topk"
    check_choice("anchors", method, query_anchor_methods())
    k = num_anchors if anchor_method is not None and num_anchors > 0 else 1
    if candidates is None:
        candidates = pool_size(index.num_frames, max(1, int(np.ceil(budget_frames))))
    t0 = time.perf_counter()
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
    timings["relevance"] = time.perf_counter() - t0
    rel = Relevance(frames=frames, scores=scores, curve=curve, anchors=np.unique(anchors),
                    embedder=str(sel.params.get("embedder", "")), cache_hit=sel.cache_hit,
                    timings_s=timings)
    logger.debug("%s: %r", index.path, rel)
    return rel
