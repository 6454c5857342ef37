"""``vidsel demo``: generate a sample video and run selection end to end (no download)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from ._common import add_verbosity, dump_json, format_table

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Generate a short sample video (four scenes, a moving object; or use --video), print what
vidsel reads from it, and select frames three ways: uniform and codec-aware patches (no model
needed), and with --embedder the text-relevant path (MDP3). Writes contact sheets and a JSON
summary into the output folder."""

EPILOG = """\
examples:
  vidsel demo
  vidsel demo --out /tmp/demo --k 6
  vidsel demo --embedder hf:/models/siglip-so400m-patch14-384 -Q "a yellow box"
  vidsel demo --embedder open_clip:ViT-B-32@/ckpt/open_clip_model.safetensors
"""

DEFAULT_OUT = "vidsel_out"
DEFAULT_QUESTION = "Where is the yellow box?"
#: The sample clip: 8 s at 30 fps, 320x240, four scenes with a moving box.
SAMPLE = {"scene": "multi_scene", "num_frames": 240, "fps": 30, "width": 320, "height": 240,
          "n_scenes": 4, "gop": 30}

NO_EMBEDDER = """\
note: no embedder given, so the text-relevant methods (mdp3, dpp, topk, bolt, aks) were not run.
      vidsel never downloads weights behind your back and none ship with it; to rank frames by
      a question, point --embedder at a local model:
        --embedder hf:/path/to/siglip-so400m-patch14-384   (a transformers SigLIP/CLIP folder)
        --embedder open_clip:ViT-B-32@/path/to/open_clip_model.safetensors
        --embedder siglip                                  (from the Hugging Face cache/hub)
      uniform and codec selection (above) need no weights."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="sample video + selection end to end (start here)",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", "-o", default=DEFAULT_OUT,
                   help="output folder (default: ./%(default)s)")
    p.add_argument("--video", help="use this video instead of the generated sample")
    p.add_argument("--k", "-k", type=int, default=8, help="frames to select (default: 8)")
    p.add_argument("--embedder", "-e", metavar="SPEC",
                   help="run the text-relevant path (mdp3) with this embedder")
    p.add_argument("--question", "-Q", default=DEFAULT_QUESTION,
                   help="question for the text-relevant path (default: %(default)r)")
    p.add_argument("--device", help="embedder device (cpu, cuda)")
    add_verbosity(p, suppress=True)
    p.set_defaults(func=run)


def sample_video(out: Path) -> tuple[Path, bool]:
    """The sample clip in ``out`` (generated unless a readable one is there); (path, made)."""
    from vidsel.errors import VidselError
    from vidsel.io import VideoReader
    from vidsel.synth import make_video

    path = out / "sample.mp4"
    if path.is_file():
        try:
            with VideoReader(path) as r:
                if r.metadata.num_frames == SAMPLE["num_frames"]:
                    return path, False
        except VidselError:
            logger.info("%s is unreadable: regenerating it", path)
    make_video(path, **SAMPLE)  # type: ignore[arg-type]
    return path, True


def _frames_table(indices: list[int], times: list[float], scores: list[Any] | None) -> str:
    rows = [[i, f"{t:.2f}"] + ([f"{s:.3f}" if s is not None else "-"] if scores else [])
            for j, (i, t) in enumerate(zip(indices, times))
            for s in ([scores[j]] if scores else [None])]
    return format_table(rows, ["frame", "time_s"] + (["score"] if scores else []))


def run(args: argparse.Namespace) -> int:
    from vidsel.codec import select_patches
    from vidsel.io import VideoReader
    from vidsel.selection import select_frames

    from ._work import SelectSpec, codec_payload

    quiet = getattr(args, "quiet", 0) > 0

    def say(text: str = "") -> None:
        if not quiet:
            print(text)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.video:
        video = Path(args.video)
        say(f"video: {video}")
    else:
        video, made = sample_video(out)
        say(f"{'generated' if made else 'reusing'} sample video {video} "
            f"({SAMPLE['num_frames']} frames, {SAMPLE['n_scenes']} scenes, moving box)")
    with VideoReader(video) as reader:
        md = reader.metadata
    say(f"  {md.codec} {md.width}x{md.height}, {md.num_frames} frames, {md.fps:.2f} fps, "
        f"{md.duration_s:.2f} s, keyframes at {md.keyframe_indices.tolist()[:8]}"
        f"{'...' if len(md.keyframe_indices) > 8 else ''}")
    summary: dict[str, Any] = {"video": str(video), "metadata": md.to_dict()}

    # 1. uniform: no model
    sel = select_frames(video, k=args.k, method="uniform")
    sheet = out / "uniform_sheet.png"
    sel.save_contact_sheet(sheet)
    summary["uniform"] = {**sel.to_dict(), "contact_sheet": str(sheet)}
    say(f"\n[1] uniform: {args.k} evenly spaced frames (no model) -> {sheet}")
    say(_frames_table(sel.indices.tolist(), sel.timestamps_s.tolist(), None))

    # 2. codec: no model
    spec = SelectSpec(method="codec", k=args.k)
    res = select_patches(video, budget_frames=args.k)
    sheet = out / "codec_sheet.png"
    from vidsel._render import patch_selection_sheet

    patch_selection_sheet(res).save(sheet)
    heat = res.save_heatmap(out / "codec_heatmap.png")
    payload = codec_payload(res, args.k, spec)
    summary["codec"] = {**payload, "contact_sheet": str(sheet), "heatmap": str(heat)}
    say(f"\n[2] codec: {res.num_tokens} tokens (= {args.k} frames' worth) from "
        f"{len(res.source_frames)} frames: {len(res.anchor_frames)} dense anchors "
        f"{res.anchor_frames.tolist()} + {res.num_motion_patches} motion patches "
        f"(signal: {res.signal}) -> {sheet}")

    # 3. text relevance: only with an embedder
    if args.embedder:
        opts = {"device": args.device} if args.device else None
        sel = select_frames(video, args.question, k=args.k, method="mdp3",
                            embedder=args.embedder, embedder_options=opts)
        sheet = out / "mdp3_sheet.png"
        sel.save_contact_sheet(sheet)
        summary["mdp3"] = {**sel.to_dict(), "contact_sheet": str(sheet)}
        say(f"\n[3] mdp3 with {args.embedder}: {args.question!r} -> {sheet}")
        say(_frames_table(sel.indices.tolist(), sel.timestamps_s.tolist(),
                          None if sel.scores is None else sel.scores.tolist()))
        try:
            fig = sel.plot()  # a bare Figure: no pyplot state, no backend switch
            fig.savefig(out / "mdp3_relevance.png", dpi=110)
            summary["mdp3"]["plot"] = str(out / "mdp3_relevance.png")
            say(f"    relevance curve -> {out / 'mdp3_relevance.png'}")
        except ImportError:
            say("    (pip install 'vidsel[plot]' for the relevance curve)")
    else:
        say("\n[3] text-relevant selection: skipped")
        say(NO_EMBEDDER)
    summary["elapsed_s"] = round(time.perf_counter() - t0, 3)
    dump_json(summary, str(out / "demo.json"))
    say(f"\nsummary -> {out / 'demo.json'}  ({summary['elapsed_s']:.1f} s)")
    say("next: vidsel select / batch / compare / inspect --help")
    return 0
