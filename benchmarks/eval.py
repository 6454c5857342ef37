"""Throughput of ``vidsel eval`` (:func:`vidsel.eval.run_eval`): answers per minute, where the
time of an answer goes, what the selection cache saves a second model, and selection executor
scaling.

CPU part (the default; tiny models, generated videos):

- **grid**: items x methods (``uniform``, ``codec``, ``mdp3``) x budgets (8, 32) through
  (a) a model-free answerer (a Python function: the non-model overhead alone) and (b) the real
  tiny Ovis model (a random ``tiny``-preset checkpoint saved to disk, ``ovis:DIR``, CPU,
  float32). ``mdp3`` scores frames with a tiny random SigLIP saved to disk (``hf:DIR``).
  Per answer: open (content id, video facts, demux; the embedder's first load), decode,
  embed, select (the algorithm), other method work, frame / pixel fetch, model, and the
  runner's own share (prompts, cache writes, records): from the records' ``timings_s`` and
  ``selection_timings_s``, each selection counted once (methods that do not read the question
  share one selection between the questions of a video), the runner's share being the wall
  time minus everything else.
- **cache**: model 1 runs cold on a fresh selection cache; model 2 (the same checkpoint with
  ``max_batch=2``, another identity) and the Python answerer run on the same cache. Their
  selections (frame indices / patch positions) and the pixels that reached the model (a hash
  the Python answerer records) are checked to agree with the cold run before any timing is
  reported. Non-model time per answer is the wall time minus the model's time; the saving is
  ``1 - warm / cold`` (goal: >= 90 %).
- **executor**: the Python answerer's grid cold with selections in-process (``serial``) and
  on a process pool of ``--workers`` (non-model wall time; includes starting the pool and
  loading the embedder in each worker).

Every configuration is run ``--repeat`` times after a warm-up (imports, the embedder's load);
medians are reported. A table is printed and JSON written to ``benchmarks/results/eval.json``.

GPU part (``--device cuda``; needs a CUDA device): a Qwen2.5-VL-3B-sized model built from its
configuration with random bf16 weights (no download), 32 frames of a 640 x 360 generated video
per item, through the ``HFAnswerer`` path: the per-item latency split into selection (open +
method + frame fetch), preprocessing (processor + host-to-device copy) and generate.

Usage::

    python benchmarks/eval.py                      # CPU, ~3-5 minutes on 2 cores
    python benchmarks/eval.py --quick              # 2 short videos, budget 8 only, 1 repeat
    python benchmarks/eval.py --videos 6 --frames 600 --budgets 8,16,32 --repeat 3
    python benchmarks/eval.py --device cuda        # + the Qwen2.5-VL-3B-sized GPU split
    python benchmarks/eval.py --device cuda --skip-cpu   # the GPU split only (eval-cuda.json)
    python benchmarks/eval.py --gpu-path-smoke     # the GPU code path on the CPU, toy sizes
"""

from __future__ import annotations

import sys

# benchmarks/select.py shadows the stdlib ``select`` module that process pools need: drop this
# folder from the import path (the package is found through the repository root below).
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    sys.path.pop(0)

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from vidsel import __version__
from vidsel.eval import CallableAnswerer, EvalItem, Generation, load_answerer, run_eval

HERE = Path(__file__).resolve().parent
DATA = HERE / "_data" / "eval"
RESULTS = HERE / "results"
SHARED_CLIPS = HERE.parents[1] / "shared" / "fixtures" / "clips"
#: The real clip added to the grid when ../shared is present (short, 30 fps, H.264).
REAL_CLIP = "torchcodec__nasa_13013.mp4"

#: Words both tiny tokenizers know (the rest become [UNK]: harmless, but keep prompts real).
QUESTIONS = ("where does the red box go", "what is in the video", "does the camera pan left",
             "what moves in the scene")
OPTIONS = ("left", "right", "the box", "a cat")
#: Tiny Ovis video limits: a 320 x 240 video becomes 96 x 128 frames, 3 x 4 = 12 tokens each.
OVIS_VIDEO_PIXELS = (32 * 32, 96 * 128)


# --- inputs: videos and tiny models, built once into benchmarks/_data/eval/ ---------------------

