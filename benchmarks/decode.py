"""Frame-ingest benchmark: vidsel (exact and keyframe modes) against decord, torchcodec, a naive
PyAV seek-per-frame loop, and ``ffmpeg -f null`` (the full-decode physical reference).

Tasks: uniform 8 / 32 / 128 frames and 1-fps candidates, on generated 60 s 720p and 1080p H.264
clips and on the real clips in ../shared/fixtures (when present). Before timing, every peer's
frames are checked against vidsel's exact frames (same frame, bit-exact at native size; peers
that disagree are reported as such and not ranked). Reports medians over repeats and ratios,
prints a table and writes JSON.

torchcodec 0.13.0 (its CPU build) needs torch 2.13 CPU, so it runs in its own virtual
environment under benchmarks/_data/torchcodec-venv (created on first use with --torchcodec;
needs the system FFmpeg libraries: apt-get install ffmpeg).

Usage:
    python benchmarks/decode.py                 # generated clips + real clips
    python benchmarks/decode.py --quick         # 720p only, fewer repeats
    python benchmarks/decode.py --torchcodec    # include torchcodec (builds its venv once)
"""

from __future__ import annotations

import sys

# This folder holds select.py (the selection benchmark), which would shadow the standard
# library's `select` module (used by subprocess) when a script here runs: drop the folder.
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    sys.path.pop(0)

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data"
RESULTS = ROOT / "benchmarks" / "results"
SHARED = Path(os.environ.get("VIDSEL_SHARED", ROOT.parent / "shared"))

REAL_CLIPS = [
    "clips/intelsamplevideos__one-by-one-person-detection.mp4",
    "clips/moviepy__1.mp4",
    "clips/codecpatchstream__demo.mp4",
    "derived/concat_multiscene_640x360_h264.mp4",
]

TC_SCRIPT = r"""
import json, sys, time, statistics, numpy as np
from torchcodec.decoders import VideoDecoder
path, out_npy, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
idx = json.loads(sys.argv[4])
times = []
for mode in ("exact", "approximate"):
    pass
res = {}
for mode in ("exact", "approximate"):
    ts = []
    for r in range(repeats + 1):
        t = time.perf_counter()
        d = VideoDecoder(path, seek_mode=mode, dimension_order="NHWC")
        frames = d.get_frames_at(idx).data.numpy()
        dt = time.perf_counter() - t
        if r:
            ts.append(dt)
    res[mode] = statistics.median(ts)
    if mode == "exact":
        np.save(out_npy, frames)
print(json.dumps(res))
"""


def make_clip(path: Path, width: int, height: int, seconds: int = 60, fps: int = 30) -> Path:
    """A 60 s H.264 clip with x264-like GOPs (keyint 250, 3 B-frames) and real texture motion."""
    if path.exists():
        return path
    from vidsel.synth import make_video

    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating {path.name} ...", flush=True)
    make_video(path, scene="pan", num_frames=seconds * fps, fps=fps, width=width, height=height,
               gop=250, bframes=3, crf=23, pan_px=2, preset="veryfast")
    return path


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (file cache, lazy imports)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def vidsel_exact(path: str, idx: np.ndarray) -> np.ndarray:
    from vidsel import VideoReader

    with VideoReader(path) as r:
        return r.get_frames(idx)


def vidsel_keyframe(path: str, idx: np.ndarray) -> np.ndarray:
    from vidsel import VideoReader

    with VideoReader(path) as r:
        return r.get_frames(idx, mode="keyframe")


def decord_frames(path: str, idx: np.ndarray) -> np.ndarray:
    import decord

    r = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0)
    return r.get_batch(idx.tolist()).asnumpy()


def pyav_naive(path: str, idx: np.ndarray) -> np.ndarray:
    """The common research-code loop: for each index, seek to its time and decode up to it."""
    import av

    out = []
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        pts = sorted(p.pts for p in c.demux(s) if p.size and p.pts is not None)
        for i in idx:
            target = pts[int(i)]
            c.seek(target, stream=s, backward=True)
            for f in c.decode(s):
                if f.pts is not None and f.pts >= target:
                    out.append(f.to_ndarray(format="rgb24"))
                    break
    return np.stack(out)


def ffmpeg_null(path: str) -> float | None:
    exe = shutil.which("ffmpeg")
    if not exe:
        return None
    cmd = [exe, "-v", "error", "-threads", "0", "-i", path, "-map", "0:v:0", "-f", "null", "-"]
    subprocess.run(cmd, check=True)
    ts = []
    for _ in range(2):
        t = time.perf_counter()
        subprocess.run(cmd, check=True)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def torchcodec_python(build: bool) -> Path | None:
    venv = DATA / "torchcodec-venv"
    py = venv / "bin" / "python"
    if py.exists():
        return py
    if not build:
        return None
    print("building torchcodec venv (torch 2.13 CPU + torchcodec 0.13.0) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--find-links", "/opt/wheels",
                        "torch==2.13.0", "torchcodec==0.13.0", "numpy"], check=False)
    return py if r.returncode == 0 else None


def torchcodec_run(py: Path, path: str, idx: np.ndarray, repeats: int
                   ) -> tuple[dict[str, float], np.ndarray] | None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "frames.npy"
        r = subprocess.run([str(py), "-c", TC_SCRIPT, path, str(out), str(repeats),
                            json.dumps(idx.tolist())], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"  torchcodec failed: {r.stderr.strip().splitlines()[-1:]}", flush=True)
            return None
        return json.loads(r.stdout.strip().splitlines()[-1]), np.load(out)


def same_frames(a: np.ndarray, b: np.ndarray) -> tuple[bool, float]:
    """(bit-exact, mean abs difference)."""
    if a.shape != b.shape:
        return False, float("inf")
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return bool(d.max() == 0), float(d.mean())


