"""End-to-end tasks on a video: question answering and temporal grounding.

Both take a video path plus either explicit frames, a frame selector (a vidsel method name or a
callable) or a codec budget, build a time-tagged prompt and generate. vidsel is imported lazily
inside the functions so the model core never depends on the reader.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vidsel.errors import InvalidArgumentError

from .modeling import OvisModel
from .parsing import extract_choice, parse_time_span
from .processor import OvisProcessor, ProcessorOutput, TokenBudget

__all__ = [
    "AnswerResult",
    "GroundingResult",
    "VisualSample",
    "answer",
    "gather_visual",
    "ground",
]

logger = logging.getLogger(__name__)

Selector = str | Callable[..., Any]
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class VisualSample:
    """What the model will see from a video: frames + times, or a codec sample.

    Attributes:
        frames: uint8 ``(T, H, W, 3)`` or None (codec).
        timestamps_s: time of each frame (frames mode).
        frame_indices: source frame index of each frame (frames mode).
        codec: the codec sample (codec mode).
        duration_s: video length when known.
    """

    frames: np.ndarray | None = None
    timestamps_s: list[float] | None = None
    frame_indices: list[int] | None = None
    codec: Any = None
    duration_s: float | None = None


@dataclass
class AnswerResult:
    text: str
    choice: str | None
    budget: TokenBudget
    frame_times_s: list[float | None]


@dataclass
class GroundingResult:
    start_s: float | None
    end_s: float | None
    text: str
    budget: TokenBudget
    frame_times_s: list[float | None]

    @property
    def span(self) -> tuple[float, float] | None:
        if self.start_s is None or self.end_s is None:
            return None
        return (self.start_s, self.end_s)


def gather_visual(video: str | os.PathLike[str] | None, question: str, *,
                  frames: np.ndarray | Sequence[np.ndarray] | None = None,
                  timestamps_s: Sequence[float] | None = None,
                  frame_indices: Sequence[int] | None = None,
                  selector: Selector = "uniform", k: int = 8,
                  codec_budget: int | None = None, patch_size: int = 16,
                  merge: int = 2) -> VisualSample:
    """Decide what the model sees.

    Precedence: explicit ``frames`` (+ ``timestamps_s``) > ``codec_budget`` (frame-equivalents,
    via ``vidsel.codec.select_patches``) > ``selector``: ``"uniform"`` (``VideoReader``
    uniform sampling), any other name (``vidsel.select_frames(video, question, k=k,
    method=name)``) or a callable ``selector(video, question, k)`` returning an object with
    ``.indices`` and ``.timestamps_s`` (and optionally ``.frames()``).
    """
    if frames is not None:
        arr = np.asarray(frames)
        if timestamps_s is None:
            raise InvalidArgumentError("explicit frames need timestamps_s")
        return VisualSample(frames=arr, timestamps_s=[float(t) for t in timestamps_s],
                            frame_indices=None if frame_indices is None else
                            [int(i) for i in frame_indices])
    if video is None:
        raise InvalidArgumentError("give a video path or explicit frames")
    if k < 1:
        raise InvalidArgumentError(f"k={k} must be >= 1")
    from vidsel import VideoReader

    path = os.fspath(video)
    with VideoReader(path) as reader:
        duration = float(reader.metadata.duration_s)
        if codec_budget is not None:
            from vidsel.codec import select_patches  # type: ignore[attr-defined]

            sample = select_patches(path, budget_frames=codec_budget, patch_size=patch_size,
                                    merge=merge)
            return VisualSample(codec=sample, duration_s=duration)
        if isinstance(selector, str) and selector == "uniform":
            batch = reader.sample_uniform(k)
            return VisualSample(frames=np.asarray(batch.frames),
                                timestamps_s=[float(t) for t in batch.timestamps_s],
                                frame_indices=[int(i) for i in batch.indices],
                                duration_s=duration)
        if isinstance(selector, str):
            import vidsel

            select_frames = getattr(vidsel, "select_frames", None)
            if select_frames is None:
                raise InvalidArgumentError(
                    f"selector={selector!r} needs vidsel.select_frames, which this vidsel "
                    "build does not provide; use selector='uniform' or a callable")
            sel = select_frames(path, question, k=k, method=selector)
        elif callable(selector):
            sel = selector(path, question, k)
        else:
            raise InvalidArgumentError(
                f"selector={selector!r} must be a method name or a callable")
        indices = [int(i) for i in np.asarray(sel.indices)]
        got = sel.frames() if callable(getattr(sel, "frames", None)) else None
        arr = np.asarray(got) if got is not None else reader.get_frames(indices)
        return VisualSample(frames=arr, timestamps_s=[float(t) for t in sel.timestamps_s],
                            frame_indices=indices, duration_s=duration)


def _process(processor: OvisProcessor, sample: VisualSample, text: str,
             **kwargs: Any) -> ProcessorOutput:
    if sample.codec is not None:
        return processor(text, codec=sample.codec, **kwargs)
    return processor(text, video=sample.frames, timestamps_s=sample.timestamps_s,
                     frame_indices=sample.frame_indices, **kwargs)


def _generate(model: OvisModel, processor: OvisProcessor, inputs: ProcessorOutput,
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


def answer(model: OvisModel, processor: OvisProcessor, video: str | os.PathLike[str] | None,
           question: str, *, options: Sequence[str] | None = None,
           frames: np.ndarray | Sequence[np.ndarray] | None = None,
           timestamps_s: Sequence[float] | None = None,
           frame_indices: Sequence[int] | None = None, selector: Selector = "uniform",
           k: int = 8, codec_budget: int | None = None, max_new_tokens: int = 64,
           min_pixels: int | None = None, max_pixels: int | None = None,
           **generate_kwargs: Any) -> AnswerResult:
    """Answer a question about a video (open-ended, or multiple choice with ``options``).

    Returns:
        the generated text and, for multiple choice, the extracted letter (None if unreadable).
    """
    if options is not None and not 1 <= len(options) <= len(LETTERS):
        raise InvalidArgumentError(f"options must hold 1..26 entries, got {len(options)}")
    vit = processor.vit_config
    sample = gather_visual(video, question, frames=frames, timestamps_s=timestamps_s,
                           frame_indices=frame_indices, selector=selector, k=k,
                           codec_budget=codec_budget, patch_size=vit.patch_size,
                           merge=vit.hidden_stride)
    text = question if options is None else mcq_prompt(question, options)
    inputs = _process(processor, sample, text, min_pixels=min_pixels, max_pixels=max_pixels)
    out = _generate(model, processor, inputs, max_new_tokens, **generate_kwargs)
    choice = None if options is None else extract_choice(out, len(options), options)
    return AnswerResult(text=out, choice=choice, budget=inputs.budget,
                        frame_times_s=inputs.frame_times_s)


def ground(model: OvisModel, processor: OvisProcessor, video: str | os.PathLike[str] | None,
           query: str, *, frames: np.ndarray | Sequence[np.ndarray] | None = None,
           timestamps_s: Sequence[float] | None = None,
           frame_indices: Sequence[int] | None = None, duration_s: float | None = None,
           selector: Selector = "uniform", k: int = 8, codec_budget: int | None = None,
           max_new_tokens: int = 32, min_pixels: int | None = None,
           max_pixels: int | None = None, **generate_kwargs: Any) -> GroundingResult:
    """Temporal grounding: when does ``query`` happen? Returns (start_s, end_s) and the text.

    The span is parsed with :func:`ovis_model.parsing.parse_time_span` and clipped to the
    video's duration; (None, None) when the answer holds no span.
    """
    vit = processor.vit_config
    sample = gather_visual(video, query, frames=frames, timestamps_s=timestamps_s,
                           frame_indices=frame_indices, selector=selector, k=k,
                           codec_budget=codec_budget, patch_size=vit.patch_size,
                           merge=vit.hidden_stride)
    duration = duration_s if duration_s is not None else sample.duration_s
    inputs = _process(processor, sample, grounding_prompt(query, duration),
                      min_pixels=min_pixels, max_pixels=max_pixels)
    out = _generate(model, processor, inputs, max_new_tokens, **generate_kwargs)
    span = parse_time_span(out, duration=duration)
    return GroundingResult(start_s=None if span is None else span[0],
                           end_s=None if span is None else span[1], text=out,
                           budget=inputs.budget, frame_times_s=inputs.frame_times_s)
