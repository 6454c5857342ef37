"""Frame-ingest benchmark: vidsel's exact frames against today's peers.

Peers, each in its own virtual environment under ``benchmarks/_data/peers/`` (created on first
use; their pins conflict with each other and with vidsel's environment):

- torchcodec 0.17.0 with torch 2.14.1, ``seek_mode="exact"`` and ``"approximate"`` (CPU decoding
  through the system FFmpeg libraries: ``apt-get install ffmpeg``), FFmpeg threads: auto;
- decord2 3.4.0 (import name ``decord``; the maintained decord fork), threads: auto;
- video-reader-rs 0.4.5 (its wheel misses a ``libsharpyuv`` link path: the bundled copy is put
  on ``LD_LIBRARY_PATH``), threads: auto;

and, in this environment, the naive PyAV loop (seek to each frame's time, decode up to it). The
reference is ``ffmpeg -threads N -f null``: a full decode, the cost of reading every frame.

Rows: generated 60 s 720p and 1080p H.264 (GOP 250, 3 B-frames) and the real clips in
``../shared/fixtures`` (when present); tasks: uniform 8 / 32 / 128 exact frames and 1-fps
sampling. Before timing, every peer's frames are compared with vidsel's exact frames (same
frames, native size, bit for bit): peers that disagree are reported and not ranked. vidsel is
timed at 1, 2 and 4 workers (its default is one per usable CPU) and in keyframe mode. Timing
rounds interleave the contenders (the machine may be shared); medians over ``--repeats``
rounds (the frame check before them is each contender's warm-up; tasks whose fastest contender
takes under 0.3 s get more rounds, until every contender has run 0.3 s x --repeats in all, at
most 30x). Prints a Markdown table and writes JSON.

Usage:
    python benchmarks/decode.py                  # everything (builds the peer venvs once)
    python benchmarks/decode.py --quick          # 720p clip only, 2 rounds
    python benchmarks/decode.py --clips 1080p demo --peers torchcodec
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
import resource
import select
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data"
PEER_DIR = DATA / "peers"
RESULTS = ROOT / "benchmarks" / "results"
#: Tasks whose fastest contender takes under this many seconds a call get more rounds,
#: up to MAX_ROUNDS_FACTOR x --repeats (a 12 ms read moves by 10-20% from round to round on
#: a shared 2-vCPU VM: 12 rounds left a 0.94x-1.07x spread on the same code).
SHORT_TASK_S = 0.3
MAX_ROUNDS_FACTOR = 30
SHARED = Path(os.environ.get("VIDSEL_SHARED", ROOT.parent / "shared"))

#: Real clips (relative to ../shared/fixtures); every clip in clips/ plus a long multi-scene one.
EXTRA_CLIPS = ["derived/concat_multiscene_640x360_h264.mp4"]

#: Peer environments: pip requirements, extra library folders (inside site-packages) to put
#: on LD_LIBRARY_PATH, and the contenders each serves.
PEERS: dict[str, dict[str, Any]] = {
    "torchcodec": {"venv": "torchcodec-0.17.0", "dist": "torchcodec",
                   "pip": ["torch==2.14.1", "torchcodec==0.17.0", "numpy"],
                   "serves": ["torchcodec", "torchcodec_approx"]},
    "decord2": {"venv": "decord2-3.4.0", "dist": "decord2",
                "pip": ["decord2==3.4.0", "numpy"], "serves": ["decord2"]},
    "video-reader-rs": {"venv": "video-reader-rs-0.4.5", "dist": "video-reader-rs",
                        "pip": ["video-reader-rs==0.4.5", "numpy"],
                        "libdirs": ["video_reader_rs.libs"], "serves": ["video_reader_rs"]},
}

#: Runs in a peer's environment: one JSON request per stdin line, one JSON answer per line.
PEER_SERVER = r"""
import json, resource, sys, time
import numpy as np

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def load(name):
    if name.startswith("torchcodec"):
        from torchcodec.decoders import VideoDecoder
        mode = "approximate" if name.endswith("approx") else "exact"
        def run(path, idx):
            d = VideoDecoder(path, seek_mode=mode, dimension_order="NHWC", num_ffmpeg_threads=0)
            return d.get_frames_at(idx).data.numpy()
        return run
    if name == "decord2":
        import decord
        def run(path, idx):
            return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0
                                      ).get_batch(idx).asnumpy()
        return run
    if name == "video_reader_rs":
        from video_reader import PyVideoReader
        def run(path, idx):
            return np.asarray(PyVideoReader(path, threads=None).get_batch(idx))
        return run
    raise ValueError(name)

