"""Benchmark vidsel.codec: packet index, motion vectors and end-to-end codec selection.

References: ``ffmpeg -f null`` full decode (the decode limit; "n/a" when ffmpeg is absent) and
the LLaVA-OneVision-2 tool ``codec-video-prep`` (PyPI; pins numpy<2, so it runs from its own
virtual environment under benchmarks/_data/peer-venv, created on first use; "n/a" when it cannot
be installed). Targets (issue 3): end-to-end selection at 32 frames <= 0.5x the peer,
motion-vector extraction <= 1.0x the full decode.

Usage::

    python benchmarks/codec.py                       # generated 60 s 720p/1080p + real clips
    python benchmarks/codec.py --quick               # 10 s clips, 1 repeat
    python benchmarks/codec.py --compare             # also the uniform-vs-codec table
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "benchmarks" / "_data"
RESULTS = ROOT / "benchmarks" / "results"
SHARED = Path(os.environ.get("VIDSEL_SHARED", ROOT.parent / "shared"))
REAL = ["derived/concat_multiscene_640x360_h264.mp4", "clips/codecpatchstream__demo.mp4",
        "clips/intelsamplevideos__bottle-detection.mp4"]


def timed(fn: Any, repeat: int) -> float:
    fn()  # warm-up (also checks it runs)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def generated(seconds: int, height: int) -> Path:
    from vidsel.synth import make_video

    width = height * 16 // 9
    path = DATA / f"pan_{seconds}s_{height}p.mp4"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.name} ...", flush=True)
        make_video(path, scene="pan", num_frames=seconds * 30, fps=30, width=width,
                   height=height, gop=250, bframes=3, preset="veryfast", pan_px=2)
    return path


def ffmpeg_null(path: Path, repeat: int) -> float | None:
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    cmd = [exe, "-v", "error", "-threads", "0", "-i", str(path), "-an", "-f", "null", "-"]
    return timed(lambda: subprocess.run(cmd, check=True), repeat)


def peer_cli() -> Path | None:
    venv = DATA / "peer-venv"
    exe = venv / "bin" / "codec-video-prep"
    if exe.exists():
        return exe
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "codec-video-prep"],
                       check=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as e:
        print(f"codec-video-prep could not be installed: {e}", flush=True)
        return None
    return exe if exe.exists() else None


def peer_time(exe: Path | None, path: Path, repeat: int) -> tuple[float | None, str]:
    if exe is None:
        return None, "not installed"
    out = DATA / "peer-out"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [str(exe), "--video", str(path), "--out_dir", str(out)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as e:
        err = getattr(e, "stderr", b"") or b""
        return None, f"failed: {err.decode(errors='replace')[-200:]}"
    return timed(lambda: subprocess.run(cmd, check=True, capture_output=True), repeat), "ok"


def fmt(x: float | None, unit: str = "s") -> str:
    return "n/a" if x is None else f"{x:.3f}{unit}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 s generated clips, 1 repeat")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--budget", type=int, default=32)
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--compare", action="store_true", help="uniform vs codec table")
    args = ap.parse_args(argv)
    from vidsel.codec import compare, motion_vectors, packet_index, select_patches

    secs = 10 if args.quick else 60
    repeat = 1 if args.quick else args.repeat
    clips = [generated(secs, 720), generated(secs, 1080)]
    clips += [SHARED / "fixtures" / r for r in REAL if (SHARED / "fixtures" / r).exists()]
    peer = None if args.no_peer else peer_cli()
    rows = []
    for clip in clips:
        idx = packet_index(clip)
        sel = select_patches(clip, budget_frames=args.budget)
        assert sel.num_tokens == min(sel.budget_tokens, idx.num_frames * 196), sel
        assert sel.pixels is not None
        row: dict[str, Any] = {
            "clip": clip.name, "frames": idx.num_frames, "duration_s": idx.duration_s,
            "codec": idx.codec, "signal": sel.signal,
            "packet_index_s": timed(lambda c=clip: packet_index(c), repeat),
            "motion_vectors_s": (timed(lambda c=clip: motion_vectors(c), repeat)
                                 if sel.signal == "motion_vectors" else None),
            "select_s": timed(lambda c=clip: select_patches(c, budget_frames=args.budget),
                              repeat),
            "ffmpeg_null_s": ffmpeg_null(clip, repeat),
        }
        row["peer_s"], row["peer_status"] = peer_time(peer, clip, repeat)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    print(f"| clip | frames | packet index | MVs (I+P) | MVs / decode | select@{args.budget} | "
          "ffmpeg -f null | peer | select / peer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mv_ratio = (r["motion_vectors_s"] / r["ffmpeg_null_s"]
                    if r["motion_vectors_s"] and r["ffmpeg_null_s"] else None)
        peer_ratio = r["select_s"] / r["peer_s"] if r["peer_s"] else None
        print(f"| {r['clip']} | {r['frames']} | {1e3 * r['packet_index_s']:.0f} ms | "
              f"{fmt(r['motion_vectors_s'])} | {fmt(mv_ratio, 'x')} | {fmt(r['select_s'])} | "
              f"{fmt(r['ffmpeg_null_s'])} | {fmt(r['peer_s'])} | {fmt(peer_ratio, 'x')} |")
    result: dict[str, Any] = {"machine": platform.node(), "cores": os.cpu_count(), "rows": rows}
    if args.compare:
        tables = {}
        for r in REAL:
            p = SHARED / "fixtures" / r
            if p.exists():
                c = compare(p, budgets=(4, 8, 16, 32))
                print(f"\n{p.name}\n{c.table()}")
                tables[p.name] = c.to_dict()
        result["compare"] = tables
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "codec.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
