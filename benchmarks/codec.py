"""Benchmark vidsel.codec: packet index, motion vectors and end-to-end codec selection.

Per clip (generated 60 s 720p and 1080p pans, plus the real clips under ../shared/fixtures when
present), medians over ``--repeat`` runs, interleaved so that load from other processes on a
shared machine hits every method alike:

- ``packet index``  :func:`vidsel.codec.packet_index`;
- ``MVs (I+P)``     :func:`vidsel.codec.motion_vectors` (``frames="ip"``);
- ``select@B``      :func:`vidsel.codec.select_patches` at a ``B``-frame budget (LLaVA-OV-2
  geometry, 196 tokens per frame), pixels included, end to end from the file path;
- ``ffmpeg -f null``: the full decode (the decode limit; "n/a" without an ``ffmpeg`` binary);
- ``peer``: the LLaVA-OneVision-2 codec tool ``codec-video-prep`` (PyPI; it pins numpy<2, so it
  runs from its own virtual environment, benchmarks/_data/peer-venv, created on first use;
  "n/a" when it cannot be installed), twice: with its defaults (1024 sampled frames -> 128
  canvases) and at a budget matched to ours (``--num_sampled_frames 8*B`` -> B canvases);
- ``lmms-video-utils`` (PyPI, LMMs-Lab; in-process, "n/a" when not installed):
  ``fetch_codec_video(clip)`` with its defaults (256 sampled frames -> 32 canvases,
  framediff scores) against vidsel's reference mode :func:`vidsel.codec._lmms.lmms_codec_video`
  on the same clip; their outputs are checked equal (canvases, patch_positions, gop_ids,
  source_pts, fps, n_groups) before timing; then once each with ``score_mode="mvwarp"``
  (compared too; the peer's mvwarp output varies from run to run, which is recorded). Skipped where lmms-video-utils would hold more
  than ``--lmms-max-gb`` of full-size RGB frames in memory (it converts every frame).

Checks before timing: the selection spends exactly its budget and carries pixels; the
reference mode equals lmms-video-utils.
Targets (issue 3): select@32 <= 0.5x the peer's time on the same clip, MV extraction <= 1.0x
the full decode. ``--compare`` (on by default) adds the uniform-vs-codec table (span, frames
touched, moving share, hold-last proxy PSNR) on the real clips. A table is printed and JSON
written to benchmarks/results/codec.json.

Usage::

    python benchmarks/codec.py                    # everything (about 10-15 minutes here)
    python benchmarks/codec.py --quick            # 10 s generated clips, 1 repeat, no peer
    python benchmarks/codec.py --no-compare       # timings only
    python benchmarks/codec.py --compare-only     # only the uniform-vs-codec tables
    python benchmarks/codec.py --lmms-only        # only the lmms-video-utils rows (real clips)
"""

from __future__ import annotations

import sys

# benchmarks/select.py is named like the stdlib ``select`` module (needed by subprocess): drop
# this folder from the import path.
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    sys.path.pop(0)

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "benchmarks" / "_data"
RESULTS = ROOT / "benchmarks" / "results"
SHARED = Path(os.environ.get("VIDSEL_SHARED", ROOT.parent / "shared"))
#: Real clips (relative to the shared fixtures folder): timed, and compared uniform vs codec.
REAL = ["derived/concat_multiscene_640x360_h264.mp4", "clips/intelsamplevideos__bottle-detection.mp4",
        "clips/codecpatchstream__demo.mp4", "clips/intelsamplevideos__one-by-one-person-detection.mp4",
        "clips/moviepy__1.mp4", "clips/sam2__01_dog.mp4"]
#: Decoder threads of the ``ffmpeg -f null`` reference (the issue's yardstick: 2, this
#: machine's cores; ``--ffmpeg-threads 0`` lets FFmpeg choose).
FFMPEG_THREADS = 2
PEER_PACKAGE = "codec-video-prep"
#: Frames the peer samples per frame-equivalent of budget (its 256-sampled setting gives 32
#: canvases: 8 groups of 32 frames, 4 canvases each).
PEER_SAMPLED_PER_FRAME = 8


