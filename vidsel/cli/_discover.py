"""Find the videos a batch should process: folders (recursive), globs, list files, single files.

Whether a file found while walking a folder or expanding a glob is a video is io's decision,
by content, whatever the file's name: :func:`vidsel.io.probe_kind` says ``"video"`` (a
container with a real video stream; not a still image, text or cover art), ``"damaged"`` (a
video io cannot fully read: it is kept, so that it gets a failure record instead of vanishing),
``"not_video"`` or ``"missing"`` (both skipped). Hidden files and folders are skipped, symlinked folders
are followed once (loops are safe), and each file is listed once (by real path). Files named
explicitly are always kept: a bad one gets a failure record.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..io import probe_kind

__all__ = ["Discovery", "Found", "discover", "probe_video"]

logger = logging.getLogger(__name__)

#: Files that list inputs, one path per line (given as inputs, never found by walking).
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
_GLOB_CHARS = frozenset("*?[")
#: io's verdicts (:func:`vidsel.io.probe_kind`) on a found file that make it a batch input.
PROCESSED_KINDS = frozenset({"video", "damaged"})


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
    #: real paths of the skipped files (a file reached twice, by a folder and a glob, is one)
    skipped_real: set[str] = field(default_factory=set, repr=False)


def probe_video(path: str) -> bool:
    """Whether a file found under an input is processed: io's verdict on its content
    (:func:`vidsel.io.probe_kind`) is ``"video"`` or ``"damaged"`` (a damaged video gets a
    failure record). Never raises."""
    return probe_kind(path) in PROCESSED_KINDS


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(root: str, out: Discovery, seen: set[str]) -> None:
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
            _add_found(path, os.path.relpath(path, root), out, seen)


def _add_found(path: str, rel: str, out: Discovery, seen: set[str]) -> None:
    real = os.path.realpath(path)
    if real in seen or not os.path.isfile(real):
        return
    if real in out.skipped_real:
        return
    if probe_video(path):
        seen.add(real)
        out.videos.append(Found(os.path.abspath(path), rel))
    else:
        out.skipped_real.add(real)
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


def discover(inputs: Sequence[str]) -> Discovery:
    """Expand ``inputs`` into videos.

    Args:
        inputs: folders (walked recursively), glob patterns (``"clips/**/*.mp4"``, ``**``
            recursive), list files (``.txt`` / ``.lst`` / ``.list``, or ``-`` for stdin: one
            path per line, ``#`` comments) or video files.
    """
    out = Discovery()
    seen: set[str] = set()
    for item in inputs:
        if item == "-" or (os.path.isfile(item)
                           and os.path.splitext(item)[1].lower() in LIST_SUFFIXES):
            for entry in _read_list(item):
                if os.path.isdir(entry):
                    _walk(entry, out, seen)
                else:
                    _add_explicit(entry, out, seen)
        elif os.path.isdir(item):
            _walk(item, out, seen)
        elif not os.path.exists(item) and _GLOB_CHARS & set(item):
            root = os.path.dirname(re.split(r"[*?\[]", item, maxsplit=1)[0]) or "."
            for path in sorted(glob.glob(item, recursive=True)):
                if os.path.isdir(path):
                    continue
                if not any(_is_hidden(p) for p in os.path.relpath(path, root).split(os.sep)):
                    _add_found(path, os.path.relpath(path, root), out, seen)
        else:
            _add_explicit(item, out, seen)
    for path in out.skipped:
        logger.info("not a video, skipped: %s", path)
    logger.info("discovered %d videos (%d other files skipped)", len(out.videos),
                len(out.skipped))
    return out
