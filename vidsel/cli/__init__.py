"""The ``vidsel`` command line (also ``python -m vidsel``).

Subcommands (one module each, registered in :data:`SUBCOMMANDS`; optional third-party
dependencies such as torch, matplotlib, ray and tqdm are imported only when a command uses
them, so ``vidsel --help`` is fast):

- ``vidsel demo``     generate a sample video and run selection end to end;
- ``vidsel select``   what a model sees of one video for a question, by any method of
  :mod:`vidsel.methods`;
- ``vidsel batch``    a folder / glob / list of videos to a resumable JSON-lines file, in
  parallel (local processes or Ray);
- ``vidsel compare``  codec vs uniform sampling at equal token budgets;
- ``vidsel eval``     what a selection does to a model's answers: benchmark x methods x
  budgets through a model, resumable, and ``vidsel eval report`` for the table and plot;
- ``vidsel inspect``  metadata, GOP structure, frame types, bit-cost and motion timelines.

Exit codes: 0 success; 1 an input failed (bad video, missing model, some videos of a batch);
2 usage error; 130 interrupted; 141 (quietly) when the reader of stdout closed it (``| head``). This is the only place vidsel configures logging (``-v``/``-q``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from .. import __version__
from .._progress import enable_progress, progress_enabled
from ..errors import VidselError
from ..methods import load_plugins
from ..registry import Registry
from ..runs import EXECUTORS, register_executor
from . import _batch, _compare, _demo, _eval, _inspect, _select
from ._common import UsageError, add_verbosity, configure_logging, verbosity, warnings_once

__all__ = ["EXECUTORS", "SUBCOMMANDS", "build_parser", "main", "register_executor",
           "register_subcommand"]

logger = logging.getLogger(__name__)

#: Subcommands by name: ``add_parser(subparsers)``, which adds the command's parser and sets
#: ``func`` (``func(args) -> exit code``) as its default.
SUBCOMMANDS: Registry[Callable[[Any], None]] = Registry("subcommand")


def register_subcommand(name: str, add_parser: Callable[[Any], None], *,
                        overwrite: bool = False) -> None:
    """Add a subcommand (``--help`` lists them sorted)."""
    SUBCOMMANDS.register(name, add_parser, overwrite=overwrite)


for _module in (_batch, _compare, _demo, _eval, _inspect, _select):
    register_subcommand(_module.__name__.rsplit("._", 1)[1], _module.add_parser)

EPILOG = """\
examples:
  vidsel demo                                   # sample video, uniform + codec selection
  vidsel select talk.mp4                        # no weights needed: uniform frames
  vidsel select talk.mp4 --method uniform --budget 8 --contact-sheet sheet.png
  vidsel select talk.mp4 -Q "when is the graph drawn?" --embedder hf:/models/siglip --json
  vidsel select talk.mp4 --plugin mypkg.methods --method mine     # a method of your own
  vidsel batch videos/ --out results.jsonl --method codec --budget 8 --resume
  vidsel compare clip.mp4 --budgets 4,8,16,32 --plot compare.png
  vidsel inspect clip.mp4 --plot timeline.png
  vidsel eval --dataset charades-sta --annotations test.txt --videos Charades/ \\
      --model hf:/models/qwen2.5-vl --methods uniform,codec --budgets 4,8 --out runs/c.jsonl
  vidsel eval report runs/*.jsonl --plot runs/grid.png

A default embedder, set once: VIDSEL_EMBEDDER=SPEC, or  embedder = "SPEC"  in
~/.config/vidsel/config.toml ($XDG_CONFIG_HOME); then 'vidsel select talk.mp4 -Q "..."' runs mdp3.
Run 'vidsel COMMAND --help' for the options of a command.
"""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="vidsel",
        description="Choose which frames / pixels of a long video a vision-language model sees.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vidsel {__version__}")
    add_verbosity(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for _name, add_parser in SUBCOMMANDS.items():
        add_parser(sub)
    return parser


def _load_plugins(argv: Sequence[str]) -> None:
    """Import the ``--plugin`` modules named on the command line and the installed
    ``vidsel.methods`` entry points, so their methods are ``--method`` choices."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    known, _ = pre.parse_known_args(list(argv))
    load_plugins(known.plugin)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (never calls ``sys.exit`` itself)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        _load_plugins(argv)
    except VidselError as e:
        print(f"vidsel: error: {e}", file=sys.stderr)
        return 2
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help / --version (0) or a usage error (2)
        return int(e.code) if isinstance(e.code, int) else (0 if e.code is None else 2)
    level = verbosity(args)
    configure_logging(level)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    # progress bars (decoding, embedding, compare) on stderr when a person watches it
    previous = progress_enabled(None)
    enable_progress(level >= 0 and _isatty(sys.stderr))
    try:
        with warnings_once():  # a truncated file is said once, not by every pass over it
            rc = int(args.func(args))
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return rc
    except BrokenPipeError:
        return _stdout_closed()
    except UsageError as e:
        print(f"vidsel {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vidsel {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if level >= 1 or not isinstance(e, (VidselError, OSError)):
            traceback.print_exc()
        print(f"vidsel {args.command}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        enable_progress(previous)  # main() may run again in this process (tests, notebooks)


#: Exit code when the reader of stdout went away (``vidsel inspect x --frames | head``): what
#: the shell reports for a program killed by SIGPIPE (128 + 13), quietly, like ``cat``.
EXIT_BROKEN_PIPE = 141


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _stdout_closed() -> int:
    """stdout's reader closed the pipe: print nothing more, and keep the interpreter's final
    flush of stdout from reporting the broken pipe too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests)
        pass
    return EXIT_BROKEN_PIPE