def generated(seconds: int, height: int) -> Path:
    """A panning clip with a moving box (H.264, gop 250, 3 B-frames with b-pyramid)."""
    from vidsel.synth import make_video

    width = height * 16 // 9
    path = DATA / f"pan_{seconds}s_{height}p.mp4"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        print(f"generating {path.name} ...", flush=True)
        make_video(path, scene="pan", num_frames=seconds * 30, fps=30, width=width,
                   height=height, gop=250, bframes=3, preset="veryfast", pan_px=2)
    return path


def peer_cli(install: bool) -> tuple[Path | None, str]:
    """The peer's console script in its own venv (created on first use), or (None, why)."""
    venv = DATA / "peer-venv"
    exe = venv / "bin" / "codec-video-prep"
    if exe.exists():
        return exe, "ok"
    if not install:
        return None, "not installed (--no-peer-install)"
    print(f"installing {PEER_PACKAGE} into {venv} ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", PEER_PACKAGE],
                       check=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as e:
        print(f"{PEER_PACKAGE} could not be installed: {e}", flush=True)
        return None, f"install failed: {type(e).__name__}"
    return (exe, "ok") if exe.exists() else (None, "install gave no console script")


def run_cmd(cmd: list[str]) -> tuple[float, float, str | None]:
    """(wall s, child CPU s, error or None) of one subprocess run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    err: str | None = None
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=900)
    except subprocess.CalledProcessError as e:
        tail = (e.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        err = f"failed: {tail[0][-160:]}"
    except (subprocess.SubprocessError, OSError) as e:
        err = f"failed: {type(e).__name__}"
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, err


class Timer:
    """Collects wall and CPU times per method; ``None`` results mean "not available"."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}
        self.status: dict[str, str] = {}

    def call(self, name: str, fn: Callable[[], Any]) -> None:
        c = time.process_time()
        t = time.perf_counter()
        fn()
        self.wall.setdefault(name, []).append(time.perf_counter() - t)
        self.cpu.setdefault(name, []).append(time.process_time() - c)

    def cmd(self, name: str, cmd: list[str]) -> None:
        if self.status.get(name, "ok") != "ok":
            return
        wall, cpu, err = run_cmd(cmd)
        if err is not None:
            self.status[name] = err
            self.wall.pop(name, None)
            return
        self.status[name] = "ok"
        self.wall.setdefault(name, []).append(wall)
        self.cpu.setdefault(name, []).append(cpu)

    def median(self, name: str) -> float | None:
        v = self.wall.get(name)
        return statistics.median(v) if v else None

    def median_cpu(self, name: str) -> float | None:
        v = self.cpu.get(name)
        return statistics.median(v) if v else None


def lmms_check(clip: Path, max_gb: float) -> tuple[Callable[[], Any] | None, str]:
    """(peer call, status): lmms-video-utils' ``fetch_codec_video`` on ``clip`` after checking
    that vidsel's reference mode gives the same output; (None, why) when it cannot run."""
    try:
        import lmms_video_utils
    except ImportError:
        return None, "n/a (lmms-video-utils not installed)"
    import warnings

    import numpy as np

    from vidsel.codec._lmms import lmms_codec_video
    from vidsel.io import VideoReader

    with VideoReader(clip) as r:
        md = r.metadata
        gb = md.num_frames * md.coded_width * md.coded_height * 3 / 1e9
    if gb > max_gb:
        return None, f"skipped (it would hold {gb:.1f} GB of RGB frames)"

    def peer() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return lmms_video_utils.fetch_codec_video(str(clip))

    ours, ref = lmms_codec_video(clip), peer()
    diff = [k for k in ("canvases", "patch_positions", "gop_ids", "source_pts")
            if getattr(ours, k).shape != tuple(getattr(ref, k).shape)
            or not np.array_equal(getattr(ours, k), getattr(ref, k).numpy())]
    diff += [k for k in ("fps", "n_groups") if getattr(ours, k) != getattr(ref, k)]
    return peer, "exact" if not diff else f"differs: {', '.join(diff)}"