def compare(got, ref):
    got = np.asarray(got)
    if got.shape != ref.shape:
        return {"agrees": False, "shape": list(got.shape), "differing": -1}
    bad, total = 0, 0.0
    for a, b in zip(got, ref):
        d = np.abs(a.astype(np.int16) - np.asarray(b, np.int16))
        bad += bool(d.any())
        total += float(d.mean())
    return {"agrees": bad == 0, "differing": bad, "mean_abs_diff": total / max(len(ref), 1)}

fns = {}
for line in sys.stdin:
    req = json.loads(line)
    try:
        name = req["name"]
        if name not in fns:
            fns[name] = load(name)
        t, c = time.perf_counter(), cpu()
        got = fns[name](req["path"], req["idx"])
        out = {"time_s": time.perf_counter() - t, "cpu_s": cpu() - c}
        if req["op"] == "check":
            out.update(compare(got, np.load(req["ref"], mmap_mode="r")))
    except Exception as e:  # reported, not ranked
        out = {"error": f"{type(e).__name__}: {e}"[:300]}
    print(json.dumps(out), flush=True)
"""

PEER_LABELS = {"torchcodec": "torchcodec exact", "torchcodec_approx": "torchcodec approx",
               "decord2": "decord2", "video_reader_rs": "video-reader-rs",
               "pyav_naive": "PyAV naive"}


# -- clips and tasks --------------------------------------------------------------------------
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


def clip_list(args: argparse.Namespace) -> list[Path]:
    clips = [make_clip(DATA / "pan_720p_60s.mp4", 1280, 720)]
    if not args.quick:
        clips.append(make_clip(DATA / "pan_1080p_60s.mp4", 1920, 1080))
        fx = SHARED / "fixtures"
        if not args.no_real and fx.is_dir():
            clips += sorted((fx / "clips").glob("*"))
            clips += [fx / c for c in EXTRA_CLIPS if (fx / c).exists()]
    if args.clips:
        clips = [c for c in clips if any(s in c.name for s in args.clips)]
    return clips


def peers_stream(path: Path) -> int:
    """The video stream the peers read (FFmpeg's "best" stream: the largest picture), counted
    among video streams (vidsel's ``stream=``); vidsel reads the first by default."""
    import av

    with av.open(str(path)) as c:
        sizes = [(s.codec_context.width or 0) * (s.codec_context.height or 0)
                 for s in c.streams.video]
    return int(np.argmax(sizes)) if sizes else 0


def tasks_for(path: Path, counts: list[int], stream: int
              ) -> tuple[Any, list[tuple[str, np.ndarray]]]:
    from vidsel import VideoReader

    with VideoReader(path, stream=stream) as r:
        md = r.metadata
        n = md.num_frames
        tasks = [(f"uniform {k}", r.uniform_indices(k)) for k in counts if k <= n]
        tasks.append(("1 fps", r.fps_indices(1.0)))
    return md, tasks


# -- contenders in this process ----------------------------------------------------------------
def vidsel_exact(path: str, idx: np.ndarray, workers: int | None = None, stream: int = 0
                 ) -> np.ndarray:
    from vidsel import VideoReader

    with VideoReader(path, workers=workers, stream=stream) as r:
        return r.get_frames(idx)


def vidsel_keyframe(path: str, idx: np.ndarray, stream: int = 0) -> np.ndarray:
    from vidsel import VideoReader

    with VideoReader(path, stream=stream) as r:
        return r.get_frames(idx, mode="keyframe")


def pyav_naive(path: str, idx: np.ndarray, stream: int = 0) -> np.ndarray:
    """The common research-code loop: for each index, seek to its time and decode up to it."""
    import av

    out = []
    with av.open(path) as c:
        s = c.streams.video[stream]
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


def cpu_s() -> float:
    """CPU seconds of this process so far (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timing(answer: dict[str, Any]) -> tuple[float, float]:
    return float(answer.get("time_s", float("nan"))), float(answer.get("cpu_s", float("nan")))


def compare(got: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    if got.shape != ref.shape:
        return {"agrees": False, "shape": list(got.shape), "differing": -1}
    d = np.abs(got.astype(np.int16) - ref.astype(np.int16))
    bad = int(d.reshape(len(d), -1).any(axis=1).sum())
    return {"agrees": bad == 0, "differing": bad, "mean_abs_diff": float(d.mean())}


# -- peers in their own environments ----------------------------------------------------------
def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return os.cpu_count() or 1


def peer_python(name: str, build: bool) -> Path | None:
    """The peer's venv interpreter, building the venv on first use."""
    spec = PEERS[name]
    venv = PEER_DIR / spec["venv"]
    py = venv / "bin" / "python"
    if py.exists():
        return py
    if not build:
        return None
    print(f"building {venv.name} ({' '.join(spec['pip'])}) ...", flush=True)
    PEER_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", *spec["pip"]], check=False)
    if r.returncode:
        print(f"  {name}: pip install failed; left out", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        return None
    return py


class PeerServer:
    """A long-lived peer process (imports once), answering check / time requests."""

    def __init__(self, name: str, py: Path) -> None:
        self.name, self.py = name, py
        spec = PEERS[name]
        env = dict(os.environ)
        site = sorted((py.parent.parent / "lib").glob("python*/site-packages"))
        libs = [str(s / d) for s in site for d in spec.get("libdirs", [])]
        if libs:
            env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, env.get("LD_LIBRARY_PATH", "")])
        self.env = env
        self.version = subprocess.run(
            [str(py), "-c", f"import importlib.metadata as m; print(m.version({spec['dist']!r}))"],
            capture_output=True, text=True, env=env).stdout.strip() or "?"
        self._proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen([str(self.py), "-c", PEER_SERVER], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          text=True, env=self.env)
        return self._proc

    def ask(self, timeout: float = 900, **req: Any) -> dict[str, Any]:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(json.dumps(req) + "\n")
            proc.stdin.flush()
            # one answer line per request: nothing is buffered before it arrives
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            line = proc.stdout.readline() if ready else None
        except BrokenPipeError:
            line = ""
        if line is None:  # hung on an odd file: this request fails, the next restarts it
            proc.kill()
            proc.wait()
            self._proc = None
            return {"error": f"no answer within {timeout:.0f} s"}
        if not line:  # the peer crashed (a segfault on an odd file): restart next time
            self._proc = None
            return {"error": f"peer process died (exit {proc.wait()})"}
        return json.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            self._proc.wait(timeout=30)


# -- the benchmark ----------------------------------------------------------------------------
def ffmpeg_null(path: str, threads: int, repeats: int, stream: int = 0) -> float | None:
    exe = shutil.which("ffmpeg")
    if not exe:
        return None
    cmd = [exe, "-v", "error", "-threads", str(threads), "-i", path, "-map", f"0:v:{stream}", "-f",
           "null", "-"]
    if subprocess.run(cmd, capture_output=True).returncode:
        return None
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def bench_task(path: Path, task: str, idx: np.ndarray, args: argparse.Namespace,
               servers: dict[str, PeerServer], tmp: Path, stream: int, workers: list[int],
               repeats: int) -> dict[str, Any]:
    p = str(path)
    ref = vidsel_exact(p, idx, stream=stream)  # default workers
    ref_file = tmp / "ref.npy"
    np.save(ref_file, ref)
    row: dict[str, Any] = {"task": task, "frames": len(idx), "vidsel": {}, "peers": {}}
    timers: dict[str, Callable[[], tuple[float, float]]] = {}

    def local(fn: Callable[[], Any]) -> Callable[[], tuple[float, float]]:
        def timed() -> tuple[float, float]:
            t, c = time.perf_counter(), cpu_s()
            fn()
            return time.perf_counter() - t, cpu_s() - c
        return timed

    for w in workers:
        agrees = compare(vidsel_exact(p, idx, w, stream), ref)["agrees"]
        row["vidsel"][f"workers_{w}"] = {"agrees_with_default": agrees}
        timers[f"vidsel_w{w}"] = local(lambda w=w: vidsel_exact(p, idx, w, stream))
    timers["vidsel_keyframe"] = local(lambda: vidsel_keyframe(p, idx, stream))
    if len(idx) <= args.naive_max:  # the naive loop is O(frames x GOP): minutes beyond
        try:
            row["peers"]["pyav_naive"] = compare(pyav_naive(p, idx, stream), ref)
            timers["pyav_naive"] = local(lambda: pyav_naive(p, idx, stream))
        except Exception as e:  # reported, not ranked
            row["peers"]["pyav_naive"] = {"error": f"{type(e).__name__}: {e}"[:300]}
    for server in servers.values():
        for name in PEERS[server.name]["serves"]:
            got = server.ask(op="check", name=name, path=p, idx=idx.tolist(), ref=str(ref_file))
            once = (got.pop("time_s", None), got.pop("cpu_s", None))
            row["peers"][name] = got
            if "error" in got:
                continue
            if got.get("agrees"):
                timers[name] = (lambda s=server, n=name: timing(
                    s.ask(op="time", name=n, path=p, idx=idx.tolist())))
            else:  # not ranked: its check call (the first, cold-ish call) is its only timing
                got.update(time_s=once[0], cpu_s=once[1], timed_once=True)
    ref_file.unlink()
    del ref
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in timers}
    names = list(timers)
    # the checks above were every contender's warm-up (file cache, lazy imports)
    # short tasks get more rounds (up to MAX_ROUNDS_FACTOR x): a 60 ms call moves by 20% with
    # the machine's noise, which three rounds do not average out
    rnd = 0
    while rnd < repeats or (rnd < MAX_ROUNDS_FACTOR * repeats and min(
            sum(w for w, _ in v) for v in times.values()) < SHORT_TASK_S * repeats):
        order = names[rnd % len(names):] + names[:rnd % len(names)]  # rotate: fair under load
        for k in order:
            times[k].append(timers[k]())
        rnd += 1
    med = {k: statistics.median(w for w, _ in v) for k, v in times.items() if v}
    cpu = {k: statistics.median(c for _, c in v) for k, v in times.items() if v}
    for w in workers:
        row["vidsel"][f"workers_{w}"].update(time_s=med[f"vidsel_w{w}"],
                                             cpu_s=cpu[f"vidsel_w{w}"])
    row["vidsel"]["keyframe_s"] = med["vidsel_keyframe"]
    for name, res in row["peers"].items():
        if med.get(name) == med.get(name) and name in med:  # not NaN
            res.update(time_s=med[name], cpu_s=cpu[name])
    from vidsel.io._parallel import default_workers

    dw = default_workers()
    row["vidsel"]["default_workers"] = dw
    row["vidsel_s"] = med[f"vidsel_w{dw}"]
    row["vidsel_cpu_s"] = cpu[f"vidsel_w{dw}"]
    row["repeats"] = rnd
    ranked = {k: v for k, v in row["peers"].items()
              if v.get("agrees") and v.get("time_s") is not None}
    row["best_peer"] = min(ranked, key=lambda k: ranked[k]["time_s"]) if ranked else None
    row["best_peer_s"] = ranked[row["best_peer"]]["time_s"] if ranked else None
    row["ratio_vs_best_peer"] = row["vidsel_s"] / row["best_peer_s"] if ranked else None
    # CPU seconds (all threads): the work done, much less sensitive to a shared machine's load
    best_cpu = min((v["cpu_s"] for v in ranked.values() if v.get("cpu_s")), default=None)
    row["best_peer_cpu_s"] = best_cpu
    row["cpu_ratio_vs_best_peer"] = row["vidsel_cpu_s"] / best_cpu if best_cpu else None
    return row