def make_videos(n: int, frames: int, width: int, height: int, *, scene: str = "multi_scene",
                fps: int = 30) -> list[Path]:
    from vidsel.synth import make_video

    d = DATA / "videos" / f"{n}x{frames}f_{width}x{height}_{scene}"
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = d / f"v{i:02d}.mp4"
        if not p.exists():
            make_video(p, scene=scene, num_frames=frames, fps=fps, width=width, height=height,
                       gop=fps, seed=i, n_scenes=4)
        out.append(p)
    return out


def tiny_siglip(root: Path) -> Path:
    """A random 2-layer SigLIP (d = 32), word-level tokenizer and 32 x 32 image processor, as
    tests/conftest.py ``tiny_siglip_dir`` builds it."""
    d = root / "tiny_siglip"
    if (d / "config.json").exists():
        return d
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import (
        PreTrainedTokenizerFast,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
    )

    words = ["[PAD]", "[UNK]", "<s>", "a", "the", "box", "cat", "dog", "moves", "left", "right",
             "red", "blue", "video", "frame", "what", "is", "in", "where", "does", "go",
             "answer", "with", "option", "letter", "scene", "cut", "camera", "pans", "</s>"]
    eos = words.index("</s>")
    cfg = SiglipConfig(
        text_config={"vocab_size": len(words), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2,
                     "max_position_embeddings": 64, "pad_token_id": 0, "eos_token_id": eos,
                     "bos_token_id": 2},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
    )
    tmp = Path(tempfile.mkdtemp(prefix=".siglip-", dir=root))
    torch.manual_seed(0)
    SiglipModel(cfg).save_pretrained(tmp)
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)},
                                     unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>",
                                                       special_tokens=[("</s>", eos)])
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                            eos_token="</s>", bos_token="<s>",
                            model_max_length=64).save_pretrained(tmp)
    SiglipImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp)
    os.replace(tmp, d)
    return d


def tiny_ovis(root: Path) -> Path:
    """A random ``tiny``-preset Ovis checkpoint with a ChatML word-level tokenizer, as
    tests/conftest.py ``tiny_ovis_dir`` builds it (video limits: :data:`OVIS_VIDEO_PIXELS`)."""
    d = root / "tiny_ovis"
    if (d / "config.json").exists():
        return d
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from ovis_model import ImageProcessorConfig, OvisModel, preset

    tmp = Path(tempfile.mkdtemp(prefix=".ovis-", dir=root))
    OvisModel.from_config(preset("tiny"), dtype=torch.float32, seed=0).save_pretrained(tmp)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "[UNK]"]
    words = ["user", "assistant", "system", "a", "the", "what", "is", "seconds", "A", "B", "C",
             "D", "box", "left", "right", "where", "does", "go", "red", "video", "camera"]
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(specials + words)},
                                     unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="<|endoftext|>",
                            eos_token="<|im_end|>",
                            additional_special_tokens=specials[1:5]).save_pretrained(tmp)
    lo, hi = OVIS_VIDEO_PIXELS
    ImageProcessorConfig(video_min_pixels=lo, video_max_pixels=hi).save_pretrained(tmp)
    os.replace(tmp, d)
    return d


def make_items(videos: Sequence[Path], questions: int) -> list[EvalItem]:
    """``questions`` four-option MCQ items per video (Video-MME has 3 per video)."""
    items = []
    for v in videos:
        for q in range(questions):
            items.append(EvalItem(f"{v.stem}-q{q}", "bench", str(v),
                                  QUESTIONS[q % len(QUESTIONS)], "mcq", options=OPTIONS,
                                  answer="ABCD"[q % 4]))
    return items


# --- the model-free answerer --------------------------------------------------------------------

def pixel_digest(request: Any) -> str:
    v = request.visual
    pix = v.frames if v.kind == "frames" else v.patches.pixels
    return hashlib.sha256(np.ascontiguousarray(pix).tobytes()).hexdigest()[:16]


def no_model(request: Any) -> Generation:
    """Answers 'A' at once; records a hash of the pixels it was given (so a warm run can be
    checked to hand the model the same pixels as the cold one)."""
    return Generation(text="A", visual_tokens=request.visual.num_tokens,
                      notes=(f"pixels {pixel_digest(request)}",))


# --- one timed run ------------------------------------------------------------------------------

#: The record's timings that make up its selection (the embedder's first load counted in open).
SELECTION_TIMES = ("open", "embedder_load", "select", "frames")
STAGES = ("open", "decode", "embed", "select", "method_other", "frames", "runner", "model")