def bench_lmms(clip: Path, repeat: int, max_gb: float, mvwarp: bool = True) -> dict[str, Any]:
    """lmms-video-utils vs vidsel's reference mode on ``clip``, interleaved."""
    from vidsel.codec._lmms import lmms_codec_video

    peer, status = lmms_check(clip, max_gb)
    t = Timer()
    if peer is not None:
        for _ in range(repeat):
            t.call("lmms_peer", peer)
            t.call("lmms_ref", lambda: lmms_codec_video(clip))
    row: dict[str, Any] = {"clip": clip.name, "lmms_parity": status}
    for name in ("lmms_peer", "lmms_ref"):
        row[f"{name}_s"] = t.median(name)
        row[f"{name}_cpu_s"] = t.median_cpu(name)
        row[f"{name}_runs"] = t.wall.get(name, [])
    row["lmms_ref_over_peer"] = ratio(row["lmms_ref_s"], row["lmms_peer_s"])
    if peer is not None and mvwarp:
        row.update(bench_lmms_mvwarp(clip))
    return row


def bench_lmms_mvwarp(clip: Path) -> dict[str, Any]:
    """``score_mode="mvwarp"``: one timed run each (the peer takes up to a minute per clip
    here), outputs compared; where they differ, the peer is run again to tell its own
    run-to-run variation (frame-threaded motion-vector export) from a vidsel difference."""
    import warnings

    import lmms_video_utils
    import numpy as np

    from vidsel.codec._lmms import lmms_codec_video

    def peer() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return lmms_video_utils.fetch_codec_video(str(clip), score_mode="mvwarp")

    t = time.perf_counter()
    ref = peer()
    t_peer = time.perf_counter() - t
    t = time.perf_counter()
    ours = lmms_codec_video(clip, score_mode="mvwarp")
    t_ours = time.perf_counter() - t
    same = all(np.array_equal(getattr(ours, k), getattr(ref, k).numpy())
               for k in ("canvases", "patch_positions"))
    if same:
        status = "exact"
    else:
        again = peer()
        stable = all(np.array_equal(getattr(again, k).numpy(), getattr(ref, k).numpy())
                     for k in ("canvases", "patch_positions"))
        status = ("differs (and so does the peer from itself)" if not stable
                  else "differs (peer repeatable)")
    return {"lmms_mvwarp_parity": status, "lmms_mvwarp_peer_s": t_peer,
            "lmms_mvwarp_ref_s": t_ours, "lmms_mvwarp_ref_over_peer": ratio(t_ours, t_peer)}


def lmms_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| clip | parity | lmms-video-utils (framediff, 32 canvases) | vidsel reference "
             "mode | vidsel / lmms | mvwarp parity | lmms mvwarp | vidsel mvwarp | "
             "vidsel / lmms |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['clip']} | {r['lmms_parity']} | {fmt(r['lmms_peer_s'])} | "
                     f"{fmt(r['lmms_ref_s'])} | {fmt(r['lmms_ref_over_peer'], 'x')} | "
                     f"{r.get('lmms_mvwarp_parity', 'n/a')} | "
                     f"{fmt(r.get('lmms_mvwarp_peer_s'))} | {fmt(r.get('lmms_mvwarp_ref_s'))} | "
                     f"{fmt(r.get('lmms_mvwarp_ref_over_peer'), 'x')} |")
    return "\n".join(lines)


