"""Benchmark loaders: annotation files in their public formats -> :class:`EvalItem` s.

:func:`load_dataset` is the one entry point (``vidsel eval --dataset NAME --annotations FILE
--videos DIR`` calls it); :data:`DATASETS` holds the loaders, one per format:

========================  ===========================================================  ===========
name (aliases)            annotations                                                  task
========================  ===========================================================  ===========
``videomme``              HF ``test-*.parquet`` / JSON / JSONL rows, ``options``       mcq
                          ``["A. ..."]``, ``answer "A"``, ``.srt`` subtitles
``longvideobench``        ``lvb_val.json``: ``candidates``, ``correct_choice`` index,   mcq
(``lvb``)                 JSON subtitles
``mlvu``                  a folder of JSON files, ``answer`` = the option's text       mcq
``charades-sta``          ``vid start end##sentence`` lines (or the ``{vid: {duration,  grounding
(``charades``)            timestamps, sentences}}`` JSON)
``qvhighlights`` (qvh)    JSONL ``{qid, query, vid, duration, relevant_windows}``      highlights
``jsonl`` / ``csv``       generic: ``video``, ``question``, ``options``, ``answer``,    inferred
                          ``start``/``end`` or ``spans``, ``id``, ``task``
========================  ===========================================================  ===========

A loader is ``fn(annotations: Path, videos: Path | None, **options) -> list[EvalItem]``; add
one with :func:`register_dataset`. Names match case-insensitively and ignoring ``-``, ``_``,
``.`` and spaces (``Video-MME`` = ``video_mme`` = ``videomme``).

Malformed annotations raise :class:`~vidsel.errors.InvalidArgumentError` naming ``file:line``
and what is wrong. A video that is not there is not a loader error: the item keeps the path it
would have and the run records that item's failure.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._json import json_safe
from .._validate import check_positive_int, keyword_params
from ..errors import InvalidArgumentError
from ..registry import Registry
from ._annotations import (
    SUBTITLE_EXTS,
    Finder,
    Row,
    answer_letter,
    index_letter,
    json_document,
    make_item,
    options_of,
    read_csv_rows,
    read_json_rows,
    read_rows,
    roots,
    spans_of,
    video_finder,
)
from ._loaders_mcq import load_longvideobench, load_mlvu, load_videomme
from ._types import TASKS, EvalItem

__all__ = ["DATASETS", "LoaderFn", "available_datasets", "load_dataset", "register_dataset"]

logger = logging.getLogger(__name__)

#: ``fn(annotations: Path, videos: Path | None, **options) -> list[EvalItem]``.
LoaderFn = Callable[..., list[EvalItem]]

#: Benchmark loaders by name (see the module docstring for the formats).
DATASETS: Registry[LoaderFn] = Registry("dataset")
_ALIASES: dict[str, str] = {}  # normalised alias -> registered name


def _key(name: str) -> str:
    return re.sub(r"[\s_.\-]+", "", name.lower())


def register_dataset(name: str, fn: LoaderFn | None = None, *, aliases: Sequence[str] = (),
                     overwrite: bool = False) -> Any:
    """Add a loader ``fn(annotations, videos, **options) -> list[EvalItem]`` under ``name``
    (directly, or as a decorator when ``fn`` is omitted), with optional ``aliases``.

    Raises:
        InvalidArgumentError: ``name`` (or an alias, normalised) is taken and ``overwrite`` is
            False.
    """
    if not isinstance(name, str) or not _key(name):
        raise InvalidArgumentError(f"dataset name {name!r} must be a non-empty string")

    def add(loader: LoaderFn) -> LoaderFn:
        if not callable(loader):
            raise InvalidArgumentError(f"dataset {name!r}: loader {loader!r} is not callable")
        keys = [_key(name), *(_key(a) for a in aliases)]
        for k in keys:
            owner = _ALIASES.get(k) or next((n for n in DATASETS.names() if _key(n) == k), None)
            if owner is not None and owner != name and not overwrite:
                raise InvalidArgumentError(
                    f"dataset name {k!r} already means {owner!r}; pass overwrite=True to "
                    f"replace it")
        DATASETS.register(name, loader, overwrite=overwrite)
        for a in aliases:
            _ALIASES[_key(a)] = name
        return loader

    if fn is None:
        return add
    return add(fn)


def available_datasets() -> tuple[str, ...]:
    """Registered loader names, sorted (aliases not included)."""
    return DATASETS.names()


def dataset_name(name: str) -> str:
    """The registered name ``name`` means (``"Video-MME"`` -> ``"videomme"``).

    Raises:
        InvalidArgumentError: no such loader; the message lists them.
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"dataset={name!r} must be a string")
    key = _key(name)
    for registered in DATASETS.names():
        if _key(registered) == key:
            return registered
    if key in _ALIASES:
        return _ALIASES[key]
    DATASETS.get(name)  # raises, listing the choices
    return name  # pragma: no cover


