"""Multiple-choice long-video benchmarks in their public formats: Video-MME, LongVideoBench,
MLVU. Each function is a loader (see :data:`vidsel.eval.DATASETS`): ``fn(annotations, videos,
**options) -> list[EvalItem]``."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._json import json_safe
from ..errors import InvalidArgumentError
from ._annotations import (
    Finder,
    Row,
    answer_letter,
    index_letter,
    make_item,
    options_of,
    read_rows,
    roots,
    video_finder,
)
from ._types import EvalItem

__all__ = ["load_longvideobench", "load_mlvu", "load_videomme"]

logger = logging.getLogger(__name__)

VIDEOMME_DURATIONS = ("short", "medium", "long")


def _subtitle_bases(videos: Path | None, annotations: Path, subtitles: Path | None,
                    names: Sequence[str]) -> list[Path]:
    """Folders that may hold a benchmark's subtitles: ``subtitles`` if given, else ``names``
    under the videos folder, its parent, the annotation's folder and its parent."""
    if subtitles is not None:
        if not subtitles.is_dir():
            raise InvalidArgumentError(f"subtitles={str(subtitles)!r} is not a folder")
        return [subtitles]
    rs = [*roots(videos, annotations), *roots(None, annotations)]
    if videos is not None:
        rs.append(videos.parent)
    return [r / n for r in dict.fromkeys(rs) for n in names]


def _annotation_files(annotations: Path, patterns: Sequence[str], what: str) -> list[Path]:
    """``annotations`` itself, or the files a folder holds matching the first pattern that
    matches any."""
    if annotations.is_file():
        return [annotations]
    for pattern in patterns:
        found = sorted(annotations.glob(pattern))
        if found:
            return found
    raise InvalidArgumentError(f"{annotations} holds no {what} annotation file "
                               f"({', '.join(patterns)})")


def _path_option(value: Any, name: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, Path)):
        raise InvalidArgumentError(f"{name}={value!r} must be a folder path")
    return Path(value).expanduser()


