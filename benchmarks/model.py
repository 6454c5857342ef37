"""Benchmark the ovis_model vision encoder, its attention backends and the LLM prefill.

At Ovis2.5-2B shapes (``--model ovis2.5-2b``, the default) or LLaVA-OneVision-2-8B shapes
(``--model llava-ov2-8b``) with random weights: uniform frames (196 visual tokens = 784 patches
per frame: 448x448 at patch 16, 392x392 at patch 14; one attention segment per frame) and
codec-style inputs of the same token count (patches from 4x as many frames; Ovis: one segment per
source frame, mixed lengths; LLaVA-OneVision-2: windows of 4 frames' worth of patches, as its
codec canvases), per attention backend; packed varlen attention against a padded batch; LLM
prefill of the whole multimodal prompt. Outputs of the backends are checked against each other
before anything is timed; each timing is the median of ``--repeat`` runs after ``--warmup``
runs. Results go to a JSON file.

GPU (what the targets refer to)::

    python benchmarks/model.py --device cuda --frames 64 256 768 --out bench_model.json
    python benchmarks/model.py --device cuda --model llava-ov2-8b --frames 32 128 \
        --out bench_llava_ov2.json

CPU smoke run at small sizes (what runs on the 2-core CI machines)::

    python benchmarks/model.py --device cpu --frames 2 4 --vit-layers 2 --llm-layers 2 \
        --dtype float32 --out /tmp/bench_model_cpu.json
"""

from __future__ import annotations

import sys

# This folder holds select.py (the selection benchmark), which would shadow the standard
# library's `select` module (used by subprocess) when a script here runs: drop the folder.
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    sys.path.pop(0)

import argparse
import json
import logging
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ovis_model import (
    LlavaOneVision2Model,
    OvisModel,
    VisionEncoder,
    available_attention_backends,
    llava_ov2_preset,
    preset,
)
from ovis_model.attention import make_segments, resolve_attention_backend
from ovis_model.positions import block_order_positions

logger = logging.getLogger("benchmarks.model")

PATCHES_PER_FRAME = 28 * 28  # 448 x 448 at patch 16 -> 196 tokens after the 2 x 2 merge


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timeit(fn: Callable[[], Any], device: torch.device, warmup: int, repeat: int) -> float:
    """Median wall seconds of ``fn`` (device-synchronised)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_ceiling(device: torch.device, dtype: torch.dtype) -> float:
    """Measured dense matmul FLOP/s (the physical limit MFU is quoted against)."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sec = timeit(lambda: a @ b, device, 3, 10)
    return 2 * n**3 / sec


def uniform_inputs(frames: int, patch_dim: int, device: torch.device,
                   dtype: torch.dtype) -> dict[str, torch.Tensor]:
    pos = block_order_positions(frames, 28, 28, 2, frame_ids=[4 * i for i in range(frames)])
    n = pos.shape[0]
    cu = torch.arange(0, n + 1, PATCHES_PER_FRAME, dtype=torch.int32)
    return {"pixel_values": torch.randn(n, patch_dim, device=device, dtype=dtype),
            "positions": pos.to(device), "cu_seqlens": cu.to(device),
            "frame_grids": torch.full((n, 2), 28, dtype=torch.long, device=device)}


