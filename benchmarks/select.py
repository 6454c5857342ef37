"""Keyframe-selection latency and embedding throughput.

Selection latency (kernel build included, embeddings given) for n candidates and k picks:

- ``vidsel mdp3``          — :func:`vidsel.select.mdp3`, conditional mode (the default);
- ``vidsel mdp3-ref``      — :func:`vidsel.select.mdp3` ``mode="reference"`` (same picks as
  the public code, checked before timing);
- ``vidsel dpp``           — :func:`vidsel.select.dpp` (one segment, lazy kernel rows);
- ``public mdp3``          — a faithful re-implementation of the cost structure of the public
  MDP3 selector (Ovis ``plugin/mdp3.py`` ``_select_frames_fast``: torch float32, explicit-
  difference kernels per segment and state, a Python loop over candidates per greedy step with a
  triangular solve each); only run where it finishes in reasonable time (``--public-max-n``).
- ``vidsel dpp (torch)``   — the torch path on CUDA, when a GPU is present.

Embedding throughput (frames/s): open_clip ViT-B-32 with random weights on CPU; SigLIP
so400m-patch14-384 architecture (random weights) in bf16 on GPU when one is present.

Outputs are checked to agree before timing; every timing is the median of ``--repeat`` runs
after a warm-up. A table is printed and JSON written to ``benchmarks/results/select.json``.

Usage::

    python benchmarks/select.py                 # all sizes, CPU
    python benchmarks/select.py --n 128 --k 8   # one cell
    python benchmarks/select.py --threads 1     # pin BLAS threads (set before numpy loads)
"""

from __future__ import annotations

import sys

# This file is named like the stdlib ``select`` module: drop its folder from the import path
# so that ``import select`` (done by subprocess, hence torch) finds the real one.
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    sys.path.pop(0)

import argparse
import json
import os
import platform
import statistics
import time
from functools import partial
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # BLAS threads must be fixed before numpy is imported
    _pre = argparse.ArgumentParser(add_help=False)
    _pre.add_argument("--threads", type=int, default=None)
    _known, _ = _pre.parse_known_args()
    if _known.threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(_known.threads)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidsel.select import DEFAULT_ALPHAS, dpp, mdp3, mdp3_objective

RESULTS = Path(__file__).resolve().parent / "results"


# --- inputs -------------------------------------------------------------------------------------