def split(records: list[dict[str, Any]], wall: float) -> dict[str, float]:
    """Seconds per answer by stage (they add up to ``wall / answers``): each selection's
    stage times counted once, the model's per answer, the runner's the rest of the wall."""
    n = len(records)
    tot = dict.fromkeys(STAGES, 0.0)
    seen: set[str] = set()
    for r in records:
        t, st = r.get("timings_s", {}), r.get("selection_timings_s", {}) or {}
        tot["model"] += float(t.get("model", 0.0))
        if r.get("cache_hit"):
            continue
        ident = json.dumps([r["video"], r["method"], r["budget"], t.get("open"),
                            t.get("select"), t.get("frames")], default=str)
        if ident in seen:  # a selection shared between the questions of one video
            continue
        seen.add(ident)
        decode = float(st.get("decode", 0.0)) + float(st.get("index", 0.0))
        embed = float(st.get("embed_images", 0.0)) + float(st.get("embed_text", 0.0))
        sel = float(st.get("select", 0.0))
        pixels = float(st.get("pixels", 0.0))  # codec: patch pixels fetched by the method
        method = float(t.get("select", 0.0))
        tot["open"] += float(t.get("open", 0.0)) + float(t.get("embedder_load", 0.0))
        tot["decode"] += decode
        tot["embed"] += embed
        tot["select"] += sel
        tot["frames"] += float(t.get("frames", 0.0)) + pixels
        tot["method_other"] += max(0.0, method - decode - embed - sel - pixels)
    tot["runner"] = max(0.0, wall - sum(tot.values()))
    return {k: v / n for k, v in tot.items()}