def codec_inputs(frames: int, patch_dim: int, device: torch.device, dtype: torch.dtype,
                 seed: int = 0, window: int = 0) -> dict[str, torch.Tensor]:
    """Same patch count as ``frames`` uniform frames, spread over 4x the source frames with
    random (mixed) numbers of 2 x 2 blocks per frame; one attention segment per source frame,
    or (``window`` > 0) windows of ``window`` frames' worth of patches."""
    g = torch.Generator().manual_seed(seed)
    total_blocks = frames * PATCHES_PER_FRAME // 4
    sources = 4 * frames
    weights = torch.rand(sources, generator=g) ** 3 + 0.02
    counts = torch.clamp((weights / weights.sum() * total_blocks).floor().long(), 1, 196)
    while int(counts.sum()) < total_blocks:
        counts[int(torch.argmin(counts))] += 1
    while int(counts.sum()) > total_blocks:
        counts[int(torch.argmax(counts))] -= 1
    pos_parts = []
    for f, c in enumerate(counts.tolist()):
        blocks = torch.randperm(196, generator=g)[:c].sort().values
        br, bc = blocks // 14, blocks % 14
        inner = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
        rows = (br[:, None] * 2 + inner[None, :, 0]).reshape(-1)
        cols = (bc[:, None] * 2 + inner[None, :, 1]).reshape(-1)
        pos_parts.append(torch.stack([torch.full_like(rows, 8 * f), rows, cols], 1))
    pos = torch.cat(pos_parts)
    n = pos.shape[0]
    cu = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts * 4, 0)])
    if window:
        cu = torch.cat([torch.arange(0, n, window * PATCHES_PER_FRAME), torch.tensor([n])])
    return {"pixel_values": torch.randn(n, patch_dim, device=device, dtype=dtype),
            "positions": pos.to(device), "cu_seqlens": cu.to(torch.int32).to(device),
            "frame_grids": torch.full((n, 2), 28, dtype=torch.long, device=device)}


def _vision_config(args: argparse.Namespace) -> Any:
    if args.model == "llava-ov2-8b":
        return llava_ov2_preset("llava-ov2-8b").vision
    return preset("ovis2.5-2b").vit_config


def _codec(args: argparse.Namespace) -> Callable[..., dict[str, torch.Tensor]]:
    window = 4 if args.model == "llava-ov2-8b" else 0
    return lambda *a, **k: codec_inputs(*a, window=window, **k)


def bench_encoder(args: argparse.Namespace, device: torch.device, dtype: torch.dtype,
                  ceiling: float) -> list[dict[str, Any]]:
    cfg = _vision_config(args)
    if args.vit_layers:
        cfg = type(cfg)(**{**cfg.__dict__, "num_hidden_layers": args.vit_layers})
    backends = args.backends or available_attention_backends(device, dtype)
    backends = [b for b in backends if b != "sdpa_masked"]  # O(N^2) memory reference only
    backends.sort(key=lambda b: b != "sdpa")  # the default backend is the reference (first)
    torch.manual_seed(0)
    with torch.device(device):
        enc = VisionEncoder(cfg, device=device, dtype=dtype).to(dtype).eval()
    rows = []
    for frames in args.frames:
        for kind, make in (("uniform", uniform_inputs), ("codec", _codec(args))):
            inputs = make(frames, cfg.patch_dim, device, dtype)
            n = inputs["pixel_values"].shape[0]
            lengths = make_segments(inputs["cu_seqlens"], "cpu").lengths
            mean_len = sum(x * x for x in lengths) / n
            reference = None
            for name in backends:
                enc.set_attn_impl(name, device, dtype)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                try:
                    with torch.inference_mode():
                        out = enc(**inputs).last_hidden_state
                        if reference is None:
                            reference = out.float()
                        err = (out.float() - reference).abs().max().item()
                        sec = timeit(lambda i=inputs: enc(**i), device, args.warmup,
                                     args.repeat)
                except (RuntimeError, torch.OutOfMemoryError) as exc:
                    rows.append({"frames": frames, "input": kind, "backend": name,
                                 "error": f"{type(exc).__name__}: {exc}"[:300]})
                    continue
                flops = enc.flops_per_patch(mean_len) * n
                peak = (torch.cuda.max_memory_allocated() / 2**30
                        if device.type == "cuda" else None)
                row = {"frames": frames, "input": kind, "backend": name, "patches": n,
                       "visual_tokens": n // 4, "segments": len(lengths),
                       "seconds": sec, "tokens_per_s": n // 4 / sec, "patches_per_s": n / sec,
                       "tflops": flops / sec / 1e12, "mfu_vs_matmul": flops / sec / ceiling,
                       "peak_gib": peak, "max_abs_diff_vs_first": err}
                rows.append(row)
                logger.info("%s", row)
                print(json.dumps(row))
            del inputs
    return rows


