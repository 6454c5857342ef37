"""Subtitles: read ``.srt`` / ``.vtt`` / LongVideoBench JSON files and pick the lines shown at
given times, so that the subtitles a model reads follow the frames it was given.

A subtitle line is a :class:`Subtitle` ``(start_s, end_s, text)`` on the subtitle file's own
clock; ``offset_s`` (an item's ``subtitle_offset_s``) is added to reach video time. A line is
*shown* at video time ``t`` when ``start_s + offset_s <= t < end_s + offset_s`` (a zero-length
line only at ``t == start_s + offset_s``).

Example:
    >>> subs = [Subtitle(0.0, 2.0, "hello"), Subtitle(5.0, 6.0, "bye")]
    >>> subtitles_at(subs, [0.5, 1.5, 3.0, 5.5])
    ['hello', 'bye']
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["Subtitle", "load_subtitles", "parse_srt", "subtitles_at"]

logger = logging.getLogger(__name__)

# ``[HH:]MM:SS[,.]mmm`` (hours optional as in WebVTT; 1-3 fraction digits, "," or ".")
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[,.:](\d{1,3}))?"
_TIME_LINE = re.compile(rf"^\s*{_TIME}\s*-{{1,2}}>\s*{_TIME}(?:\s.*)?$")
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")  # HTML-like tags, ASS override codes {\an8}
_SPACE = re.compile(r"\s+")
_VTT_BLOCKS = ("WEBVTT", "NOTE", "STYLE", "REGION")


@dataclass(frozen=True)
class Subtitle:
    """One subtitle line.

    Attributes:
        start_s: when it appears, seconds on the subtitle file's clock.
        end_s: when it disappears (``inf``: until the end of the video).
        text: the text, tags removed, lines joined with spaces.
    """

    start_s: float
    end_s: float
    text: str

    def __post_init__(self) -> None:
        start, end = float(self.start_s), float(self.end_s)
        if not math.isfinite(start) or math.isnan(end) or end < start:
            raise InvalidArgumentError(
                f"Subtitle({self.start_s!r}, {self.end_s!r}): start_s must be finite and "
                f"end_s >= start_s")
        object.__setattr__(self, "start_s", start)
        object.__setattr__(self, "end_s", end)
        object.__setattr__(self, "text", str(self.text))


def clean_text(text: str) -> str:
    """Subtitle text without tags (``<i>``, ``<font ...>``, ``{\\an8}``), entities unescaped,
    whitespace collapsed."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub("", text))).strip()


def _seconds(h: str | None, m: str, s: str, frac: str | None) -> float:
    return (int(h or 0) * 3600 + int(m) * 60 + int(s)
            + (int(frac.ljust(3, "0")) / 1000 if frac else 0.0))


def _read_text(path: Path) -> str:
    """A text file's content: UTF-8 (with or without BOM), else cp1252 with a warning."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InvalidArgumentError(f"cannot read subtitle file {path}: {e.strerror or e}") \
            from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        logger.warning("%s is not UTF-8; reading it as cp1252", path)
        return data.decode("cp1252", errors="replace")


def parse_srt(path: str | Path) -> list[Subtitle]:
    """Read a SubRip (``.srt``) file; WebVTT (``.vtt``) cues are read the same way.

    Tolerates what real files do: a byte-order mark, CRLF or CR line ends, missing or
    non-numeric cue numbers, ``,`` or ``.`` before the milliseconds (1-3 digits), hours
    omitted, positioning after the times, cues not separated by blank lines, blank lines
    inside a cue's text (SRT), tags (``<i>``, ``<font color=...>``, ``{\\an8}``) and HTML
    entities. Cues with no text are dropped; a cue ending before it starts is dropped with a
    warning naming its line.

    Args:
        path: the subtitle file.

    Returns:
        The lines in file order, sorted by start time (stable).

    Raises:
        InvalidArgumentError: the file cannot be read, or a line holding ``-->`` is not a
            readable time line (the message names ``file:line``).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"subtitle file {path} does not exist")
    lines = _read_text(path).splitlines()
    vtt = path.suffix.lower() == ".vtt" or (bool(lines) and
                                              lines[0].lstrip("\ufeff").startswith("WEBVTT"))
    times: list[tuple[int, float, float]] = []  # (line, start, end) per cue
    texts: list[list[str]] = []
    after_blank = True  # at the start or after a blank line
    in_cue = False
    skipping = False  # inside a VTT NOTE / STYLE / REGION block
    for i, raw in enumerate(lines):
        line = raw.strip().lstrip("\ufeff")
        if not line:
            after_blank, in_cue, skipping = True, False, False
            continue
        m = _TIME_LINE.match(line)
        if m is not None:
            g = m.groups()
            times.append((i + 1, _seconds(*g[:4]), _seconds(*g[4:])))
            texts.append([])
            in_cue, after_blank, skipping = True, False, False
            continue
        if "-->" in line and not in_cue:
            raise InvalidArgumentError(f"{path}:{i + 1}: cannot read the time line {line!r} "
                                       f"(expected 'HH:MM:SS,mmm --> HH:MM:SS,mmm')")
        next_is_time = i + 1 < len(lines) and _TIME_LINE.match(lines[i + 1].strip()) is not None
        if next_is_time and (line.isdigit() or after_blank):
            after_blank = False  # a cue number (or a VTT cue identifier): not text
            continue
        if vtt and after_blank and line.split(" ")[0] in _VTT_BLOCKS:
            skipping = True
        after_blank = False
        if skipping or not texts or (vtt and not in_cue):
            continue  # header, comment blocks, text before the first cue
        texts[-1].append(line)  # SRT: text after a blank line still belongs to the last cue
    subs: list[Subtitle] = []
    for (line_no, start, end), text in zip(times, texts):
        if end < start:
            logger.warning("%s:%d: subtitle ends (%.3fs) before it starts (%.3fs); dropped",
                           path, line_no, end, start)
            continue
        cleaned = clean_text(" ".join(text))
        if cleaned:
            subs.append(Subtitle(start, end, cleaned))
    subs.sort(key=lambda s: s.start_s)
    return subs


