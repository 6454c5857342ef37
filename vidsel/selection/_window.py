"""Selection inside a frame window: :func:`select_in_window`.

What :func:`~vidsel.selection.select_frames` does for a whole video, restricted to the frames
``start_frame..end_frame``: candidates are drawn from the window only, decoded and embedded
with the same code (and the same on-disk embedding cache), and an array-level selector of
:mod:`vidsel.select` picks ``budget`` of them. The result is a normal :class:`Selection` in the
source video's terms (true indices and timestamps, ``num_frames`` of the whole video).

Used by integrations whose caller fixes a time window (qwen-vl-utils' ``video_start`` /
``video_end``, lmms-eval's sampler ``start_frame`` / ``end_frame``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._validate import check_choice, check_positive_int
from ..embed import load_embedder
from ..errors import InvalidArgumentError
from ..io import VideoReader
from ..results import Selection
from ..select import get_selector
from ._candidates import (
    DEFAULT_EMBED_SIZE,
    DEFAULT_NUM_CANDIDATES,
    CandidateMode,
    candidate_indices,
    snap_to_keyframes,
)
from ._select import options_dict, select_among

__all__ = ["POOL_FACTOR", "pool_size", "select_in_window", "window_candidates"]

logger = logging.getLogger(__name__)


#: A default candidate pool holds at least this many times the frames wanted: a selector needs
#: frames to choose among (a pool of ``max(128, budget)`` leaves it none at large budgets, and
#: it returns the evenly spread pool).
POOL_FACTOR = 4


def pool_size(count: int, budget: int) -> int:
    """The default candidate pool for ``budget`` frames out of ``count``: ``max(128, 4 x
    budget)`` (MDP3's 128, and room to choose at large budgets), at most ``count``."""
    return min(int(count), max(DEFAULT_NUM_CANDIDATES, POOL_FACTOR * int(budget)))


def window_candidates(reader: VideoReader, start: int, end: int, candidates: int | str,
                      budget: int) -> np.ndarray:
    """Candidate indices (ascending, unique) within ``start..end``.

    Args:
        reader: the open video.
        start, end: the window, inclusive, ``0 <= start <= end < num_frames``.
        candidates: ``n`` / ``"uniform:n"`` — ``max(n, budget)`` frames spread evenly over the
            window, both ends included (at most one per frame: ``np.round(np.linspace(start,
            end, n))``, what :meth:`VideoReader.uniform_indices` draws from a whole video);
            ``"all"`` — every frame of the window; ``"fps:f"`` — the frames displayed every
            ``1/f`` seconds of the video (:meth:`VideoReader.fps_indices`) that fall in it.
        budget: frames to be selected (an ``n`` pool is never smaller).

    Raises:
        InvalidArgumentError: another spec (the message lists the allowed ones).
    """
    length = end - start + 1
    spec: Any = candidates
    if isinstance(spec, str) and spec.strip().lower().startswith("uniform:") and \
            spec.strip()[len("uniform:"):].isdigit():
        spec = int(spec.strip()[len("uniform:"):])
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        n = min(length, max(check_positive_int("candidates", spec), budget))
        return np.unique(np.round(np.linspace(start, end, n)).astype(np.int64))
    if isinstance(spec, str) and spec.strip().lower() == "all":
        return np.arange(start, end + 1, dtype=np.int64)
    cand = candidate_indices(reader, spec)  # "fps:f", or the error naming the allowed specs
    return cand[(cand >= start) & (cand <= end)]


def _window(reader: VideoReader, start_frame: Any, end_frame: Any) -> tuple[int, int]:
    n = int(reader.metadata.num_frames)
    start = check_positive_int("start_frame", start_frame, allow_zero=True)
    end = n - 1 if end_frame is None else check_positive_int("end_frame", end_frame,
                                                             allow_zero=True)
    if not start <= end <= n - 1:
        raise InvalidArgumentError(
            f"{reader.path}: start_frame={start_frame!r}, end_frame={end_frame!r} is not a "
            f"window of this {n}-frame video; use 0 <= start_frame <= end_frame <= {n - 1}")
    return start, end


def select_in_window(
    path: str | os.PathLike[str] | VideoReader,
    method: str,
    budget: int,
    *,
    start_frame: int = 0,
    end_frame: int | None = None,
    question: str | None = None,
    embedder: Any = None,
    params: Mapping[str, Any] | None = None,
    candidates: int | str | None = None,
    candidate_mode: CandidateMode = "exact",
    embed_size: int | None = DEFAULT_EMBED_SIZE,
    cache_dir: str | os.PathLike[str] | None = None,
    tokens_per_frame: int | None = None,
) -> Selection:
    """``budget`` frames chosen by the selector ``method`` among frames
    ``start_frame..end_frame`` (inclusive) of a video.

    Over the whole video (``start_frame=0``, ``end_frame=None``) the result equals
    :func:`~vidsel.selection.select_frames` (and ``vidsel.run_method(method, ...)``) given the
    same pool: ``candidates=n`` with ``n >= budget``, ``"all"`` or ``"fps:f"``; with the
    defaults both draw ``min(128, num_frames)`` frames when ``budget <= 128``.

    Args:
        path: the video file, or an open :class:`vidsel.VideoReader` (reused, not closed).
        method: an array-level selector (:func:`vidsel.select.available_selectors`; plugin
            methods of :mod:`vidsel.methods` select over whole videos only).
        budget: frames to select (fewer only when the window holds fewer candidates).
        start_frame, end_frame: the window, source frame indices, inclusive (default: the
            whole video).
        question: what the frames are chosen for (required by selectors that score relevance).
        embedder: an :class:`~vidsel.embed.Embedder` or a spec (loaded by
            :func:`vidsel.embed.load_embedder` on every call: pass a loaded one, e.g.
            :func:`vidsel.embed.shared_embedder`, to reuse it); required by scoring selectors.
        params: the selector's parameters (e.g. ``{"lam": 0.2}``).
        candidates: the pool, drawn from the window (see :func:`window_candidates`): ``n`` /
            ``"uniform:n"`` (raised to ``budget`` when smaller), ``"all"`` or ``"fps:f"``.
            Default: ``max(128, budget)`` evenly spread frames for scoring selectors, every
            frame of the window for the others (as :func:`select_frames`).
        candidate_mode: ``"exact"``, or ``"keyframe"`` (each candidate snapped to its nearest
            keyframe, each keyframe once, those outside the window dropped).
        embed_size: short side candidates are decoded at before embedding (None: native).
        cache_dir: directory of the frame-embedding cache (None: no cache); its key holds the
            candidate indices, so each window has its own entry.
        tokens_per_frame: visual tokens one frame costs the model, recorded in the result.

    Returns:
        A :class:`Selection`: ``indices`` (k,) int64 ascending source frames inside the window,
        ``timestamps_s`` (k,) their presentation times, ``num_frames`` the whole video's count,
        ``num_candidates`` the window's pool, ``scores`` / ``candidate_scores`` for scoring
        selectors.

    Raises:
        InvalidArgumentError: unknown selector or parameter, a bad window, budget or candidate
            spec, a scoring selector without an embedder or a question, no candidate left in
            the window (``candidate_mode="keyframe"`` on a window without keyframes nearby).
        VidselError subclasses: the video is missing or cannot be decoded.

    Example:
        >>> sel = select_in_window("clip.mp4", "mdp3", 8, start_frame=300, end_frame=899,
        ...                        question="when does the dog jump?",
        ...                        embedder="hf:/models/siglip")               # doctest: +SKIP
        >>> sel.indices                                                         # doctest: +SKIP
    """
    info = get_selector(method)
    budget = check_positive_int("budget", budget)
    check_choice("candidate_mode", candidate_mode, ("exact", "keyframe"))
    if embed_size is not None:
        embed_size = check_positive_int("embed_size", embed_size)
    if tokens_per_frame is not None:
        tokens_per_frame = check_positive_int("tokens_per_frame", tokens_per_frame)
    params = options_dict("params", params)
    info.check_params(params)
    needs_model = info.needs != "none"
    if needs_model and embedder is None:
        raise InvalidArgumentError(
            f"method={method!r} scores frames against the question and needs an embedder "
            f"(e.g. embedder='hf:/path/to/siglip')")
    if needs_model and not isinstance(question, str):
        raise InvalidArgumentError(f"method={method!r} needs a question (str)")
    if candidates is None:
        candidates = DEFAULT_NUM_CANDIDATES if needs_model else "all"

    own = not isinstance(path, VideoReader)
    reader = VideoReader(path) if not isinstance(path, VideoReader) else path
    try:
        start, end = _window(reader, start_frame, end_frame)
        cand = window_candidates(reader, start, end, candidates, budget)
        if candidate_mode == "keyframe":
            cand = snap_to_keyframes(reader, cand)
            cand = cand[(cand >= start) & (cand <= end)]
        if not len(cand):
            raise InvalidArgumentError(
                f"{reader.path}: no candidate frame in [{start}, {end}] "
                f"(candidates={candidates!r}, candidate_mode={candidate_mode!r})")
        logger.debug("%s: %s on %d candidates in frames %d..%d", reader.path, method,
                     len(cand), start, end)
        return select_among(reader, cand, method, budget, params=params,
                            embedder=load_embedder(embedder) if needs_model else None,
                            question=question, embed_size=embed_size,
                            candidate_mode=candidate_mode, cache_dir=cache_dir,
                            progress=False, tokens_per_frame=tokens_per_frame)
    finally:
        if own:
            reader.close()
