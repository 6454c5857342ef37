"""``vidsel select VIDEO``: what a model sees of one video for a question, by any method."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from ..config import Config, config_path, load_config
from ..embed import EMBEDDERS, available_embedders
from ..errors import InvalidArgumentError, ModelNotAvailableError, VidselError
from ..io import VideoReader
from ..methods import available_methods, get_method
from ..results import VisualSelection
from ._common import (
    UsageError,
    add_verbosity,
    candidates_spec,
    check_geometry,
    dump_json,
    format_table,
    output_failed,
    parse_params,
    positive_int,
    prepare_output,
    verbosity,
)
from ._work import SelectSpec, load_spec_embedder, save_assets, select_one

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Select what a vision-language model should see of VIDEO for a question, at a budget of
frame-equivalents, and print it (source frame, time, score), or write it as JSON. Methods come
from the registry of vidsel.methods: frame methods return --budget whole frames (mdp3,
mdp3-reference, dpp, topk, bolt, aks rank them with an --embedder; uniform needs nothing),
patch methods spend the same tokens on patches (codec: dense anchors plus motion-rich patches
from the codec; no model). The geometry options decide the tokens of a frame for every
method."""

EPILOG = """\
examples:
  vidsel select clip.mp4 --method uniform --budget 8
  vidsel select clip.mp4 --method codec --budget 8 --contact-sheet codec.png --json
  vidsel select clip.mp4 -Q "where does the red box go?" --embedder hf:/models/siglip \\
      --method mdp3 --budget 16 --param lam=0.2 --save-frames frames/ -o selection.json
  vidsel select clip.mp4 -Q "a cat" --embedder open_clip:ViT-B-32@/ckpt/clip.safetensors
"""

#: Command-line flags that set a method option (option name -> flag). A flag the user does not
#: give is not passed, so each method keeps its own default.
OPTION_FLAGS = {
    "embedder": "--embedder",
    "candidates": "--candidates",
    "candidate_mode": "--candidate-mode",
    "embed_size": "--embed-size",
    "cache_dir": "--cache-dir",
    "backend": "--backend",
    "anchors": "--anchors",
}


def method_help() -> str:
    return "; ".join(f"{name}: {get_method(name).description}" for name in available_methods())


