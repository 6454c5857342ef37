"""Reading benchmark annotation files: rows with their ``file:line``, option lists and answers
in every public spelling, and video / subtitle files found in a benchmark's usual folders.

Every malformed value is an :class:`~vidsel.errors.InvalidArgumentError` whose message starts
with where it is (``lvb_val.json:120: ...``) and says what is wrong; a file that is not found
(a video, a subtitle) is never an error here: the item keeps the path it would have.
"""

from __future__ import annotations

import ast
import bisect
import contextlib
import csv
import io
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from ..optional import require
from ._types import LETTERS, EvalItem

#: Video file suffixes tried after a bare id, in this order (case-insensitive).
VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".flv")
SUBTITLE_EXTS = (".srt", ".vtt", ".json")
_LETTER_PREFIX = re.compile(r"^\s*\(?([A-Za-z])\s*[.):：]\s*(?=\S)")
_LETTER_ANSWER = re.compile(r"^\s*\(?\s*([A-Za-z])\s*\)?\s*[.:]?\s*$")


@dataclass(frozen=True)
class Row:
    """One annotation record and where it is (``file:line``, ``file row k``)."""

    where: str
    data: Mapping[str, Any]

    def error(self, message: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"{self.where}: {message}")

    def get(self, *names: str) -> Any:
        """The first of ``names`` present with a value (None and ``""`` count as absent)."""
        for name in names:
            value = self.data.get(name)
            if value is not None and not (isinstance(value, str) and not value.strip()):
                return value
        return None

    def text(self, *names: str, required: bool = True) -> str | None:
        value = self.get(*names)
        if value is None:
            if required:
                raise self.error(f"missing field {' / '.join(map(repr, names))}")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(f"{names[0]!r} must be a string, got {type(value).__name__}")
        return str(value).strip()

    def number(self, *names: str, required: bool = False) -> float | None:
        value = self.get(*names)
        if value is None:
            if required:
                raise self.error(f"missing field {' / '.join(map(repr, names))}")
            return None
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise self.error(f"{names[0]!r}={value!r} is not a number") from None
        if isinstance(value, bool) or not math.isfinite(v):
            raise self.error(f"{names[0]!r}={value!r} is not a finite number")
        return v


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidArgumentError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") \
            from None
    except OSError as e:
        raise InvalidArgumentError(f"cannot read {path}: {e.strerror or e}") from None


class _Lines:
    """Character offset -> 1-based line number of a text."""

    def __init__(self, text: str) -> None:
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def __call__(self, offset: int) -> int:
        return bisect.bisect_left(self._newlines, offset) + 1


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _json_error(path: Path, e: json.JSONDecodeError) -> InvalidArgumentError:
    return InvalidArgumentError(f"{path}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})")


def json_document(path: Path) -> Any:
    """A whole JSON file (objects of objects: Charades-STA's ``{vid: {...}}``)."""
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise _json_error(path, e) from None


def read_json_rows(path: Path) -> list[Row]:
    """The records of a JSON array file, a JSON-lines file, or a file holding one JSON object,
    each with the line it starts on."""
    text = _read_text(path)
    start = _skip_ws(text, 0)
    if start == len(text):
        return []
    line_of = _Lines(text)
    decoder = json.JSONDecoder()
    rows: list[Row] = []
    if text[start] == "[":  # a JSON array: decode it element by element to know the lines
        i = _skip_ws(text, start + 1)
        while i < len(text) and text[i] != "]":
            try:
                obj, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError as e:
                raise _json_error(path, e) from None
            rows.append(Row(f"{path}:{line_of(i)}", obj))
            i = _skip_ws(text, end)
            if i < len(text) and text[i] == ",":
                i = _skip_ws(text, i + 1)
            elif i < len(text) and text[i] != "]":
                raise InvalidArgumentError(f"{path}:{line_of(i)}: not valid JSON (expected ',' "
                                           f"or ']' after an array element)")
        if i >= len(text):
            raise InvalidArgumentError(f"{path}:{line_of(len(text))}: not valid JSON (the "
                                       f"array is not closed)")
        rest = _skip_ws(text, i + 1)
        if rest != len(text):
            raise InvalidArgumentError(f"{path}:{line_of(rest)}: not valid JSON (extra data "
                                       f"after the array)")
        return [r if isinstance(r.data, Mapping) else _not_object(r) for r in rows]
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if not rows:  # maybe one pretty-printed object, not JSON lines
                with contextlib.suppress(json.JSONDecodeError):  # no: report the line
                    return [_as_row(Row(f"{path}:{line_of(start)}", json.loads(text)))]
            raise InvalidArgumentError(f"{path}:{n}: not valid JSON ({e.msg}, column "
                                       f"{e.colno})") from None
        rows.append(_as_row(Row(f"{path}:{n}", obj)))
    return rows


def _not_object(row: Row) -> Row:
    raise row.error(f"expected a JSON object, got {type(row.data).__name__}")


