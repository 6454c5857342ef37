"""Read answers out of free text: the option letter of a multiple-choice answer, the time span
of a grounding answer, the ranked windows of a highlights answer.

Models answer in many shapes ("B", "(B) a dog", "The answer is **B**.", "Answer: b",
"from 1:05 to 1:12", "3.5s-7s", "[12.0, 15.5]", "<think>...</think> C"); these parsers accept
them all and return None (or an empty list) rather than guess when nothing fits.

Time values: plain numbers are seconds (``12``, ``12.5s``, ``12.5 seconds``); a ``min`` /
``minutes`` unit multiplies by 60; clock times ``m:ss`` and ``h:mm:ss`` (``1:05``,
``00:01:05.5``) are read as such. Two values form a span when only a separator stands between
them: ``-``, ``–``, ``~``, ``,``, ``to``, ``and``, ``until``, ``till``, ``through``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ._types import LETTERS

__all__ = ["extract_choice", "parse_spans", "parse_time_span"]

Span = tuple[float, float]

# ---------------------------------------------------------------------------------------------
# time spans

_UNIT_SCALE = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
               "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0}
# A clock time (h:mm:ss, m:ss, with optional fraction) or a plain number, not glued to a word
# ("qwen2", "mp4") or to another number; then an optional unit.
_TIME_RE = re.compile(
    r"(?<![\w.:])(?P<value>(?:\d{1,2}:)?\d{1,2}:\d{2}(?:\.\d+)?|\d+(?:\.\d+)?)(?![\d:])"
    r"(?:\s*(?P<unit>seconds?|secs?|s|minutes?|mins?)\b)?", re.IGNORECASE)
# What may stand between the two ends of one span.
_SEP_RE = re.compile(
    r"\s*,?\s*(?:-|–|—|~|,|\bto\b|\band\b|\buntil\b|\btill\b|\bthrough\b)\s*", re.IGNORECASE)
_THINK_RE = re.compile(r"<think>.*?(?:</think>|$)", re.IGNORECASE | re.DOTALL)
_TAG_RE = re.compile(r"</?[A-Za-z_][\w\-]*\s*/?>")


@dataclass(frozen=True)
class _Time:
    start: int  # character offsets in the text
    end: int
    seconds: float
    clock: bool


def _strip_reasoning(text: str) -> str:
    """The text without ``<think>...</think>`` blocks, tags replaced by spaces."""
    return _TAG_RE.sub(" ", _THINK_RE.sub(" ", text))


def _times(text: str) -> list[_Time]:
    out = []
    for m in _TIME_RE.finditer(text):
        value = m.group("value")
        if ":" in value:
            seconds = 0.0
            for part in value.split(":"):
                seconds = seconds * 60 + float(part)
            out.append(_Time(m.start(), m.end(), seconds, True))
        else:
            unit = (m.group("unit") or "s").lower()
            out.append(_Time(m.start(), m.end(), float(value) * _UNIT_SCALE[unit], False))
    return out


def _joined(text: str, a: _Time, b: _Time) -> bool:
    """Only a separator stands between the two values."""
    return _SEP_RE.fullmatch(text, a.end, b.start) is not None


def _finish(span: Span, duration: float | None) -> Span:
    start, end = span
    if end < start:
        start, end = end, start
    if duration is not None:
        start = min(max(start, 0.0), float(duration))
        end = min(max(end, 0.0), float(duration))
    return start, end


def parse_time_span(text: str, *, duration: float | None = None) -> Span | None:
    """Parse ``(start_s, end_s)`` from free text, or None when no span can be read.

    Tried in order: the first two time values joined by a separator (``12.3 - 15.0 seconds``,
    ``from 1:05 to 1:12``, ``3.5s-7s``, ``[12.0, 15.5]``, ``between 2s and 5s``); the first two
    clock times anywhere (``starts at 1:05 and ends at 1:12``); the first two numbers anywhere.
    Swapped ends are put in order; with ``duration`` the span is clipped to
    ``[0, duration]``. ``<think>`` blocks are ignored.

    Example:
        >>> parse_time_span("The event happens from 1:05 to 72 seconds.")
        (65.0, 72.0)
    """
    text = _strip_reasoning(text)
    times = _times(text)
    for a, b in itertools.pairwise(times):
        if _joined(text, a, b):
            return _finish((a.seconds, b.seconds), duration)
    clocks = [t for t in times if t.clock]
    if len(clocks) >= 2:
        return _finish((clocks[0].seconds, clocks[1].seconds), duration)
    if len(times) >= 2:
        return _finish((times[0].seconds, times[1].seconds), duration)
    return None


def parse_spans(text: str, duration: float | None = None) -> list[Span]:
    """Every time span the text gives, in the order it gives them (a ranked list of windows,
    as QVHighlights predictions are).

    Spans are pairs of time values joined by a separator (see :func:`parse_time_span`), read
    left to right without reusing a value: ``"[[2, 6], [10, 14]]"`` and ``"0:02-0:06,
    0:10-0:14"`` both give ``[(2.0, 6.0), (10.0, 14.0)]``. Text with no joined pair falls back
    to :func:`parse_time_span`'s single span. Exact repeats are dropped; ``duration`` clips, and
    a window wholly outside ``[0, duration]`` is dropped.

    Returns:
        ``[(start_s, end_s), ...]``; empty when no span can be read.
    """
    text = _strip_reasoning(text)
    times = _times(text)
    spans: list[Span] = []
    i = 0
    while i + 1 < len(times):
        if _joined(text, times[i], times[i + 1]):
            raw = _finish((times[i].seconds, times[i + 1].seconds), None)
            span = _finish(raw, duration)
            outside = span[0] == span[1] and raw[0] != raw[1]  # wholly past the end
            if span not in spans and not outside:
                spans.append(span)
            i += 2
        else:
            i += 1
    if not spans:
        one = parse_time_span(text, duration=duration)
        return [one] if one is not None else []
    return spans


# ---------------------------------------------------------------------------------------------
# option letters

_MARKDOWN_RE = re.compile(r"\*\*|__|`")
_WORDS_RE = re.compile(r"[^a-z0-9]+")


def _norm(text: str) -> str:
    """Lower case, punctuation as spaces, single spaces."""
    return " ".join(_WORDS_RE.sub(" ", text.lower()).split())


# What may precede the letter: "The answer is (C)", "Answer: b", "best option = B".
_VERB = r"(?:\s+(?:is|would\s+be|should\s+be|will\s+be))?"
_ANSWER_KEY = r"(?i:\banswer\b" + _VERB + r")\s*[:=\-]?\s*"
_OPTION_KEY = r"(?i:\b(?:option|choice)\b" + _VERB + r")\s*[:=\-]?\s*"
# After a letter that stands alone: the end, punctuation, a line break, a dash.
_ALONE = r"(?=\s*$|\s*[\n.,;:!?)\]]|\s+[-–—])"


def _letter_patterns(letters: str) -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, use the last match) in the order tried; the letter is the group that
    matched."""
    up = f"[{letters}]"
    any_case = f"[{letters}{letters.lower()}]"
    # "(c)", "b." / "b" at the end (lower case only where it cannot be the article),
    # "C because ..."
    after_key = (r"(?:[\(\[](" + any_case + r")[\)\]]|(" + any_case + r")" + _ALONE
                 + r"|(" + up + r")(?![\w'’]))")
    return [
        # the last "answer is X": reasoning that ends with its conclusion
        (re.compile(_ANSWER_KEY + after_key), True),
        (re.compile(_OPTION_KEY + after_key), False),          # "I think it is option B"
        (re.compile(r"^[\(\[](" + any_case + r")[\)\]]"), False),  # "(C) a cat"
        # "C) a cat", "B. a dog", "b"
        (re.compile(r"^(" + any_case + r")(?:[\)\]]|" + _ALONE + ")"), False),
        (re.compile(r"[\(\[](" + any_case + r")[\)\]]"), False),    # "... (C) ..."
        (re.compile(r"(?<![\w'’])(" + up + r")" + _ALONE), False),    # "... it is C."
    ]