def add_selection_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``select`` and ``batch``."""
    g = p.add_argument_group("selection")
    g.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first: it registers methods of its own (repeatable; "
                        "installed plugins of the 'vidsel.methods' entry-point group load "
                        "by themselves)")
    g.add_argument("--method", "-m", default=None, choices=available_methods(),
                   metavar="METHOD",
                   help=f"a method of vidsel.methods (default: {AUTO_METHOD} with an embedder "
                        f"(--embedder, VIDSEL_EMBEDDER or the config file) and a question, else "
                        f"{FALLBACK_METHOD}, saying so): {method_help()}")
    g.add_argument("--budget", "--k", "-k", dest="budget", type=int, default=8,
                   metavar="N",
                   help="budget in frame-equivalents: N frames for frame methods, N frames' "
                        "tokens for patch methods (default: 8; --k is its old name)")
    g.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                   help="method parameter, repeatable (e.g. lam=0.2, segment_size=32; codec: "
                        "camera=median, signal=pixel_diff)")
    g.add_argument("--frame-size", type=int, default=392,
                   help="model geometry: frames are resized to this square side (default: 392)")
    g.add_argument("--patch-size", type=int, default=14,
                   help="model geometry: patch side (default: 14)")
    g.add_argument("--merge", type=int, default=2,
                   help="model geometry: patches merged per token side (default: 2)")
    g.add_argument("--per-patch", action="store_true",
                   help="records hold every row of the result (e.g. each patch position), not "
                        "its compact summary")
    f = p.add_argument_group("method options (given only when set; a method that does not "
                             "take one is a usage error)")
    f.add_argument("--embedder", "-e", metavar="SPEC",
                   help="frame/text embedder: hf:DIR_OR_HUB_ID, open_clip:NAME@CKPT, a local "
                        "model directory, or 'siglip' (needs the weights cached or a network)")
    f.add_argument("--candidates", type=candidates_spec, metavar="N|uniform:N|fps:F|all",
                   help="frame methods: candidate pool (default: 128 uniform for model "
                        "methods, all frames for uniform)")
    f.add_argument("--candidate-mode", choices=("exact", "keyframe"),
                   help="frame methods: decode exactly the candidates (default), or snap them "
                        "to keyframes (faster)")
    f.add_argument("--embed-size", type=positive_int,
                   help="frame methods and codec with -Q: short side candidates are decoded "
                        "at for embedding (default: 384)")
    f.add_argument("--cache-dir", metavar="DIR",
                   help="frame methods and codec with -Q: frame-embedding cache: a second "
                        "question costs no decoding")
    f.add_argument("--backend", help="frame methods: reader backend (pyav, decord)")
    f.add_argument("--anchors", metavar="POLICY",
                   help="codec: dense anchor frames after cuts (adaptive, default) or evenly "
                        "(uniform); with -Q and --embedder, a frame selector (mdp3, dpp, "
                        "topk, ...) picks them by relevance")
    f.add_argument("--device", metavar="DEV",
                   help="embedder device: cpu, cuda, cuda:1, auto (default: cpu)")


#: The method of a command without ``--method``: this one with an embedder and a question,
#: else the fallback (which needs no model), and the command says which it used.
AUTO_METHOD = "mdp3"
FALLBACK_METHOD = "uniform"

EMBEDDER_HINT = """\
  For frames relevant to a question: -Q "..." --embedder SPEC (a local SigLIP/CLIP folder,
  hf:DIR, open_clip:NAME@CKPT), or set a default embedder once: export VIDSEL_EMBEDDER=SPEC,
  or the line  embedder = "SPEC"  in {config} (docs/cli.md, "Defaults")."""

CONFIGURED_HINT = """\
  For frames relevant to a question, pass one: -Q "..." (then mdp3 ranks the frames with the
  configured embedder {embedder})."""

#: Attribute of the parsed arguments that holds the note on the method chosen without
#: ``--method`` (printed by :func:`print_method_note` once the inputs are checked).
_NOTE = "_vidsel_method_note"


def print_method_note(args: argparse.Namespace) -> None:
    """Print the note on the method chosen without ``--method`` (if any) on stderr, once."""
    note = getattr(args, _NOTE, None)
    if note and verbosity(args) >= 0:
        print(note, file=sys.stderr)
    setattr(args, _NOTE, None)


def check_embedder_spec(spec: str) -> None:
    """Refuse a malformed ``--embedder`` spec before any video is read (a usage error); a
    well-formed one whose weights are missing is left to the loader (exit code 1).

    Raises:
        UsageError: unknown kind, no ``KIND:`` prefix, ``open_clip:NAME`` without ``@TAG``.
        ModelNotAvailableError: a local path that does not exist.
    """
    text = spec.strip()
    if text in available_embedders() and text not in EMBEDDERS.names():
        return  # an alias
    path = Path(text).expanduser()
    if path.is_dir():
        return
    kinds = ", ".join(EMBEDDERS.names())
    kind, sep, target = text.partition(":")
    if not sep:
        if text.startswith(("/", "./", "../", "~")) or "/" in text:
            raise ModelNotAvailableError(f"--embedder {spec!r}: no model folder at {str(path)!r}")
        raise UsageError(f"--embedder {spec!r} is not an embedder spec: use KIND:MODEL with "
                         f"KIND one of {kinds} (e.g. hf:/models/siglip, "
                         f"open_clip:ViT-B-32@/ckpt/model.safetensors), an alias "
                         f"({', '.join(sorted(set(available_embedders()) - set(EMBEDDERS.names())))}) "
                         f"or a local model folder")
    if kind not in EMBEDDERS.names():
        raise UsageError(f"--embedder {spec!r}: unknown embedder kind {kind!r}; use one of "
                         f"{kinds}")
    if not target.strip():
        raise UsageError(f"--embedder {spec!r} names no model after {kind}:")
    if kind == "open_clip":
        name, _, tag = target.partition("@")
        if not name or not tag:
            raise UsageError(
                f"--embedder {spec!r}: an open_clip spec needs weights: "
                f"open_clip:{name or 'NAME'}@TAG (a pretrained tag) or "
                f"open_clip:{name or 'NAME'}@/path/to/model.safetensors "
                f"('open_clip:{name or 'NAME'}@random' builds random weights, for tests only)")


def user_config() -> Config:
    """The user defaults (:func:`vidsel.config.load_config`); a broken file is a usage error."""
    try:
        return load_config()
    except InvalidArgumentError as e:
        raise UsageError(str(e)) from None


def resolve_method(args: argparse.Namespace, config: Config) -> tuple[str, str | None]:
    """(method name, embedder spec or None) for the parsed options and the user defaults.

    Without ``--method``: :data:`AUTO_METHOD` when an embedder is given (or configured and
    there is a question), else :data:`FALLBACK_METHOD` with a note on stderr that says so and
    how to get text-relevant frames. A configured embedder is used only by methods that need
    one.
    """
    has_question = bool(getattr(args, "question", None) or getattr(args, "questions", None))
    embedder = args.embedder
    name = args.method
    if name is None:
        if embedder is not None or (config.embedder is not None and has_question):
            name = AUTO_METHOD
        else:
            name = FALLBACK_METHOD
            if verbosity(args) >= 0:
                why = ("no question (-Q)" if config.embedder is not None
                       else "no embedder given or configured")
                hint = (CONFIGURED_HINT.format(embedder=config.describe("embedder"))
                        if config.embedder is not None
                        else EMBEDDER_HINT.format(config=config_path()))
                setattr(args, _NOTE,
                        f"vidsel {args.command}: no --method given and {why}: used "
                        f"--method {FALLBACK_METHOD} ({args.budget} evenly spaced frames, not "
                        f"chosen by relevance to a question).\n" + hint)
    # a configured embedder goes to the methods that need one (codec takes one too, but
    # stays motion-only unless --embedder is given: codec+mdp3 asks for the question's)
    if embedder is None and config.embedder is not None and get_method(name).needs_embedder:
        embedder = config.embedder
        logger.info("embedder: %s", config.describe("embedder"))
    return name, embedder


def spec_from_args(args: argparse.Namespace) -> SelectSpec:
    """A :class:`SelectSpec` from the parsed options and the user defaults
    (:mod:`vidsel.config`), checked against the method's entry in the registry (before any
    video is touched)."""
    if args.budget <= 0:
        raise UsageError(f"--budget {args.budget} must be >= 1")
    check_geometry(args.frame_size, args.patch_size, args.merge)
    config = user_config()
    name, embedder = resolve_method(args, config)
    method = get_method(name)
    options = {opt: getattr(args, opt) for opt in OPTION_FLAGS
               if getattr(args, opt, None) is not None}
    if embedder is not None:
        check_embedder_spec(embedder)
        options["embedder"] = embedder
    device = args.device
    if device is None and "embedder" in options and config.device is not None:
        device = config.device
    params = parse_params(args.param)
    accepted = method.options
    if accepted is not None:
        takes = ", ".join(OPTION_FLAGS.get(o, o) for o in sorted(accepted)) or "none"
        for name in options:
            if name not in accepted:
                raise UsageError(f"{OPTION_FLAGS[name]} is not an option of --method "
                                 f"{method.name} (it takes: {takes})")
        if params and "params" not in accepted:
            unknown = sorted(set(params) - accepted)
            if unknown:
                raise UsageError(f"--param: method {method.name!r} does not take {unknown}; "
                                 f"allowed: {sorted(accepted)}")
    if method.needs_embedder and "embedder" not in options:
        free = ", ".join(n for n in available_methods() if not get_method(n).needs_embedder)
        raise UsageError(
            f"--method {method.name} ranks frames by relevance to the question and needs "
            f"--embedder (a local SigLIP/CLIP directory, hf:DIR, or open_clip:NAME@CKPT; or "
            f"a default: VIDSEL_EMBEDDER or {config_path()}); methods that need no model: "
            f"{free}")
    try:
        spec = SelectSpec(method=method.name, budget=args.budget, options=options, params=params,
                          frame_size=args.frame_size, patch_size=args.patch_size,
                          merge=args.merge, per_patch=args.per_patch, device=device,
                          plugins=tuple(args.plugin or ()))
        method.check_options(spec.method_options())  # e.g. params a selector does not take
    except InvalidArgumentError as e:
        raise UsageError(str(e)) from None
    return spec


def add_parser(sub: Any) -> None:
    p = sub.add_parser("select", help="select what a model sees of one video",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", metavar="VIDEO", help="the video file")
    p.add_argument("--question", "-Q", help="the question / prompt (text-relevance methods)")
    add_selection_options(p)
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print JSON instead of a table")
    o.add_argument("--output", "-o", metavar="FILE", help="also write the JSON to FILE")
    o.add_argument("--save-frames", metavar="DIR",
                   help="write what the model sees into DIR: the frames (patch methods: the "
                        "packed canvases)")
    o.add_argument("--frame-format", choices=("jpg", "png"), default="jpg")
    o.add_argument("--contact-sheet", metavar="PNG",
                   help="write a contact sheet (the result's overview image)")
    o.add_argument("--plot", metavar="PNG",
                   help="write the relevance curve with the chosen frames (needs matplotlib)")
    add_verbosity(p, suppress=True)
    p.set_defaults(func=run)


def _text_report(payload: dict[str, Any], path: str, question: str | None) -> str:
    frames, times = payload["source_frames"], payload["source_timestamps_s"]
    scores = payload.get("scores")
    if scores is not None and payload.get("indices") != frames:
        scores = None  # scores per row that are not per source frame: not a column here
    rows = []
    for j, (i, t) in enumerate(zip(frames, times)):
        row: list[Any] = [j, i, f"{t:.3f}"]
        if scores is not None:
            s = scores[j]
            row.append("-" if s is None else f"{s:.4f}")
        rows.append(row)
    headers = ["#", "frame", "time_s"] + (["score"] if scores is not None else [])
    params = ", ".join(f"{k}={v}" for k, v in (payload.get("params") or {}).items())
    head = f"{path}: {payload['method']} selected {len(rows)} frames"
    if payload["kind"] != "frames":
        head = f"{path}: {payload['method']} selected {payload['kind']} of {len(rows)} frames"
    if payload.get("num_tokens") is not None:
        budget = payload.get("budget_tokens")
        short = budget is not None and payload["num_tokens"] < budget
        head += (f" ({payload['num_tokens']} tokens of a {budget}-token budget: the video has "
                 f"no more)" if short else f" ({payload['num_tokens']} tokens)")
    lines = [head]
    if question:
        lines.append(f"question: {question}")
    if params:
        lines.append(f"params: {params}")
    lines.append(format_table(rows, headers))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    method = spec.entry
    if method.needs_question and not args.question:
        raise UsageError(f"--method {method.name} needs a question (-Q)")
    if args.plot and method.kind != "frames":
        raise UsageError(f"--plot draws the relevance curve of frame methods; for "
                         f"{method.kind} use --contact-sheet or 'vidsel compare --plot'")
    want_pixels = bool(args.save_frames or args.contact_sheet)
    backend = spec.options.get("backend")
    # the video is checked first (milliseconds), then the embedder loads (seconds)
    with VideoReader(args.video, **({"backend": backend} if backend else {})) as reader:
        md = reader.metadata
        try:
            load_spec_embedder(spec)  # a spec the loader refuses is a usage error
        except InvalidArgumentError as e:
            raise UsageError(f"--embedder {spec.embedder!r}: {e}") from None
        try:
            payload, result = select_one(args.video, args.question, spec, pixels=want_pixels,
                                         reader=reader)
        except InvalidArgumentError as e:  # an option / --param value the method refuses
            raise UsageError(str(e)) from None
    record: dict[str, Any] = {"path": args.video, "question": args.question,
                              "metadata": md.summary(), "selection": payload}
    if args.save_frames:
        try:
            out = save_assets(result, Path(args.save_frames), frames=True,
                              contact_sheet=False, fmt=args.frame_format)
        except VidselError:  # e.g. UnsafeOutputError: a link where a frame goes
            raise
        except OSError as e:
            raise output_failed(args.save_frames, e, "frames folder") from None
        record["frames"] = [str(Path(args.save_frames) / n) for n in out["frames"]]
    if args.contact_sheet:
        sheet = prepare_output(args.contact_sheet, "contact sheet")
        try:
            result.contact_sheet().save(sheet)
        except OSError as e:
            raise output_failed(sheet, e, "contact sheet") from None
        record["contact_sheet"] = args.contact_sheet
    if args.plot:
        _save_plot(result, args.plot)
        record["plot"] = args.plot
    if args.output:
        dump_json(record, args.output)
    if args.json:
        dump_json(record, None)
    else:  # -q quiets logs and progress, never the result
        print(_text_report(payload, args.video, args.question))
        for key in ("frames", "contact_sheet", "plot"):
            if key in record:
                value = record[key]
                print(f"{key}: {value if isinstance(value, str) else f'{len(value)} files in ' + args.save_frames}")
    print_method_note(args)
    return 0


def _save_plot(sel: VisualSelection, path: str) -> None:
    # Selection.plot builds a bare matplotlib Figure (no pyplot, no backend switch) and raises
    # MissingDependencyError with the install hint when matplotlib is absent
    plot = getattr(sel, "plot", None)
    if not callable(plot):
        raise UsageError(f"--plot: a {type(sel).__name__} has no relevance curve")
    fig = plot()
    out = prepare_output(path, "plot")
    try:
        fig.savefig(out, dpi=110)
    except OSError as e:
        raise output_failed(out, e, "plot") from None
