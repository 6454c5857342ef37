"""Throughput of ``vidsel batch``: videos per second at 1, 2 and N workers (and Ray), and the
per-video overhead of the command line versus calling the library directly.

Clips are generated once into ``benchmarks/_data/batch/`` (git-ignored). Every configuration
first checks that its records agree with the direct library calls (same selections), then is
timed ``--repeat`` times after a warm-up run; medians are reported. Timings are end to end
(``main([...])`` wall time: discovery, pool start-up, work, writing records), so they include the
fixed cost of starting workers; the per-video overhead is ``(batch time - direct time) / n``.
A table is printed and JSON written to ``benchmarks/results/batch.json``.

Usage::

    python benchmarks/batch.py                          # 24 clips, uniform + codec
    python benchmarks/batch.py --videos 48 --ray        # also Ray (local cluster)
    python benchmarks/batch.py --methods codec --workers 1,2
"""

from __future__ import annotations

import sys

# benchmarks/select.py shadows the stdlib ``select`` module that process pools need: drop this
# folder from the import path (the package is found through the repository root below).
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    sys.path.pop(0)

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidsel import __version__
from vidsel.cli import main
from vidsel.cli._work import SelectSpec, select_one
from vidsel.methods import available_methods
from vidsel.runs import read_records
from vidsel.runs._executors import default_workers

HERE = Path(__file__).resolve().parent
CLIP = {"scene": "multi_scene", "num_frames": 150, "fps": 30, "width": 320, "height": 240,
        "n_scenes": 3}


def make_clips(n: int) -> Path:
    from vidsel.synth import make_video

    d = HERE / "_data" / "batch" / f"{n}x{CLIP['num_frames']}f"
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        p = d / f"clip{i:03d}.mp4"
        if not p.exists():
            make_video(p, seed=i, **CLIP)  # type: ignore[arg-type]
    return d


def method_args(method: str, k: int) -> list[str]:
    return ["--method", method, "--budget", str(k)]


def direct(videos: list[Path], method: str, k: int) -> tuple[float, dict[str, Any]]:
    """The library (``vidsel.methods.run_method``, through the batch worker's own call) in a
    loop in this process: seconds, {video: source frames}."""
    spec = SelectSpec(method=method, budget=k)
    t0 = time.perf_counter()
    out = {}
    for v in videos:
        payload, _ = select_one(str(v), None, spec)
        out[str(v)] = payload["source_frames"]
    return time.perf_counter() - t0, out


def run_batch(folder: Path, method: str, k: int, executor: str, workers: int,
              expect: dict[str, Any]) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="vidsel-bench-"))
    try:
        out = tmp / "r.jsonl"
        t0 = time.perf_counter()
        rc = main(["batch", str(folder), "--out", str(out), *method_args(method, k),
                   "--executor", executor, "--workers", str(workers), "-q", "-q",
                   "--no-progress"])
        elapsed = time.perf_counter() - t0
        recs = read_records(out)
        if rc != 0 or len(recs) != len(expect):
            raise SystemExit(f"{executor} x{workers}: rc={rc}, {len(recs)} records")
        got = {r["path"]: r["selection"]["source_frames"] for r in recs}
        if got != expect:
            raise SystemExit(f"{executor} x{workers}: selections differ from the library")
        return elapsed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=24)
    ap.add_argument("--methods", default="uniform,codec")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--workers", default=None, help="comma list (default 1,2,N)")
    ap.add_argument("--ray", action="store_true", help="also time Ray (local cluster)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "batch.json"))
    args = ap.parse_args()

    n_cpu = default_workers()
    workers = ([int(w) for w in args.workers.split(",")] if args.workers
               else sorted({1, 2, n_cpu}))
    folder = make_clips(args.videos)
    videos = sorted(folder.glob("*.mp4"))
    rows: list[dict[str, Any]] = []
    for method in args.methods.split(","):
        if method not in available_methods():
            raise SystemExit(f"unknown method {method}")
        direct(videos[:2], method, args.k)  # warm-up (imports, caches)
        times: list[float] = []
        expect: dict[str, Any] = {}
        for _ in range(args.repeat):
            t, expect = direct(videos, method, args.k)
            times.append(t)
        t_direct = statistics.median(times)
        rows.append({"method": method, "executor": "library (loop)", "workers": 1,
                     "seconds": t_direct, "videos_per_s": len(videos) / t_direct})
        configs = [("serial", 1)] + [("process", w) for w in workers]
        if args.ray:
            configs.append(("ray", n_cpu))
        for executor, w in configs:
            run_batch(folder, method, args.k, executor, w, expect)  # warm-up + check
            ts = [run_batch(folder, method, args.k, executor, w, expect)
                  for _ in range(args.repeat)]
            t = statistics.median(ts)
            rows.append({"method": method, "executor": executor, "workers": w, "seconds": t,
                         "videos_per_s": len(videos) / t,
                         "overhead_ms_per_video": 1e3 * (t - t_direct) / len(videos),
                         "speedup_vs_library": t_direct / t})
    print(f"\n{len(videos)} clips of {CLIP['num_frames']} frames "
          f"{CLIP['width']}x{CLIP['height']}, k={args.k}, {n_cpu} cores, median of "
          f"{args.repeat}\n")
    print(f"{'method':8} {'executor':16} {'workers':>7} {'seconds':>8} {'videos/s':>9} "
          f"{'overhead ms/video':>18} {'vs library':>10}")
    for r in rows:
        ov = r.get("overhead_ms_per_video")
        sp = r.get("speedup_vs_library")
        print(f"{r['method']:8} {r['executor']:16} {r['workers']:>7} {r['seconds']:>8.2f} "
              f"{r['videos_per_s']:>9.2f} {'' if ov is None else f'{ov:.1f}':>18} "
              f"{'' if sp is None else f'{sp:.2f}x':>10}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "vidsel_version": __version__, "python": platform.python_version(),
        "machine": platform.machine(), "cores": n_cpu, "videos": len(videos), "clip": CLIP,
        "k": args.k, "repeat": args.repeat, "rows": rows,
        "ray": _ray_version() if args.ray else None}, indent=1))
    print(f"\nwrote {out}")


def _ray_version() -> str | None:
    try:
        import ray

        return str(ray.__version__)
    except ImportError:
        return None


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main_()