def bench_padded_vs_packed(args: argparse.Namespace, device: torch.device,
                           dtype: torch.dtype) -> list[dict[str, Any]]:
    """Attention alone at mixed segment lengths: packed backends vs one padded SDPA batch."""
    heads, dim = 16, 72
    frames = max(args.frames)
    cu = codec_inputs(frames, 3, torch.device("cpu"), torch.float32)["cu_seqlens"]
    segs = make_segments(cu, device)
    total = segs.total
    q, k, v = (torch.randn(total, heads, dim, device=device, dtype=dtype) for _ in range(3))
    lmax, nseg = segs.max_seqlen, len(segs.lengths)
    ids = torch.repeat_interleave(torch.arange(nseg, device=device),
                                  torch.tensor(segs.lengths, device=device))
    starts = segs.cu_seqlens[:-1].long()[ids]
    slot = torch.arange(total, device=device) - starts

    def padded() -> torch.Tensor:
        qp, kp, vp = (torch.zeros(nseg, lmax, heads, dim, device=device, dtype=dtype)
                      for _ in range(3))
        qp[ids, slot], kp[ids, slot], vp[ids, slot] = q, k, v
        valid = torch.zeros(nseg, lmax, dtype=torch.bool, device=device)
        valid[ids, slot] = True
        mask = valid[:, None, None, :]  # (S, 1, 1, Lmax) key padding
        o = torch.nn.functional.scaled_dot_product_attention(
            qp.transpose(1, 2), kp.transpose(1, 2), vp.transpose(1, 2), attn_mask=mask)
        return o.transpose(1, 2)[ids, slot]

    rows = []
    with torch.inference_mode():
        ref = padded()
        t_pad = timeit(padded, device, args.warmup, args.repeat)
        rows.append({"attention": "padded_sdpa", "tokens": total, "segments": nseg,
                     "max_len": lmax, "seconds": t_pad})
        for name in args.backends or available_attention_backends(device, dtype):
            if name == "sdpa_masked":
                continue
            b = resolve_attention_backend(name, device, dtype)
            out = b(q, k, v, segs, dim**-0.5)
            err = (out.float() - ref.float()).abs().max().item()
            sec = timeit(lambda b=b: b(q, k, v, segs, dim**-0.5), device, args.warmup,
                         args.repeat)
            rows.append({"attention": name, "tokens": total, "segments": nseg, "seconds": sec,
                         "speedup_vs_padded": t_pad / sec, "max_abs_diff_vs_padded": err})
    for r in rows:
        print(json.dumps(r))
    return rows