def video_like(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float32 unit rows drifting like a video's frame embeddings, plus a text (d,)."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.standard_normal((n, d)).astype(np.float32) * 0.05, axis=0)
    x += rng.standard_normal((1, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t = x[n // 3] + 0.5 * rng.standard_normal(d).astype(np.float32)
    return x, (t / np.linalg.norm(t)).astype(np.float32)


# --- the public algorithm's cost, re-implemented faithfully -------------------------------------

def public_mdp3(frames: np.ndarray, text: np.ndarray, k: int, *, lam: float = 0.2,
                segment_size: int = 32, condition_size: int = 1) -> list[int]:
    """The public MDP3 DP + greedy, loop for loop (torch float32, CPU)."""
    import torch

    alphas = list(DEFAULT_ALPHAS)

    def kernel(a: Any, b: Any = None) -> Any:
        b = a[None] if b is None else b[None]
        d2 = ((a[:, None] - b) ** 2).sum(2)
        return sum(torch.exp(-d2 / (2 * al)) for al in alphas)

    def chol_update(lf: Any, v: Any) -> tuple[Any, Any]:
        n = lf.shape[0]
        v = v.view(-1, 1)
        proj = torch.linalg.solve_triangular(lf, v[:n], upper=False)
        diag = torch.sqrt(torch.abs(v[-1] - proj.T @ proj))
        new = torch.zeros((n + 1, n + 1), dtype=lf.dtype)
        new[:n, :n] = lf
        new[n, :n] = proj.flatten()
        new[n, n] = diag
        return new, 2 * torch.log(torch.diag(new)).sum()

    def greedy(total: Any, offset: int, steps: int) -> tuple[list[Any], list[list[int]]]:
        if steps == 0:
            return [0.0], [[]]
        r, s = total[0:1, 1:], total[1:, 1:]
        cands = list(range(len(s) - offset))
        cond = list(range(offset))
        lf = torch.linalg.cholesky(s[cond][:, cond]) if cond else None
        trace: list[int] = []
        scores: list[Any] = [0.0]
        while len(trace) < steps:
            best, best_i, best_l = None, -1, None
            for i in cands:
                if i in trace:
                    continue
                ci = i + offset
                sel = cond + [j + offset for j in trace] + [ci]
                if lf is None:
                    v = s[sel][:, sel]
                    cur_l, logdet = torch.sqrt(v).reshape(1, 1), v.clone().log()
                else:
                    cur_l, logdet = chol_update(lf, s[ci : ci + 1][:, sel])
                obj = 1.0 / lam * 2 * torch.log(r[:, sel]).sum() + logdet
                if best_i == -1 or obj > best:
                    best, best_i, best_l = obj, i, cur_l
            scores.append(best)
            trace.append(best_i)
            lf = best_l
        return scores, [sorted(trace[:j]) for j in range(len(trace) + 1)]

    x = torch.from_numpy(frames)
    t = torch.from_numpy(text)
    n = len(x)
    m = n if segment_size <= 0 else segment_size
    nseg = (n + m - 1) // m
    neg = -0x7FFFFFFF
    dp = [[0.0] + [neg] * k for _ in range(nseg + 1)]
    trace = [[[] for _ in range(k + 1)] for _ in range(nseg + 1)]
    with torch.no_grad():
        for s in range(1, nseg + 1):
            cand = list(range((s - 1) * m, s * m))
            ce = [x[i] for i in cand]
            sim = kernel(torch.stack(ce))
            for start in range(0, min(k, (s - 1) * m) + 1):
                prev = trace[s - 1][start]
                cond = prev[-min(condition_size, len(prev)):] if prev else []
                add = [t] + [x[i] for i in cond]
                extra = kernel(torch.stack(add), torch.stack(add + ce))
                total = torch.cat([extra, torch.cat([extra[:, -len(sim):].T, sim], 1)], 0)
                scores, traces = greedy(total, len(cond), min(k - start, m))
                for j, (sc, tr) in enumerate(zip(scores, traces)):
                    val = dp[s - 1][start] + sc
                    if val > dp[s][start + j]:
                        dp[s][start + j] = val
                        trace[s][start + j] = prev + [i + (s - 1) * m for i in tr]
    return sorted(int(i) for i in trace[nseg][k])


# --- timing -------------------------------------------------------------------------------------

def timeit(fn: Any, repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def bench_selection(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for n in args.n:
        x, t = video_like(n, args.d)
        for k in args.k:
            if k >= n:
                continue
            m = args.segment_size
            ref_m = m if n % m == 0 else n  # the public code needs n % m == 0
            cond = mdp3(x, t, k, segment_size=m)
            ref = mdp3(x, t, k, segment_size=ref_m, mode="reference")
            row: dict[str, Any] = {"n": n, "k": k, "d": args.d, "segment_size": m,
                                   "ref_segment_size": ref_m}
            if n <= args.public_max_n:
                t0 = time.perf_counter()
                pub = public_mdp3(x, t, k, segment_size=ref_m)
                row["public_mdp3_s"] = time.perf_counter() - t0  # one run: it is slow
                if pub != ref.tolist():
                    raise SystemExit(f"n={n} k={k}: reference mode {ref.tolist()} != public {pub}")
                row["reference_matches_public"] = True
            row["objective_conditional"] = mdp3_objective(x, t, cond)
            row["objective_reference"] = mdp3_objective(x, t, ref)
            row["vidsel_mdp3_s"] = timeit(partial(mdp3, x, t, k, segment_size=m), args.repeat)
            row["vidsel_mdp3_ref_s"] = timeit(
                partial(mdp3, x, t, k, segment_size=ref_m, mode="reference"), args.repeat)
            row["vidsel_dpp_s"] = timeit(partial(dpp, x, t, k), args.repeat)
            if args.gpu:
                import torch

                xg, tg = torch.from_numpy(x).cuda(), torch.from_numpy(t).cuda()
                assert dpp(xg, tg, k).tolist() == dpp(x, t, k).tolist()

                row["vidsel_dpp_cuda_s"] = timeit(partial(_dpp_cuda, xg, tg, k), args.repeat)
            if "public_mdp3_s" in row:
                row["speedup_ref_vs_public"] = row["public_mdp3_s"] / row["vidsel_mdp3_ref_s"]
            rows.append(row)
            print(_fmt_row(row), flush=True)
    return rows


def _dpp_cuda(x: Any, t: Any, k: int) -> None:
    import torch

    dpp(x, t, k)
    torch.cuda.synchronize()


def _fmt_row(r: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        return f"{1e3 * r[key]:10.2f}" if key in r else f"{'-':>10}"

    pub = f"{r['public_mdp3_s']:10.2f}s" if "public_mdp3_s" in r else f"{'skipped':>11}"
    sp = f"{r['speedup_ref_vs_public']:9.0f}x" if "speedup_ref_vs_public" in r else f"{'-':>10}"
    return (f"{r['n']:5d} {r['k']:4d} | {ms('vidsel_mdp3_s')} {ms('vidsel_mdp3_ref_s')} "
            f"{ms('vidsel_dpp_s')} {ms('vidsel_dpp_cuda_s')} | {pub} {sp}")


def bench_embedding(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (args.embed_frames, 360, 640, 3), dtype=np.uint8)
    from vidsel.embed import OpenClipEmbedder

    emb = OpenClipEmbedder.from_pretrained("ViT-B-32", random_init=True, batch_size=32)
    emb.embed_images(frames[:4])
    t0 = time.perf_counter()
    out = emb.embed_images(frames)
    dt = time.perf_counter() - t0
    assert out.shape == (len(frames), emb.dim)
    rows.append({"model": "open_clip ViT-B-32 (random)", "device": "cpu", "dtype": "float32",
                 "frames": len(frames), "seconds": dt, "frames_per_s": len(frames) / dt})
    if args.gpu:
        rows.append(_siglip_gpu(frames))
    for r in rows:
        print(f"  {r['model']:40s} {r['device']:5s} {r['dtype']:9s} {r['frames_per_s']:9.1f} "
              f"frames/s", flush=True)
    return rows


def _siglip_gpu(frames: np.ndarray) -> dict[str, Any]:
    """SigLIP so400m-patch14-384 architecture, random weights (none downloadable), bf16."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    from vidsel.embed import HFEmbedder

    cfg = SiglipConfig(
        vision_config={"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                       "num_attention_heads": 16, "image_size": 384, "patch_size": 14},
        text_config={"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27,
                     "num_attention_heads": 16, "vocab_size": 32000, "max_position_embeddings": 64},
    )
    model = SiglipModel(cfg)
    proc = SiglipImageProcessor(size={"height": 384, "width": 384})
    emb = HFEmbedder(model, None, proc, source="siglip-so400m-arch(random)", device="cuda",
                     dtype="bfloat16", batch_size=64)
    emb.embed_images(frames[:8])
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    emb.embed_images(frames)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"model": "SigLIP so400m-patch14-384 (random)", "device": "cuda", "dtype": "bfloat16",
            "frames": len(frames), "seconds": dt, "frames_per_s": len(frames) / dt}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=[128, 512, 3600])
    p.add_argument("--k", type=int, nargs="+", default=[8, 32, 64])
    p.add_argument("--d", type=int, default=1152, help="embedding dim (SigLIP so400m: 1152)")
    p.add_argument("--segment-size", type=int, default=32)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--public-max-n", type=int, default=128,
                   help="run the public re-implementation only up to this n (it is slow)")
    p.add_argument("--embed-frames", type=int, default=64)
    p.add_argument("--no-embed", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="BLAS threads (env, pre-import)")
    p.add_argument("--out", type=Path, default=RESULTS / "select.json")
    args = p.parse_args(argv)
    try:
        import torch

        args.gpu = bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover
        args.gpu = False
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"gpu={args.gpu}, BLAS threads={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    print("    n    k |  mdp3 (ms)  mdp3-ref    dpp (ms)  dpp-cuda |  public mdp3   ref speedup")
    rows = bench_selection(args)
    emb_rows = [] if args.no_embed else bench_embedding(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "gpu": args.gpu,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS")}
    args.out.write_text(json.dumps({"meta": meta, "selection": rows, "embedding": emb_rows},
                                   indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
