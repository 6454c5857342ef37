"""``vidsel demo``: generate a sample video and run selection end to end (no download)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, VidselError
from ..io import VideoReader
from ..synth import make_video
from ._common import UsageError, add_verbosity, dump_json, format_table
from ._select import user_config
from ._work import SelectSpec, select_one

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Generate a short sample video (four scenes, a moving object; or use --video), print what
vidsel reads from it, and select frames three ways: uniform and codec-aware patches (no model
needed), and with --embedder the text-relevant path (MDP3). Writes contact sheets and a JSON
summary into the output folder."""

EPILOG = """\
examples:
  vidsel demo
  vidsel demo --out /tmp/demo --budget 6
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
      a question, install the text embedders (pip install 'vidsel[embed]', plus 'vidsel[clip]'
      for open_clip) and point --embedder at a local model:
        --embedder hf:/path/to/siglip-so400m-patch14-384   (a transformers SigLIP/CLIP folder)
        --embedder open_clip:ViT-B-32@/path/to/open_clip_model.safetensors
        --embedder siglip                                  (from the Hugging Face cache/hub)
      or set it once: export VIDSEL_EMBEDDER=SPEC, or embedder = "SPEC" in
      ~/.config/vidsel/config.toml (docs/cli.md, "Defaults").
      uniform and codec selection (above) need no weights and no torch."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="sample video + selection end to end (start here)",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", "-o", default=DEFAULT_OUT,
                   help="output folder (default: ./%(default)s)")
    p.add_argument("--video", help="use this video instead of the generated sample")
    p.add_argument("--budget", "--k", "-k", dest="budget", type=int, default=8, metavar="N",
                   help="frames to select (default: 8; --k is its old name)")
    p.add_argument("--embedder", "-e", metavar="SPEC",
                   help="run the text-relevant path (mdp3) with this embedder (default: "
                        "VIDSEL_EMBEDDER or the config file's, when set)")
    p.add_argument("--question", "-Q", default=DEFAULT_QUESTION,
                   help="question for the text-relevant path (default: %(default)r)")
    p.add_argument("--device", help="embedder device (cpu, cuda)")
    add_verbosity(p, suppress=True)
    p.set_defaults(func=run)


def sample_video(out: Path) -> tuple[Path, bool]:
    """The sample clip in ``out`` (generated unless a readable one is there); (path, made)."""
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


def _frames_table(payload: dict[str, Any]) -> str:
    scores = payload.get("scores")
    if scores is not None and payload.get("indices") != payload["source_frames"]:
        scores = None
    rows = [[i, f"{t:.2f}"] + ([f"{scores[j]:.3f}" if scores[j] is not None else "-"]
                               if scores is not None else [])
            for j, (i, t) in enumerate(zip(payload["source_frames"],
                                           payload["source_timestamps_s"]))]
    return format_table(rows, ["frame", "time_s"] + (["score"] if scores is not None else []))


#: What the demo runs without weights: (method, what it does). With --embedder, mdp3 follows.
STEPS = (
    ("uniform", "evenly spaced frames (no model)"),
    ("codec", "dense anchors + motion-rich patches from the codec (no model)"),
)


def run(args: argparse.Namespace) -> int:
    quiet = getattr(args, "quiet", 0) > 0
    if args.budget < 1:
        raise UsageError(f"--budget {args.budget} must be >= 1")
    config = user_config()  # VIDSEL_EMBEDDER / the config file, when --embedder is not given
    embedder = args.embedder or config.embedder
    device = args.device or (config.device if embedder else None)

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
    summary: dict[str, Any] = {"path": str(video), "metadata": md.summary()}

    steps: list[tuple[SelectSpec, str | None, str]] = [
        (SelectSpec(method=m, budget=args.budget), None, text) for m, text in STEPS]
    if embedder:
        steps.append((SelectSpec(method="mdp3", budget=args.budget, options={"embedder": embedder},
                                 device=device), args.question,
                      f"text relevance with {embedder}: {args.question!r}"))
    for n, (spec, question, text) in enumerate(steps, start=1):
        payload, result = select_one(str(video), question, spec, pixels=True)
        entry: dict[str, Any] = {**payload}
        sheet = out / f"{spec.method}_sheet.png"
        result.contact_sheet().save(sheet)
        entry["contact_sheet"] = str(sheet)
        say(f"\n[{n}] {spec.method}: {text}: {result.num_tokens} tokens "
            f"(= {args.budget} frames' worth) from {len(payload['source_frames'])} frames -> {sheet}")
        say(_frames_table(payload))
        heatmap = getattr(result, "save_heatmap", None)
        if callable(heatmap):
            entry["heatmap"] = str(heatmap(out / f"{spec.method}_heatmap.png"))
        plot = getattr(result, "plot", None)
        if question is not None and callable(plot):
            try:
                fig = plot()  # a bare Figure: no pyplot state, no backend switch
                fig.savefig(out / f"{spec.method}_relevance.png", dpi=110)
                entry["plot"] = str(out / f"{spec.method}_relevance.png")
                say(f"    relevance curve -> {entry['plot']}")
            except MissingDependencyError:
                say("    (pip install 'vidsel[plot]' for the relevance curve)")
        summary[spec.method] = entry
    if not embedder:
        say(f"\n[{len(steps) + 1}] text-relevant selection: skipped")
        say(NO_EMBEDDER)
    summary["elapsed_s"] = round(time.perf_counter() - t0, 3)
    dump_json(summary, str(out / "demo.json"))
    say(f"\nsummary -> {out / 'demo.json'}  ({summary['elapsed_s']:.1f} s)")
    say("next: vidsel select / batch / compare / inspect --help")
    return 0