def bench_clip(path: Path, args: argparse.Namespace, servers: dict[str, PeerServer]
               ) -> list[dict[str, Any]]:
    stream = peers_stream(path)
    md, tasks = tasks_for(path, args.counts, stream)
    gop = md.num_frames / max(len(md.keyframe_indices), 1)
    print(f"\n{path.name}: {md.width}x{md.height} {md.codec}, {md.num_frames} frames, "
          f"{md.duration_s:.1f} s, {len(md.keyframe_indices)} keyframes (mean GOP {gop:.0f})",
          flush=True)
    generated = path.parent == DATA
    repeats = args.repeats if generated else args.real_repeats or args.repeats
    # scaling (every --workers count) on the generated clips; the default count elsewhere
    from vidsel.io._parallel import default_workers

    workers = args.workers if generated else sorted({1, default_workers()})
    ffm = ffmpeg_null(str(path), args.ffmpeg_threads, repeats, stream)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task, idx in tasks:
            row = bench_task(path, task, idx, args, servers, Path(tmp), stream, workers,
                             repeats)
            row.update(clip=path.name, size=f"{md.width}x{md.height}", codec=md.codec,
                       video_stream=stream,
                       num_frames=md.num_frames, mean_gop=gop, ffmpeg_null_s=ffm)
            row["ratio_vs_ffmpeg_null"] = row["vidsel_s"] / ffm if ffm else None
            rows.append(row)
            peers = "  ".join(
                f"{k}={v['time_s']:.3f}" + ("" if v.get("agrees") else "(differs)")
                if "time_s" in v else f"{k}=fails" for k, v in row["peers"].items())
            ws = " ".join(f"w{w}={row['vidsel'][f'workers_{w}']['time_s']:.3f}"
                          for w in workers)
            ratio, cr = row["ratio_vs_best_peer"], row["cpu_ratio_vs_best_peer"]
            print(f"  {task:11s} vidsel {ws} key={row['vidsel']['keyframe_s']:.3f}  {peers}  "
                  f"-> {fmt(ratio, 'x')} best peer (CPU {fmt(cr, 'x')})", flush=True)
            for k, v in row["peers"].items():  # why, once per peer and reason
                why = str(v.get("error") or "").strip().splitlines()
                if why and (k, why[0]) not in _SAID:
                    _SAID.add((k, why[0]))
                    print(f"    {k} fails: {why[0][:160]} (full text in the JSON)", flush=True)
    return rows


