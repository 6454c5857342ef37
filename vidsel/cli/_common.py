"""Helpers shared by the subcommands: logging set-up, argument parsing, safe output paths,
JSON output, text tables."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, VidselError
from ..results import PatchConfig
from ..runs import (
    HANDLER_NAME,
    OutputError,
    UsageError,
    configure_logging,
    dumps,
    output_failed,
    prepare_output,
)

__all__ = [
    "FlagValueError",
    "OutputError",
    "UnsafeOutputError",
    "UsageError",
    "add_verbosity",
    "candidates_spec",
    "check_geometry",
    "configure_logging",
    "confined_path",
    "dump_json",
    "format_table",
    "parse_int_list",
    "parse_params",
    "positive_int",
    "prepare_output",
    "safe_component",
    "safe_write",
    "sparkline",
]

logger = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FlagValueError(UsageError, argparse.ArgumentTypeError):
    """A flag's value is out of range (raised by an argparse ``type=``; argparse shows the
    message and exits 2)."""


class UnsafeOutputError(VidselError, PermissionError):
    """vidsel refused to write an output file: a symbolic link (or something other than a
    regular file) sits where the file goes, so writing would land somewhere else."""


# -- logging ----------------------------------------------------------------------------------


def add_verbosity(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """Add ``-v/--verbose`` and ``-q/--quiet`` (counted). ``suppress`` keeps a subcommand's copy
    from overwriting what was given before the subcommand."""
    default: Any = argparse.SUPPRESS if suppress else 0
    group = parser.add_argument_group("logging")
    group.add_argument("-v", "--verbose", action="count", default=default,
                       help="more log output (-v info, -vv debug); tracebacks on errors")
    group.add_argument("-q", "--quiet", action="count", default=default,
                       help="less output (-q errors only, no progress bar)")


def verbosity(args: argparse.Namespace) -> int:
    """``verbose - quiet`` from the parsed arguments."""
    return int(getattr(args, "verbose", 0) or 0) - int(getattr(args, "quiet", 0) or 0)


# -- argument parsing -------------------------------------------------------------------------


def parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``["lam=0.2", "segment_size=32", "name=x"]`` -> dict; values are JSON when they parse
    (numbers, booleans, lists), else strings."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param {item!r} must look like NAME=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def parse_int_list(text: str, name: str = "--budgets") -> list[int]:
    """``"4,8,16"`` -> ``[4, 8, 16]`` (positive integers)."""
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise UsageError(f"{name} {text!r} must be comma-separated integers, e.g. 4,8,16") from None
    if not values:
        raise UsageError(f"{name} {text!r} must name at least one budget, e.g. 4,8,16")
    bad = [v for v in values if v <= 0]
    if bad:
        raise UsageError(f"{name} {text!r}: every budget must be a positive integer "
                         f"({bad[0]} is not)")
    return values


def int_or_str(text: str) -> int | str:
    """argparse type: an int when the text is one, else the text (``128`` / ``fps:1``)."""
    try:
        return int(text)
    except ValueError:
        return text


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (anything else is a usage error, exit code 2)."""
    try:
        value = int(text)
    except ValueError:
        raise FlagValueError(f"{text!r} is not an integer") from None
    if value < 1:
        raise FlagValueError(f"{value} must be >= 1")
    return value


_CANDIDATES = re.compile(r"^(all|uniform:[1-9]\d*|fps:(\d+(\.\d*)?|\.\d+))$")


def candidates_spec(text: str) -> int | str:
    """argparse type of ``--candidates``: ``N`` (>= 1), ``uniform:N``, ``fps:F`` (F > 0) or
    ``all``, checked before any video is read."""
    value = int_or_str(text.strip())
    if isinstance(value, int):
        if value < 1:
            raise FlagValueError(f"{value} must be >= 1")
        return value
    spec = value.lower()
    if not _CANDIDATES.match(spec) or (spec.startswith("fps:") and float(spec[4:]) <= 0):
        raise FlagValueError(
            f"{text!r} is not a candidate pool; use N, uniform:N, fps:F or all")
    return spec


def check_geometry(frame_size: int, patch_size: int, merge: int) -> None:
    """Refuse a patch geometry the model cannot use (a usage error, before any video is read).

    Raises:
        UsageError: e.g. ``--merge 0`` or a ``--frame-size`` that is not a multiple of
            ``patch_size * merge``.
    """
    try:
        PatchConfig.make(patch_size=patch_size, merge=merge, frame_size=frame_size)
    except InvalidArgumentError as e:
        raise UsageError(str(e)) from None


