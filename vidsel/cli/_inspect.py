"""``vidsel inspect VIDEO``: metadata, GOP structure, frame types, bit-cost and motion."""

from __future__ import annotations

import argparse
import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..codec import MV_CODECS, motion_vectors, packet_index
from ..io import VideoReader
from ..optional import require
from ._common import (
    add_verbosity,
    dump_json,
    format_table,
    output_failed,
    prepare_output,
    sparkline,
    warnings_once,
)

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Describe a video the way vidsel sees it: stream metadata (frame count and timestamps from the
packets, not the header), GOP structure and picture types (I/P/B, parsed from the bitstream for
H.264 and MPEG-1/2/4), the bit cost of every frame and, for codecs that export motion vectors,
the motion over time. Text by default; --json and --plot for more."""

EPILOG = """\
examples:
  vidsel inspect clip.mp4
  vidsel inspect clip.mp4 --frames | less          # one line per frame
  vidsel inspect clip.mp4 --json info.json --plot timeline.png
"""

TIMELINE_WIDTH = 64


def add_parser(sub: Any) -> None:
    p = sub.add_parser("inspect", help="metadata, GOPs, frame types, bit-cost and motion",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--frames", action="store_true", help="print one line per frame")
    p.add_argument("--no-motion", action="store_true",
                   help="skip the motion-vector pass (no decoding at all)")
    p.add_argument("--json", metavar="FILE", nargs="?", const="-",
                   help="write JSON (per-frame arrays included) to FILE, or stdout")
    p.add_argument("--plot", metavar="PNG", help="save timelines as an image (matplotlib)")
    add_verbosity(p, suppress=True)
    p.set_defaults(func=run)


def _gop_stats(index: Any) -> dict[str, Any]:
    starts = index.gop_starts
    bounds = np.append(starts, index.num_frames)
    lengths = np.diff(bounds) if len(starts) else np.array([index.num_frames])
    secs = index.timestamps_s
    gop_s = [float(secs[min(b, len(secs) - 1)] - secs[a])
             for a, b in itertools.pairwise(bounds.tolist())]
    return {"count": len(starts), "length_frames": {"min": int(lengths.min()),
                                                     "median": float(np.median(lengths)),
                                                     "max": int(lengths.max())},
            "length_s_median": float(np.median(gop_s)) if gop_s else 0.0,
            "leading_frames_before_first_keyframe": int(starts[0]) if len(starts) else
            index.num_frames}


def _motion(path: str, index: Any) -> dict[str, Any] | None:
    if index.codec not in MV_CODECS:
        return None
    mf = motion_vectors(path, index=index)
    mag = mf.magnitude()  # (T, Gh, Gw)
    cov = mf.coverage
    mean_mag = (mag * cov).sum(axis=(1, 2)) / (cov.sum(axis=(1, 2)) + 1e-9)
    return {"frame_indices": mf.indices.tolist(),
            "pict_type": mf.pict_type.tolist(),
            "mean_magnitude_px": [round(float(v), 4) for v in mean_mag],
            "intra_share": [round(float(v), 4) for v in mf.intra_share],
            "block": mf.block, "elapsed_s": round(mf.elapsed_s, 4)}


def run(args: argparse.Namespace) -> int:
    # the reader, the packet index and the motion pass each read the file: a damaged or
    # truncated file is reported once, not once per pass
    with warnings_once():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    with VideoReader(args.video) as reader:
        md = reader.metadata
    index = packet_index(args.video)
    gops = _gop_stats(index)
    motion = None if args.no_motion else _motion(args.video, index)
    sizes = index.size.astype(np.float64)
    dur = max(md.duration_s, 1e-9)
    per_type = {t: {"frames": int((index.pict_type == t).sum()),
                    "mean_bytes": float(sizes[index.pict_type == t].mean())}
                for t in sorted(set(index.pict_type.tolist()))}
    info = {"metadata": md.summary(), "bitrate_kbps": float(sizes.sum() * 8 / dur / 1000),
            "gops": gops, "types": per_type, "pict_type_source": index.pict_type_source,
            "packets": index.to_dict(), "motion": motion}
    to_stdout = args.json == "-"
    if not to_stdout:  # -q quiets logs and progress, never the result
        print(_text(args.video, md, index, info, motion))
        if args.frames:
            rows = [[i, int(index.pts[i]), f"{index.timestamps_s[i]:.3f}", index.pict_type[i],
                     "K" if index.is_keyframe[i] else "", int(index.size[i]),
                     int(index.gop_index[i])] for i in range(index.num_frames)]
            print(format_table(rows, ["frame", "pts", "time_s", "type", "key", "bytes", "gop"]))
    if args.json:
        dump_json(info, args.json)
    if args.plot:
        _plot(args.plot, md, index, motion)
    return 0


def _text(path: str, md: Any, index: Any, info: dict[str, Any],
          motion: dict[str, Any] | None) -> str:
    g = info["gops"]
    lines = [
        f"{path}",
        f"  stream     #{md.stream_index} {md.codec} {md.pix_fmt} {md.width}x{md.height}"
        + (f" (coded {md.coded_width}x{md.coded_height}, rotation {md.rotation})"
           if md.rotation else ""),
        f"  frames     {md.num_frames} (header says {md.header_num_frames or 'nothing'}), "
        f"{md.fps:.3f} fps{' (variable)' if md.variable_frame_rate else ''}, "
        f"{md.duration_s:.2f} s from {md.start_time_s:.3f} s"
        + (", TRUNCATED" if md.truncated else ""),
        f"  bitrate    {info['bitrate_kbps']:.0f} kbit/s",
        f"  GOPs       {g['count']}: {g['length_frames']['min']}-{g['length_frames']['max']} "
        f"frames (median {g['length_frames']['median']:g}, {g['length_s_median']:.2f} s)",
        "  types      " + ", ".join(f"{t} {v['frames']} (mean {v['mean_bytes'] / 1024:.1f} KiB)"
                                   for t, v in info["types"].items())
        + f" [{index.pict_type_source}]",
    ]
    strip = "".join(index.pict_type[:TIMELINE_WIDTH].tolist())
    lines.append(f"  first frames {strip}{'...' if index.num_frames > TIMELINE_WIDTH else ''}")
    w = min(TIMELINE_WIDTH, index.num_frames)
    bins = np.array_split(np.arange(index.num_frames), w)
    keys = "".join("|" if index.is_keyframe[b].any() else " " for b in bins)
    lines.append(f"  bit cost   {sparkline(index.size.tolist(), w)}")
    lines.append(f"  keyframes  {keys}")
    if motion is not None:
        full = np.zeros(index.num_frames)
        full[np.asarray(motion["frame_indices"], dtype=np.int64)] = motion["mean_magnitude_px"]
        lines.append(f"  motion     {sparkline(full.tolist(), w)}  (mean vector length, px; "
                     f"max {max(motion['mean_magnitude_px'] or [0]):.1f})")
    else:
        lines.append("  motion     skipped (--no-motion)" if index.codec in MV_CODECS else
                     f"  motion     n/a: {index.codec} exports no motion vectors")
    lines.append(f"  timeline   0 s{' ' * max(1, w - 10)}{md.duration_s:.1f} s")
    return "\n".join(lines)


def _plot(path: str, md: Any, index: Any, motion: dict[str, Any] | None) -> None:
    # a bare Figure: no pyplot state, no backend switch
    Figure = require("matplotlib.figure", "--plot", extra="plot").Figure

    n = 2 if motion is not None else 1
    fig = Figure(figsize=(10, 2.4 * n + 0.4))
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)
    ax = axes[0, 0]
    colours = {"I": "tab:red", "P": "tab:blue", "B": "tab:green", "S": "tab:purple"}
    t = index.timestamps_s - index.timestamps_s[0]
    for kind, colour in colours.items():
        sel = index.pict_type == kind
        if sel.any():
            ax.bar(t[sel], index.size[sel] / 1024, width=1.0 / max(md.fps, 1e-9),
                   color=colour, label=kind)
    for s in t[index.gop_starts]:
        ax.axvline(s, color="0.3", lw=0.6, alpha=0.5)
    ax.set_ylabel("KiB / frame")
    ax.set_title(f"{Path(md.path).name}: bit cost per frame (lines: keyframes)", fontsize=9)
    ax.legend(fontsize=8, ncol=4)
    if motion is not None:
        ax2 = axes[1, 0]
        fi = np.asarray(motion["frame_indices"], dtype=np.int64)
        ax2.plot(t[fi], motion["mean_magnitude_px"], color="tab:orange", lw=1.2,
                 label="mean vector length (px)")
        ax2b = ax2.twinx()
        ax2b.plot(t[fi], motion["intra_share"], color="0.5", lw=0.8, ls="--",
                  label="intra share")
        ax2b.set_ylim(0, 1.05)
        ax2.set_ylabel("px")
        ax2b.set_ylabel("intra share")
        ax2.legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("time (s)")
    fig.tight_layout()
    out = prepare_output(path, "plot")
    try:
        fig.savefig(out, dpi=110)
    except OSError as e:
        raise output_failed(out, e, "plot") from None
