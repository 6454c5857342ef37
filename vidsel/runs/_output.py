"""What every long run shares with the command line: its usage error, output files whose
folders are created, one JSON encoder, and the logging set-up of the CLI and its workers."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .._json import json_safe
from ..errors import InvalidArgumentError, VidselError

__all__ = [
    "HANDLER_NAME",
    "OWN_LOGGERS",
    "OutputError",
    "UsageError",
    "configure_logging",
    "dumps",
    "log_level",
    "output_failed",
    "prepare_output",
]

#: Name of the stderr handler :func:`configure_logging` installs (replaced, never stacked).
HANDLER_NAME = "vidsel-cli"
#: Loggers whose level -v / -q set (the model package logs under its own name).
OWN_LOGGERS = ("vidsel", "ovis_model")


class UsageError(InvalidArgumentError):
    """Bad command-line usage found after parsing (exit code 2, like argparse's own), or a
    run asked to do something its options exclude (e.g. write into a results file that
    already has results without resuming).

    An :class:`~vidsel.errors.InvalidArgumentError` (so also a ``VidselError`` and a
    ``ValueError``): code that calls a subcommand's helpers catches it like any bad argument."""


class OutputError(VidselError, OSError):
    """An output file cannot be written where the user asked (its folder cannot be created,
    or the file system refuses it): exit code 1 with one line naming the path."""


def prepare_output(path: str | os.PathLike[str], what: str = "output") -> Path:
    """The path of an output file, with its folders created (``mkdir -p``: every output flag
    of the command line, ``-o``, ``--json FILE``, ``--out``, ``--contact-sheet``, ``--plot``,
    does this).

    Raises:
        OutputError: the folders cannot be created (e.g. ``/proc/x/y.json``, no permission).
    """
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot write the {what} {str(p)!r}: cannot create its folder "
                          f"{str(p.parent)!r} ({e.strerror or e})") from None
    return p


def output_failed(path: str | os.PathLike[str], exc: OSError, what: str = "output") -> OutputError:
    """An :class:`OutputError` for an ``OSError`` raised while writing ``path``."""
    return OutputError(f"cannot write the {what} {str(path)!r}: {exc.strerror or exc}")


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """JSON text through vidsel's one converter (:func:`vidsel._json.json_safe`: numpy values
    and paths allowed, NaN becomes null)."""
    return json.dumps(json_safe(obj), indent=indent, ensure_ascii=False, allow_nan=False)


# -- logging ----------------------------------------------------------------------------------


def log_level(level: int) -> int:
    """Logging level of the ``vidsel`` loggers for a verbosity (0 = warnings)."""
    return {-2: logging.CRITICAL, -1: logging.ERROR, 0: logging.WARNING,
            1: logging.INFO}.get(max(-2, min(level, 2)), logging.DEBUG)


def configure_logging(level: int) -> None:
    """Send vidsel's (and ``ovis_model``'s) log records to stderr at the level for ``level``
    (verbosity).

    The command line and the workers it starts (vidsel.runs executors) are the only places
    that configure logging. Third-party loggers stay at
    WARNING unless ``-vvv``. Calling it again (tests call ``main`` many times) replaces the
    handler instead of stacking a new one.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == HANDLER_NAME:
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    fmt = "%(levelname)s %(name)s: %(message)s" if level >= 1 else "vidsel: %(levelname)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if level >= 3 else logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(log_level(level))