#: Words of io's warnings that a file ends early (one fact, said by each pass over the file).
_TRUNCATION_WORDS = ("truncated", "ends before its data", "the file ends inside")


class _OncePerMessage(logging.Filter):
    """Lets each warning through once (a truncated file is reported once, not by each of the
    passes that read it)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        msg = record.getMessage()
        head, sep, rest = msg.partition(": ")
        truncation = any(w in rest for w in _TRUNCATION_WORDS)
        key = f"{head}: truncated" if sep and truncation else msg
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


@contextlib.contextmanager
def warnings_once() -> Iterator[None]:
    """While active, the command line's log handler shows each warning once."""
    handlers = [h for h in logging.getLogger().handlers if h.get_name() == HANDLER_NAME]
    f = _OncePerMessage()
    for h in handlers:
        h.addFilter(f)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(f)


# -- output paths -----------------------------------------------------------------------------


def safe_component(name: str, *, max_len: int = 80) -> str:
    """One file-name component that cannot escape a directory.

    Separators, ``..``, leading dots, control and other unusual characters become ``_``; the
    result is never empty, ``.`` or ``..``, and at most ``max_len`` characters.

    >>> safe_component("../../etc/passwd")
    'etc_passwd'
    >>> safe_component("/abs/clip 1.mp4")
    'abs_clip_1.mp4'
    """
    text = _SAFE.sub("_", str(name).replace("\\", "/"))
    text = re.sub(r"\.{2,}", "_", text)
    text = re.sub(r"_+", "_", text).strip("._-")
    return text[:max_len] or "_"


def confined_path(root: str | os.PathLike[str], *parts: str) -> Path:
    """``root / safe(part) / ...``, guaranteed to lie inside ``root`` (symlinks resolved).

    Raises:
        UsageError: the path would escape ``root`` (e.g. a symlink inside it points out).
    """
    base = Path(root).resolve()
    path = base.joinpath(*(safe_component(p) for p in parts))
    real = path.resolve()
    if real != base and base not in real.parents:
        raise UsageError(f"refusing to write {str(path)!r}: it resolves outside {str(base)!r}")
    return path


def _refuse_non_regular(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeOutputError(f"refusing to write {str(path)!r}: it is a symbolic link "
                                f"(vidsel never writes through links; remove it)")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeOutputError(f"refusing to write {str(path)!r}: it exists and is not a "
                                f"regular file")


def safe_write(path: str | os.PathLike[str], write: Callable[[Any], None]) -> Path:
    """Write a file without ever following a symbolic link at its name.

    ``write(fh)`` fills a new temporary file, created exclusively in the same folder (so not
    through a link), which then replaces ``path`` (``os.replace`` swaps the directory entry,
    it never writes through a link either). A link or a non-regular file already at ``path`` is
    refused; a failed write (e.g. a full disk) leaves neither the temporary file nor a partial
    ``path`` behind.

    Raises:
        UnsafeOutputError: ``path`` is a symbolic link, a folder or another non-regular file.
        OSError: the write itself failed.
    """
    p = Path(path)
    _refuse_non_regular(p)
    tmp = p.with_name(f".{p.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    # O_EXCL: a new file, never an existing one or a link's target; permissions follow umask
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        _refuse_non_regular(p)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return p


# -- output -----------------------------------------------------------------------------------


def dump_json(obj: Any, path: str | None) -> None:
    """Write ``obj`` as indented JSON to ``path`` (atomically, never through a symbolic link:
    see :func:`safe_write`), or to stdout for None / ``"-"``."""
    text = dumps(obj, indent=1)
    if path in (None, "-"):
        print(text)
        return
    p = prepare_output(str(path), "JSON file")
    try:
        safe_write(p, lambda fh: fh.write((text + "\n").encode("utf-8")))  # never via a link
    except UnsafeOutputError:
        raise
    except OSError as e:
        raise output_failed(p, e, "JSON file") from None
    logger.info("wrote %s", p)


def format_table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


_BARS = " ▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 64) -> str:
    """Values resampled (max per bin) to ``width`` characters of block glyphs."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ""
    bins = np.array_split(v, min(width, v.size))
    m = np.array([b.max() for b in bins])
    top = float(m.max()) or 1.0
    return "".join(_BARS[int(x / top * (len(_BARS) - 1) + 0.5)] for x in m)


def fmt_seconds(s: float) -> str:
    return f"{s:.2f}s" if s < 120 else f"{s / 60:.1f}min"


def mapping_get(m: Mapping[str, Any], *keys: str) -> Any:
    """First present key of ``m`` (for CSV / JSON columns with alternative names)."""
    for k in keys:
        if k in m and m[k] not in (None, ""):
            return m[k]
    return None
