"""Which frames of a video window a vidsel method picks for a Qwen-VL frame budget.

- ``uniform``: qwen-vl-utils' own sampling, ``torch.linspace(start, end, n).round()`` (float32,
  as qwen-vl-utils computes it, so the indices are the same to the frame);
- another frame method over the whole video: :func:`vidsel.run_method` (the registry path,
  embedding cache and plugins included);
- a frame method over a ``video_start`` / ``video_end`` window: the same selector on candidates
  drawn from the window only (n evenly spread frames of the window, first and last included,
  as :func:`vidsel.selection.select_frames` draws them from the whole video), embedded with
  the same embedder at the same size.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..embed import load_embedder
from ..errors import InvalidArgumentError
from ..io import VideoReader
from ..methods import available_methods, get_method, run_method
from ..optional import require
from ..results import Selection
from ..select import SELECTORS, get_selector, run_selector
from ..selection import DEFAULT_EMBED_SIZE, DEFAULT_NUM_CANDIDATES

__all__ = ["num_candidates", "qwen_uniform", "select_indices", "window_candidates"]

logger = logging.getLogger(__name__)

#: Candidate frames decoded and embedded per chunk in a window.
_CHUNK = 64


def qwen_uniform(start: int, end: int, nframes: int) -> np.ndarray:
    """(nframes,) int64: qwen-vl-utils' ``torch.linspace(start, end, nframes).round()``."""
    torch = require("torch", "vidsel.qwen", extra="embed")
    return torch.linspace(start, end, nframes).round().long().numpy().astype(np.int64)


def num_candidates(count: int, budget: int) -> int:
    """Candidate pool size: MDP3's 128 (or the budget when larger), at most the window."""
    return min(count, max(DEFAULT_NUM_CANDIDATES, budget))


def window_candidates(start: int, end: int, n: int) -> np.ndarray:
    """(<= n,) int64 ascending unique: ``n`` frames spread evenly over ``start..end``, ends
    included (``VideoReader.uniform_indices`` on the window)."""
    return np.unique(np.round(np.linspace(start, end, n)).astype(np.int64))


def _window_selection(reader: VideoReader, method: str, start: int, end: int, budget: int, *,
                      question: str | None, embedder: Any,
                      params: Mapping[str, Any]) -> np.ndarray:
    """Indices chosen by the array-level selector ``method`` among candidates of the window."""
    info = get_selector(method)
    params = dict(params)
    info.check_params(params)
    cand = window_candidates(start, end, num_candidates(end - start + 1, budget))
    if info.needs == "none":
        pos = run_selector(method, budget, n=len(cand), **params)
        return cand[np.asarray(pos, np.int64)]
    emb = load_embedder(embedder)
    embeds = []
    for s in range(0, len(cand), _CHUNK):
        frames = reader.get_frames(cand[s:s + _CHUNK], size=DEFAULT_EMBED_SIZE)
        embeds.append(emb.embed_images(frames, progress=False))
    text = emb.embed_text(question or "")
    pos = run_selector(method, budget, frame_embeds=np.concatenate(embeds), text_embed=text,
                       **params)
    return cand[np.asarray(pos, np.int64)]


def select_indices(reader: VideoReader, method: str, start: int, end: int, budget: int, *,
                   question: str | None, embedder: Any,
                   params: Mapping[str, Any] | None) -> np.ndarray:
    """(<= budget,) int64 ascending source frame indices chosen by the frame method ``method``
    among the frames ``start..end`` of ``reader``.

    Raises:
        InvalidArgumentError: the method needs an embedder or a question and has none, bad
            ``params``, or a plugin method (not an array-level selector) asked for a window.
    """
    m = get_method(method)
    if params is not None and not isinstance(params, Mapping):
        raise InvalidArgumentError(f"params={params!r} must be a mapping of selector parameters "
                                   f"(e.g. {{'lam': 0.2}})")
    if m.needs_embedder and embedder is None:
        raise InvalidArgumentError(
            f"selector={method!r} scores frames against the question and needs an embedder: "
            f"add 'embedder': 'hf:/path/to/siglip' (or an Embedder) to the video element; "
            f"selectors that need none: "
            f"{', '.join(n for n in available_methods() if not get_method(n).needs_embedder)}")
    if m.needs_question and not question:
        raise InvalidArgumentError(
            f"selector={method!r} needs a question: the conversation holding the video has no "
            f"user text; add 'question': '...' to the video element")
    n = reader.metadata.num_frames
    if (start, end) == (0, n - 1):
        sel = run_method(method, reader, question=question, budget=budget, embedder=embedder,
                         params=dict(params or {}) or None,
                         candidates=num_candidates(n, budget))
        if not isinstance(sel, Selection):  # pragma: no cover - kind checked by run_method
            raise InvalidArgumentError(f"selector={method!r} did not return frames")
        return np.asarray(sel.indices, np.int64)
    if method not in SELECTORS:
        raise InvalidArgumentError(
            f"selector={method!r} is a plugin method that cannot be restricted to "
            f"video_start / video_end; drop the window or use one of "
            f"{', '.join(SELECTORS.names())}")
    return _window_selection(reader, method, start, end, budget, question=question,
                             embedder=embedder, params=params or {})