def _as_row(row: Row) -> Row:
    return row if isinstance(row.data, Mapping) else _not_object(row)


def read_csv_rows(path: Path, *, delimiter: str | None = None) -> list[Row]:
    """CSV (``,``) or TSV (``.tsv``: tab) rows as dicts keyed by the header, with their line."""
    text = _read_text(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return []
    except csv.Error as e:
        raise InvalidArgumentError(f"{path}:1: cannot read the CSV header ({e})") from None
    if len(set(header)) != len(header) or not all(header):
        raise InvalidArgumentError(f"{path}:1: the header {header!r} has empty or repeated "
                                   f"column names")
    rows = []
    try:
        for cells in reader:
            n = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise InvalidArgumentError(
                    f"{path}:{n}: {len(cells)} cells but the header has {len(header)} columns "
                    f"(quote cells that hold the delimiter {delimiter!r})")
            rows.append(Row(f"{path}:{n}", dict(zip(header, cells))))
    except csv.Error as e:
        raise InvalidArgumentError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None
    return rows


def read_parquet_rows(path: Path) -> list[Row]:
    """A parquet file's rows (Hugging Face dataset files), read with pyarrow."""
    pq = require("pyarrow.parquet", f"reading {path.name} (or convert it to JSON lines)",
                 extra="eval")
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow's own error classes: a damaged or non-parquet file
        raise InvalidArgumentError(f"{path}: not a readable parquet file ({e})") from None
    return [Row(f"{path} row {k}", r) for k, r in enumerate(table.to_pylist())]


def read_rows(path: Path, *, delimiter: str | None = None) -> list[Row]:
    """Records of a ``.json`` / ``.jsonl`` / ``.parquet`` / ``.csv`` / ``.tsv`` file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_parquet_rows(path)
    if suffix in (".csv", ".tsv"):
        return read_csv_rows(path, delimiter=delimiter)
    return read_json_rows(path)


def _as_list(value: Any, row: Row, name: str) -> list[Any]:
    """A list from a list / tuple / array, or a string holding a JSON or Python list."""
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            try:
                value = json.loads(s)
            except json.JSONDecodeError:
                try:
                    value = ast.literal_eval(s)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    raise row.error(f"{name!r}={value!r} is not a readable list") from None
        else:
            return [v.strip() for v in s.split("|")]
    if hasattr(value, "tolist"):  # numpy arrays (pandas-made parquet)
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise row.error(f"{name!r} must be a list, got {type(value).__name__}")
    return list(value)


def options_of(row: Row, *names: str) -> tuple[str, ...]:
    """Option texts in letter order, ``"A. "`` / ``"(A) "`` / ``"A) "`` prefixes removed
    (only when every option carries its own letter, in order)."""
    value = row.get(*names)
    if value is None:
        return ()
    items = _as_list(value, row, names[0])
    options = []
    for k, o in enumerate(items):
        if isinstance(o, bool) or not isinstance(o, (str, int, float)):
            raise row.error(f"option {k} is {o!r}, not text")
        options.append(str(o).strip())
    if not 2 <= len(options) <= len(LETTERS):
        raise row.error(f"{names[0]!r} has {len(options)} options; a multiple-choice question "
                        f"needs 2..{len(LETTERS)}")
    prefixes = [_LETTER_PREFIX.match(o) for o in options]
    if all(m is not None and m.group(1).upper() == LETTERS[k]
           for k, m in enumerate(prefixes)):
        options = [o[m.end():].strip() for o, m in zip(options, prefixes) if m is not None]
    return tuple(options)


def answer_letter(row: Row, answer: Any, options: Sequence[str], *,
                  text_only: bool = False) -> str | None:
    """The correct letter from an answer given as a letter (``"B"``, ``"(b)"``, ``"B."``) or as
    an option's text (``text_only``: the text only, as MLVU gives it)."""
    if answer is None:
        return None
    letters = LETTERS[:len(options)]
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise row.error(f"answer {answer!r} must be an option letter or an option's text")
    text = str(answer).strip()
    m = _LETTER_ANSWER.match(text)
    if not text_only and m is not None and m.group(1).upper() in letters:
        return m.group(1).upper()
    folded = text.casefold()
    matches = [k for k, o in enumerate(options) if o.casefold() == folded]
    if not matches:  # the answer may repeat the letter prefix the options had: "B. red"
        p = _LETTER_PREFIX.match(text)
        if p is not None and p.group(1).upper() in letters:
            k = letters.index(p.group(1).upper())
            if options[k].casefold() == text[p.end():].strip().casefold():
                matches = [k]
    if len(matches) == 1 or (matches and len({options[k] for k in matches}) == 1):
        return letters[matches[0]]
    kind = "one of the options" if text_only else f"an option letter ({letters}) or one of " \
                                                  f"the options"
    raise row.error(f"answer {answer!r} is not {kind}: {list(options)!r}")


def index_letter(row: Row, choice: Any, options: Sequence[str]) -> str:
    """The letter of a 0-based option index (LongVideoBench's ``correct_choice``)."""
    text = str(choice).strip()
    if isinstance(choice, bool) or not isinstance(choice, (int, str)) or \
            not text.isdigit() or not 0 <= int(text) < len(options):
        raise row.error(f"correct_choice={choice!r} is not an index of the {len(options)} "
                        f"options (0..{len(options) - 1})")
    return LETTERS[int(text)]


def spans_of(row: Row, value: Any, name: str) -> tuple[tuple[float, float], ...]:
    """``[[s, e], ...]`` (or one ``[s, e]``) as checked float pairs."""
    items = _as_list(value, row, name) if not isinstance(value, str) or \
        value.strip().startswith("[") else None
    if items is None:
        raise row.error(f"{name!r}={value!r} must be a list of [start, end] pairs")
    if len(items) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                               for v in items):
        items = [items]
    spans = []
    for span in items:
        if not isinstance(span, (list, tuple)) or len(span) != 2:
            raise row.error(f"{name!r}: {span!r} is not a [start, end] pair")
        try:
            s, e = float(span[0]), float(span[1])
        except (TypeError, ValueError):
            raise row.error(f"{name!r}: {span!r} is not a pair of numbers") from None
        if not (math.isfinite(s) and math.isfinite(e)) or e < s or s < 0:
            raise row.error(f"{name!r}: span {span!r} must be finite, start >= 0 and "
                            f"start <= end")
        spans.append((s, e))
    return tuple(spans)