def extract_choice(text: str, num_options: int | None = None,
                   options: Sequence[str] | None = None) -> str | None:
    """The option letter a free-text answer picks (``"B"``), or None.

    Accepts ``"B"``, ``"(B)"``, ``"B. a dog"``, ``"C) a cat"``, ``"**B**"``, ``"Answer: b"``,
    ``"The answer is (C)."``, ``"I think it is option B"``, ``"<think>...</think>D"``; where
    the text states "answer ..." several times (reasoning, then a conclusion), the last one
    counts. Then
    falls back to the option whose text the answer contains (the longest one when one option's
    text holds another's, e.g. "a red car" over "a car"), and last to a single capital letter
    standing alone as a word. Lower-case letters count only where they cannot be the article
    "a" (``"Answer: a"`` does, ``"a dog"`` does not).

    Args:
        text: the model's answer.
        num_options: how many options there are (letters beyond are ignored); default
            ``len(options)``, else 26.
        options: the option texts (without letters), for the text fallback.

    Example:
        >>> extract_choice("The answer is **(c)**.", 4)
        'C'
    """
    n = num_options if num_options is not None else (len(options) if options else 26)
    letters = LETTERS[:max(0, min(n, len(LETTERS)))]
    if not letters:
        return None
    body = _MARKDOWN_RE.sub("", _strip_reasoning(text)).strip()
    for pattern, last in _letter_patterns(letters):
        found = list(pattern.finditer(body)) if last else [pattern.search(body)]
        if found and found[-1] is not None:
            return next(g for g in found[-1].groups() if g).upper()
    if options:
        said = f" {_norm(body)} "
        hits = [i for i, o in enumerate(options[:len(letters)])
                if _norm(o) and f" {_norm(o)} " in said]
        if hits:
            longest = max(hits, key=lambda i: len(_norm(options[i])))
            if all(_norm(options[i]) in _norm(options[longest]) for i in hits):
                return letters[longest]
    # a single capital letter used as a word ("I'd pick B because ..."), not the words I / A
    words = {m.group(1) for m in re.finditer(r"(?<![\w'’])([" + letters + r"])(?![\w'’])",
                                             body)
             if not (m.group(1) in "AI" and re.match(r"\s+[a-z]", body[m.end():]))}
    if len(words) == 1:
        return words.pop()
    return None