def _time_prefill(model: Any, ids: torch.Tensor, inputs: dict[str, torch.Tensor],
                  device: torch.device, args: argparse.Namespace) -> tuple[float, float | None]:
    """(median seconds, peak GiB on CUDA) of one prefill (last-token logits, no cache)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        sec = timeit(lambda: model(ids, None, **inputs, logits_to_keep=1, use_cache=False),
                     device, 1, max(1, args.repeat // 2))
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return sec, peak


def _trimmed(vision: Any, text: Any, args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """(vision config, LLM config dict) with ``--vit-layers`` / ``--llm-layers`` applied."""
    text = dict(text)
    if args.vit_layers:
        vision = type(vision)(**{**vision.__dict__, "num_hidden_layers": args.vit_layers})
    if args.llm_layers:
        text["num_hidden_layers"] = args.llm_layers
    return vision, text


def bench_llm_prefill(args: argparse.Namespace, device: torch.device,
                      dtype: torch.dtype) -> list[dict[str, Any]]:
    """Encoder + LLM prefill of a full prompt (last-token logits only): Ovis2.5-2B on uniform
    frames, or LLaVA-OneVision-2-8B on uniform frames and codec inputs of the same visual token
    count."""
    backend = "sdpa" if device.type == "cpu" else ("varlen" if "varlen" in
                                                   available_attention_backends(device, dtype)
                                                   else "sdpa")
    model: Any
    if args.model == "llava-ov2-8b":
        ov2 = llava_ov2_preset("llava-ov2-8b")
        vision, text = _trimmed(ov2.vision, ov2.text_config, args)
        ov2 = ov2.replace(vision=vision, text_config=text)
        model = LlavaOneVision2Model.from_config(ov2, device=device, dtype=dtype,
                                                 attn_impl=backend, seed=0)
        kinds = (("uniform", uniform_inputs), ("codec", _codec(args)))

        def slots(n: int) -> torch.Tensor:  # one <|image_pad|> per visual token
            return torch.full((n,), ov2.image_token_id)
    else:
        cfg = preset("ovis2.5-2b")
        vision, text = _trimmed(cfg.vit_config, cfg.llm_config, args)
        cfg = cfg.replace(vit_config=vision, llm_config=text)
        model = OvisModel.from_config(cfg, device=device, dtype=dtype, attn_impl=backend, seed=0)
        kinds = (("uniform", uniform_inputs),)

        def slots(n: int) -> torch.Tensor:  # video begin, n visual atoms, video end
            return torch.tensor([-303] + [-300] * n + [-304])
    rows = []
    for frames in args.frames:
        for kind, make in kinds:
            inputs = make(frames, vision.patch_dim, device, dtype)
            n_tok = inputs["pixel_values"].shape[0] // 4
            ids = torch.cat([torch.randint(0, 1000, (20,)), slots(n_tok),
                             torch.randint(0, 1000, (20,))])[None].to(device)
            try:
                sec, peak = _time_prefill(model, ids, inputs, device, args)
            except (RuntimeError, torch.OutOfMemoryError) as exc:
                rows.append({"frames": frames, "input": kind,
                             "error": f"{type(exc).__name__}: {exc}"[:300]})
                continue
            row = {"model": args.model, "frames": frames, "input": kind,
                   "visual_tokens": n_tok, "prompt_tokens": int(ids.shape[1]), "seconds": sec,
                   "prefill_tokens_per_s": int(ids.shape[1]) / sec, "peak_gib": peak,
                   "vision_backend": backend, "llm_layers": text["num_hidden_layers"],
                   "vit_layers": vision.num_hidden_layers}
            rows.append(row)
            print(json.dumps(row))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model", default="ovis2.5-2b", choices=["ovis2.5-2b", "llava-ov2-8b"],
                   help="whose shapes (default Ovis2.5-2B)")
    p.add_argument("--dtype", default=None, choices=["bfloat16", "float16", "float32"])
    p.add_argument("--frames", type=int, nargs="+", default=None)
    p.add_argument("--backends", nargs="+", default=None)
    p.add_argument("--vit-layers", type=int, default=0,
                   help="override (0 = the real depth: 27 Ovis2.5, 24 LLaVA-OneVision-2)")
    p.add_argument("--llm-layers", type=int, default=0,
                   help="override (0 = the real depth: 28 Qwen3-1.7B, 36 Qwen3-8B)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--skip", nargs="*", default=[], choices=["encoder", "attention", "llm"])
    p.add_argument("--out", default="bench_model.json")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    if args.frames is None:
        args.frames = [64, 256, 768] if device.type == "cuda" else [2, 4]
    ceiling = matmul_ceiling(device, dtype)
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
        or platform.machine(),
        "model": args.model, "torch": torch.__version__, "dtype": str(dtype), "matmul_ceiling_tflops": ceiling / 1e12,
        "args": vars(args),
    }
    print(json.dumps({"matmul_ceiling_tflops": ceiling / 1e12}))
    if "encoder" not in args.skip:
        result["encoder"] = bench_encoder(args, device, dtype, ceiling)
    if "attention" not in args.skip:
        result["attention"] = bench_padded_vs_packed(args, device, dtype)
    if "llm" not in args.skip:
        result["llm_prefill"] = bench_llm_prefill(args, device, dtype)
    Path(args.out).write_text(json.dumps(result, indent=2))
    failed = [r for part in ("encoder", "llm_prefill") for r in result.get(part, [])
              if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
