"""Before/after check of a change: two checkouts of vidsel, alternating fresh processes, median.

Times the same calls in two source trees (e.g. a worktree of the previous release and this
one) in alternating subprocesses, checks that both give the same outputs first, and prints
the after / before ratios. Used for the 0.2 restructuring (docs/architecture.md):

    git worktree add /tmp/vidsel-0.1 <rev>
    python benchmarks/compare_trees.py --base /tmp/vidsel-0.1 --repeat 5

Clips: the generated 60 s 720p / 1080p clips of benchmarks/codec.py (run it once first) and
two ../shared fixtures when present.
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
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data"
SH = ROOT.parent / "shared" / "fixtures"
RESULTS = ROOT / "benchmarks" / "results"
CLIPS = [str(DATA / "pan_60s_720p.mp4"), str(DATA / "pan_60s_1080p.mp4"),
         str(SH / "derived" / "concat_multiscene_640x360_h264.mp4"),
         str(SH / "derived" / "concat_multiscene_480x270_hevc_main.mp4")]
CASES = {
  "select_patches@32": "from vidsel.codec import select_patches\nf=lambda p: select_patches(p, budget_frames=32)\nsig=lambda r: (r.positions.sum(), int(r.pixels.astype('int64').sum()))",
  "reader exact uniform 32": "import vidsel\ndef f(p):\n    with vidsel.VideoReader(p) as r: return r.sample_uniform(32)\nsig=lambda b: (b.indices.sum(), int(b.frames.astype('int64').sum()))",
  "reader keyframe uniform 32": "import vidsel\ndef f(p):\n    with vidsel.VideoReader(p) as r: return r.sample_uniform(32, mode='keyframe')\nsig=lambda b: (b.indices.sum(), int(b.frames.astype('int64').sum()))",
  "packet_index": "from vidsel.codec import packet_index\nf=packet_index\nsig=lambda i: (len(i), int(i.size.sum()))",
}
SEL = ("import numpy as np, vidsel.select as S\nrng=np.random.default_rng(0)\n"
       "x=rng.standard_normal((3600,1152)).astype(np.float32); x/=np.linalg.norm(x,axis=1,keepdims=True)\n"
       "t=x[:5].mean(0); t/=np.linalg.norm(t)\n")
SELCASES = {"mdp3 n=3600 k=64": "S.run_selector('mdp3', 64, frame_embeds=x, text_embed=t)",
            "dpp n=3600 k=64": "S.run_selector('dpp', 64, frame_embeds=x, text_embed=t)",
            "mdp3 n=128 k=8": "S.run_selector('mdp3', 8, frame_embeds=x[:128], text_embed=t)"}



def run(tree: Path, code: str) -> dict:
    """Run ``code`` with ``tree`` first on sys.path; its last stdout line is JSON."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True,
                         env=env)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def timed(trees: dict[str, Path], code: str, n: int) -> tuple[float, float]:
    t: dict[str, list[float]] = {k: [] for k in trees}
    sigs: dict[str, list[float]] = {}
    for _ in range(n):
        for name, tree in trees.items():
            r = run(tree, code)
            t[name].append(r["t"])
            sigs[name] = r["sig"]
    if sigs["before"] != sigs["after"]:
        raise SystemExit(f"outputs differ: {sigs}")
    return statistics.median(t["before"]), statistics.median(t["after"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", type=Path, required=True, help="the 'before' checkout")
    ap.add_argument("--head", type=Path, default=ROOT, help="the 'after' checkout (this one)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS / "compare_trees.json")
    args = ap.parse_args()
    trees = {"before": args.base.resolve(), "after": args.head.resolve()}
    clips = [c for c in CLIPS if Path(c).exists()]
    if not clips:
        raise SystemExit("no clips: run benchmarks/codec.py once to generate them")
    rows = []
    for name, body in CASES.items():
        for clip in clips:
            code = (body + f"\nimport time, json\np={clip!r}\nr=f(p)\ns=sig(r)\n"
                    "t0=time.perf_counter()\nf(p)\n"
                    "print(json.dumps({'t': time.perf_counter()-t0, "
                    "'sig': [float(v) for v in s]}))")
            b, a = timed(trees, code, args.repeat)
            rows.append((name, Path(clip).name, b, a, a / b))
            print(rows[-1], flush=True)
    for name, expr in SELCASES.items():
        code = (SEL + f"import time, json, statistics\nr={expr}\nts=[]\n"
                f"for _ in range(5):\n    t0=time.perf_counter(); r2={expr}; "
                "ts.append(time.perf_counter()-t0)\n"
                "print(json.dumps({'t': statistics.median(ts), 'sig': [float(v) for v in r2]}))")
        b, a = timed(trees, code, args.repeat)
        rows.append((name, "random d=1152", b, a, a / b))
        print(rows[-1], flush=True)
    print("| case | clip | before (s) | after (s) | after / before |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.4f} | {r[3]:.4f} | {r[4]:.2f}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"base": str(trees["before"]), "head": str(trees["after"]),
                                    "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