def bench_clip(path: Path, args: argparse.Namespace, tc_py: Path | None) -> list[dict]:
    from vidsel import VideoReader

    with VideoReader(path) as r:
        md = r.metadata
    n = md.num_frames
    print(f"\n{path.name}: {md.width}x{md.height} {md.codec}, {n} frames, "
          f"{md.duration_s:.1f} s, {len(md.keyframe_indices)} keyframes", flush=True)
    ffm = ffmpeg_null(str(path))
    rows = []
    tasks: list[tuple[str, np.ndarray]] = []
    for k in args.counts:
        if k <= n:
            tasks.append((f"uniform {k}", np.unique(np.round(np.linspace(0, n - 1, k))).astype(int)))
    with VideoReader(path) as r:
        tasks.append(("1 fps", r.fps_indices(1.0)))
    for task, idx in tasks:
        ref = vidsel_exact(str(path), idx)
        row: dict = {"clip": path.name, "size": f"{md.width}x{md.height}", "task": task,
                     "frames": len(idx), "ffmpeg_null_s": ffm, "peers": {}}
        t_exact = median_time(lambda idx=idx: vidsel_exact(str(path), idx), args.repeats)
        t_key = median_time(lambda idx=idx: vidsel_keyframe(str(path), idx), args.repeats)
        row["vidsel_exact_s"] = t_exact
        row["vidsel_keyframe_s"] = t_key
        peers: dict[str, Callable[[], np.ndarray]] = {}
        if len(idx) <= args.naive_max:  # the naive loop is O(frames x GOP): minutes beyond
            peers["pyav_naive"] = lambda idx=idx: pyav_naive(str(path), idx)
        try:
            import decord  # noqa: F401

            peers["decord"] = lambda idx=idx: decord_frames(str(path), idx)
        except ImportError:
            pass
        for name, fn in peers.items():
            try:
                exact, mad = same_frames(fn(), ref)
            except Exception as e:  # a peer that cannot read the file is reported, not ranked
                row["peers"][name] = {"error": f"{type(e).__name__}: {e}"[:200]}
                continue
            row["peers"][name] = {"agrees": exact, "mean_abs_diff": mad,
                                  "time_s": median_time(fn, args.repeats)}
        if tc_py is not None:
            got = torchcodec_run(tc_py, str(path), idx, args.repeats)
            if got is not None:
                times, frames = got
                exact, mad = same_frames(frames, ref)
                row["peers"]["torchcodec"] = {"agrees": exact, "mean_abs_diff": mad,
                                              "time_s": times["exact"]}
                row["peers"]["torchcodec_approx"] = {"agrees": exact, "mean_abs_diff": mad,
                                                     "time_s": times["approximate"]}
        agreeing = [p["time_s"] for p in row["peers"].values() if p.get("agrees")]
        row["fastest_peer_s"] = min(agreeing) if agreeing else None
        rows.append(row)
        peer_txt = "  ".join(f"{k}={v['time_s']:.3f}s" + ("" if v.get("agrees") else "(differs)")
                             for k, v in row["peers"].items() if "time_s" in v)
        print(f"  {task:12s} exact={t_exact:.3f}s keyframe={t_key:.3f}s  {peer_txt}", flush=True)
    return rows


def print_table(rows: list[dict]) -> None:
    print("\n| clip | task | vidsel exact | vidsel keyframe | fastest agreeing peer | exact / peer "
          "| exact / keyframe | decord | torchcodec | PyAV naive | ffmpeg -f null |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")

    def cell(row: dict, name: str) -> str:
        p = row["peers"].get(name)
        if not p:
            return "n/a"
        if "error" in p:
            return "fails"
        return f"{p['time_s']:.3f}" + ("" if p["agrees"] else " (differs)")

    for r in rows:
        fp = r["fastest_peer_s"]
        ratio = f"{r['vidsel_exact_s'] / fp:.2f}x" if fp else "n/a"
        ffm = f"{r['ffmpeg_null_s']:.2f}" if r["ffmpeg_null_s"] else "n/a"
        print(f"| {r['clip']} ({r['size']}) | {r['task']} | {r['vidsel_exact_s']:.3f} "
              f"| {r['vidsel_keyframe_s']:.3f} | {fp if fp is None else f'{fp:.3f}'} | {ratio} "
              f"| {r['vidsel_exact_s'] / r['vidsel_keyframe_s']:.1f}x | {cell(r, 'decord')} "
              f"| {cell(r, 'torchcodec')} | {cell(r, 'pyav_naive')} | {ffm} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--counts", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--quick", action="store_true", help="720p clip only, 2 repeats")
    ap.add_argument("--naive-max", type=int, default=40,
                    help="time the naive PyAV loop only up to this many frames")
    ap.add_argument("--no-real", action="store_true", help="skip ../shared/fixtures clips")
    ap.add_argument("--torchcodec", action="store_true",
                    help="include torchcodec (builds its own venv on first use)")
    ap.add_argument("--out", type=Path, default=RESULTS / "decode.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 2)
    clips = [make_clip(DATA / "pan_720p_60s.mp4", 1280, 720)]
    if not args.quick:
        clips.append(make_clip(DATA / "pan_1080p_60s.mp4", 1920, 1080))
    if not args.no_real and SHARED.is_dir():
        clips += [SHARED / "fixtures" / c for c in REAL_CLIPS if (SHARED / "fixtures" / c).exists()]
    tc_py = torchcodec_python(args.torchcodec)
    rows: list[dict] = []
    for clip in clips:
        rows += bench_clip(clip, args, tc_py)
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
            "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
            "repeats": args.repeats}
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
