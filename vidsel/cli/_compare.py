"""``vidsel compare``: codec vs uniform sampling at equal token budgets."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..codec import compare
from ..errors import VidselError
from ..methods import get_method
from ._common import (
    UsageError,
    add_verbosity,
    check_geometry,
    dump_json,
    format_table,
    output_failed,
    parse_int_list,
    parse_params,
    prepare_output,
    safe_component,
)
from ._discover import discover

logger = logging.getLogger(__name__)


def codec_options() -> frozenset[str]:
    """``--param`` names the codec side takes: the codec method's options, less those compare
    sets itself."""
    return frozenset(get_method("codec").options or ()) - {"index", "stream", "embedder"}

DESCRIPTION = """\
Spend the same token budget two ways, uniform whole frames and codec-aware patches (dense
anchors plus the most changing patches of many frames), and measure what the tokens buy: time
span covered, source frames touched, share of tokens on moving content and a hold-last
re-rendering PSNR (a model-free fidelity proxy, see docs/codec.md). With --question and
--embedder, a third row per budget is the query-aware codec selection (codec+mdp3: part of the
motion budget and the anchors follow the question). A folder compares every video in it and
adds the mean over videos."""

EPILOG = """\
examples:
  vidsel compare clip.mp4 --budgets 4,8,16,32
  vidsel compare clip.mp4 --json compare.json --plot compare.png
  vidsel compare videos/ --budgets 8,16 --json all.json --plot plots/
  vidsel compare clip.mp4 --question "when does the dog jump" --embedder hf:/models/siglip \
      -p relevance_share=0.5
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="codec vs uniform sampling at equal token budgets",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="VIDEO_OR_DIR")
    p.add_argument("--budgets", default="4,8,16,32",
                   help="budgets in frame-equivalents (default: %(default)s)")
    p.add_argument("--frame-size", type=int, default=392)
    p.add_argument("--patch-size", type=int, default=14)
    p.add_argument("--merge", type=int, default=2)
    p.add_argument("--eval-frames", type=int, default=240,
                   help="frames the fidelity proxy re-renders (default: %(default)s)")
    p.add_argument("--question", "-Q", help="adds the query-aware codec row (needs --embedder)")
    p.add_argument("--embedder", "-e", metavar="SPEC",
                   help="embedder scoring the question: a local model directory, "
                        "'hf:/path', 'open_clip:NAME@/ckpt' (see vidsel select --help)")
    p.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                   help="select_patches option for the codec side (camera=median, ...)")
    p.add_argument("--json", metavar="FILE", nargs="?", const="-",
                   help="write JSON to FILE (or stdout without FILE; then no table)")
    p.add_argument("--plot", metavar="PNG_OR_DIR",
                   help="save plots (needs matplotlib): a PNG for one video, a folder for many")
    add_verbosity(p, suppress=True)
    p.set_defaults(func=run)


def _mean_table(comparisons: list[Any]) -> str:
    keys = sorted({(r.budget_frames, r.method) for c in comparisons for r in c.rows},
                  key=lambda t: (t[0], t[1] != "uniform"))
    rows = []
    for b, m in keys:
        rs = [r for c in comparisons for r in c.rows if (r.budget_frames, r.method) == (b, m)]
        rows.append([b, m, f"{np.mean([r.span_fraction for r in rs]) * 100:.0f}%",
                     f"{np.mean([r.frames_touched for r in rs]):.1f}",
                     f"{np.mean([r.moving_share for r in rs]):.2f}",
                     f"{np.mean([r.psnr_db for r in rs]):.2f}", len(rs)])
    return format_table(rows, ["budget", "method", "span", "frames", "moving", "psnr_db",
                               "videos"])


def run(args: argparse.Namespace) -> int:
    budgets = parse_int_list(args.budgets)
    options = parse_params(args.param)
    # usage errors (exit 2) before any video is read
    check_geometry(args.frame_size, args.patch_size, args.merge)
    if args.eval_frames < 1:
        raise UsageError(f"--eval-frames {args.eval_frames} must be >= 1")
    if (args.question is None) != (args.embedder is None):
        raise UsageError("--question and --embedder go together (the query-aware row needs "
                         "both)")
    takes = codec_options()
    unknown = sorted(set(options) - takes)
    if unknown:
        raise UsageError(f"--param: the codec side does not take {unknown}; it takes "
                         f"{sorted(takes)}")
    src = Path(args.input)
    if src.is_dir():
        videos = [f.path for f in discover([args.input]).videos]
        if not videos:
            print(f"vidsel compare: no videos found in {src}")
            return 1
    else:
        videos = [args.input]
    multi = src.is_dir()
    plot_dir: Path | None = None
    if args.plot and multi:
        plot_dir = Path(args.plot)
        if plot_dir.suffix.lower() in (".png", ".pdf", ".svg", ".jpg"):
            raise UsageError("--plot must name a folder when comparing a folder of videos")
        prepare_output(plot_dir / "x.png", "plot folder")  # mkdir -p, or an OutputError
    to_stdout = args.json == "-"
    results: list[Any] = []
    failures: list[dict[str, Any]] = []
    for video in videos:
        try:
            comp = compare(video, budgets=budgets, patch_size=args.patch_size, merge=args.merge,
                           frame_size=args.frame_size, eval_frames=args.eval_frames,
                           question=args.question, embedder=args.embedder, **options)
        except Exception as e:
            if not multi or not isinstance(e, (VidselError, OSError)):
                raise
            failures.append({"path": video, "error": {"type": type(e).__name__,
                                                       "message": str(e)}})
            logger.warning("%s: %s: %s", video, type(e).__name__, e)
            continue
        results.append(comp)
        if not to_stdout:
            print(f"\n{comp.path}: {comp.num_frames} frames, {comp.duration_s:.1f} s, "
                  f"signal {comp.signal}, {comp.eval_frames} evaluation frames")
            print(comp.table())
        if args.plot:
            path = (plot_dir / f"{safe_component(Path(video).stem)}.compare.png"
                    if plot_dir is not None else Path(args.plot))
            prepare_output(path, "plot")
            try:
                comp.plot(path)
            except OSError as e:
                raise output_failed(path, e, "plot") from None
            logger.info("wrote %s", path)
    if multi and results and not to_stdout:
        print(f"\nmean over {len(results)} videos:")
        print(_mean_table(results))
    if args.json:
        payload: Any = results[0].to_dict() if not multi else {
            "videos": [c.to_dict() for c in results], "failures": failures}
        dump_json(payload, args.json)
    for f in failures:
        print(f"FAILED {f['path']}: {f['error']['type']}: {f['error']['message']}")
    return 1 if failures else 0
