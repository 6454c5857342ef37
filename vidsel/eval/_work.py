"""The selection half of an evaluation: one video, one question, one method, one budget ->
the selection and the pixels the model gets, through the selection cache.

:func:`select_job` is a module-level function of a picklable :class:`SelectJob`, so it runs in
any executor of :mod:`vidsel.runs` (a local process pool, Ray, in-process). It raises
VidselError subclasses for bad input; the runner turns them into failure records.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..embed import content_id, shared_embedder
from ..errors import InvalidArgumentError
from ..io import VideoReader
from ..methods import get_method, run_method
from ..results import PatchConfig, PatchSelection, VisualSelection
from ..select import available_selectors, get_selector
from ._answerer import GeometryFn, frame_geometry, frame_tokens
from ._cache import CachedSelection, SelectionCache, selection_key

__all__ = ["RUNTIME_OPTIONS", "SelectJob", "keyed_options", "method_budget", "model_tokens",
           "options_for", "preload_embedder", "route_options", "select_job"]

logger = logging.getLogger(__name__)

#: Content ids of the videos this process has seen, by (path, size, mtime): the questions,
#: methods and budgets of one video hash it once.
_CONTENT_IDS: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class SelectJob:
    """Everything one selection needs (picklable).

    Attributes:
        video: the video file.
        question: the question (None for methods that do not read it).
        method: a registered method (:func:`vidsel.methods.available_methods`).
        budget: frame-equivalents.
        geometry: the model's geometry function (height, width) -> PatchConfig.
        options: method options (JSON-safe; ``embedder`` is a spec string).
        cache_root: the selection cache folder (None: no cache).
        device: the embedder's device (None: its default).
    """

    video: str
    question: str | None
    method: str
    budget: int
    geometry: GeometryFn
    options: Mapping[str, Any] = field(default_factory=dict)
    cache_root: str | None = None
    device: str | None = None


def preload_embedder(spec: str, device: str | None) -> Any:
    """The embedder of ``spec``, loaded once per process (:func:`vidsel.embed.shared_embedder`;
    a missing model fails here: ModelNotAvailableError)."""
    return shared_embedder(spec, device)


def _content_id(path: str) -> str:
    """:func:`vidsel.embed.content_id`, once per file version in this process."""
    try:
        st = os.stat(path)
    except OSError:
        return content_id(path)  # raises VideoNotFoundError with the path
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _CONTENT_IDS:
        _CONTENT_IDS[key] = content_id(path)
    return _CONTENT_IDS[key]


def method_budget(method: str, budget: int, geometry: GeometryFn, height: int, width: int,
                  config: PatchConfig) -> int:
    """The budget a method runs at so that it costs the model what ``budget`` whole frames
    cost it.

    Frame methods: ``budget``. Patch methods: the frames' cost in the model's tokens
    (:func:`~vidsel.eval.frame_tokens`: pairs merged for Qwen-VL, pooled frames for
    LLaVA-OneVision) divided by what one frame-equivalent of patches costs it once packed into
    canvases: the geometry's ``canvas_tokens`` when it states one (a model that takes canvases
    as unpooled images), else a frame's ``tokens_per_frame``; at least 1.
    """
    if get_method(method).kind != "patches":
        return budget
    cost = frame_tokens(geometry, height, width, budget, config)
    per = getattr(geometry, "canvas_tokens", None)
    per = per if isinstance(per, int) and per > 0 else config.tokens_per_frame
    return max(1, cost // per)


def model_tokens(result: VisualSelection, geometry: GeometryFn, facts: Mapping[str, Any],
                 config: PatchConfig) -> int | None:
    """Visual tokens the model spends on a selection: whole frames through
    :func:`~vidsel.eval.frame_tokens` (temporal merging, the model's own count), patches as
    the selection states."""
    if isinstance(result, PatchSelection):
        return result.num_tokens
    return frame_tokens(geometry, facts["height"], facts["width"],
                        len(result.source_frames), config)


def select_job(job: SelectJob) -> CachedSelection:
    """Select (or load from the cache) what the model sees for ``job``.

    Returns:
        a :class:`~vidsel.eval._cache.CachedSelection` whose ``selection.timings_s`` holds the
        selection's own stage times and whose ``frames`` are at the geometry's frame size.

    Raises:
        VidselError subclasses: the video is missing, unreadable or the method refuses.
    """
    t0 = time.perf_counter()
    cache = SelectionCache(job.cache_root)
    cid = _content_id(job.video)
    options = dict(job.options)
    embedder_spec = options.get("embedder")
    entry = get_method(job.method)
    facts = cache.video_facts(cid)
    reader: VideoReader | None = None
    try:
        if facts is None:
            reader = VideoReader(job.video)
            meta = reader.metadata
            facts = {"height": meta.height, "width": meta.width, "fps": meta.fps,
                     "num_frames": meta.num_frames, "duration_s": meta.duration_s,
                     "start_time_s": meta.start_time_s}
            cache.put_video_facts(cid, facts)
        # a clip of `budget` frames (no more than the video has: a short video's frames are
        # sized for the frames it gives)
        geometry = frame_geometry(job.geometry, facts["height"], facts["width"],
                                  num_frames=max(1, min(job.budget, int(facts["num_frames"]))))
        budget = method_budget(job.method, job.budget, job.geometry, facts["height"],
                               facts["width"], geometry)
        question = job.question if (entry.needs_question or entry.needs_embedder) else None
        key = selection_key(content_id=cid, question=question, method=job.method,
                            budget=budget, embedder=embedder_spec, geometry=geometry,
                            options=keyed_options(options))
        t_cache = time.perf_counter()
        hit = cache.get(key)
        if hit is not None:
            t_hit = time.perf_counter()
            hit = replace(hit, timings_s={"open": t_cache - t0, "cache": t_hit - t_cache})
            logger.debug("%s: %s @ %d from the selection cache", job.video, job.method,
                         job.budget)
            return replace(hit, key=key, visual_tokens=model_tokens(
                hit.selection, job.geometry, facts, geometry))
        if reader is None:
            reader = VideoReader(job.video)
        t_load = time.perf_counter()
        if embedder_spec is not None:
            options["embedder"] = shared_embedder(str(embedder_spec), job.device)
        t1 = time.perf_counter()
        result = run_method(job.method, reader, question=job.question, budget=budget,
                            geometry=geometry, **options)
        t2 = time.perf_counter()
        frames: np.ndarray | None = None
        if isinstance(result, PatchSelection):
            if result.pixels is None:
                raise InvalidArgumentError(f"method {job.method!r} returned patches without "
                                           f"pixels; a model needs them (pixels='none'?)")
        else:
            h, w = geometry.frame_size
            frames = reader.get_frames(np.asarray(result.source_frames), size=(h, w))
        t3 = time.perf_counter()
        out = CachedSelection(selection=result, frames=frames, geometry=geometry,
                              source_fps=float(facts["fps"]),
                              num_frames=int(facts["num_frames"]),
                              duration_s=float(facts["duration_s"]),
                              start_time_s=float(facts.get("start_time_s", 0.0)),
                              timings_s={"open": t_load - t0, "embedder_load": t1 - t_load,
                                         "select": t2 - t1, "frames": t3 - t2})
        cache.put(key, out)
        return replace(out, key=key,
                       visual_tokens=model_tokens(result, job.geometry, facts, geometry))
    finally:
        if reader is not None:
            reader.close()


#: Method options that change where work is kept, never what is selected (not in any key).
RUNTIME_OPTIONS = frozenset({"cache_dir"})


def _takes_param(method: str, name: str) -> bool:
    """Whether the selector behind frame method ``method`` takes parameter ``name`` (its value
    is checked later, with the method's own message)."""
    if method in available_selectors():
        declared = get_selector(method).params
        return declared is None or name in declared
    try:  # a plugin method with a params option: ask its own check
        get_method(method).check_options({"params": {name: None}})
    except InvalidArgumentError as e:
        return "does not take" not in str(e)
    return True


def route_options(methods: Sequence[str], options: Mapping[str, Any]
                  ) -> dict[str, dict[str, Any]]:
    """Share out method options among ``methods``: a name goes to every method that takes it,
    as an option (``candidates``, ``anchors``...) or, for methods with a ``params`` option, as
    a parameter of its selector (``lam``, ``segment_size``...); ``params={...}`` is spread the
    same way.

    Raises:
        InvalidArgumentError: a name no method takes (a typo must not silently change the
            experiment), or a value a method refuses.
    """
    flat = {k: v for k, v in options.items() if k != "params" and v is not None}
    flat.update(dict(options.get("params") or {}))
    out: dict[str, dict[str, Any]] = {m: {} for m in methods}
    used: set[str] = set()
    for name, value in flat.items():
        for m in methods:
            entry = get_method(m)
            accepted = entry.options
            if accepted is None or name in accepted:
                out[m][name] = value
                used.add(name)
            elif "params" in accepted and _takes_param(m, name):
                out[m].setdefault("params", {})[name] = value
                used.add(name)
    unknown = sorted(set(flat) - used)
    if unknown:
        raise InvalidArgumentError(
            f"no method of {', '.join(methods)} takes {', '.join(unknown)} (as an option or a "
            f"selector parameter); their options: " + "; ".join(
                f"{m}: {', '.join(sorted(get_method(m).options or ())) or 'none'}"
                for m in methods))
    return out


def options_for(method: str, options: Mapping[str, Any], embedder: str | None, *,
                cache_root: str | None = None) -> dict[str, Any]:
    """The options of ``method`` (from :func:`route_options`) plus the embedder spec for
    methods that need one, checked before any video is read. Methods with a frame-embedding
    cache (``cache_dir``) keep it beside the selection cache unless told otherwise, so the
    questions of a long video decode and embed its candidates once."""
    entry = get_method(method)
    accepted = entry.options
    out = dict(options)
    if entry.needs_embedder:
        if embedder is None:
            raise InvalidArgumentError(
                f"method {method!r} scores frames against the question and needs an embedder "
                f"(embedder='hf:/path/to/siglip', --embedder SPEC)")
        out["embedder"] = embedder
        if cache_root is not None and "cache_dir" not in out and accepted is not None \
                and "cache_dir" in accepted:
            out["cache_dir"] = os.path.join(cache_root, "embeddings")
    entry.check_options(out)
    return out


def keyed_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that decide a selection (:data:`RUNTIME_OPTIONS` and the embedder, which
    keys separately, left out)."""
    return {k: v for k, v in options.items() if k not in RUNTIME_OPTIONS and k != "embedder"}
