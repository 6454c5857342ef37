"""End-to-end tasks on a video: question answering and temporal grounding.

What the model sees of the video comes from explicit frames or from a video-level method of
vidsel's registry (:func:`vidsel.methods.run_method`: ``"uniform"``, ``"mdp3"``, ``"codec"``, ...,
or one of your own), asked for ``budget`` frame-equivalents in the model's own patch geometry
(:meth:`ovis_model.OvisProcessor.patch_geometry`). Frame methods return a
:class:`vidsel.results.Selection`, whose frames are decoded; patch methods a
:class:`vidsel.results.PatchSelection`, packed as is. The tasks then build a time-tagged prompt
and generate.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vidsel import errors as vidsel_errors
from vidsel.deprecation import REMOVED_IN, renamed_fields, renamed_kwargs
from vidsel.io import VideoReader
from vidsel.methods import Method, available_methods, get_method, run_method
from vidsel.results import PatchConfig

from .budget import TokenBudget
from .errors import InvalidArgumentError
from .llava_ov2 import LlavaOneVision2Model, LlavaOV2Processor
from .modeling import OvisModel
from .parsing import extract_choice, parse_time_span
from .preprocessing import ImageProcessorConfig
from .processor import OvisProcessor, ProcessorOutput, video_geometry

__all__ = [
    "AnswerResult",
    "GroundingResult",
    "VisualSample",
    "answer",
    "gather_visual",
    "ground",
    "grounding_prompt",
    "mcq_prompt",
]

logger = logging.getLogger(__name__)

#: the models and processors the tasks run (an Ovis pair or a LLaVA-OneVision-2 pair)
Model = OvisModel | LlavaOneVision2Model
Processor = OvisProcessor | LlavaOV2Processor

#: deprecated ``selector=`` callable: ``selector(path, question, k)`` -> ``.indices``,
#: ``.timestamps_s`` (and optionally ``.frames()``).
Selector = str | Callable[..., Any]
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DEFAULT_METHOD = "uniform"
DEFAULT_BUDGET = 8


@renamed_fields({"codec": "patches"})
@dataclass
class VisualSample:
    """What the model will see from a video: frames + times, or a patch selection.

    Attributes:
        frames: uint8 ``(T, H, W, 3)`` or None (patches).
        timestamps_s: time of each frame (frames mode).
        frame_indices: source frame index of each frame (frames mode).
        patches: the :class:`vidsel.results.PatchSelection` of a patch method (patches mode;
            ``codec`` before 0.2, deprecated).
        duration_s: video length when known.
        selection: the :class:`vidsel.results.VisualSelection` the method returned (None for
            explicit frames and the deprecated selector callable).
    """

    frames: np.ndarray | None = None
    timestamps_s: list[float] | None = None
    frame_indices: list[int] | None = None
    patches: Any = None
    duration_s: float | None = None
    selection: Any = None


@renamed_fields({"frame_times_s": "timestamps_s"})
@dataclass
class AnswerResult:
    """An answer: generated ``text``, the ``choice`` letter (multiple choice), token
    accounting and ``timestamps_s``, the time of each visual run in prompt order (None for
    images; ``frame_times_s`` before 0.2, deprecated)."""

    text: str
    choice: str | None
    budget: TokenBudget
    timestamps_s: list[float | None]


@renamed_fields({"frame_times_s": "timestamps_s"})
@dataclass
class GroundingResult:
    """A grounding: the span (``start_s``, ``end_s``; None when the answer holds none), the
    generated text, token accounting and ``timestamps_s`` as in :class:`AnswerResult`."""

    start_s: float | None
    end_s: float | None
    text: str
    budget: TokenBudget
    timestamps_s: list[float | None]

    @property
    def span(self) -> tuple[float, float] | None:
        if self.start_s is None or self.end_s is None:
            return None
        return (self.start_s, self.end_s)


def _deprecated(old: str, new: str) -> None:
    """The deprecation warning of a keyword ``old`` replaced by ``new``, blamed on the first
    caller outside ovis_model (``answer(k=)`` and ``gather_visual(k=)`` alike)."""
    frame, level = sys._getframe(0), 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
            ("ovis_model", "vidsel.deprecation")):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"{old} is deprecated and will be removed in vidsel {REMOVED_IN}; use {new}",
                  DeprecationWarning, stacklevel=level)


def _check_options(method_options: Any) -> dict[str, Any]:
    """``method_options`` as a dict of keyword arguments (a mapping with str keys)."""
    if method_options is None:
        return {}
    if not isinstance(method_options, Mapping) or not all(
            isinstance(key, str) for key in method_options):
        raise InvalidArgumentError(
            f"method_options={method_options!r} must be a mapping of option names to values "
            "(vidsel.methods.get_method(method).options)")
    return dict(method_options)


def _model_free_methods() -> str:
    """The registered methods that need no embedder, from the method registry."""
    return ", ".join(repr(n) for n in available_methods() if not get_method(n).needs_embedder)


def _resolve_method(method: str | None, budget: int | None, *, selector: Selector | None,
                    k: int | None, codec_budget: int | None) -> tuple[str | Selector, int]:
    """(method name or deprecated selector callable, budget) from new and deprecated keywords."""
    if k is not None:
        if budget is not None:
            raise InvalidArgumentError("give budget= only (k= is its deprecated name)")
        _deprecated("k=", "budget=")
        budget = k
    if codec_budget is not None:
        if method is not None or budget is not None or selector is not None:
            raise InvalidArgumentError(
                "codec_budget=N is the deprecated form of method='codec', budget=N; do not "
                "combine it with method=, budget=, k= or selector=")
        _deprecated("codec_budget=N", "method='codec', budget=N")
        method, budget = "codec", codec_budget
    chosen: str | Selector = DEFAULT_METHOD if method is None else method
    if selector is not None:
        if method is not None:
            raise InvalidArgumentError("give method= only (selector= is its deprecated name)")
        _deprecated("selector=", "method=")
        chosen = selector
    budget = DEFAULT_BUDGET if budget is None else budget
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise InvalidArgumentError(f"budget={budget!r} must be an int >= 1 (frame-equivalents)")
    return chosen, int(budget)


def _lookup(name: str) -> Method:
    if not isinstance(name, str):
        raise InvalidArgumentError(
            f"method={name!r} must be a method name (vidsel.methods.available_methods())")
    try:
        return get_method(name)
    except vidsel_errors.InvalidArgumentError as exc:
        raise InvalidArgumentError(str(exc)) from None


@renamed_kwargs({"video": "path"})
def gather_visual(path: str | os.PathLike[str] | None, question: str | None, *,
                  frames: np.ndarray | Sequence[np.ndarray] | None = None,
                  timestamps_s: Sequence[float] | None = None,
                  frame_indices: Sequence[int] | None = None,
                  method: str | None = None, budget: int | None = None,
                  embedder: Any = None, method_options: Mapping[str, Any] | None = None,
                  processor: Processor | None = None, geometry: PatchConfig | None = None,
                  min_pixels: int | None = None, max_pixels: int | None = None,
                  selector: Selector | None = None, k: int | None = None,
                  codec_budget: int | None = None, patch_size: int | None = None,
                  merge: int | None = None) -> VisualSample:
    """Decide what the model sees.

    Explicit ``frames`` (+ ``timestamps_s``) win; otherwise
    ``vidsel.methods.run_method(method, path, question=question, budget=budget,
    geometry=..., embedder=embedder, **method_options)``.

    Args:
        path: the video file (``video=`` before 0.2, deprecated); None with explicit frames.
        method: a registered vidsel method (default ``"uniform"``); ``"codec"`` and other patch
            methods give a patch selection, frame methods frames.
        budget: frame-equivalents (default 8): frames, or the tokens of that many frames.
        embedder: the text/image embedder of relevance methods (``"mdp3"``, ``"topk"``...).
        method_options: further options of the method (a mapping,
            ``get_method(method).options``).
        processor: the model's processor; the geometry is
            ``processor.patch_geometry(height, width, min_pixels=, max_pixels=)`` for the
            video's size: the frame size the processor resizes frames to.
        geometry: an explicit :class:`vidsel.results.PatchConfig` (wins over ``processor``);
            without either, Ovis2.5's defaults (16 px patches, 2 x 2 merge, 448 x 448 px area).
        selector, k, codec_budget: deprecated: ``selector=name`` is ``method=name`` (a callable
            ``selector(path, question, k)`` still works), ``k=`` is ``budget=``,
            ``codec_budget=N`` is ``method="codec", budget=N``.
        patch_size, merge: deprecated geometry overrides (pass ``processor=`` or
            ``geometry=``).
    """
    if frames is not None:
        arr = np.asarray(frames)
        if timestamps_s is None:
            raise InvalidArgumentError("explicit frames need timestamps_s")
        return VisualSample(frames=arr, timestamps_s=[float(t) for t in timestamps_s],
                            frame_indices=None if frame_indices is None else
                            [int(i) for i in frame_indices])
    if path is None:
        raise InvalidArgumentError("give a video path or explicit frames")
    chosen, budget = _resolve_method(method, budget, selector=selector, k=k,
                                     codec_budget=codec_budget)
    options = _check_options(method_options)
    if patch_size is not None or merge is not None:
        _deprecated("gather_visual(patch_size=, merge=)", "processor= or geometry=")
    path = os.fspath(path)
    with VideoReader(path) as reader:
        meta = reader.metadata
        duration = float(meta.duration_s)
        if callable(chosen):
            sel = chosen(path, question, budget)
            return _frames_sample(reader, sel, duration, selection=None)
        spec = _lookup(chosen)
        if spec.needs_embedder and embedder is None and options.get("embedder") is None:
            raise InvalidArgumentError(
                f"method={chosen!r} scores frames against the question and needs embedder= "
                f"(e.g. embedder='hf:/path/to/siglip'); methods that need none: "
                f"{_model_free_methods()}")
        if geometry is None:
            if processor is not None:
                geometry = processor.patch_geometry(meta.height, meta.width,
                                                    min_pixels=min_pixels, max_pixels=max_pixels)
            else:
                geometry = video_geometry(meta.height, meta.width,
                                          patch_size=16 if patch_size is None else patch_size,
                                          hidden_stride=2 if merge is None else merge,
                                          image_config=ImageProcessorConfig())
        if embedder is not None:
            options["embedder"] = embedder
        # the open reader is reused by methods that take one (others get its path)
        result = run_method(chosen, reader, question=question, budget=budget,
                            geometry=geometry, **options)
        logger.info("%s: method %s, budget %d x %d tokens -> %s visual tokens", path, chosen,
                    budget, geometry.tokens_per_frame, result.num_tokens)
        if result.kind == "patches":
            return VisualSample(patches=result, duration_s=duration, selection=result)
        return _frames_sample(reader, result, duration, selection=result)


def _frames_sample(reader: VideoReader, sel: Any, duration: float, *,
                   selection: Any) -> VisualSample:
    """Decode a frame selection (``.indices``, ``.timestamps_s``) through the open reader."""
    indices = [int(i) for i in np.asarray(sel.indices)]
    return VisualSample(frames=np.asarray(reader.get_frames(indices)),
                        timestamps_s=[float(t) for t in sel.timestamps_s],
                        frame_indices=indices, duration_s=duration, selection=selection)


def _process(processor: Processor, sample: VisualSample, text: str,
             **kwargs: Any) -> ProcessorOutput:
    if sample.patches is not None:
        return processor(text, patches=sample.patches, **kwargs)
    return processor(text, video=sample.frames, timestamps_s=sample.timestamps_s,
                     frame_indices=sample.frame_indices, **kwargs)


def _check_max_new_tokens(max_new_tokens: Any) -> None:
    """Refused before any video is decoded."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or max_new_tokens < 1:
        raise InvalidArgumentError(f"max_new_tokens={max_new_tokens!r} must be an int >= 1")


