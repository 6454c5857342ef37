"""Helpers shared by the subcommands: logging set-up, argument parsing, safe output paths,
JSON output, text tables."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._json import json_safe
from ..errors import InvalidArgumentError

__all__ = [
    "UsageError",
    "add_verbosity",
    "configure_logging",
    "confined_path",
    "dump_json",
    "format_table",
    "parse_int_list",
    "parse_params",
    "safe_component",
    "sparkline",
]

logger = logging.getLogger(__name__)

_HANDLER_NAME = "vidsel-cli"
#: Loggers whose level -v / -q set (the model package logs under its own name).
OWN_LOGGERS = ("vidsel", "ovis_model")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UsageError(InvalidArgumentError):
    """Bad command-line usage found after parsing (exit code 2, like argparse's own).

    An :class:`~vidsel.errors.InvalidArgumentError` (so also a ``VidselError`` and a
    ``ValueError``): code that calls a subcommand's helpers catches it like any bad argument."""


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


def log_level(level: int) -> int:
    """Logging level of the ``vidsel`` loggers for a verbosity (0 = warnings)."""
    return {-2: logging.CRITICAL, -1: logging.ERROR, 0: logging.WARNING,
            1: logging.INFO}.get(max(-2, min(level, 2)), logging.DEBUG)


def configure_logging(level: int) -> None:
    """Send vidsel's (and ``ovis_model``'s) log records to stderr at the level for ``level``
    (verbosity).

    The command line is the only place that configures logging. Third-party loggers stay at
    WARNING unless ``-vvv``. Calling it again (tests call ``main`` many times) replaces the
    handler instead of stacking a new one.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == _HANDLER_NAME:
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    fmt = "%(levelname)s %(name)s: %(message)s" if level >= 1 else "vidsel: %(levelname)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if level >= 3 else logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(log_level(level))


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
    if not values or any(v <= 0 for v in values):
        raise UsageError(f"{name} {text!r} must name at least one positive integer")
    return values


def int_or_str(text: str) -> int | str:
    """argparse type: an int when the text is one, else the text (``128`` / ``fps:1``)."""
    try:
        return int(text)
    except ValueError:
        return text


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


# -- output -----------------------------------------------------------------------------------


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """JSON text through vidsel's one converter (:func:`vidsel._json.json_safe`: numpy values
    and paths allowed, NaN becomes null)."""
    return json.dumps(json_safe(obj), indent=indent, ensure_ascii=False, allow_nan=False)


def dump_json(obj: Any, path: str | None) -> None:
    """Write ``obj`` as indented JSON to ``path``, or to stdout for None / ``"-"``."""
    text = dumps(obj, indent=1)
    if path in (None, "-"):
        print(text)
        return
    p = Path(str(path))
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, p)
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
