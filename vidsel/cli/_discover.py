"""Find the videos a batch should process: folders (recursive), globs, list files, single files.

A file found while walking a folder or expanding a glob is a video when its name has a video
suffix (then a damaged or empty one still gets a failure record), or, whatever its name, when its
content probes as a container with a real video stream (not a still image, not cover art).
Hidden files and folders are skipped, symlinked folders are followed once (loops are safe), and
each file is listed once (by real path). Files named explicitly are always kept: a bad one gets
a failure record.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["VIDEO_SUFFIXES", "Discovery", "Found", "discover", "probe_video"]

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".flv", ".ts", ".mts", ".m2ts", ".mpg",
    ".mpeg", ".wmv", ".3gp", ".ogv", ".mxf", ".h264", ".264", ".hevc", ".265", ".vob", ".y4m",
})
#: Files that list inputs, one path per line.
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
#: Demuxers of stills and text that FFmpeg also opens: never videos.
_NOT_VIDEO_FORMATS = frozenset({"image2", "image2pipe", "tty", "gif", "apng", "webp", "ico"})
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Found:
    """A video to process: absolute ``path`` and a display name ``rel`` (relative to the input
    it was found under)."""

    path: str
    rel: str


@dataclass
class Discovery:
    """Result of :func:`discover`: videos in a stable order and the files passed over."""

    videos: list[Found] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def probe_video(path: str) -> bool:
    """Whether ``path`` opens as a container with a video stream (stills and cover art do not
    count). Cheap: reads the header only."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as c:
            fmt = c.format.name or ""
            if fmt.endswith("_pipe") or any(f in _NOT_VIDEO_FORMATS for f in fmt.split(",")):
                return False
            return any("attached_pic" not in str(s.disposition).lower()
                       for s in c.streams.video)
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return False


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _candidate(path: str, probe: bool) -> bool:
    if os.path.splitext(path)[1].lower() in VIDEO_SUFFIXES:
        return True
    if os.path.splitext(path)[1].lower() in LIST_SUFFIXES | {".json", ".jsonl", ".csv", ".md"}:
        return False
    return probe and probe_video(path)


def _walk(root: str, probe: bool, out: Discovery, seen: set[str]) -> None:
    visited: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:
            dirnames[:] = []
            continue
        if (st.st_dev, st.st_ino) in visited:  # a symlink loop or a second link to a folder
            dirnames[:] = []
            continue
        visited.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for name in sorted(filenames):
            if _is_hidden(name):
                continue
            path = os.path.join(dirpath, name)
            _add_found(path, os.path.relpath(path, root), probe, out, seen)


def _add_found(path: str, rel: str, probe: bool, out: Discovery, seen: set[str]) -> None:
    real = os.path.realpath(path)
    if real in seen or not os.path.isfile(real):
        return
    if _candidate(path, probe):
        seen.add(real)
        out.videos.append(Found(os.path.abspath(path), rel))
    else:
        out.skipped.append(path)


def _add_explicit(path: str, out: Discovery, seen: set[str]) -> None:
    real = os.path.realpath(path)
    if real in seen:
        return
    seen.add(real)
    if not os.path.exists(path):
        out.missing.append(path)
    out.videos.append(Found(os.path.abspath(path), path))


def _read_list(path: str) -> list[str]:
    if path == "-":
        lines: Iterable[str] = sys.stdin.read().splitlines()
    else:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def discover(inputs: Sequence[str], *, probe: bool = True) -> Discovery:
    """Expand ``inputs`` into videos.

    Args:
        inputs: folders (walked recursively), glob patterns (``"clips/**/*.mp4"``, ``**``
            recursive), list files (``.txt`` / ``.lst`` / ``.list``, or ``-`` for stdin: one
            path per line, ``#`` comments) or video files.
        probe: check files without a video suffix by opening them (else only suffixes count).
    """
    out = Discovery()
    seen: set[str] = set()
    for item in inputs:
        if item == "-" or (os.path.isfile(item)
                           and os.path.splitext(item)[1].lower() in LIST_SUFFIXES):
            for entry in _read_list(item):
                if os.path.isdir(entry):
                    _walk(entry, probe, out, seen)
                else:
                    _add_explicit(entry, out, seen)
        elif os.path.isdir(item):
            _walk(item, probe, out, seen)
        elif not os.path.exists(item) and _GLOB_CHARS & set(item):
            root = os.path.dirname(re.split(r"[*?\[]", item, maxsplit=1)[0]) or "."
            for path in sorted(glob.glob(item, recursive=True)):
                if os.path.isdir(path):
                    continue
                if not any(_is_hidden(p) for p in os.path.relpath(path, root).split(os.sep)):
                    _add_found(path, os.path.relpath(path, root), probe, out, seen)
        else:
            _add_explicit(item, out, seen)
    for path in out.skipped:
        logger.info("not a video, skipped: %s", path)
    logger.info("discovered %d videos (%d other files skipped)", len(out.videos),
                len(out.skipped))
    return out