def _generate(model: Model, processor: Processor, inputs: ProcessorOutput,
              max_new_tokens: int, **generate_kwargs: Any) -> str:
    tok = processor.tokenizer
    generate_kwargs.setdefault("eos_token_id", tok.eos_token_id)
    generate_kwargs.setdefault("pad_token_id", tok.pad_token_id if tok.pad_token_id is not None
                               else tok.eos_token_id)
    with torch.inference_mode():
        ids = model.generate(**inputs.model_inputs(), max_new_tokens=max_new_tokens,
                             **generate_kwargs)
    return processor.decode(ids[0]).strip()


def mcq_prompt(question: str, options: Sequence[str]) -> str:
    lines = [question, "Options:"]
    lines += [f"{LETTERS[i]}. {opt}" for i, opt in enumerate(options)]
    lines.append("Answer with the option's letter from the given choices directly.")
    return "\n".join(lines)


def grounding_prompt(query: str, duration_s: float | None) -> str:
    head = f"The video lasts {duration_s:.1f} seconds. " if duration_s else ""
    return (f"{head}Give the start and end time (in seconds) of the event: \"{query}\". "
            "Answer in the form 'start - end seconds'.")


@renamed_kwargs({"video": "path"})
def answer(model: Model, processor: Processor, path: str | os.PathLike[str] | None,
           question: str, *, options: Sequence[str] | None = None,
           frames: np.ndarray | Sequence[np.ndarray] | None = None,
           timestamps_s: Sequence[float] | None = None,
           frame_indices: Sequence[int] | None = None, method: str | None = None,
           budget: int | None = None, embedder: Any = None,
           method_options: Mapping[str, Any] | None = None, max_new_tokens: int = 64,
           min_pixels: int | None = None, max_pixels: int | None = None,
           selector: Selector | None = None, k: int | None = None,
           codec_budget: int | None = None, **generate_kwargs: Any) -> AnswerResult:
    """Answer a question about a video (open-ended, or multiple choice with ``options``).

    Args:
        path: the video file (``video=`` before 0.2, deprecated); None with explicit frames.
        method, budget, embedder, method_options: what the model sees (see
            :func:`gather_visual`; default 8 uniform frames), in the model's geometry.
        min_pixels, max_pixels: override the processor's per-frame resize limits.
        selector, k, codec_budget: deprecated forms of ``method=`` / ``budget=``.
        **generate_kwargs: passed to the model's ``generate``.

    Returns:
        the generated text and, for multiple choice, the extracted letter (None if unreadable).
    """
    _check_max_new_tokens(max_new_tokens)
    if options is not None and not 1 <= len(options) <= len(LETTERS):
        raise InvalidArgumentError(f"options must hold 1..26 entries, got {len(options)}")
    sample = gather_visual(path, question, frames=frames, timestamps_s=timestamps_s,
                           frame_indices=frame_indices, method=method, budget=budget,
                           embedder=embedder, method_options=method_options,
                           processor=processor, min_pixels=min_pixels, max_pixels=max_pixels,
                           selector=selector, k=k, codec_budget=codec_budget)
    text = question if options is None else mcq_prompt(question, options)
    inputs = _process(processor, sample, text, min_pixels=min_pixels, max_pixels=max_pixels)
    out = _generate(model, processor, inputs, max_new_tokens, **generate_kwargs)
    choice = None if options is None else extract_choice(out, len(options), options)
    return AnswerResult(text=out, choice=choice, budget=inputs.budget,
                        timestamps_s=inputs.timestamps_s)