def bench_clip(clip: Path, budget: int, repeat: int, peer: Path | None, peer_status: str,
               ffmpeg: str | None, ffmpeg_threads: int = FFMPEG_THREADS) -> dict[str, Any]:
    from vidsel.codec import motion_vectors, packet_index, select_patches

    idx = packet_index(clip)
    sel = select_patches(clip, budget_frames=budget)  # warm-up and checks
    expected = min(sel.budget_tokens, idx.num_frames * sel.config.tokens_per_frame)
    assert sel.num_tokens == expected, (sel, expected)
    assert sel.pixels is not None and len(sel.pixels) == sel.num_patches
    has_mv = sel.signal == "motion_vectors"
    out = DATA / "peer-out"
    peer_default = [str(peer), "--video", str(clip), "--out_dir", str(out / "default")]
    peer_matched = [str(peer), "--video", str(clip), "--out_dir", str(out / "matched"),
                    "--num_sampled_frames", str(PEER_SAMPLED_PER_FRAME * budget)]
    ff = ([ffmpeg, "-v", "error", "-nostdin", "-threads", str(ffmpeg_threads), "-i", str(clip),
           "-an", "-f", "null", "-"] if ffmpeg else None)
    t = Timer()
    if peer is None:
        t.status["peer"] = t.status["peer_matched"] = peer_status
    for _ in range(repeat):  # interleaved: load from other processes hits every method alike
        t.call("packet_index", lambda: packet_index(clip))
        if has_mv:
            t.call("motion_vectors", lambda: motion_vectors(clip))
        t.call("select", lambda: select_patches(clip, budget_frames=budget))
        if ff:
            t.cmd("ffmpeg_null", ff)
        if peer is not None:
            t.cmd("peer", peer_default)
            t.cmd("peer_matched", peer_matched)
    last = select_patches(clip, budget_frames=budget)
    row: dict[str, Any] = {
        "clip": clip.name, "frames": idx.num_frames, "duration_s": round(idx.duration_s, 3),
        "codec": idx.codec, "types": idx.type_counts(), "signal": sel.signal,
        "source_frames": len(last.source_frames), "candidate_frames": len(last.candidate_frames),
        "select_stage_s": {k: round(v, 4) for k, v in last.timings_s.items()},
    }
    for name in ("packet_index", "motion_vectors", "select", "ffmpeg_null", "peer",
                 "peer_matched"):
        row[f"{name}_s"] = t.median(name)
        row[f"{name}_cpu_s"] = t.median_cpu(name)
        row[f"{name}_runs"] = t.wall.get(name, [])
    row["select_over_ffmpeg"] = ratio(row["select_s"], row["ffmpeg_null_s"])
    row["ffmpeg_status"] = "ok" if ff else "n/a (no ffmpeg binary)"
    row["peer_status"] = t.status.get("peer", "ok")
    row["peer_matched_status"] = t.status.get("peer_matched", "ok")
    return row


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def fmt(x: float | None, unit: str = " s", digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}{unit}"


