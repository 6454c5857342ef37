"""vidsel.qwen.process_vision_info against qwen-vl-utils' on the same conversations.

Cases: each real clip of ../shared/fixtures listed below (when present) and a generated 60 s
720p H.264 clip, at qwen-vl-utils' default sampling (``fps=2``) and at ``nframes=32``. Before
timing, the two outputs are checked equal: frames with ``torch.equal``, metadata key by key
(``video_backend`` aside), ``video_kwargs`` alike; a case where they differ is reported and not
ranked. qwen-vl-utils reads with the backend it picks itself (decord here: torchcodec is not
installed; ``FORCE_QWENVL_VIDEO_READER`` is left unset). Then ``selector="codec"`` at the same
budget, vidsel only (no peer has it). Reports medians over repeats and the ratio vidsel / peer,
prints a table and writes benchmarks/results/qwen.json.

Usage:
    python benchmarks/qwen.py              # all cases, 3 repeats
    python benchmarks/qwen.py --quick      # the generated clip only, 2 repeats
"""

from __future__ import annotations

import sys

# This folder holds select.py, which would shadow the standard library's `select` module.
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    sys.path.pop(0)

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED = Path(os.environ.get("VIDSEL_SHARED", ROOT.parent / "shared"))

REAL_CLIPS = [
    "clips/intelsamplevideos__one-by-one-person-detection.mp4",
    "clips/moviepy__1.mp4",
    "clips/codecpatchstream__demo.mp4",
    "derived/concat_multiscene_640x360_h264.mp4",
]
SAMPLINGS: dict[str, dict[str, Any]] = {"fps=2": {}, "nframes=32": {"nframes": 32}}


def _conversation(path: str, **keys: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "video", "video": path, **keys},
                                         {"type": "text", "text": "What happens?"}]}]


def _median_s(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _quiet(fn: Callable[[], Any]) -> Callable[[], Any]:
    """qwen-vl-utils prints its backend to stderr on first use."""
    def call() -> Any:
        with contextlib.redirect_stderr(io.StringIO()):
            return fn()
    return call


def _equal(ours: Any, theirs: Any) -> str:
    """'' when the outputs are equal (video_backend aside), else what differs."""
    import torch

    (_, v1, k1), (_, v2, k2) = ours, theirs
    (f1, m1), (f2, m2) = v1[0], v2[0]
    if f1.shape != f2.shape:
        return f"shapes {tuple(f1.shape)} vs {tuple(f2.shape)}"
    if not torch.equal(f1, f2):
        return f"pixels differ (max {float((f1 - f2).abs().max()):.0f})"
    m2 = {**m2, "frames_indices": [int(i) for i in m2["frames_indices"]]}
    diff = [k for k in m2 if k != "video_backend" and m1.get(k) != m2[k]]
    if diff:
        return "metadata " + ", ".join(f"{k}: {m1.get(k)} vs {m2[k]}" for k in diff)
    return "" if k1 == k2 else f"video_kwargs {k1} vs {k2}"


def run_case(name: str, path: str, repeats: int) -> list[dict[str, Any]]:
    import qwen_vl_utils

    from vidsel import qwen

    rows = []
    for label, keys in SAMPLINGS.items():
        conv = _conversation(path, **keys)
        ours = lambda c=conv: qwen.process_vision_info(  # noqa: E731
            c, return_video_kwargs=True, return_video_metadata=True)
        theirs = _quiet(lambda c=conv: qwen_vl_utils.process_vision_info(
            c, return_video_kwargs=True, return_video_metadata=True))
        row: dict[str, Any] = {"clip": name, "sampling": label}
        try:
            first_ours, first_theirs = ours(), theirs()
        except Exception as exc:  # a peer failing on a file is a result, not a crash
            row["error"] = f"{type(exc).__name__}: {exc}"[:200]
            rows.append(row)
            continue
        frames = first_ours[1][0][0]
        row["frames"] = int(frames.shape[0])
        row["size"] = f"{frames.shape[3]}x{frames.shape[2]}"
        row["mismatch"] = _equal(first_ours, first_theirs)
        row["vidsel_s"] = _median_s(ours, repeats)
        row["qwen_vl_utils_s"] = _median_s(theirs, repeats)
        row["ratio"] = row["vidsel_s"] / row["qwen_vl_utils_s"]
        codec = _conversation(path, selector="codec", **keys)
        row["vidsel_codec_s"] = _median_s(lambda c=codec: qwen.process_vision_info(c), repeats)
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"{row['clip'][:44]:44} {row['sampling']:10} error: {row['error']}"
    flag = "" if not row["mismatch"] else f"  NOT EQUAL: {row['mismatch']}"
    return (f"{row['clip'][:44]:44} {row['sampling']:10} {row['frames']:4d} {row['size']:>9} "
            f"{row['vidsel_s']:8.2f} {row['qwen_vl_utils_s']:8.2f} {row['ratio']:6.2f}x "
            f"{row['vidsel_codec_s']:8.2f}{flag}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the generated clip only, 2 repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--out", default=str(RESULTS / "qwen.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    repeats = args.repeats or (2 if args.quick else 3)
    from vidsel.synth import make_video

    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        gen = str(Path(tmp) / "gen_720p_60s.mp4")
        make_video(gen, scene="moving_box", num_frames=1800, fps=30, width=1280, height=720,
                   gop=250)
        cases.append(("generated 720p 60 s H.264 (GOP 250)", gen))
        if not args.quick:
            cases += [(c, str(SHARED / "fixtures" / c)) for c in REAL_CLIPS
                      if (SHARED / "fixtures" / c).exists()]
        print(f"{'clip':44} {'sampling':10} {'T':>4} {'size':>9} {'vidsel':>8} "
              f"{'qwen-vl':>8} {'ratio':>7} {'codec':>8}   (seconds, median of {repeats})")
        rows = [r for name, path in cases for r in run_case(name, path, repeats)]
    ranked = [r for r in rows if "ratio" in r and not r["mismatch"]]
    summary = {"median_ratio": statistics.median(r["ratio"] for r in ranked) if ranked else None,
               "cases_equal": len(ranked), "cases": len(rows)}
    print(f"vidsel / qwen-vl-utils, median over {len(ranked)} equal cases: "
          f"{summary['median_ratio']:.2f}x" if ranked else "no equal case")
    out = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "python": platform.python_version()},
           "versions": {p: version(p) for p in ("vidsel", "qwen-vl-utils", "decord", "av",
                                                "torch")},
           "repeats": repeats, "rows": rows, "summary": summary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
