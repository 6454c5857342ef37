"""The text asked with each item: one template per task, subtitles that follow the frames.

The answerer adds the visual input (and its time markers) the model's own way; the prompt
carries the question, the options, the answer format and, when asked for, the subtitle lines
shown at the *selected* timestamps (lmms-eval's Video-MME task picks them at uniform indices
whatever frames the model saw).
"""

from __future__ import annotations

from collections.abc import Sequence

from ._types import LETTERS, EvalItem

__all__ = ["PROMPT_VERSION", "build_prompt"]

#: Changes whenever a template changes (it is part of every record's key).
PROMPT_VERSION = 1

MCQ_INSTRUCTION = "Answer with the option's letter from the given choices directly."
SUBTITLE_HEAD = "This video's subtitles at the moments shown:"


def _duration_head(duration_s: float | None) -> str:
    return f"The video lasts {duration_s:.1f} seconds. " if duration_s else ""


def build_prompt(item: EvalItem, *, duration_s: float | None = None,
                 subtitles: Sequence[str] = ()) -> str:
    """The user text for ``item``.

    Args:
        item: the question.
        duration_s: the video's duration (grounding / highlights state it, so the model's
            seconds have a scale); default ``item.duration_s``.
        subtitles: subtitle lines to show before the question (in time order).

    Example:
        >>> from vidsel.eval import EvalItem
        >>> print(build_prompt(EvalItem("q1", "jsonl", "a.mp4", "What moves?", "mcq",
        ...                             options=("a box", "a cat"), answer="A")))
        What moves?
        Options:
        A. a box
        B. a cat
        Answer with the option's letter from the given choices directly.
    """
    duration = item.duration_s if duration_s is None else duration_s
    parts: list[str] = []
    if subtitles:
        parts.append(SUBTITLE_HEAD + "\n" + "\n".join(subtitles))
    if item.task == "mcq":
        lines = [item.question, "Options:"]
        lines += [f"{LETTERS[i]}. {opt}" for i, opt in enumerate(item.options)]
        lines.append(MCQ_INSTRUCTION)
        parts.append("\n".join(lines))
    elif item.task == "grounding":
        parts.append(f"{_duration_head(duration)}Give the start and end time (in seconds) of "
                     f"the event: \"{item.question}\". Answer in the form 'start - end "
                     f"seconds'.")
    elif item.task == "highlights":
        parts.append(f"{_duration_head(duration)}List the time windows (in seconds) where "
                     f"this happens: \"{item.question}\". Answer with windows in the form "
                     f"'start - end seconds', separated by ';', the most relevant first.")
    else:
        parts.append(item.question)
    return "\n\n".join(parts)