@renamed_kwargs({"video": "path"})
def ground(model: Model, processor: Processor, path: str | os.PathLike[str] | None,
           query: str, *, frames: np.ndarray | Sequence[np.ndarray] | None = None,
           timestamps_s: Sequence[float] | None = None,
           frame_indices: Sequence[int] | None = None, duration_s: float | None = None,
           method: str | None = None, budget: int | None = None, embedder: Any = None,
           method_options: Mapping[str, Any] | None = None, max_new_tokens: int = 32,
           min_pixels: int | None = None, max_pixels: int | None = None,
           selector: Selector | None = None, k: int | None = None,
           codec_budget: int | None = None, **generate_kwargs: Any) -> GroundingResult:
    """Temporal grounding: when does ``query`` happen? Returns (start_s, end_s) and the text.

    Arguments as :func:`answer`. The span is parsed with
    :func:`ovis_model.parsing.parse_time_span` and clipped to the video's duration; (None, None)
    when the answer holds no span.
    """
    _check_max_new_tokens(max_new_tokens)
    sample = gather_visual(path, query, frames=frames, timestamps_s=timestamps_s,
                           frame_indices=frame_indices, method=method, budget=budget,
                           embedder=embedder, method_options=method_options,
                           processor=processor, min_pixels=min_pixels, max_pixels=max_pixels,
                           selector=selector, k=k, codec_budget=codec_budget)
    duration = duration_s if duration_s is not None else sample.duration_s
    inputs = _process(processor, sample, grounding_prompt(query, duration),
                      min_pixels=min_pixels, max_pixels=max_pixels)
    out = _generate(model, processor, inputs, max_new_tokens, **generate_kwargs)
    span = parse_time_span(out, duration=duration)
    return GroundingResult(start_s=None if span is None else span[0],
                           end_s=None if span is None else span[1], text=out,
                           budget=inputs.budget, timestamps_s=inputs.timestamps_s)
