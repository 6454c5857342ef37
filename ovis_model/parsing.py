"""Robust parsers for model answers: time spans for grounding, option letters for MCQ."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["extract_choice", "parse_time_span"]

_NUM = r"(\d+(?:\.\d+)?)"
_CLOCK = r"((?:\d{1,2}:)?\d{1,2}:\d{2}(?:\.\d+)?)"
_UNIT = r"\s*(?:s|sec|secs|second|seconds)?\.?"
_SEP = r"\s*(?:-|–|—|~|to|and|until|till)\s*"
_CLOCK_RE = re.compile(r"(?<![\d:.])" + _CLOCK)
_NUM_RANGE = re.compile(_NUM + _UNIT + _SEP + _NUM)
_ANY_NUM = re.compile(_NUM)


def _clock_seconds(text: str) -> float:
    parts = [float(p) for p in text.split(":")]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def parse_time_span(text: str, *, duration: float | None = None
                    ) -> tuple[float, float] | None:
    """Parse ``(start_s, end_s)`` from free text, or None when no span can be read.

    Tried in order: the first two clock times (``00:01:05 - 00:01:12``, ``1:05 to 1:12``); two numbers
    joined by ``-``, ``to``, ``and`` ... (``12.3 - 15.0 seconds``, ``from 3 to 7``,
    ``between 2s and 5s``); the first two numbers anywhere. Swapped ends are put in order; with
    ``duration`` the span is clipped to ``[0, duration]``.
    """
    span: tuple[float, float] | None = None
    clocks = _CLOCK_RE.findall(text)
    if len(clocks) >= 2:
        span = (_clock_seconds(clocks[0]), _clock_seconds(clocks[1]))
    else:
        m = _NUM_RANGE.search(text)
        if m:
            span = (float(m.group(1)), float(m.group(2)))
        else:
            nums = _ANY_NUM.findall(text)
            if len(nums) >= 2:
                span = (float(nums[0]), float(nums[1]))
    if span is None:
        return None
    start, end = span
    if end < start:
        start, end = end, start
    if duration is not None:
        start = min(max(start, 0.0), duration)
        end = min(max(end, 0.0), duration)
    return start, end


def extract_choice(text: str, num_options: int | None = None,
                   options: Sequence[str] | None = None) -> str | None:
    """The option letter a free-text answer picks (``"B"``), or None.

    Accepts ``"B"``, ``"(B)"``, ``"B. a dog"``, ``"The answer is B"``, ``"Answer: (b)"``; falls
    back to the unique option whose text appears in the answer.
    """
    n = num_options if num_options is not None else (len(options) if options else 26)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:n]
    if not letters:
        return None
    stripped = text.strip()
    cls = f"[{letters}{letters.lower()}]"
    patterns = [
        rf"(?:answer|option|choice)\s*(?:is|:)?\s*[\(\[]?({cls})[\)\]]?(?![A-Za-z])",
        rf"^[\(\[]?([{letters}])[\)\]\.:,]?(?![A-Za-z])",
        rf"[\(\[]([{letters}])[\)\]]",
        rf"(?<![A-Za-z])([{letters}])(?:[\.\):]|$)(?![A-Za-z])",
    ]
    for pat in patterns:
        m = re.search(pat, stripped, flags=re.IGNORECASE if "answer" in pat else 0)
        if m:
            return m.group(1).upper()
    if options:
        low = stripped.lower()
        hits = [i for i, o in enumerate(options) if o and o.lower() in low]
        if len(hits) == 1:
            return letters[hits[0]]
    return None
