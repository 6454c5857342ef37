"""Which frames of a video window a vidsel method picks for a Qwen-VL frame budget.

- ``uniform``: qwen-vl-utils' own sampling, ``torch.linspace(start, end, n).round()`` (float32,
  as qwen-vl-utils computes it, so the indices are the same to the frame);
- another frame method over the whole video: :func:`vidsel.run_method` (the registry path,
  embedding cache and plugins included);
- a frame method over a ``video_start`` / ``video_end`` window:
  :func:`vidsel.selection.select_in_window`, the same selector on candidates drawn from the
  window only (``max(128, 4 n)`` evenly spread frames of the window, first and last included),
  embedded with the same embedder at the same size.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..embed import Embedder, shared_embedder
from ..errors import InvalidArgumentError
from ..io import VideoReader
from ..methods import Method, available_methods, get_method, run_method
from ..optional import require
from ..results import Selection
from ..select import SELECTORS
from ..selection import pool_size, select_in_window

__all__ = ["POOL_OPTIONS", "element_embedder", "qwen_uniform", "resolve_embedder",
           "select_indices", "split_params"]

logger = logging.getLogger(__name__)


def qwen_uniform(start: int, end: int, nframes: int) -> np.ndarray:
    """(nframes,) int64: qwen-vl-utils' ``torch.linspace(start, end, nframes).round()``."""
    torch = require("torch", "vidsel.qwen", extra="embed")
    return torch.linspace(start, end, nframes).round().long().numpy().astype(np.int64)


#: Method options a video element's ``params`` may carry next to selector parameters.
POOL_OPTIONS = ("candidates", "candidate_mode", "embed_size", "cache_dir")


def split_params(method: Method, params: Mapping[str, Any] | None
                 ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``params`` of a video element -> (method options, selector parameters): the pool
    options (:data:`POOL_OPTIONS`, e.g. ``{"candidates": 512}``) the method takes go to it, the
    rest to its selector."""
    if params is not None and not isinstance(params, Mapping):
        raise InvalidArgumentError(f"params={params!r} must be a mapping of selector parameters "
                                   f"(e.g. {{'lam': 0.2}})")
    rest = dict(params or {})
    options = {k: rest.pop(k) for k in POOL_OPTIONS if k in rest and _accepts(method, k)}
    if options and method.name in SELECTORS:
        taken = SELECTORS.get(method.name).params
        clash = sorted(k for k in options if taken is None or k in taken)
        if clash:
            raise InvalidArgumentError(
                f"params {clash} name both a candidate-pool option of method {method.name!r} "
                f"and a parameter its selector may take; rename the selector parameter")
    return options, (rest or None)


def resolve_embedder(method: Method, spec: Any) -> Any:
    """The embedder a video element names, for ``method``: a spec string becomes the
    process-wide :func:`vidsel.embed.shared_embedder` (loaded once, reused by every later call
    and video); an :class:`~vidsel.embed.Embedder` or None passes through, as does anything
    for a method that scores nothing (its registry entry judges the option).

    Raises:
        InvalidArgumentError: ``spec`` is neither a string nor an Embedder (scoring methods).
        ModelNotAvailableError, MissingDependencyError: the model cannot be loaded.
    """
    if spec is None or isinstance(spec, Embedder) or not method.needs_embedder:
        return spec
    return element_embedder(spec)


def element_embedder(spec: Any) -> Any:
    """An embedder named by a video element: an :class:`~vidsel.embed.Embedder` as it is, a
    spec string as the process-wide :func:`vidsel.embed.shared_embedder`.

    Raises:
        InvalidArgumentError: ``spec`` is neither a string nor an Embedder.
        ModelNotAvailableError, MissingDependencyError: the model cannot be loaded.
    """
    if isinstance(spec, Embedder):
        return spec
    if not isinstance(spec, str) or not spec:
        raise InvalidArgumentError(
            f"embedder={spec!r} must be a spec string (e.g. 'hf:/path/to/siglip') or a "
            f"vidsel.embed.Embedder")
    return shared_embedder(spec)


def _accepts(method: Method, option: str) -> bool:
    return method.options is None or option in method.options


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
    pool, params = split_params(m, params)
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
    embedder = resolve_embedder(m, embedder)
    n = reader.metadata.num_frames
    if (start, end) == (0, n - 1):
        options: dict[str, Any] = {"embedder": embedder, "params": params}
        if _accepts(m, "candidates"):  # a plugin method may take no candidate pool
            options["candidates"] = pool_size(n, budget)
        options.update(pool)
        sel = run_method(method, reader, question=question, budget=budget, **options)
        if not isinstance(sel, Selection):  # pragma: no cover - kind checked by run_method
            raise InvalidArgumentError(f"selector={method!r} did not return frames")
        return np.asarray(sel.indices, np.int64)
    if method not in SELECTORS:
        raise InvalidArgumentError(
            f"selector={method!r} is a plugin method that cannot be restricted to "
            f"video_start / video_end; drop the window or use one of "
            f"{', '.join(SELECTORS.names())}")
    pool.setdefault("candidates", pool_size(end - start + 1, budget))
    sel = select_in_window(reader, method, budget, start_frame=start, end_frame=end,
                           question=question, embedder=embedder, params=params, **pool)
    return np.asarray(sel.indices, np.int64)