def timed_run(items: list[EvalItem], model: Any, *, methods: Sequence[str],
              budgets: Sequence[int], embedder: str, cache: Path | None, tmp: Path,
              executor: str = "serial", workers: int | None = None,
              method_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One ``run_eval`` into a results file (fsync on, as the CLI): wall, records, split."""
    out = tmp / f"run-{time.perf_counter_ns()}.jsonl"
    t0 = time.perf_counter()
    summary = run_eval(items, model, methods=methods, budgets=budgets, out=out,
                       embedder=embedder, device="cpu", cache_dir=cache if cache else None,
                       executor=executor, workers=workers, progress=False,
                       method_options=method_options)
    wall = time.perf_counter() - t0
    from vidsel.runs import read_records

    records = read_records(out)
    out.unlink()
    if summary.failed or len(records) != summary.units:
        bad = [r.get("error") for r in records if r.get("status") != "ok"][:3]
        raise SystemExit(f"run_eval failed {summary.failed} of {summary.units}: {bad}")
    model_s = sum(float(r["timings_s"].get("model", 0.0)) for r in records)
    return {"wall_s": wall, "answers": len(records), "model_s": model_s,
            "nonmodel_per_answer_s": (wall - model_s) / len(records),
            "answers_per_min": 60.0 * len(records) / wall,
            "items_per_min": 60.0 * len(records) / wall / (len(methods) * len(budgets)),
            "split": split(records, wall),
            "records": records,
            "cache_hits": sum(bool(r.get("cache_hit")) for r in records)}


def repeated(fn: Callable[[], dict[str, Any]], repeat: int) -> dict[str, Any]:
    """``fn`` ``repeat`` times: the median run's figures (by wall), medians of the scalars."""
    runs = [fn() for _ in range(repeat)]
    runs.sort(key=lambda r: r["wall_s"])
    mid = runs[(len(runs) - 1) // 2]
    out = dict(mid)
    for k in ("wall_s", "model_s", "nonmodel_per_answer_s", "answers_per_min", "items_per_min"):
        out[k] = statistics.median(r[k] for r in runs)
        out[k + "_all"] = [r[k] for r in runs]
    return out


def selections(records: list[dict[str, Any]]) -> dict[tuple[str, str, int], Any]:
    return {(r["item_id"], r["method"], r["budget"]): r["selection"] for r in records}


def check_same(name: str, a: list[dict[str, Any]], b: list[dict[str, Any]], *,
               pixels: bool = False) -> None:
    """Selections (and the pixels' hashes) of ``b`` equal those of ``a``, else exit."""
    sa, sb = selections(a), selections(b)
    if sa.keys() != sb.keys():
        raise SystemExit(f"{name}: different answers ({len(sa)} vs {len(sb)})")
    bad = [k for k in sa if sa[k] != sb[k]]
    if bad:
        raise SystemExit(f"{name}: selections differ for {bad[:3]}")
    if pixels:
        pa = {(r["item_id"], r["method"], r["budget"]): r["notes"] for r in a}
        pb = {(r["item_id"], r["method"], r["budget"]): r["notes"] for r in b}
        bad = [k for k in pa if pa[k] != pb[k]]
        if bad:
            raise SystemExit(f"{name}: pixels reaching the model differ for {bad[:3]}")


# --- reporting ----------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    cores: int | None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"cpu": cpu, "cores": cores, "node": platform.node(),
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "vidsel": __version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "loadavg_1_5_15": [round(x, 2) for x in load] if load else None,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def by_cell(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per (method, budget): the stage split of those records (no runner share)."""
    out = {}
    for key in sorted({(r["method"], r["budget"]) for r in records}):
        sub = [r for r in records if (r["method"], r["budget"]) == key]
        s = split(sub, 0.0)
        s.pop("runner")
        s["median_selection_s"] = statistics.median(
            sum(float(r["timings_s"].get(k, 0.0)) for k in SELECTION_TIMES)
            for r in sub)
        s["median_model_s"] = statistics.median(float(r["timings_s"]["model"]) for r in sub)
        s["answers"] = len(sub)
        out[f"{key[0]}@{key[1]}"] = s
    return out


def ms(x: float) -> str:
    return f"{1e3 * x:.1f}"


def print_split(title: str, rows: dict[str, dict[str, Any]]) -> list[str]:
    head = ("| run | items/min | answers/min | " + " | ".join(f"{s} ms" for s in STAGES)
            + " | non-model ms/answer |")
    lines = [f"\n{title}\n", head, "|" + "---|" * (len(STAGES) + 4)]
    for name, r in rows.items():
        s = r["split"]
        lines.append(f"| {name} | {r['items_per_min']:.1f} | {r['answers_per_min']:.0f} | "
                     + " | ".join(ms(s[k]) for k in STAGES)
                     + f" | {ms(r['nonmodel_per_answer_s'])} |")
    print("\n".join(lines))
    return lines


# --- the CPU benchmark --------------------------------------------------------------------------

def cpu_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    methods = args.methods.split(",")
    budgets = [int(b) for b in args.budgets.split(",")]
    DATA.mkdir(parents=True, exist_ok=True)
    models_root = DATA / "models"
    models_root.mkdir(parents=True, exist_ok=True)
    videos = make_videos(args.videos, args.frames, args.width, args.height)
    real = SHARED_CLIPS / REAL_CLIP
    if args.real_clip and real.is_file():
        videos.append(real)
    items = make_items(videos, args.questions)
    siglip = tiny_siglip(models_root)
    ovis_dir = tiny_ovis(models_root)
    embedder = f"hf:{siglip}"
    torch.set_num_threads(max(1, args.threads or torch.get_num_threads()))

    t0 = time.perf_counter()
    ovis1 = load_answerer(f"ovis:{ovis_dir}", device="cpu", dtype="float32")
    load_s = time.perf_counter() - t0
    ovis2 = load_answerer(f"ovis:{ovis_dir}", device="cpu", dtype="float32", max_batch=2)
    # the Python answerer selects with Ovis's geometry: it shares Ovis's cache entries
    py = CallableAnswerer(no_model, geometry=ovis1.geometry(), name="py:no_model")
    geom = ovis1.geometry()(args.height, args.width)
    grid = dict(methods=methods, budgets=budgets, embedder=embedder)

    tmp = Path(tempfile.mkdtemp(prefix="vidsel-bench-eval-"))
    caches = iter(range(10 ** 6))

    def fresh() -> Path:
        return tmp / f"cache{next(caches)}"

    try:
        # warm-up: imports, the embedder's first load in this process, torch's kernels
        print("warm-up...", flush=True)
        timed_run(items[:1], ovis1, **grid, cache=fresh(), tmp=tmp)

        print("grid: model-free answerer, cold cache...", flush=True)
        py_cold = repeated(lambda: timed_run(items, py, **grid, cache=fresh(), tmp=tmp),
                           args.repeat)
        print("grid: tiny Ovis, cold cache...", flush=True)
        shared_cache: list[Path] = []

        def ovis_cold() -> dict[str, Any]:
            c = fresh()
            shared_cache.append(c)
            return timed_run(items, ovis1, **grid, cache=c, tmp=tmp)

        ov_cold = repeated(ovis_cold, args.repeat)
        cache = shared_cache[-1]
        # the checks, before any warm figure is reported
        check_same("ovis cold vs py cold", py_cold["records"], ov_cold["records"])
        print("cache: second model (Ovis max_batch=2) and the model-free answerer, warm...",
              flush=True)
        ov_warm = repeated(lambda: timed_run(items, ovis2, **grid, cache=cache, tmp=tmp),
                           args.repeat)
        py_warm = repeated(lambda: timed_run(items, py, **grid, cache=cache, tmp=tmp),
                           args.repeat)
        check_same("ovis warm vs ovis cold", ov_cold["records"], ov_warm["records"])
        check_same("py warm vs py cold", py_cold["records"], py_warm["records"], pixels=True)
        for name, r in (("ovis warm", ov_warm), ("py warm", py_warm)):
            if r["cache_hits"] != r["answers"]:
                raise SystemExit(f"{name}: {r['cache_hits']} of {r['answers']} cache hits")

        print(f"executor: serial vs process x{args.workers} (model-free answerer, cold)...",
              flush=True)
        serial = py_cold
        pooled = repeated(lambda: timed_run(items, py, **grid, cache=fresh(), tmp=tmp,
                                            executor="process", workers=args.workers),
                          args.repeat)
        check_same("process pool vs serial", serial["records"], pooled["records"], pixels=True)

        emb: dict[str, Any] = {}
        if "mdp3" in methods:
            # the runner leaves mdp3's query-independent embedding cache off: every question
            # and budget of a video decodes and embeds the same candidates again
            print("mdp3: without / with the embedding cache (method_options cache_dir)...",
                  flush=True)
            mdp3 = dict(grid, methods=["mdp3"])
            pairs = [(timed_run(items, py, **mdp3, cache=fresh(), tmp=tmp),
                      timed_run(items, py, **mdp3, cache=fresh(), tmp=tmp,
                                method_options={"cache_dir": str(fresh())}))
                     for _ in range(args.repeat)]  # interleaved: a load drift hits both
            emb["off"] = repeated(iter([p[0] for p in pairs]).__next__, args.repeat)
            emb["on"] = repeated(iter([p[1] for p in pairs]).__next__, args.repeat)
            check_same("mdp3 with the embedding cache", emb["off"]["records"],
                       emb["on"]["records"], pixels=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        ovis1.close()
        ovis2.close()

    runs: dict[str, dict[str, Any]] = {"py cold": py_cold, "py warm": py_warm, "ovis cold": ov_cold,
            "ovis(max_batch=2) warm": ov_warm, f"py cold, process x{args.workers}": pooled}
    lines = [f"{len(items)} items ({len(videos)} videos x {args.questions} questions; "
             f"{args.videos} generated of {args.frames} frames {args.width}x{args.height}"
             + (f" + {REAL_CLIP}" if real.is_file() and args.real_clip else "")
             + f") x {methods} x budgets {budgets} = {py_cold['answers']} answers; "
             f"Ovis geometry {geom.frame_size} -> {geom.tokens_per_frame} tokens/frame; "
             f"median of {args.repeat}"]
    print("\n" + lines[0])
    lines += print_split("Per answer (ms; each selection counted once; runner = the rest of "
                         "the wall; in the process-pool row the stages are worker time, "
                         "overlapping, so they need not add up to the wall)", runs)

    def saving(cold: dict[str, Any], warm: dict[str, Any]) -> float:
        return 100.0 * (1.0 - warm["nonmodel_per_answer_s"] / cold["nonmodel_per_answer_s"])

    cache_rows = [
        ("Ovis cold -> Ovis max_batch=2 warm", ov_cold, ov_warm),
        ("py cold -> py warm", py_cold, py_warm),
    ]
    first_new = len(lines)
    lines += ["", "Selection cache: non-model time per answer", "",
              "| first -> second model | cold ms | warm ms | saved |", "|---|---|---|---|"]
    for name, c, w in cache_rows:
        lines.append(f"| {name} | {ms(c['nonmodel_per_answer_s'])} | "
                     f"{ms(w['nonmodel_per_answer_s'])} | {saving(c, w):.1f} % |")
    ex_ratio = serial["nonmodel_per_answer_s"] / pooled["nonmodel_per_answer_s"]
    lines += ["", f"Executor (py answerer, cold): serial {ms(serial['nonmodel_per_answer_s'])} "
              f"ms/answer, process x{args.workers} {ms(pooled['nonmodel_per_answer_s'])} "
              f"ms/answer: {ex_ratio:.2f}x"]
    if emb:
        off, on = emb["off"]["nonmodel_per_answer_s"], emb["on"]["nonmodel_per_answer_s"]
        lines += ["", f"mdp3 cold (py answerer), non-model per answer: {ms(off)} ms without, "
                  f"{ms(on)} ms with mdp3's embedding cache ({off / on:.2f}x; "
                  f"{args.questions} questions x {len(budgets)} budgets per video)"]
    cells = by_cell(ov_cold["records"])
    lines += ["", "Ovis cold by method @ budget (ms per answer; medians of selection and "
              "model per record)", "",
              "| cell | open | decode | embed | select | other | frames | model | "
              "median selection | median model |", "|---|---|---|---|---|---|---|---|---|---|"]
    for k, s in cells.items():
        lines.append(f"| {k} | {ms(s['open'])} | {ms(s['decode'])} | {ms(s['embed'])} | "
                     f"{ms(s['select'])} | {ms(s['method_other'])} | {ms(s['frames'])} | "
                     f"{ms(s['model'])} | {ms(s['median_selection_s'])} | "
                     f"{ms(s['median_model_s'])} |")
    print("\n".join(lines[first_new:]))

    def strip(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k != "records"}

    return {"items": len(items), "videos": [str(v) for v in videos],
            "questions_per_video": args.questions, "methods": methods, "budgets": budgets,
            "frames": args.frames, "size": [args.width, args.height],
            "ovis_geometry": {"frame_size": list(geom.frame_size),
                              "tokens_per_frame": geom.tokens_per_frame},
            "ovis_load_s": load_s, "repeat": args.repeat, "threads": torch.get_num_threads(),
            "runs": {k: strip(v) for k, v in runs.items()},
            "cache_saving_pct": {name: saving(c, w) for name, c, w in cache_rows},
            "executor_speedup": ex_ratio, "ovis_cold_by_cell": cells,
            "mdp3_embedding_cache": {k: strip(v) for k, v in emb.items()},
            "markdown": "\n".join(lines)}


# --- the GPU benchmark: real shapes, random bf16 weights ----------------------------------------

#: Qwen2.5-VL-3B-Instruct's architecture (its config.json), for random weights.
QWEN25_VL_3B = {
    "text": dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008,
                 num_hidden_layers=36, num_attention_heads=16, num_key_value_heads=2,
                 max_position_embeddings=128000, rms_norm_eps=1e-6, tie_word_embeddings=True,
                 rope_parameters={"rope_type": "default", "mrope_section": [16, 24, 24],
                                  "rope_theta": 1000000.0}),
    "vision": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16,
                   out_hidden_size=2048, patch_size=14, spatial_merge_size=2,
                   temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31],
                   tokens_per_second=2, hidden_act="silu", in_chans=3),
}
#: Per-frame pixel limits of Qwen2.5-VL's video preprocessing in qwen-vl-utils.
QWEN_VIDEO_PIXELS = (128 * 28 * 28, 768 * 28 * 28)
SPECIALS = ["<|im_end|>", "<|endoftext|>", "<|im_start|>", "<|vision_start|>", "<|vision_end|>",
            "<|video_pad|>", "<|image_pad|>"]
QWEN_TEMPLATE = (
    "{%- for message in messages -%}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor -%}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif -%}"
)


def qwen_processor(min_pixels: int, max_pixels: int) -> Any:
    """Qwen2.5-VL's processor with a byte-level tokenizer built here (any text round-trips;
    no download): prompt lengths differ from the real tokenizer's by a few tokens per word,
    the visual tokens not at all."""
    import transformers as tf
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                      pad_token="<|endoftext|>",
                                      additional_special_tokens=SPECIALS[2:],
                                      padding_side="left")
    return tf.Qwen2_5_VLProcessor(
        image_processor=tf.Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels),
        video_processor=tf.Qwen2VLVideoProcessor(min_pixels=min_pixels, max_pixels=max_pixels),
        tokenizer=fast, chat_template=QWEN_TEMPLATE)


def qwen_model(processor: Any, *, device: str, dtype: Any, shapes: dict[str, Any]) -> Any:
    """Qwen2.5-VL from its configuration with random weights, built on ``device``."""
    import torch
    import transformers as tf

    tok = processor.tokenizer
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    config = tf.Qwen2_5_VLConfig(
        text_config=dict(shapes["text"], pad_token_id=ids["<|endoftext|>"],
                         eos_token_id=ids["<|im_end|>"], bos_token_id=None),
        vision_config=dict(shapes["vision"]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(0)
    with torch.device(device):
        model = tf.AutoModelForImageTextToText.from_config(config, dtype=dtype)
    return model.eval()


def gpu_split(args: argparse.Namespace, *, device: str, shapes: dict[str, Any],
              dtype_name: str, video_size: tuple[int, int], frames: int,
              min_max_pixels: tuple[int, int], budget: int) -> dict[str, Any]:
    """Per-item latency at ``budget`` frames: selection | preprocessing | generate."""
    import dataclasses

    import torch

    from vidsel.eval import HFAnswerer

    dtype = getattr(torch, dtype_name)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    class TimedHF(HFAnswerer):
        """HFAnswerer whose preprocessing (processor + copy to the device) is timed and
        recorded in each generation's notes."""

        def _inputs(self, requests: list[Any], prepared: list[Any]) -> Any:
            sync()
            t0 = time.perf_counter()
            out = super()._inputs(requests, prepared)
            sync()
            self._prep_s = time.perf_counter() - t0
            return out

        def generate(self, requests: Sequence[Any]) -> list[Generation]:
            t0 = time.perf_counter()
            gens = super().generate(requests)
            sync()
            total = time.perf_counter() - t0
            return [dataclasses.replace(g, notes=(*g.notes, f"prep_s={self._prep_s:.6f}",
                                                  f"total_s={total:.6f}")) for g in gens]

    t0 = time.perf_counter()
    processor = qwen_processor(*min_max_pixels)
    model = qwen_model(processor, device=device, dtype=dtype, shapes=shapes)
    n_params = sum(p.numel() for p in model.parameters())
    build_s = time.perf_counter() - t0
    answerer = TimedHF(model, processor, name="hf:qwen2.5-vl-3b-random", max_batch=1)
    w, h = video_size
    videos = make_videos(args.gpu_videos, frames, w, h)
    items = make_items(videos, args.questions)
    models_root = DATA / "models"
    models_root.mkdir(parents=True, exist_ok=True)
    embedder = f"hf:{tiny_siglip(models_root)}"
    methods = args.methods.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="vidsel-bench-eval-gpu-"))
    try:
        run_eval(items[:1], answerer, methods=["uniform"], budgets=[budget], embedder=embedder,
                 cache_dir=None, max_new_tokens=args.max_new_tokens, progress=False)  # warm-up
        t0 = time.perf_counter()
        summary = run_eval(items, answerer, methods=methods, budgets=[budget],
                           embedder=embedder, cache_dir=tmp / "cache",
                           max_new_tokens=args.max_new_tokens, progress=False)
        wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bad = [r for r in summary.records if r["status"] != "ok"]
    if bad:
        raise SystemExit(f"GPU run: {len(bad)} failures, first: {bad[0].get('error')}")
    rows: dict[str, dict[str, float]] = {}
    for m in methods:
        sub = [r for r in summary.records if r["method"] == m]

        def note(r: dict[str, Any], key: str) -> float:
            return next(float(n.split("=", 1)[1]) for n in r["notes"] if n.startswith(key))

        sel = [sum(float(r["timings_s"].get(k, 0.0)) for k in SELECTION_TIMES)
               for r in sub]
        prep = [note(r, "prep_s=") for r in sub]
        gen = [note(r, "total_s=") - note(r, "prep_s=") for r in sub]
        rows[m] = {"selection_s": statistics.median(sel), "preprocess_s": statistics.median(prep),
                   "generate_s": statistics.median(gen),
                   "visual_tokens": statistics.median(r["model_visual_tokens"] for r in sub),
                   "selection_tokens": statistics.median(r["visual_tokens"] for r in sub),
                   "prompt_tokens": statistics.median(r["prompt_tokens"] for r in sub),
                   "answers": len(sub)}
    answerer.close()
    geom = answerer.geometry()(h, w)
    lines = [f"\n{device} {dtype_name}, {n_params / 1e6:.1f} M parameters (random), "
             f"{budget} frames of {w}x{h} -> {geom.frame_size}, {len(items)} items, "
             f"max_new_tokens {args.max_new_tokens}, medians per item\n",
             "| method | selection ms | preprocess ms | generate ms | visual tokens (model) | "
             "visual tokens (selection) | prompt tokens |", "|---|---|---|---|---|---|---|"]
    for m, r in rows.items():
        lines.append(f"| {m} | {ms(r['selection_s'])} | {ms(r['preprocess_s'])} | "
                     f"{ms(r['generate_s'])} | {r['visual_tokens']:.0f} | "
                     f"{r['selection_tokens']:.0f} | "
                     f"{r['prompt_tokens']:.0f} |")
    print("\n".join(lines))
    return {"device": device, "dtype": dtype_name, "params": n_params, "build_s": build_s,
            "budget": budget, "video": [w, h], "frames": frames, "items": len(items),
            "frame_size": list(geom.frame_size), "wall_s": wall,
            "answers_per_min": 60.0 * len(summary.records) / wall, "rows": rows,
            "markdown": "\n".join(lines)}