def _names_option(value: Any, name: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = (value,) if isinstance(value, str) else tuple(value)
    if not items or not all(isinstance(v, str) and v for v in items):
        raise InvalidArgumentError(f"{name}={value!r} must be a name or a list of names")
    return tuple(v.strip() for v in items)


def load_videomme(annotations: Path, videos: Path | None = None, *,
                  subtitles: str | Path | None = None,
                  duration: str | Sequence[str] | None = None) -> list[EvalItem]:
    """Video-MME, as the Hugging Face dataset ships it.

    Annotations: ``videomme/test-00000-of-00001.parquet`` (needs pyarrow), or the same rows as
    JSON / JSON lines (``video_id, duration, domain, sub_category, url, videoID, question_id,
    task_type, question, options ["A. ...", ...], answer "A"``); the original release's
    per-video grouping (a ``questions`` list per video) is read too. A folder is searched for
    ``*.parquet``, then ``videomme/*.parquet``, then ``*.jsonl`` / ``*.json``.

    Videos: ``{videoID}.mp4`` (or ``.MP4``, ``.mkv``...) in ``videos``, ``videos/data`` or
    ``videos/videos``. Subtitles: ``{videoID}.srt`` in ``subtitles``, else in a ``subtitle/``
    or ``subtitles/`` folder next to the videos or the annotations; a video without one has
    none (``subtitles=None``), as in Video-MME itself.

    Args:
        annotations: the annotation file or folder.
        videos: the videos folder (default: next to the annotations).
        subtitles: the folder of ``.srt`` files.
        duration: keep only these splits (``"short"``, ``"medium"``, ``"long"``).
    """
    splits = _names_option(duration, "duration")
    if splits is not None:
        bad = [s for s in splits if s not in VIDEOMME_DURATIONS]
        if bad:
            raise InvalidArgumentError(f"duration={duration!r}: {bad[0]!r} is not one of "
                                       f"{', '.join(VIDEOMME_DURATIONS)}")
    files = _annotation_files(annotations, ("*.parquet", "videomme/*.parquet", "*.jsonl",
                                            "*.json"), "Video-MME")
    find_video = video_finder(videos, annotations, ("data", "videos", "video"))
    find_subs = Finder(_subtitle_bases(videos, annotations,
                                       _path_option(subtitles, "subtitles"),
                                       ("subtitle", "subtitles")), (".srt", ".vtt"))
    items = []
    n = -1  # questions read, kept or not (names questions that have no id)
    for file in files:
        for row in read_rows(file):
            for q in _videomme_questions(row):
                n += 1
                split = q.text("duration", required=False)
                if splits is not None and split not in splits:
                    continue
                vid = q.text("videoID", "video_path", "video") or ""
                options = options_of(q, "options")
                if not options:
                    raise q.error("missing field 'options'")
                sub = find_subs.find(vid)
                meta = {k: q.get(k) for k in ("duration", "domain", "sub_category",
                                               "task_type", "video_id", "url")
                        if q.get(k) is not None}
                items.append(make_item(
                    q, item_id=q.text("question_id", "id", required=False)
                    or f"{vid}-{n}",
                    dataset="videomme", video=find_video.resolve(vid),
                    question=q.text("question"), task="mcq", options=options,
                    answer=answer_letter(q, q.get("answer"), options),
                    subtitles=str(sub) if sub is not None else None,
                    meta={k: str(v) for k, v in meta.items()}))
    return items


def _videomme_questions(row: Row) -> list[Row]:
    """A flat row, or one row per question of a per-video record (``questions: [...]``)."""
    questions = row.data.get("questions")
    if questions is None:
        return [row]
    if not isinstance(questions, list):
        raise row.error(f"'questions' must be a list, got {type(questions).__name__}")
    video = {k: v for k, v in row.data.items() if k != "questions"}
    out = []
    for k, q in enumerate(questions):
        if not isinstance(q, dict):
            raise row.error(f"question {k} is {type(q).__name__}, not an object")
        out.append(Row(f"{row.where} (question {k})", {**video, **q}))
    return out


def load_longvideobench(annotations: Path, videos: Path | None = None, *,
                        subtitles: str | Path | None = None) -> list[EvalItem]:
    """LongVideoBench: ``lvb_val.json`` (or ``lvb_test_wo_gt.json``, or the parquet files).

    Rows: ``{video_id, video_path, duration, question, candidates [...], correct_choice (0-based
    index; absent in the test set), subtitle_path, starting_timestamp_for_subtitles, id,
    question_category, topic_category, level, duration_group, ...}``. Videos under
    ``videos/`` (or the videos folder itself); subtitles (JSON lines or ``.srt``) under
    ``subtitles/``, shifted by ``-starting_timestamp_for_subtitles`` to video time. A folder
    given as annotations is searched for ``lvb_val.json``, then ``validation-*.parquet``.

    Args:
        annotations: the annotation file or the dataset folder.
        videos: the dataset folder or its ``videos/`` (default: next to the annotations).
        subtitles: the folder of subtitle files.
    """
    files = _annotation_files(annotations, ("lvb_val.json", "validation-*.parquet", "*.json",
                                            "*.parquet"), "LongVideoBench")
    find_video = video_finder(videos, annotations, ("videos",))
    find_subs = Finder(_subtitle_bases(videos, annotations, _path_option(subtitles, "subtitles"),
                                       ("subtitles",)), ())
    items = []
    for file in files:
        for row in read_rows(file):
            options = options_of(row, "candidates")
            if not options:
                raise row.error("missing field 'candidates'")
            answer = _lvb_answer(row, options)
            video_name = row.text("video_path", "video_id")
            sub_name = row.text("subtitle_path", required=False)
            start = row.number("starting_timestamp_for_subtitles") or 0.0
            meta = {k: row.get(k) for k in ("question_category", "topic_category", "level",
                                             "duration_group", "video_id")
                    if row.get(k) is not None}
            items.append(make_item(
                row, item_id=row.text("id"), dataset="longvideobench",
                video=find_video.resolve(video_name or ""), question=row.text("question"),
                task="mcq", options=options, answer=answer,
                duration_s=row.number("duration"),
                subtitles=find_subs.resolve(sub_name) if sub_name else None,
                subtitle_offset_s=-start if start else 0.0, meta=json_safe(meta)))
    return items


def _lvb_answer(row: Row, options: Sequence[str]) -> str | None:
    choice = row.get("correct_choice")
    if choice is None:  # the test set
        return answer_letter(row, row.get("answer"), options)
    return index_letter(row, choice, options)


def load_mlvu(annotations: Path, videos: Path | None = None, *,
              tasks: str | Sequence[str] | None = None,
              open_ended: bool = False) -> list[EvalItem]:
    """MLVU: a folder of JSON files (``json/1_plotQA.json``, ``2_needle.json``...) or one.

    Rows: ``{video, duration, question, candidates [...], answer (the option's TEXT),
    question_type}``. Videos under ``video/<file stem>/`` (``video/1_plotQA/``), ``video/<task>/``
    (``video/plotQA/``), or the videos folder itself. Items are ``"<file stem>/<index>"``.
    Open-ended files (``8_sub_scene``, ``9_summary``: no candidates) are skipped unless
    ``open_ended`` (then they are ``open`` items with the reference answer), so the default is
    MLVU's multiple-choice set.

    Args:
        annotations: an MLVU JSON file, the ``json/`` folder, or the dataset folder.
        videos: the videos folder (default: next to the annotations).
        tasks: keep only these tasks (file stems ``"1_plotQA"``, names ``"plotQA"`` or
            question types ``"findNeedle"``, case-insensitive).
        open_ended: also load the open-ended tasks.
    """
    wanted = _names_option(tasks, "tasks")
    files = _annotation_files(annotations, ("*.json", "json/*.json"), "MLVU")
    items: list[EvalItem] = []
    matched: set[str] = set()
    for file in files:
        stem = file.stem
        name = re.sub(r"^\d+_", "", stem)
        finder = video_finder(videos, file, (f"video/{stem}", f"video/{name}", stem, name,
                                             "video", "videos"))
        for k, row in enumerate(read_rows(file)):
            qtype = row.text("question_type", required=False) or name
            if wanted is not None:
                hit = {w for w in wanted if w.lower() in (stem.lower(), name.lower(),
                                                            qtype.lower())}
                if not hit:
                    continue
                matched |= hit
            options = options_of(row, "candidates", "options")
            if not options and not open_ended:
                continue
            answer = row.get("answer")
            items.append(make_item(
                row, item_id=row.text("question_id", "id", required=False) or f"{stem}/{k}",
                dataset="mlvu", video=finder.resolve(row.text("video", "video_path") or ""),
                question=row.text("question"), task="mcq" if options else "open",
                options=options,
                answer=(answer_letter(row, answer, options, text_only=True) if options
                        else row.text("answer", required=False)),
                duration_s=row.number("duration"),
                meta={"task": stem, "question_type": qtype}))
    if wanted is not None and set(wanted) - matched:
        missing = sorted(set(wanted) - matched)
        raise InvalidArgumentError(
            f"tasks={list(wanted)!r}: {', '.join(map(repr, missing))} matched no question in "
            f"{', '.join(f.name for f in files)}")
    return items

