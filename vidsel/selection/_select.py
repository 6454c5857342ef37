"""Keyframe selection for a video and a question: :func:`select_frames` -> :class:`Selection`.

Pipeline: candidate frames (n uniform, fps-based or all) are decoded with the reader's fast
paths, embedded once per video and model (cached on disk when ``cache_dir`` is given), the
question is embedded, and an array-level selector from :mod:`vidsel.select` picks k of them.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._validate import check_choice, check_positive_int
from ..deprecation import renamed_kwargs
from ..embed import load_embedder
from ..errors import InvalidArgumentError
from ..io import VideoReader
from ..results import Selection
from ..select import cosine_scores, get_selector, run_selector
from ._candidates import (
    DEFAULT_EMBED_SIZE,
    DEFAULT_NUM_CANDIDATES,
    CandidateMode,
    candidate_embeddings,
    candidate_indices,
    snap_to_keyframes,
)

__all__ = ["select_frames"]

logger = logging.getLogger(__name__)


def options_dict(name: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    """``value`` (a mapping of keyword names, or None) as a new dict.

    Raises:
        InvalidArgumentError: ``value`` is not a mapping, or a key is not a string.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidArgumentError(
            f"{name}={value!r} must be a mapping of names to values (e.g. {{'lam': 0.2}})")
    return dict(value)


@renamed_kwargs({"video": "path"})
def select_frames(
    path: str | os.PathLike[str] | VideoReader,
    question: str | None = None,
    k: int = 8,
    *,
    method: str = "mdp3",
    embedder: Any = None,
    candidates: int | str | None = None,
    candidate_mode: CandidateMode = "exact",
    cache_dir: str | os.PathLike[str] | None = None,
    params: Mapping[str, Any] | None = None,
    embed_size: int | None = DEFAULT_EMBED_SIZE,
    embedder_options: Mapping[str, Any] | None = None,
    backend: str = "pyav",
    tokens_per_frame: int | None = None,
    progress: bool | None = None,
) -> Selection:
    """Select the ``k`` frames of a video a video-LLM should see for ``question``.

    Args:
        path: a video path or an open :class:`vidsel.VideoReader` (``video=`` is the
            deprecated keyword).
        question: the question / prompt (required by every method but ``uniform``).
        k: frames to select.
        method: a selector name (:func:`vidsel.select.available_selectors`): ``mdp3``
            (default), ``mdp3-reference``, ``dpp``, ``topk``, ``bolt``, ``aks``, ``uniform``.
        embedder: an :class:`vidsel.embed.Embedder`, a spec string (``"hf:/models/siglip"``,
            ``"open_clip:ViT-B-32@/ckpt.safetensors"``, a local model directory, ``"siglip"``),
            or None (only for methods that need no relevance, i.e. ``uniform``).
        candidates: the pool to select from: ``n`` / ``"uniform:n"``, ``"fps:f"`` or ``"all"``
            (see :func:`candidate_indices`). Default: 128 uniform (MDP3); ``uniform`` selects
            from all frames.
        candidate_mode: ``"exact"`` decodes exactly the candidate frames, ``"keyframe"`` snaps
            each to its nearest keyframe and keeps each keyframe once (cheaper to decode:
            6-16x in ``benchmarks/decode.py``); the pool may then be much smaller than asked
            (``Selection.num_candidates`` says how large it was).
        cache_dir: directory of the frame-embedding cache (None: no cache). A second question
            on the same video, model and candidates then costs no decoding and no image
            encoding.
        params: selector parameters (e.g. ``{"lam": 0.2, "segment_size": 32}``).
        embed_size: short side candidates are decoded at before embedding (None: native).
        embedder_options: options for :func:`vidsel.embed.load_embedder` when ``embedder`` is
            a spec (``device``, ``dtype``, ``batch_size``, ``prompt_cleaner``,
            ``allow_download``, ``allow_pickle``).
        backend: reader backend when ``path`` is a file.
        tokens_per_frame: visual tokens one frame costs the model, recorded in the selection
            (gives :attr:`Selection.num_tokens`); None when unknown.
        progress: a progress bar on stderr while candidates are decoded and embedded
            (None: the process default, ``vidsel._progress.enable_progress()``, which the CLI
            switches on).

    Returns:
        A :class:`Selection`.

    Raises:
        InvalidArgumentError: unknown method or parameter, a method needing an embedder or a
            question without one, a bad candidate spec, ``k`` / ``embed_size`` not a positive
            int, ``params`` / ``embedder_options`` not a mapping, ``cache_dir`` not a path.
        MissingDependencyError: an embedder is needed and torch / transformers are not
            installed (``pip install 'vidsel[embed]'``).
    """
    info = get_selector(method)
    k = check_positive_int("k", k)
    check_choice("candidate_mode", candidate_mode, ("exact", "keyframe"))
    if tokens_per_frame is not None:
        tokens_per_frame = check_positive_int("tokens_per_frame", tokens_per_frame)
    if embed_size is not None:
        embed_size = check_positive_int("embed_size", embed_size)
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"cache_dir={cache_dir!r} must be a directory path (str or os.PathLike) or None")
    params = options_dict("params", params)
    embedder_options = options_dict("embedder_options", embedder_options)
    info.check_params(params)  # before any decoding
    needs_model = info.needs != "none"
    if needs_model and embedder is None:
        raise InvalidArgumentError(
            f"method={method!r} needs an embedder (e.g. embedder='hf:/path/to/siglip'); only "
            f"methods needing no relevance (uniform) run without one"
        )
    if needs_model and not isinstance(question, str):
        raise InvalidArgumentError(f"method={method!r} needs a question (str)")
    default_pool = candidates is None
    if candidates is None:
        candidates = DEFAULT_NUM_CANDIDATES if needs_model else "all"

    own = not isinstance(path, VideoReader)
    reader = VideoReader(path, backend=backend) if not isinstance(path, VideoReader) else path
    try:
        md = reader.metadata
        if default_pool and isinstance(candidates, int) and 0 < md.num_frames < candidates:
            # the default pool, not a request of the user's: a short clip is no cause for alarm
            logger.info("%s: %d-frame video, fewer than the default %d candidates; using all "
                        "of them", reader.path, md.num_frames, candidates)
            candidates = int(md.num_frames)
        cand = candidate_indices(reader, candidates)
        if candidate_mode == "keyframe":
            cand = snap_to_keyframes(reader, cand)  # each keyframe once
        emb = load_embedder(embedder, **embedder_options) if needs_model else None
        return select_among(reader, cand, method, k, params=params, embedder=emb,
                            question=question, embed_size=embed_size,
                            candidate_mode=candidate_mode, cache_dir=cache_dir,
                            progress=progress, tokens_per_frame=tokens_per_frame)
    finally:
        if own:
            reader.close()