def gpu_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible to torch "
                         f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); run the "
                         "CPU benchmark without --device, or on a machine with a GPU")
    return gpu_split(args, device="cuda", shapes=QWEN25_VL_3B, dtype_name="bfloat16",
                     video_size=(640, 360), frames=args.gpu_frames,
                     min_max_pixels=QWEN_VIDEO_PIXELS, budget=32)


def gpu_path_smoke(args: argparse.Namespace) -> dict[str, Any]:
    """The GPU code path on the CPU at toy sizes (real vocabulary size), to check it runs."""
    tiny = {"text": dict(QWEN25_VL_3B["text"], hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3],
                                          "rope_theta": 10000.0}),
            "vision": dict(QWEN25_VL_3B["vision"], depth=2, hidden_size=32,
                           intermediate_size=64, num_heads=2, out_hidden_size=32,
                           window_size=56, fullatt_block_indexes=[1])}
    return gpu_split(args, device="cpu", shapes=tiny, dtype_name="float32",
                     video_size=(320, 240), frames=120,
                     min_max_pixels=(28 * 28 * 4, 28 * 28 * 16), budget=8)


# --- driver -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--videos", type=int, default=3, help="generated videos (default 3)")
    ap.add_argument("--frames", type=int, default=300, help="frames per video (default 300)")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--questions", type=int, default=2, help="questions per video (default 2)")
    ap.add_argument("--methods", default="uniform,codec,mdp3")
    ap.add_argument("--budgets", default="8,32")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="process pool size (default 2)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--no-real-clip", dest="real_clip", action="store_false",
                    help=f"leave out ../shared/fixtures/clips/{REAL_CLIP}")
    ap.add_argument("--quick", action="store_true",
                    help="2 videos of 150 frames, 1 question, budget 8, 1 repeat, no real clip")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: also the Qwen2.5-VL-3B-sized split (random bf16 weights)")
    ap.add_argument("--gpu-videos", type=int, default=4)
    ap.add_argument("--gpu-frames", type=int, default=1800, help="frames per GPU video (60 s)")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--skip-cpu", action="store_true",
                    help="with --device cuda: only the GPU split (saves device time)")
    ap.add_argument("--gpu-path-smoke", action="store_true",
                    help="run the --device cuda code path on the CPU at toy sizes, then exit")
    ap.add_argument("--out", default=None,
                    help="JSON path (default benchmarks/results/eval.json; --quick: "
                         "eval-quick.json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.videos, args.frames, args.questions, args.budgets = 2, 150, 1, "8"
        args.repeat, args.real_clip = 1, False
    if args.gpu_path_smoke:
        args.gpu_videos = 1
        gpu_path_smoke(args)
        return 0
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():  # fail before minutes of CPU work
            gpu_benchmark(args)
    if args.skip_cpu and args.device != "cuda":
        raise SystemExit("--skip-cpu leaves nothing to run without --device cuda")
    name = ("eval-cuda.json" if args.skip_cpu else "eval-quick.json" if args.quick
            else "eval.json")
    out = Path(args.out or RESULTS / name)
    result: dict[str, Any] = {"machine": machine(), "argv": sys.argv[1:]}
    print(f"machine: {result['machine']}", flush=True)
    t0 = time.perf_counter()
    if not args.skip_cpu:
        result["cpu"] = cpu_benchmark(args)
    if args.device == "cuda":
        result["gpu"] = gpu_benchmark(args)
    result["seconds"] = time.perf_counter() - t0
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    result["machine"]["loadavg_end"] = [round(x, 2) for x in load] if load else None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {out} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