def make_item(row: Row, **fields: Any) -> EvalItem:
    """An :class:`EvalItem`; its own checks fail with the row's ``file:line``."""
    try:
        return EvalItem(**fields)
    except InvalidArgumentError as e:
        raise row.error(str(e)) from None


def roots(videos: Path | None, annotations: Path) -> list[Path]:
    """Where to look for a benchmark's files: the videos folder, or (none given) the
    annotation's folder and its parent."""
    if videos is not None:
        return [videos]
    here = annotations if annotations.is_dir() else annotations.parent
    return list(dict.fromkeys([here, here.parent]))


class Finder:
    """Finds ``name`` (an id or a file name) in folders, trying suffixes after a bare id.

    Each folder is listed once (a set lookup per item, not a stat per candidate), so resolving
    thousands of items over a network file system stays cheap. Suffixes match case-insensitively
    (``.MP4``).

    Args:
        bases: folders to search, in order (absent ones are skipped).
        exts: suffixes tried after the name as given.
    """

    def __init__(self, bases: Sequence[Path], exts: Sequence[str] = VIDEO_EXTS) -> None:
        self.bases = list(dict.fromkeys(bases))
        self.exts = tuple(exts)
        self._listings: dict[Path, tuple[set[str], dict[str, str]] | None] = {}

    def _listing(self, base: Path) -> tuple[set[str], dict[str, str]] | None:
        if base not in self._listings:
            try:
                names = {e.name for e in os.scandir(base) if e.is_file()}
            except OSError:
                self._listings[base] = None
            else:
                self._listings[base] = (names, {n.lower(): n for n in sorted(names)})
        return self._listings[base]

    def _candidates(self, name: str) -> Iterator[str]:
        yield name
        stem, suffix = os.path.splitext(name)
        for ext in self.exts:
            yield name + ext
        if suffix.lower() in self.exts:  # "x.mp4" named, "x.mkv" stored
            for ext in self.exts:
                yield stem + ext

    def find(self, name: str) -> Path | None:
        """The existing file for ``name``, or None."""
        path = Path(name).expanduser()
        if path.is_absolute() or len(path.parts) > 1:
            for base in ([Path()] if path.is_absolute() else self.bases):
                for cand in self._candidates(str(path)):
                    if (base / cand).is_file():
                        return base / cand
            return None
        for base in self.bases:
            listing = self._listing(base)
            if listing is None:
                continue
            exact, lower = listing
            for cand in self._candidates(name):
                if cand in exact:
                    return base / cand
                if cand.lower() in lower:
                    return base / lower[cand.lower()]
        return None

    def expected(self, name: str) -> Path:
        """Where ``name`` would be: the first existing folder (the benchmark's usual
        sub-folder before the root), with the first suffix added to a bare id."""
        path = Path(name).expanduser()
        if self.exts and os.path.splitext(name)[1].lower() not in self.exts:
            path = path.with_name(path.name + self.exts[0])
        if path.is_absolute():
            return path
        base = next((b for b in self.bases if b.is_dir()), self.bases[0])
        return base / path

    def resolve(self, name: str) -> str:
        """:meth:`find`, else :meth:`expected`, as a string (an item's ``video``)."""
        found = self.find(name)
        return str(found if found is not None else self.expected(name))


def video_finder(videos: Path | None, annotations: Path, subdirs: Sequence[str]) -> Finder:
    """A :class:`Finder` over ``subdirs`` of each root, then the roots themselves."""
    rs = roots(videos, annotations)
    return Finder([r / s for r in rs for s in subdirs] + rs)
