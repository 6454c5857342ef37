"""``vidsel select VIDEO``: the frames (or codec patches) of one video for a question."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ._common import (
    UsageError,
    add_verbosity,
    dump_json,
    format_table,
    int_or_str,
    parse_params,
)

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Select the k frames of VIDEO a vision-language model should see for a question, and print
them (index, time, score), or write them as JSON. Methods: the selectors of vidsel.select
(mdp3, mdp3-reference, dpp, topk, bolt, aks need an --embedder; uniform needs nothing) and
'codec' (motion-rich patches at a budget of k frame-equivalents, from the codec; no model)."""

EPILOG = """\
examples:
  vidsel select clip.mp4 --method uniform --k 8
  vidsel select clip.mp4 --method codec --k 8 --contact-sheet codec.png --json
  vidsel select clip.mp4 -Q "where does the red box go?" --embedder hf:/models/siglip \\
      --method mdp3 --k 16 --param lam=0.2 --save-frames frames/ -o selection.json
  vidsel select clip.mp4 -Q "a cat" --embedder open_clip:ViT-B-32@/ckpt/clip.safetensors
"""


def method_choices() -> list[str]:
    """Selector names from the registry plus ``codec``."""
    from vidsel.select import available_selectors

    from ._work import CODEC_METHOD

    return [*available_selectors(), CODEC_METHOD]


def add_selection_options(p: argparse.ArgumentParser, *, default_method: str = "mdp3") -> None:
    """Options shared by ``select`` and ``batch``."""
    g = p.add_argument_group("selection")
    g.add_argument("--method", "-m", default=default_method, choices=method_choices(),
                   help="selector (default: %(default)s)")
    g.add_argument("--k", "-k", type=int, default=8,
                   help="frames to select; codec: budget in frame-equivalents (default: 8)")
    g.add_argument("--embedder", "-e", metavar="SPEC",
                   help="frame/text embedder: hf:DIR_OR_HUB_ID, open_clip:NAME@CKPT, a local "
                        "model directory, or 'siglip' (needs the weights cached or a network)")
    g.add_argument("--candidates", type=int_or_str, metavar="N|fps:F|all",
                   help="candidate pool (default: 128 uniform for model methods, all frames "
                        "for uniform)")
    g.add_argument("--candidate-mode", choices=("exact", "keyframe"), default="exact",
                   help="decode exactly the candidates, or snap them to keyframes (faster)")
    g.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                   help="selector parameter, repeatable (e.g. lam=0.2, segment_size=32); "
                        "codec: select_patches options (camera=median, signal=pixel_diff)")
    g.add_argument("--embed-size", type=int, default=384,
                   help="short side candidates are decoded at for embedding (default: 384)")
    g.add_argument("--device", metavar="DEV",
                   help="embedder device: cpu, cuda, cuda:1, auto (default: cpu)")
    g.add_argument("--cache-dir", metavar="DIR",
                   help="frame-embedding cache: a second question costs no decoding")
    g.add_argument("--backend", default="pyav", help="reader backend (pyav, decord)")
    c = p.add_argument_group("codec method")
    c.add_argument("--frame-size", type=int, default=392,
                   help="frames are resized to this square side (default: 392)")
    c.add_argument("--patch-size", type=int, default=14, help="patch side (default: 14)")
    c.add_argument("--merge", type=int, default=2, help="patches merged per token side")
    c.add_argument("--anchors", choices=("adaptive", "uniform"), default="adaptive",
                   help="dense anchor frames: after cuts (adaptive) or evenly")
    c.add_argument("--per-patch", action="store_true",
                   help="list every patch position in the JSON")


