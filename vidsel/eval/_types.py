"""The vocabulary of an evaluation: what is asked (:class:`EvalItem`), what the model sees
(:class:`VisualInput`), what it is asked to do (:class:`Request`) and what it says
(:class:`Generation`).

Shapes: frames are (T, H, W, 3) uint8 RGB at the model's frame size (the geometry's
``frame_size``); ``timestamps_s`` and ``frame_indices`` are (T,) in the source video's terms
(presentation time in seconds on the stream timeline, frame index in presentation order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from .._json import json_safe
from ..errors import InvalidArgumentError
from ..results import PatchSelection, VisualSelection

__all__ = ["LETTERS", "SCHEMA", "TASKS", "EvalItem", "Generation", "Request", "TaskKind",
           "VisualInput"]

#: What an item asks for: ``mcq`` (an option letter), ``grounding`` (one time span),
#: ``highlights`` (the spans where the query holds, QVHighlights), ``open`` (free text).
TaskKind = Literal["mcq", "grounding", "highlights", "open"]
TASKS: tuple[str, ...] = ("mcq", "grounding", "highlights", "open")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: The schema of the records :func:`vidsel.eval.run_eval` writes and the report reads.
SCHEMA = "vidsel.eval/1"


@dataclass(frozen=True)
class EvalItem:
    """One question about one video, in every benchmark's terms.

    Attributes:
        item_id: unique within its dataset (the benchmark's own question id where it has one).
        dataset: the loader that read it (``"videomme"``, ``"charades-sta"``, ``"jsonl"``...).
        video: path of the video file (resolved against the videos folder; may not exist:
            a missing video is a failure record of that item, not an error of the loader).
        question: the question (mcq, open) or the query sentence (grounding, highlights).
        task: a :data:`TaskKind`.
        options: mcq option texts, without their letters (``"A. "`` prefixes are removed by
            the loaders), in letter order.
        answer: mcq: the correct letter (``"A"``...); open: the reference text; else None.
        spans_s: grounding / highlights ground truth windows ``((start_s, end_s), ...)``.
        duration_s: the video's length as the annotation states it (None: unknown).
        subtitles: path of an ``.srt`` file for the video (None: none).
        subtitle_offset_s: seconds to add to the subtitle times to reach video time
            (LongVideoBench's ``starting_timestamp_for_subtitles`` is its negation).
        meta: JSON-safe extras the report can group by (``duration`` split, category...).
    """

    item_id: str
    dataset: str
    video: str
    question: str
    task: TaskKind
    options: tuple[str, ...] = ()
    answer: str | None = None
    spans_s: tuple[tuple[float, float], ...] = ()
    duration_s: float | None = None
    subtitles: str | None = None
    subtitle_offset_s: float = 0.0
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InvalidArgumentError(f"task={self.task!r} must be one of {', '.join(TASKS)}")
        for name in ("item_id", "dataset", "video", "question"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise InvalidArgumentError(f"EvalItem.{name} must be a non-empty string, got "
                                           f"{getattr(self, name)!r}")
        options = tuple(str(o) for o in self.options)
        if self.task == "mcq":
            if not 2 <= len(options) <= len(LETTERS):
                raise InvalidArgumentError(
                    f"item {self.item_id!r}: a multiple-choice item needs 2..26 options, got "
                    f"{len(options)}")
            if self.answer is not None and self.answer not in LETTERS[:len(options)]:
                raise InvalidArgumentError(
                    f"item {self.item_id!r}: answer={self.answer!r} is not one of the option "
                    f"letters {LETTERS[:len(options)]}")
        spans = []
        for span in self.spans_s:
            try:
                s, e = (float(v) for v in span)
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"item {self.item_id!r}: span {span!r} is not "
                                           f"(start_s, end_s)") from None
            if not (math.isfinite(s) and math.isfinite(e)) or e < s:
                raise InvalidArgumentError(f"item {self.item_id!r}: span {span!r} must be "
                                           f"finite with start <= end")
            spans.append((s, e))
        # items without ground truth (no answer, no spans) are allowed: answered, not scored
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "spans_s", tuple(spans))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    @property
    def letters(self) -> str:
        """The option letters of an mcq item (``"ABCD"``)."""
        return LETTERS[:len(self.options)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; :meth:`from_dict` gives back an equal item."""
        return json_safe({
            "item_id": self.item_id, "dataset": self.dataset, "video": self.video,
            "question": self.question, "task": self.task, "options": list(self.options),
            "answer": self.answer, "spans_s": [list(s) for s in self.spans_s],
            "duration_s": self.duration_s, "subtitles": self.subtitles,
            "subtitle_offset_s": self.subtitle_offset_s, "meta": dict(self.meta)})

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickles through :meth:`to_dict` (``meta`` is a read-only proxy)."""
        return (type(self).from_dict, (self.to_dict(),))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalItem:
        return cls(item_id=str(d["item_id"]), dataset=str(d["dataset"]), video=str(d["video"]),
                   question=str(d["question"]), task=d["task"],
                   options=tuple(d.get("options") or ()), answer=d.get("answer"),
                   spans_s=tuple(tuple(s) for s in d.get("spans_s") or ()),
                   duration_s=d.get("duration_s"), subtitles=d.get("subtitles"),
                   subtitle_offset_s=float(d.get("subtitle_offset_s") or 0.0),
                   meta=d.get("meta") or {})


@dataclass(frozen=True, eq=False)
class VisualInput:
    """What a model sees of a video: frames with their true times, or codec patches.

    Attributes:
        kind: ``"frames"`` or ``"patches"``.
        path: the video file.
        selection: the :class:`~vidsel.results.VisualSelection` it came from (a
            ``Selection`` or a ``PatchSelection``).
        frames: frames mode: (T, H, W, 3) uint8 RGB at the model's frame size; None for
            patches.
        timestamps_s: frames mode: (T,) float64 presentation time of each frame; patches
            mode: (S,) time of each source frame that contributes patches.
        frame_indices: (T,) / (S,) int64 source frame index of each of those.
        source_fps: the video's average frame rate (what makes ``frame_indices / fps`` real
            times for models that compute time markers themselves).
        num_frames: frames in the whole video.
        duration_s: the video's duration in seconds.
        patches: patches mode: the ``PatchSelection`` with ``pixels``; None for frames.
    """

    kind: Literal["frames", "patches"]
    path: str
    selection: VisualSelection
    timestamps_s: np.ndarray
    frame_indices: np.ndarray
    source_fps: float
    num_frames: int
    duration_s: float
    frames: np.ndarray | None = None
    patches: PatchSelection | None = None

    def __post_init__(self) -> None:
        if self.kind == "frames":
            if self.frames is None or np.asarray(self.frames).ndim != 4:
                raise InvalidArgumentError("a frames VisualInput needs frames (T, H, W, 3)")
            if len(self.frames) != len(self.timestamps_s):
                raise InvalidArgumentError(
                    f"{len(self.frames)} frames but {len(self.timestamps_s)} timestamps")
        elif self.kind == "patches":
            if self.patches is None or self.patches.pixels is None:
                raise InvalidArgumentError("a patches VisualInput needs a PatchSelection with "
                                           "pixels")
        else:
            raise InvalidArgumentError(f"kind={self.kind!r} must be 'frames' or 'patches'")

    @property
    def num_tokens(self) -> int | None:
        """Visual tokens of the selection in the geometry it was made for."""
        return self.selection.num_tokens

    def __repr__(self) -> str:
        shape = (tuple(self.frames.shape) if self.frames is not None else
                 f"{self.patches.num_patches if self.patches is not None else 0} patches")
        return (f"VisualInput(kind={self.kind!r}, {shape}, method={self.selection.method!r}, "
                f"tokens={self.num_tokens})")


@dataclass(frozen=True, eq=False)
class Request:
    """One generation: a visual input and the text prompt about it.

    Attributes:
        visual: what the model sees.
        prompt: the user text (question, options, subtitles, answer format); the answerer
            adds the visual input (and its time markers) in the model's own way.
        max_new_tokens: generation length limit.
        item_id: the item it answers (for messages).
    """

    visual: VisualInput
    prompt: str
    max_new_tokens: int = 64
    item_id: str = ""


@dataclass(frozen=True)
class Generation:
    """What the model said.

    Attributes:
        text: the generated text (special tokens removed, stripped).
        visual_tokens: visual tokens the model's preprocessing actually spent (None: the
            backend cannot tell).
        prompt_tokens: all input tokens (None: unknown).
        notes: facts about how the input was adapted (``"padded 7 frames to 8: Qwen3-VL
            merges frames in pairs"``), recorded with the answer.
    """

    text: str
    visual_tokens: int | None = None
    prompt_tokens: int | None = None
    notes: tuple[str, ...] = ()

    @staticmethod
    def coerce(value: Any) -> Generation:
        """A :class:`Generation` from what a callable answerer returned (a string or one)."""
        if isinstance(value, Generation):
            return value
        if isinstance(value, str):
            return Generation(text=value)
        raise InvalidArgumentError(f"an answerer returned {type(value).__name__}; expected a "
                                   f"string or a vidsel.eval.Generation")

