"""The built-in methods: every array-level selector as a frame method, and ``codec``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .._validate import check_choice
from ..codec import (
    ANCHOR_POLICIES,
    check_patch_choices,
    check_relevance_share,
    query_anchor_methods,
    register_lmms_method,
    select_patches,
)
from ..errors import InvalidArgumentError
from ..io import VideoReader, packet_index
from ..results import PatchConfig, PatchSelection, Selection
from ..select import get_selector
from ..selection import DEFAULT_EMBED_SIZE, select_frames
from ._registry import MethodFn, register_method

__all__ = ["CODEC_QUERY_PRESETS", "codec_method", "codec_query_method", "frame_method"]

#: Options every frame method takes (forwarded to :func:`vidsel.selection.select_frames`).
FRAME_OPTIONS = frozenset({"candidates", "candidate_mode", "params", "embed_size", "backend"})
#: ... and those only methods that score relevance take.
EMBEDDER_OPTIONS = frozenset({"embedder", "embedder_options", "cache_dir"})


def frame_method(selector: str) -> MethodFn:
    """A video-level frame method around the array-level selector ``selector``
    (:func:`vidsel.select.register_selector`): candidates are decoded and embedded by
    :func:`~vidsel.selection.select_frames`, which returns a
    :class:`~vidsel.results.Selection` of ``budget`` frames.

    Register a selector of your own as a method with
    ``register_method(name, frame_method(name), needs_embedder=...)``.
    """

    def run(path: str | VideoReader, *, question: str | None, budget: int,
            geometry: PatchConfig, embedder: Any = None, candidates: int | str | None = None,
            candidate_mode: str = "exact", cache_dir: str | None = None,
            params: Mapping[str, Any] | None = None,
            embed_size: int | None = DEFAULT_EMBED_SIZE,
            embedder_options: Mapping[str, Any] | None = None,
            backend: str = "pyav") -> Selection:
        return select_frames(path, question, budget, method=selector, embedder=embedder,
                             candidates=candidates,
                             candidate_mode=candidate_mode,  # type: ignore[arg-type]
                             cache_dir=cache_dir, params=params, embed_size=embed_size,
                             embedder_options=embedder_options, backend=backend,
                             tokens_per_frame=geometry.tokens_per_frame)

    run.__name__ = run.__qualname__ = f"frame_method_{selector.replace('-', '_')}"
    run.__doc__ = f"Frame method around the array-level selector {selector!r}."
    return run


def codec_method(path: str | VideoReader, *, question: str | None, budget: int,
                 geometry: PatchConfig, **options: Any) -> PatchSelection:
    """Codec patches (:func:`vidsel.codec.select_patches`) at ``budget`` frame-equivalents of
    ``geometry``. With an ``embedder`` option the question steers the selection (query-aware:
    ``relevance_share``, selector anchors); without one motion alone decides and the question
    is not used. Given an open reader, its file, its interpolation (so pixels equal the
    reader's crops) and its packet table are used."""
    if options.get("embedder") is not None and question:
        options["question"] = question
    if isinstance(path, VideoReader):
        options.setdefault("interpolation", path.interpolation)
        if "index" not in options and "stream" not in options:
            # the reader demuxed the packets already: build the index on its table
            options["index"] = packet_index(path.path, table=path.packet_table)
        path = path.path
    return select_patches(path, budget_frames=budget, patch_size=geometry.patch_size,
                          merge=geometry.merge, frame_size=geometry.frame_size, **options)


#: select_patches keywords that the call shape (budget, geometry) decides.
_CODEC_FIXED = frozenset({"path", "budget_frames", "budget_tokens", "patch_size", "merge",
                          "frame_size"})


def _codec_options() -> frozenset[str]:
    return frozenset(inspect.signature(select_patches).parameters) - _CODEC_FIXED - {"question"}


def codec_query_method(anchor_selector: str) -> MethodFn:
    """The query-aware codec preset ``codec+<anchor_selector>``: codec patches whose motion
    budget is reweighted by the question's relevance (``relevance_share``, default 0.5) and
    whose anchors ``anchor_selector`` chooses among the relevance candidates."""

    def run(path: str | VideoReader, *, question: str | None, budget: int,
            geometry: PatchConfig, **options: Any) -> PatchSelection:
        options.setdefault("anchors", anchor_selector)
        return codec_method(path, question=question, budget=budget, geometry=geometry,
                            **options)

    run.__name__ = run.__qualname__ = f"codec_query_{anchor_selector.replace('-', '_')}"
    run.__doc__ = f"Query-aware codec patches with {anchor_selector!r} anchors."
    return run


_FRAME_METHODS = {
    "uniform": "evenly spaced frames over the whole video; needs no model",
    "topk": "the frames most relevant to the question",
    "dpp": "relevant and diverse frames (determinantal point process, fast greedy MAP)",
    "mdp3": "MDP3: relevance, diversity and sequence via a dynamic programme (Ovis2)",
    "mdp3-reference": "MDP3 exactly as the public implementation computes it",
    "bolt": "BOLT: inverse-transform sampling of the relevance curve",
    "aks": "AKS: adaptive keyframe sampling (relevance and coverage, split recursively)",
}

def _params_check(selector: str) -> Callable[[Mapping[str, Any]], None]:
    """Check a frame method's ``params`` option against its selector's parameters."""

    def check(options: Mapping[str, Any]) -> None:
        params = options.get("params")
        if params is not None and not isinstance(params, Mapping):
            raise InvalidArgumentError(f"params={params!r} must be a mapping of selector "
                                       f"parameters")
        get_selector(selector).check_params(dict(params or {}))

    return check


for _name, _description in _FRAME_METHODS.items():
    _needs = get_selector(_name).needs
    register_method(_name, frame_method(_name), kind="frames",
                    needs_question=_needs != "none", needs_embedder=_needs != "none",
                    options=FRAME_OPTIONS | (EMBEDDER_OPTIONS if _needs != "none" else set()),
                    description=_description, check=_params_check(_name), takes_reader=True)

def _codec_check(options: Mapping[str, Any]) -> None:
    """Check the options of a codec method that need no video before any video is read (and
    before the CLI loads an embedder)."""
    check_patch_choices(options)
    if "relevance_share" in options and options["relevance_share"] is not None:
        check_relevance_share(options["relevance_share"])
    anchors = options.get("anchors")
    if anchors is not None and anchors not in ANCHOR_POLICIES:
        check_choice("anchors", anchors, (*ANCHOR_POLICIES, *query_anchor_methods()))
        if options.get("anchor_params") is not None:
            get_selector(anchors).check_params(dict(options["anchor_params"]))


register_method("codec", codec_method, kind="patches", options=_codec_options(),
                takes_reader=True, check=_codec_check,
                description="dense anchor frames plus the most changing patches of many "
                            "frames, from codec motion vectors, at an exact token budget "
                            "(with an embedder, the question reweights them)")

def _query_check(selector: str) -> Callable[[Mapping[str, Any]], None]:
    def check(options: Mapping[str, Any]) -> None:
        _codec_check({**options, "anchors": selector})

    return check


register_lmms_method(register_method)  # "codec-lmms": lmms-video-utils' reference mode

#: Query-aware codec presets: {name: the frame selector choosing the anchors}.
CODEC_QUERY_PRESETS = {"codec+mdp3": "mdp3", "codec+dpp": "dpp"}
for _name, _selector in CODEC_QUERY_PRESETS.items():
    register_method(_name, codec_query_method(_selector), kind="patches",
                    needs_question=True, needs_embedder=True,
                    options=_codec_options() - {"anchors"}, takes_reader=True,
                    check=_query_check(_selector),
                    description=f"codec patches steered by the question: motion reweighted "
                                f"by relevance, anchors chosen by {_selector}")
