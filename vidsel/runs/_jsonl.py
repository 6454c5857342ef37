"""The results file of ``vidsel batch`` and ``vidsel eval``: append-only JSON lines, crash-safe, resumable.

Guarantees:

- Only the parent process writes. Each record is one complete line written with a single
  ``os.write`` on an ``O_APPEND`` descriptor, then ``fsync``: a reader never sees half a record
  from a live run, and a kill can at worst leave one torn *last* line.
- Opening for ``--resume`` drops such a torn last line (truncating the file to the last complete
  line) and loads the finished records by key; records are never duplicated because a key that
  is done is never dispatched again.
- An exclusive ``flock`` on the file keeps two batches from writing the same results.
- ``--retry-failed`` rewrites the file atomically (temporary file + ``os.replace``) without the
  failure records that are about to be retried, so every key keeps exactly one line. A results
  file that is a symbolic link stays one: the rewrite replaces the link's target.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ..errors import VidselError
from ._output import UsageError, dumps, output_failed, prepare_output

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock
    fcntl = None  # type: ignore[assignment]

__all__ = ["ResultsFile", "ResultsWriteError", "read_records"]

logger = logging.getLogger(__name__)


class ResultsWriteError(VidselError, OSError):
    """A record could not be written completely (e.g. a full disk); the file is rolled back."""


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete, parseable record of a results file, in order (torn lines skipped)."""
    out = []
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


class ResultsFile:
    """An open, locked results file.

    Args:
        path: the ``.jsonl`` file.
        mode: ``"new"`` (fail if it has records), ``"resume"`` (keep and skip finished ones) or
            ``"overwrite"`` (start empty).
        fsync: fsync after every record (durable against power loss; off for throughput).

    Attributes:
        records: key -> the latest record of that key found when opening (resume only).
        dropped_bytes: size of a torn last line that was removed on opening.
    """

    def __init__(self, path: str | os.PathLike[str], *, mode: str = "new",
                 fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.records: dict[str, dict[str, Any]] = {}
        self.dropped_bytes = 0
        prepare_output(self.path, "results file")  # mkdir -p, as every output of the CLI
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as e:  # e.g. /proc/x.jsonl, a read-only folder, a folder at the name
            raise output_failed(self.path, e, "results file") from None
        try:
            self._lock()
            if mode == "overwrite":
                os.ftruncate(self._fd, 0)
            elif mode == "resume":
                self._load()
            elif os.fstat(self._fd).st_size > 0:
                raise UsageError(f"{self.path} already has results; pass --resume to continue "
                                 f"it or --overwrite to start again")
        except BaseException:
            os.close(self._fd)
            raise

    def _lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{self.path} is being written by another vidsel run") from None

    def _load(self) -> None:
        size = os.fstat(self._fd).st_size
        data = os.pread(self._fd, size, 0) if size else b""
        end = data.rfind(b"\n") + 1  # bytes of complete lines
        if end < len(data):
            self.dropped_bytes = len(data) - end
            logger.warning("%s: dropping a torn last line (%d bytes) left by an interrupted run",
                           self.path, self.dropped_bytes)
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        bad = 0
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key = rec["key"]
            except (json.JSONDecodeError, KeyError, TypeError):
                bad += 1
                continue
            self.records[str(key)] = rec
        if bad:
            logger.warning("%s: ignored %d unreadable lines", self.path, bad)

    def done(self, key: str, *, retry_failed: bool = False) -> bool:
        """Whether ``key`` has a record that needs no rerun."""
        rec = self.records.get(key)
        if rec is None:
            return False
        return not (retry_failed and rec.get("status") != "ok")

    def drop(self, keys: Collection[str]) -> int:
        """Rewrite the file atomically without the records of ``keys``; returns lines removed."""
        keys = set(keys)
        if not keys:
            return 0
        size = os.fstat(self._fd).st_size
        lines = os.pread(self._fd, size, 0).splitlines(keepends=True)
        kept, removed = [], 0
        for line in lines:
            try:
                k = json.loads(line).get("key")
            except (json.JSONDecodeError, AttributeError):
                k = None
            if k in keys:
                removed += 1
            else:
                kept.append(line)
        # a symlinked results file stays a link: rewrite its target, beside the target
        target = Path(os.path.realpath(self.path))
        tmp = target.with_name(target.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):  # a stale one (or a planted link) goes
            os.unlink(tmp)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(tmp, flags, 0o644), "wb") as fh:
            fh.writelines(kept)
            fh.flush()
            os.fsync(fh.fileno())
        # The lock belongs to the old inode: take it on the new file before it becomes visible.
        new_fd = os.open(tmp, os.O_RDWR | os.O_APPEND)
        old_fd, self._fd = self._fd, new_fd
        try:
            self._lock()
        except UsageError:  # pragma: no cover - nobody else knows the temporary name
            os.close(new_fd)
            self._fd = old_fd
            raise
        os.replace(tmp, target)
        os.close(old_fd)
        for k in keys:
            self.records.pop(k, None)
        return removed

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line (a single write; rolled back if the write fails).

        A Ctrl-C (or SystemExit) that arrives once the whole line is in the file, e.g. during
        the fsync, keeps the record: it is finished, and ``--resume`` must not redo it."""
        data = (dumps(record) + "\n").encode("utf-8")
        start = os.fstat(self._fd).st_size
        try:
            n = os.write(self._fd, data)
            if n != len(data):  # regular files only fall short on a full disk
                raise ResultsWriteError(f"short write to {self.path} ({n} of {len(data)} bytes)")
            if self.fsync:
                os.fsync(self._fd)
        except BaseException as e:
            if isinstance(e, Exception) or os.fstat(self._fd).st_size != start + len(data):
                os.ftruncate(self._fd, start)
            else:
                self.records[str(record["key"])] = record
            raise
        self.records[str(record["key"])] = record

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