#: (peer, first line of its error) already printed
_SAID: set[tuple[str, str]] = set()


def fmt(x: float | None, suffix: str = "") -> str:
    return "n/a" if x is None else f"{x:.3f}{suffix}" if not suffix else f"{x:.2f}{suffix}"


def short_name(row: dict[str, Any]) -> str:
    name = row["clip"].rsplit(".", 1)[0].split("__")[-1]
    return (f"{name} {row['size']} {row['codec']}, {row['num_frames']} fr, "
            f"GOP {row['mean_gop']:.0f}")


def print_table(rows: list[dict[str, Any]], workers: list[int], peers: list[str]) -> None:
    """Markdown: seconds (medians); "differs" = frames not bit-identical to vidsel's (not
    ranked); the ratio is vidsel (default workers) over the fastest agreeing peer."""
    head = (["clip", "task", "vidsel", "workers " + " / ".join(map(str, workers)), "keyframe"]
            + [PEER_LABELS[p] for p in peers]
            + ["`ffmpeg -f null`", "vidsel / best peer", "CPU s: vidsel / best peer"])
    print("\n| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [short_name(r), r["task"], fmt(r["vidsel_s"])]
        cells.append(" / ".join(fmt(r["vidsel"].get(f"workers_{w}", {}).get("time_s"))
                                for w in workers))
        cells.append(fmt(r["vidsel"]["keyframe_s"]))
        for p in peers:
            v = r["peers"].get(p)
            if v is None:
                cells.append("n/a")
            elif "time_s" not in v:
                cells.append("fails")
            else:
                cells.append(fmt(v["time_s"]) + ("" if v.get("agrees") else " (differs)"))
        best = (f"{fmt(r['ratio_vs_best_peer'], 'x')} ({PEER_LABELS[r['best_peer']]})"
                if r["best_peer"] else "n/a")
        cpu_cell = (f"{fmt(r['vidsel_cpu_s'])} / {fmt(r['best_peer_cpu_s'])} = "
                    f"{fmt(r['cpu_ratio_vs_best_peer'], 'x')}" if r.get("best_peer_cpu_s")
                    else "n/a")
        cells += [fmt(r["ffmpeg_null_s"]), best, cpu_cell]
        print("| " + " | ".join(cells) + " |")


def load_text() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:  # pragma: no cover
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def save(args: argparse.Namespace, rows: list[dict[str, Any]], failures: list[dict[str, str]],
         servers: dict[str, PeerServer], load_before: str, *, partial: bool) -> None:
    """Write the JSON record (after every clip too, marked partial, so a long run that is cut
    short keeps what it measured)."""
    import av

    import vidsel
    from vidsel.io._parallel import default_workers

    ffmpeg_v = (subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True)
                .stdout.split("\n")[0] if shutil.which("ffmpeg") else None)
    meta = {
        "machine": args.machine or f"{usable_cpus()}-core {platform.machine()}, "
                                   f"{platform.platform()}",
        "cpus": usable_cpus(), "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "uptime_before": load_before, "uptime_after": load_text(),
        "repeats": args.repeats, "vidsel": vidsel.__version__, "av": av.__version__,
        "vidsel_default_workers": default_workers(), "ffmpeg": ffmpeg_v,
        "ffmpeg_threads": args.ffmpeg_threads, "partial": partial,
        "peers": {s.name: s.version for s in servers.values()},
        "peer_threads": "auto (torchcodec num_ffmpeg_threads=0, decord num_threads=0, "
                        "video-reader-rs threads=None, PyAV thread_type AUTO)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "rows": rows, "failures": failures},
                                   indent=1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds (after a warm-up)")
    ap.add_argument("--real-repeats", type=int, default=None,
                    help="timed rounds on the real clips (default: --repeats)")
    ap.add_argument("--counts", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4],
                    help="vidsel worker counts to time")
    ap.add_argument("--quick", action="store_true", help="720p clip only, 2 rounds")
    ap.add_argument("--clips", nargs="*", help="only clips whose name contains one of these")
    ap.add_argument("--naive-max", type=int, default=40,
                    help="time the naive PyAV loop only up to this many frames")
    ap.add_argument("--no-real", action="store_true", help="skip ../shared/fixtures clips")
    ap.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS),
                    help="peer environments to use (built on first use)")
    ap.add_argument("--no-build", action="store_true", help="do not build missing peer venvs")
    ap.add_argument("--ffmpeg-threads", type=int, default=usable_cpus())
    ap.add_argument("--machine", default=None, help="machine description for the record")
    ap.add_argument("--out", type=Path, default=RESULTS / "decode.json")
    ap.add_argument("--print", type=Path, default=None, metavar="JSON",
                    help="print the table of an earlier run and exit")
    args = ap.parse_args(argv)
    if args.print:
        rec = json.loads(args.print.read_text())
        ws = sorted({int(k.split("_")[1]) for r in rec["rows"] for k in r["vidsel"]
                     if k.startswith("workers_")})
        names = list(dict.fromkeys(n for r in rec["rows"] for n in r["peers"]))
        print_table(rec["rows"], ws, [n for n in PEER_LABELS if n in names])
        print(json.dumps(rec["meta"], indent=1))
        return 0
    if args.quick:
        args.repeats = min(args.repeats, 2)

    from vidsel.io._parallel import default_workers

    if default_workers() not in args.workers:
        args.workers.append(default_workers())
    servers: dict[str, PeerServer] = {}
    for name in args.peers:
        py = peer_python(name, build=not args.no_build)
        if py is not None:
            servers[name] = PeerServer(name, py)
    load_before = load_text()
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, str]] = []
    try:
        for clip in clip_list(args):
            try:
                rows += bench_clip(clip, args, servers)
            except Exception as e:  # vidsel itself failed on this clip: say so, go on
                print(f"{clip.name}: vidsel failed: {type(e).__name__}: {e}", flush=True)
                failures.append({"clip": clip.name, "error": f"{type(e).__name__}: {e}"[:300]})
            save(args, rows, failures, servers, load_before, partial=True)
    finally:
        for s in servers.values():
            s.close()
    served = [n for s in servers.values() for n in PEERS[s.name]["serves"]]
    print_table(rows, args.workers, ["pyav_naive", *served])
    save(args, rows, failures, servers, load_before, partial=False)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