def load_dataset(name: str, annotations: str | os.PathLike[str],
                 videos: str | os.PathLike[str] | None = None, *, limit: int | None = None,
                 **options: Any) -> list[EvalItem]:
    """Read a benchmark's annotations into :class:`EvalItem` s.

    Args:
        name: the format (:func:`available_datasets`; case and ``-`` / ``_`` do not matter).
        annotations: the annotation file (or folder, where the format has one).
        videos: the folder holding the videos (and, for some formats, subtitles); default:
            next to the annotations.
        limit: keep the first ``limit`` items (file order).
        **options: the loader's own options (``subtitles=DIR``, Video-MME's ``duration``,
            MLVU's ``tasks`` and ``open_ended``, the generic loaders' ``task`` and
            ``dataset``).

    Returns:
        The items, in file order, with unique ``item_id`` s. Videos are resolved in
        ``videos`` (the id as given, then with ``.mp4``, ``.mkv``, ``.webm``, ``.avi``,
        ``.mov``, ``.flv``; the benchmark's usual sub-folders first); one that is not found
        keeps the path it would have (logged once as a count).

    Raises:
        InvalidArgumentError: unknown name or option, missing annotations, ``videos`` not a
            folder, a malformed annotation (the message names ``file:line``), duplicate ids.
        MissingDependencyError: a parquet file without pyarrow installed.
    """
    canonical = dataset_name(name)
    loader = DATASETS.get(canonical)
    ann = Path(annotations).expanduser()
    if not ann.exists():
        raise InvalidArgumentError(f"annotations {str(ann)!r} do not exist")
    vids = None if videos is None else Path(videos).expanduser()
    if vids is not None and not vids.is_dir():
        raise InvalidArgumentError(f"videos={str(videos)!r} is not a folder")
    if limit is not None:
        limit = check_positive_int("limit", limit)
    allowed = keyword_params(loader, skip=2)
    unknown = sorted(set(options) - allowed) if allowed is not None else []
    if unknown:
        raise InvalidArgumentError(
            f"dataset {canonical!r} takes no option {unknown[0]!r}; its options: "
            f"{', '.join(sorted(allowed or ())) or '(none)'}")
    items = loader(ann, vids, **options)
    if not isinstance(items, list) or not all(isinstance(i, EvalItem) for i in items):
        raise InvalidArgumentError(f"dataset {canonical!r}: the loader must return a list of "
                                   f"EvalItem")
    seen: set[str] = set()
    for item in items:
        if item.item_id in seen:
            raise InvalidArgumentError(f"{ann}: item id {item.item_id!r} appears more than "
                                       f"once; ids must be unique (records are keyed by them)")
        seen.add(item.item_id)
    if limit is not None:
        items = items[:limit]
    videos_used = {i.video for i in items}
    missing = sorted(v for v in videos_used if not os.path.isfile(v))
    if missing:
        logger.warning("%s: %d of %d videos not found (e.g. %s); their items will be recorded "
                       "as failures", canonical, len(missing), len(videos_used), missing[0])
    logger.info("%s: %d items from %s", canonical, len(items), ann)
    return items


# --- temporal grounding and highlights ----------------------------------------------------------


def load_charades_sta(annotations: Path, videos: Path | None = None) -> list[EvalItem]:
    """Charades-STA: ``charades_sta_test.txt`` lines ``vid start end##sentence`` (grounding).

    Also reads the JSON variant ``{vid: {"duration": s, "timestamps": [[s, e], ...],
    "sentences": [...]}}`` (ActivityNet-Captions layout). Items are ``"{vid}_{k}"`` (k: the
    query's index in the file); videos ``{vid}.mp4`` in ``Charades_v1_480/`` or the videos
    folder.
    """
    find = video_finder(videos, annotations, ("Charades_v1_480", "Charades_v1", "videos"))
    if annotations.suffix.lower() == ".json":
        return _charades_json(annotations, find)
    try:
        lines = annotations.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidArgumentError(f"cannot read {annotations}: {err}") from None
    items: list[EvalItem] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        row = Row(f"{annotations}:{n}", {})
        head, sep, sentence = line.partition("##")
        parts = head.split()
        if not sep or len(parts) != 3 or not sentence.strip():
            raise row.error(f"expected 'VIDEO_ID START END##SENTENCE', got {line.strip()!r}")
        vid, s, e = parts
        try:
            start, end = float(s), float(e)
        except ValueError:
            raise row.error(f"start {s!r} / end {e!r} are not numbers") from None
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
            raise row.error(f"the span {s}..{e} must be finite with 0 <= start <= end")
        items.append(make_item(row, item_id=f"{vid}_{len(items)}", dataset="charades-sta",
                               video=find.resolve(vid), question=sentence.strip(),
                               task="grounding", spans_s=((start, end),)))
    return items