def _lvb_time(value: Any, where: str) -> float | None:
    """A LongVideoBench JSON time: seconds as a number, ``"HH:MM:SS.mmm"``, or None."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise InvalidArgumentError(f"{where}: time {value!r} is not finite")
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(_TIME, value.strip())
        if m:
            return _seconds(*m.groups())
    raise InvalidArgumentError(f"{where}: cannot read the time {value!r} (expected seconds or "
                               f"'HH:MM:SS.mmm')")


def _parse_json(path: Path) -> list[Subtitle]:
    """LongVideoBench's subtitle JSON: a list of ``{"start": "HH:MM:SS.mmm", "end": ...,
    "line": text}`` or ``{"timestamp": [start_s, end_s | null], "text": text}``. An open end
    runs to the next line's start (the last line: to the end of the video)."""
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise InvalidArgumentError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, list):
        raise InvalidArgumentError(f"{path}: expected a JSON list of subtitle lines, got "
                                   f"{type(data).__name__}")
    rows: list[tuple[float, float | None, str]] = []
    for k, entry in enumerate(data):
        where = f"{path}: line entry {k}"
        if not isinstance(entry, dict):
            raise InvalidArgumentError(f"{where}: expected an object, got {type(entry).__name__}")
        if "timestamp" in entry:
            ts = entry["timestamp"]
            if not isinstance(ts, (list, tuple)) or len(ts) != 2:
                raise InvalidArgumentError(f"{where}: timestamp {ts!r} is not [start, end]")
            start, end = _lvb_time(ts[0], where), _lvb_time(ts[1], where)
            text = entry.get("text", entry.get("line"))
        elif "start" in entry:
            start, end = _lvb_time(entry["start"], where), _lvb_time(entry.get("end"), where)
            text = entry.get("line", entry.get("text"))
        else:
            raise InvalidArgumentError(f"{where}: needs 'start'/'end'/'line' or "
                                       f"'timestamp'/'text'")
        if start is None:
            raise InvalidArgumentError(f"{where}: the line has no start time")
        if not isinstance(text, str):
            raise InvalidArgumentError(f"{where}: the line's text is {text!r}, not a string")
        rows.append((start, end, text))
    subs = []
    for k, (start, end, text) in enumerate(rows):
        if end is None:
            end = rows[k + 1][0] if k + 1 < len(rows) else math.inf
            end = max(end, start)
        if end < start:
            logger.warning("%s: line entry %d ends before it starts; dropped", path, k)
            continue
        cleaned = clean_text(text)
        if cleaned:
            subs.append(Subtitle(start, end, cleaned))
    subs.sort(key=lambda s: s.start_s)
    return subs


def load_subtitles(path: str | Path) -> list[Subtitle]:
    """Read a subtitle file by its suffix: ``.json`` (LongVideoBench), else SubRip / WebVTT
    (see :func:`parse_srt`).

    Raises:
        InvalidArgumentError: missing or unreadable file, malformed content (``file:line``).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"subtitle file {path} does not exist")
    if path.suffix.lower() == ".json":
        return _parse_json(path)
    return parse_srt(path)


def subtitles_at(subs: Sequence[Subtitle], timestamps_s: Any,
                 offset_s: float = 0.0) -> list[str]:
    """The subtitle lines shown at the given video times.

    Args:
        subs: the subtitle lines (:func:`load_subtitles`).
        timestamps_s: (T,) video times of the frames a model sees, seconds, any order.
        offset_s: seconds to add to subtitle times to reach video time (an item's
            ``subtitle_offset_s``).

    Returns:
        Each line shown at one or more of the times, once (the first of lines with the same
        text), in the order they appear. A time between two lines takes none.
    """
    t = np.asarray(timestamps_s, dtype=np.float64).reshape(-1)  # (T,)
    if not subs or t.size == 0:
        return []
    if not np.all(np.isfinite(t)):
        raise InvalidArgumentError("timestamps_s must be finite")
    ordered = sorted(subs, key=lambda s: s.start_s)
    starts = np.array([s.start_s for s in ordered]) + float(offset_s)  # (N,)
    ends = np.array([s.end_s for s in ordered]) + float(offset_s)  # (N,)
    at = t[None, :]  # (1, T)
    shown = (starts[:, None] <= at) & ((at < ends[:, None]) | (at == starts[:, None]))  # (N, T)
    out: list[str] = []
    seen: set[str] = set()
    for k in np.flatnonzero(shown.any(axis=1)):
        text = ordered[int(k)].text
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out
