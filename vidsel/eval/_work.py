"""The selection half of an evaluation: one video, one question, one method, one budget ->
the selection and the pixels the model gets, through the selection cache.

:func:`select_job` is a module-level function of a picklable :class:`SelectJob`, so it runs in
any executor of :mod:`vidsel.runs` (a local process pool, Ray, in-process). It raises
VidselError subclasses for bad input; the runner turns them into failure records.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..embed import content_id, load_embedder
from ..errors import InvalidArgumentError
from ..io import VideoReader
from ..methods import get_method, run_method
from ..results import PatchConfig, PatchSelection, VisualSelection
from ._answerer import GeometryFn, frame_geometry, frame_tokens, temporal_merge
from ._cache import CachedSelection, SelectionCache, selection_key

__all__ = ["SelectJob", "method_budget", "model_tokens", "options_for", "select_job"]

logger = logging.getLogger(__name__)

#: Embedders loaded in this process, by (spec, device).
_EMBEDDERS: dict[tuple[str, str | None], Any] = {}


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


def _embedder(spec: str, device: str | None) -> Any:
    key = (spec, device)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = load_embedder(spec, **({"device": device} if device else {}))
    return _EMBEDDERS[key]


def method_budget(method: str, budget: int, geometry: GeometryFn) -> int:
    """The budget a method is run at so that it costs the model what ``budget`` frames cost:
    patch methods on a model that merges ``k`` frames in time into one token grid (Qwen-VL:
    2) get ``ceil(budget / k)`` frame-equivalents of tokens; frame methods get ``budget``."""
    merge = temporal_merge(geometry)
    if merge > 1 and get_method(method).kind == "patches":
        return max(1, math.ceil(budget / merge))
    return budget


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
    cid = content_id(job.video)
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
        geometry = frame_geometry(job.geometry, facts["height"], facts["width"],
                                  num_frames=job.budget)
        budget = method_budget(job.method, job.budget, job.geometry)
        question = job.question if (entry.needs_question or entry.needs_embedder) else None
        key = selection_key(content_id=cid, question=question, method=job.method,
                            budget=budget, embedder=embedder_spec, geometry=geometry,
                            options={k: v for k, v in options.items() if k != "embedder"})
        hit = cache.get(key)
        if hit is not None:
            logger.debug("%s: %s @ %d from the selection cache", job.video, job.method,
                         job.budget)
            return replace(hit, visual_tokens=model_tokens(hit.selection, job.geometry, facts,
                                                           geometry))
        if reader is None:
            reader = VideoReader(job.video)
        if embedder_spec is not None:
            options["embedder"] = _embedder(str(embedder_spec), job.device)
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
                              timings_s={"open": t1 - t0, "select": t2 - t1, "frames": t3 - t2})
        cache.put(key, out)
        return replace(out, visual_tokens=model_tokens(result, job.geometry, facts, geometry))
    finally:
        if reader is not None:
            reader.close()


def options_for(method: str, options: Mapping[str, Any], embedder: str | None,
                   ) -> dict[str, Any]:
    """The options ``method`` takes out of the shared ``options`` (plus the embedder spec for
    methods that need one), checked before any video is read."""
    entry = get_method(method)
    accepted = entry.options
    out = {k: v for k, v in options.items() if v is not None and
           (accepted is None or k in accepted)}
    if entry.needs_embedder:
        if embedder is None:
            raise InvalidArgumentError(
                f"method {method!r} scores frames against the question and needs an embedder "
                f"(embedder='hf:/path/to/siglip', --embedder SPEC)")
        out["embedder"] = embedder
    entry.check_options({k: v for k, v in out.items()})
    return out


def video_exists(path: str) -> bool:
    return os.path.isfile(path)