def table(rows: list[dict[str, Any]], budget: int) -> str:
    lines = [
        f"| clip | frames | packet index | MVs (I+P) | MVs / decode | select@{budget} | "
        "`ffmpeg -f null` | select / decode | peer (default) | select / peer | "
        "peer (matched) | select / peer matched |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['clip']} | {r['frames']} | {fmt(r['packet_index_s'] and 1e3 * r['packet_index_s'], ' ms', 0)} | "
            f"{fmt(r['motion_vectors_s'])} | "
            f"{fmt(ratio(r['motion_vectors_s'], r['ffmpeg_null_s']), 'x')} | "
            f"{fmt(r['select_s'])} | {fmt(r['ffmpeg_null_s'])} | "
            f"{fmt(ratio(r['select_s'], r['ffmpeg_null_s']), 'x')} | {fmt(r['peer_s'])} | "
            f"{fmt(ratio(r['select_s'], r['peer_s']), 'x')} | {fmt(r['peer_matched_s'])} | "
            f"{fmt(ratio(r['select_s'], r['peer_matched_s']), 'x')} |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"node": platform.node(), "machine": platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "date": datetime.date.today().isoformat(),
            "loadavg_1_5_15": [round(x, 2) for x in load] if load else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="10 s generated clips, 1 repeat, no peer, no real clips")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ffmpeg-threads", type=int, default=FFMPEG_THREADS,
                    help="decoder threads of the `ffmpeg -f null` reference (default 2)")
    ap.add_argument("--budget", type=int, default=32, help="frame-equivalents (default 32)")
    ap.add_argument("--no-peer", action="store_true", help="skip codec-video-prep")
    ap.add_argument("--no-peer-install", action="store_true",
                    help="use the peer venv only if it already exists")
    ap.add_argument("--no-compare", action="store_true", help="skip the uniform-vs-codec table")
    ap.add_argument("--compare-only", action="store_true", help="only the comparison table")
    ap.add_argument("--clips", nargs="*", default=None, help="benchmark these files instead")
    ap.add_argument("--no-lmms", action="store_true", help="skip the lmms-video-utils rows")
    ap.add_argument("--lmms-only", action="store_true",
                    help="only the lmms-video-utils rows (real clips, or --clips)")
    ap.add_argument("--no-lmms-mvwarp", action="store_true",
                    help="skip the lmms-video-utils score_mode='mvwarp' runs")
    ap.add_argument("--lmms-max-gb", type=float, default=6.0,
                    help="skip lmms-video-utils where it would hold more RGB frames (GB)")
    args = ap.parse_args(argv)
    from vidsel.codec import compare

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "codec.json"
    result: dict[str, Any] = {"machine": machine(), "budget_frames": args.budget,
                              "peer_package": PEER_PACKAGE}
    if (args.compare_only or args.lmms_only) and out.exists():  # keep the last full run's rest
        old = json.loads(out.read_text())
        result.update({k: v for k, v in old.items()
                       if k in ("rows", "machine", "compare", "lmms_rows")})
    print(f"machine: {result['machine']}", flush=True)
    real = [SHARED / "fixtures" / r for r in REAL if (SHARED / "fixtures" / r).exists()]
    if args.lmms_only:
        lmms_rows = []
        for clip in [Path(c) for c in args.clips] if args.clips else real:
            print(f"timing lmms-video-utils on {clip.name} ...", flush=True)
            lmms_rows.append(bench_lmms(clip, max(1, args.repeat), args.lmms_max_gb,
                                        mvwarp=not args.no_lmms_mvwarp))
            print(json.dumps({k: v for k, v in lmms_rows[-1].items()
                              if not k.endswith("_runs")}), flush=True)
        result["lmms_rows"] = lmms_rows
        result["lmms_machine"] = machine()
        print()
        print(lmms_table(lmms_rows))
        out.write_text(json.dumps(result, indent=1))
        print(f"\nwrote {out}")
        return 0 if all(r["lmms_parity"] in ("exact",) or r["lmms_parity"].startswith(
            ("n/a", "skipped")) for r in lmms_rows) else 1
    if not args.compare_only:
        secs = 10 if args.quick else 60
        repeat = 1 if args.quick else max(1, args.repeat)
        if args.clips:
            clips = [Path(c) for c in args.clips]
        else:
            clips = [generated(secs, 720), generated(secs, 1080)]
            if not args.quick:
                clips += real
        peer, peer_status = ((None, "skipped (--no-peer)") if args.no_peer or args.quick
                             else peer_cli(install=not args.no_peer_install))
        ffmpeg = shutil.which("ffmpeg")
        rows = []
        for clip in clips:
            print(f"timing {clip.name} ...", flush=True)
            row = bench_clip(clip, args.budget, repeat, peer, peer_status, ffmpeg,
                             args.ffmpeg_threads)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if not k.endswith("_runs")}),
                  flush=True)
        result["rows"] = rows
        ratios = [r["select_over_ffmpeg"] for r in rows if r["select_over_ffmpeg"] is not None]
        # the yardstick (13, part 4): the median over the clips of select@B / full decode
        result["select_over_ffmpeg_median"] = statistics.median(ratios) if ratios else None
        if not args.no_lmms and not args.quick:
            lmms_rows = []
            for clip in clips:
                print(f"timing lmms-video-utils on {clip.name} ...", flush=True)
                lmms_rows.append(bench_lmms(clip, repeat, args.lmms_max_gb,
                                            mvwarp=not args.no_lmms_mvwarp))
            result["lmms_rows"] = lmms_rows
        result["machine"]["loadavg_end"] = machine()["loadavg_1_5_15"]
        print()
        print(table(rows, args.budget))
        print(f"select@{args.budget} / `ffmpeg -threads {args.ffmpeg_threads} -f null`, median "
              f"over these clips: {fmt(result['select_over_ffmpeg_median'], 'x')}")
        if result.get("lmms_rows"):
            print()
            print(lmms_table(result["lmms_rows"]))
        out.write_text(json.dumps(result, indent=1))  # timings are kept if a comparison fails
    failed = 0
    if not args.no_compare and not args.quick:
        tables: dict[str, Any] = {}
        for p in real:
            print(f"\ncomparing {p.name} ...", flush=True)
            try:
                c = compare(p, budgets=(4, 8, 16, 32))
            except Exception as e:  # record the failure for this clip and go on
                failed += 1
                tables[p.name] = {"error": f"{type(e).__name__}: {e}"}
                print(f"failed: {type(e).__name__}: {e}", flush=True)
                continue
            print(c.table(), flush=True)
            tables[p.name] = c.to_dict()
        result["compare"] = tables
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