def _charades_json(path: Path, find: Finder) -> list[EvalItem]:
    data = json_document(path)
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{path}: expected {{video_id: {{duration, timestamps, "
                                   f"sentences}}}}, got a {type(data).__name__}")
    items: list[EvalItem] = []
    for vid, entry in data.items():
        row = Row(f"{path}: video {vid!r}", entry if isinstance(entry, dict) else {})
        if not isinstance(entry, dict):
            raise row.error(f"expected an object, got {type(entry).__name__}")
        sentences, stamps = entry.get("sentences"), entry.get("timestamps")
        if not isinstance(sentences, list) or not isinstance(stamps, list) or \
                len(sentences) != len(stamps):
            raise row.error("needs 'sentences' and 'timestamps' lists of the same length")
        duration = row.number("duration")
        for sentence, span in zip(sentences, stamps):
            if not isinstance(sentence, str) or not sentence.strip():
                raise row.error(f"sentence {sentence!r} is not text")
            items.append(make_item(row, item_id=f"{vid}_{len(items)}", dataset="charades-sta",
                                   video=find.resolve(vid), question=sentence.strip(),
                                   task="grounding", spans_s=spans_of(row, span, "timestamps"),
                                   duration_s=duration))
    return items


def load_qvhighlights(annotations: Path, videos: Path | None = None) -> list[EvalItem]:
    """QVHighlights: ``highlight_val_release.jsonl`` rows ``{qid, query, vid, duration,
    relevant_windows [[s, e], ...], relevant_clip_ids, saliency_scores}`` (highlights; the
    test split has no windows: unlabeled items). Videos ``{vid}.mp4`` (``vid`` looks like
    ``NUhaRMHeHMc_360.0_510.0``) in ``videos/`` or the videos folder. ``relevant_clip_ids`` and
    ``saliency_scores`` (2 s clips) go to ``meta`` for highlight-detection metrics.
    """
    find = video_finder(videos, annotations, ("videos",))
    items = []
    for row in read_json_rows(annotations):
        windows = row.get("relevant_windows")
        meta = {k: json_safe(row.get(k)) for k in ("relevant_clip_ids", "saliency_scores")
                if row.get(k) is not None}
        items.append(make_item(
            row, item_id=row.text("qid"), dataset="qvhighlights",
            video=find.resolve(row.text("vid") or ""), question=row.text("query"),
            task="highlights",
            spans_s=spans_of(row, windows, "relevant_windows") if windows is not None else (),
            duration_s=row.number("duration"), meta=meta))
    return items


# --- generic JSON lines / CSV -------------------------------------------------------------------

_VIDEO = ("video", "path", "video_path", "vid")
_QUESTION = ("question", "query", "prompt")
_OPTIONS = ("options", "candidates", "choices")
_ID = ("id", "item_id", "qid", "question_id")
_SPANS = ("spans", "spans_s", "relevant_windows", "timestamps")
_SUBS = ("subtitles", "subtitle", "subtitle_path")
_USED = {*_VIDEO, *_QUESTION, *_OPTIONS, *_ID, *_SPANS, *_SUBS, "answer", "correct_choice",
         "start", "end", "task", "duration", "duration_s", "subtitle_offset_s"}


def _generic(rows: list[Row], annotations: Path, videos: Path | None, task: str | None,
             dataset: str | None) -> list[EvalItem]:
    if task is not None and task not in TASKS:
        raise InvalidArgumentError(f"task={task!r} is not one of {', '.join(TASKS)}")
    if dataset is not None and (not isinstance(dataset, str) or not dataset.strip()):
        raise InvalidArgumentError(f"dataset={dataset!r} must be a non-empty string")
    dataset = dataset.strip() if dataset is not None else annotations.stem
    find = video_finder(videos, annotations, ("videos",))
    find_subs = Finder(roots(videos, annotations) + roots(None, annotations), SUBTITLE_EXTS)
    items = []
    for k, row in enumerate(rows):
        options = options_of(row, *_OPTIONS)
        spans = _generic_spans(row)
        kind = row.text("task", required=False) or task or (
            "mcq" if options else "grounding" if spans else "open")
        if kind not in TASKS:
            raise row.error(f"task={kind!r} is not one of {', '.join(TASKS)}")
        if kind == "mcq":
            if not options:
                raise row.error("an mcq item needs 'options'")
            choice = row.get("correct_choice")
            answer = (index_letter(row, choice, options) if choice is not None
                      else answer_letter(row, row.get("answer"), options))
        else:
            answer = row.text("answer", required=False) if kind == "open" else None
        subs = row.text(*_SUBS, required=False)
        meta = {key: json_safe(v) for key, v in row.data.items()
                if key not in _USED and v is not None and v != ""}
        if kind in ("grounding", "highlights") and row.get("answer") is not None:
            meta["answer"] = json_safe(row.get("answer"))
        items.append(make_item(
            row, item_id=row.text(*_ID, required=False) or str(k), dataset=dataset,
            video=find.resolve(row.text(*_VIDEO) or ""), question=row.text(*_QUESTION),
            task=kind, options=options if kind == "mcq" else (), answer=answer, spans_s=spans,
            duration_s=row.number("duration", "duration_s"),
            subtitles=find_subs.resolve(subs) if subs else None,
            subtitle_offset_s=row.number("subtitle_offset_s") or 0.0, meta=meta))
    return items


def _generic_spans(row: Row) -> tuple[tuple[float, float], ...]:
    value = row.get(*_SPANS)
    if value is not None:
        return spans_of(row, value, next(n for n in _SPANS if row.get(n) is not None))
    start, end = row.number("start"), row.number("end")
    if (start is None) != (end is None):
        raise row.error("give both 'start' and 'end' (or 'spans')")
    if start is None or end is None:
        return ()
    return spans_of(row, [[start, end]], "start/end")


def load_jsonl(annotations: Path, videos: Path | None = None, *, task: str | None = None,
               dataset: str | None = None) -> list[EvalItem]:
    """Generic JSON lines (or a JSON array): one object per item.

    Fields: ``video`` (or ``path``), ``question`` (or ``query``), optional ``options`` (a list;
    ``"A. "`` prefixes removed), ``answer`` (an option letter, or an option's text; an open
    item's reference), ``correct_choice`` (0-based index), ``start``/``end`` or ``spans``
    (``[[s, e], ...]``), ``id``, ``task``, ``duration``, ``subtitles`` (a path),
    ``subtitle_offset_s``; other fields go to ``meta``. The task is the row's ``task``, else
    the ``task`` option, else inferred: options -> ``mcq``, spans -> ``grounding``, else
    ``open``. Ids default to the row's index.

    Args:
        annotations: the file.
        videos: where the ``video`` paths are relative to (default: the file's folder).
        task: the task of rows that do not say.
        dataset: the dataset name in records (default: the file's stem, so two generic files do
            not merge in a report).
    """
    return _generic(read_rows(annotations) if annotations.suffix.lower() == ".parquet"
                    else read_json_rows(annotations), annotations, videos, task, dataset)


def load_csv(annotations: Path, videos: Path | None = None, *, task: str | None = None,
             dataset: str | None = None, delimiter: str | None = None) -> list[EvalItem]:
    """Generic CSV (TSV for ``.tsv``) with a header: the columns of :func:`load_jsonl`;
    ``options`` and ``spans`` cells hold a JSON list or ``|``-separated options; empty cells
    are absent values.

    Args:
        annotations: the file.
        videos: where the ``video`` paths are relative to (default: the file's folder).
        task: the task of rows that do not say.
        dataset: the dataset name in records (default: the file's stem).
        delimiter: the cell separator (default ``,``; ``\\t`` for ``.tsv``).
    """
    if delimiter is not None and (not isinstance(delimiter, str) or len(delimiter) != 1):
        raise InvalidArgumentError(f"delimiter={delimiter!r} must be one character")
    return _generic(read_csv_rows(annotations, delimiter=delimiter), annotations, videos,
                    task, dataset)


register_dataset("videomme", load_videomme)
register_dataset("longvideobench", load_longvideobench, aliases=("lvb",))
register_dataset("mlvu", load_mlvu)
register_dataset("charades-sta", load_charades_sta, aliases=("charades",))
register_dataset("qvhighlights", load_qvhighlights, aliases=("qvh",))
register_dataset("jsonl", load_jsonl, aliases=("json",))
register_dataset("csv", load_csv, aliases=("tsv",))