def select_among(reader: VideoReader, cand: np.ndarray, method: str, k: int, *,
                 params: dict[str, Any], embedder: Any, question: str | None,
                 embed_size: int | None, candidate_mode: str,
                 cache_dir: str | os.PathLike[str] | None, progress: bool | None,
                 tokens_per_frame: int | None) -> Selection:
    """The selector ``method`` run on the candidate frames ``cand`` (ascending source
    indices) of an open reader: embed them and the question (a loaded ``embedder``; None for
    selectors that score nothing), select ``k``, build the :class:`Selection` (shared by
    :func:`select_frames` and :func:`~vidsel.selection.select_in_window`)."""
    info = get_selector(method)
    md = reader.metadata
    timings: dict[str, float] = {}
    cache_hit = False
    scores: np.ndarray | None = None
    curve: np.ndarray | None = None
    if embedder is None:
        cand_ts = np.asarray(md.timestamps_s, dtype=np.float64)[cand]
        t0 = time.perf_counter()
        pos = run_selector(method, k, n=len(cand), **params)
        timings["select"] = time.perf_counter() - t0
        params = {**dict(info.defaults), **params}
    else:
        frame_embeds, cand, cand_ts, cache_hit = candidate_embeddings(
            reader, cand, embedder, size=embed_size, mode=candidate_mode, cache_dir=cache_dir,
            timings=timings, progress=progress)
        t0 = time.perf_counter()
        text_embed = embedder.embed_text(question or "")
        timings["embed_text"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pos = run_selector(method, k, frame_embeds=frame_embeds, text_embed=text_embed,
                           **params)
        timings["select"] = time.perf_counter() - t0
        scores = cosine_scores(frame_embeds[pos], text_embed)
        curve = cosine_scores(frame_embeds, text_embed)  # (n,) relevance, for plot()
        params = {**dict(info.defaults), **params, "embedder": embedder.name}
    pos = np.asarray(pos, dtype=np.int64)
    logger.debug("%s: %s chose %d of %d candidates in %.1f ms", reader.path, method, len(pos),
                 len(cand), 1e3 * timings["select"])
    return Selection(
        indices=cand[pos], timestamps_s=cand_ts[pos], scores=scores, method=method,
        params=params, source_fps=float(md.fps), path=str(reader.path),
        num_frames=int(md.num_frames), num_candidates=len(cand), question=question,
        cache_hit=cache_hit, timings_s=timings,
        candidate_timestamps_s=None if curve is None else cand_ts,
        candidate_scores=curve, tokens_per_frame=tokens_per_frame,
    )