def spec_from_args(args: argparse.Namespace) -> Any:
    """A :class:`SelectSpec` from the parsed options, checked for combinations that cannot
    work (before any video is touched)."""
    from vidsel.select import get_selector

    from ._work import CODEC_METHOD, SelectSpec

    if args.k <= 0:
        raise UsageError(f"--k {args.k} must be >= 1")
    params = parse_params(args.param)
    if args.method != CODEC_METHOD:
        from vidsel.errors import InvalidArgumentError

        info = get_selector(args.method)
        try:
            info.check_params(params)
        except InvalidArgumentError as e:
            raise UsageError(f"--param: {e}") from None
        needs = info.needs
        if needs != "none" and not args.embedder:
            raise UsageError(
                f"--method {args.method} ranks frames by relevance to the question and needs "
                f"--embedder (a local SigLIP/CLIP directory, hf:DIR, or open_clip:NAME@CKPT); "
                f"--method uniform and --method codec need no model")
    return SelectSpec(
        method=args.method, k=args.k, embedder=args.embedder, candidates=args.candidates,
        candidate_mode=args.candidate_mode, params=params, embed_size=args.embed_size,
        frame_size=args.frame_size, patch_size=args.patch_size, merge=args.merge,
        anchors=args.anchors, per_patch=args.per_patch, backend=args.backend,
        device=args.device, cache_dir=args.cache_dir)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("select", help="select the frames of one video for a question",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", metavar="VIDEO", help="the video file")
    p.add_argument("--question", "-Q", help="the question / prompt (model methods)")
    add_selection_options(p)
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print JSON instead of a table")
    o.add_argument("--output", "-o", metavar="FILE", help="also write the JSON to FILE")
    o.add_argument("--save-frames", metavar="DIR",
                   help="write the selected frames (codec: the packed canvases) into DIR")
    o.add_argument("--frame-format", choices=("jpg", "png"), default="jpg")
    o.add_argument("--contact-sheet", metavar="PNG",
                   help="write a contact sheet (frames labelled with index, time, score)")
    o.add_argument("--plot", metavar="PNG",
                   help="write the relevance curve with the chosen frames (needs matplotlib)")
    add_verbosity(p, suppress=True)
    p.set_defaults(func=run)


def _text_report(payload: dict[str, Any], video: str) -> str:
    scores = payload.get("scores")
    rows = []
    for j, (i, t) in enumerate(zip(payload["indices"], payload["timestamps_s"])):
        row: list[Any] = [j, i, f"{t:.3f}"]
        if scores is not None:
            s = scores[j]
            row.append("-" if s is None else f"{s:.4f}")
        if payload.get("tokens") is not None:
            row += [payload["tokens"][j], "anchor" if payload["is_anchor"][j] else "motion"]
        rows.append(row)
    headers = ["#", "frame", "time_s"]
    if scores is not None:
        headers.append("score")
    if payload.get("tokens") is not None:
        headers += ["tokens", "kind"]
    params = ", ".join(f"{k}={v}" for k, v in (payload.get("params") or {}).items())
    head = f"{video}: {payload['method']} selected {len(rows)} frames"
    if payload.get("codec"):
        c = payload["codec"]
        head += (f" ({c['num_tokens']}/{c['budget_tokens']} tokens, signal {c['signal']}, "
                 f"{len(c['anchor_frames'])} anchors)")
    lines = [head]
    if payload.get("question"):
        lines.append(f"question: {payload['question']}")
    if params:
        lines.append(f"params: {params}")
    lines.append(format_table(rows, headers))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    from vidsel.io import VideoReader

    from ._work import CODEC_METHOD, save_assets, select_one

    if args.plot and spec.method == CODEC_METHOD:
        raise UsageError("--plot draws a relevance curve; for codec selections use "
                         "'vidsel compare --plot' or --contact-sheet")
    want_pixels = bool(args.save_frames or args.contact_sheet)
    with VideoReader(args.video, backend=args.backend) as reader:
        md = reader.metadata
        payload, result = select_one(args.video, args.question, spec, pixels=want_pixels,
                                     reader=reader)
    record = {"video": args.video, "question": args.question, "metadata": md.to_dict(),
              "selection": payload}
    if args.save_frames:
        out = save_assets(result, Path(args.save_frames), frames=True, contact_sheet=False,
                          fmt=args.frame_format)
        record["frames"] = [str(Path(args.save_frames) / n) for n in out["frames"]]
    if args.contact_sheet:
        from vidsel._render import patch_selection_sheet, selection_sheet

        sheet = (patch_selection_sheet(result) if spec.method == CODEC_METHOD
                 else selection_sheet(result))
        Path(args.contact_sheet).parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.contact_sheet)
        record["contact_sheet"] = args.contact_sheet
    if args.plot:
        _save_plot(result, args.plot)
        record["plot"] = args.plot
    if args.output:
        dump_json(record, args.output)
    if args.json:
        dump_json(record, None)
    elif not getattr(args, "quiet", 0):
        print(_text_report(payload, args.video))
        for key in ("frames", "contact_sheet", "plot"):
            if key in record:
                value = record[key]
                print(f"{key}: {value if isinstance(value, str) else f'{len(value)} files in ' + args.save_frames}")
    return 0


def _save_plot(sel: Any, path: str) -> None:
    # Selection.plot builds a bare matplotlib Figure (no pyplot, no backend switch) and raises
    # MissingDependencyError with the install hint when matplotlib is absent
    fig = sel.plot()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
