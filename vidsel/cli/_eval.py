"""``vidsel eval``: what a selection does to a model's answers.

``vidsel eval --dataset D --annotations FILE --videos DIR --model SPEC --methods a,b
--budgets 4,8 --out runs/x.jsonl`` runs the grid into a resumable results file and prints the
table; ``vidsel eval report FILES`` prints the table (and draws the plot) of finished runs;
``vidsel eval merge --out ALL FILES`` joins shards into one file with one record per key.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .._progress import progress_enabled
from ..errors import InvalidArgumentError
from ..eval import (
    available_answerers,
    available_datasets,
    check_devices,
    check_model,
    default_cache_dir,
    load_dataset,
    load_report,
    merge_results,
    options_for,
    parse_devices,
    parse_shard,
    route_options,
    run_eval,
)
from ..methods import available_methods, get_method
from ..runs import available_executors, executor_help, output_failed, read_records
from ._common import (
    UnsafeOutputError,
    UsageError,
    add_verbosity,
    dump_json,
    fmt_seconds,
    parse_int_list,
    parse_params,
    positive_int,
    prepare_output,
    safe_write,
    verbosity,
)
from ._select import check_embedder_spec, user_config

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Measure what a selection does to a model's answers: every item of a benchmark x every method x
every budget, asked of one model at equal visual tokens for that model (a budget is in
frame-equivalents of the model's own preprocessing; each record says how many tokens were
spent). One JSON record per (item, method, budget, model) is appended to --out: what was
selected, the prompt, the raw output, the parsed answer, the score, timings. Resumable
(--resume); a missing or broken video is a failure record, never the end of the run.
Selections are cached (--selection-cache): a second model reuses them without decoding or
embedding again. Exit code 1 when any item failed."""

EPILOG = """\
examples:
  vidsel eval --dataset charades-sta --annotations charades_test.txt --videos Charades_v1/ \\
      --model hf:/models/Qwen2.5-VL-3B-Instruct --methods uniform,codec --budgets 4,8,16,32 \\
      --out runs/charades_qwen.jsonl
  vidsel eval --dataset videomme --annotations videomme/test.parquet --videos videomme/data \\
      --model ovis:/models/Ovis2.5-2B --methods uniform,mdp3 --budgets 8,16 \\
      --embedder hf:/models/siglip --executor process --workers 8 --out runs/vmme.jsonl
  vidsel eval --dataset videomme --annotations videomme/test.parquet --videos videomme/data \\
      --model hf:Qwen/Qwen2.5-VL-7B-Instruct --budgets 8,16 --shard 3/8 \\
      --out runs/vmme.3.jsonl                                   # job 3 of 8 on a cluster
  vidsel eval merge --out runs/vmme.jsonl runs/vmme.*.jsonl   # then one file
  vidsel eval report runs/*.jsonl --plot runs/grid.png

datasets: {datasets}
model backends: {backends} (ovis:DIR, hf:DIR_OR_HUB_ID, vllm:DIR_OR_HUB_ID, py:module:function)
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="measure what a selection does to a model's answers",
                       description=DESCRIPTION,
                       epilog=EPILOG.format(datasets=", ".join(available_datasets()),
                                            backends=", ".join(available_answerers())),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d = p.add_argument_group("benchmark")
    d.add_argument("--dataset", metavar="NAME",
                   help=f"annotation format: {', '.join(available_datasets())}")
    d.add_argument("--annotations", metavar="FILE_OR_DIR", help="the benchmark's annotations")
    d.add_argument("--videos", metavar="DIR", help="folder of the benchmark's videos")
    d.add_argument("--limit", type=positive_int, metavar="N", help="the first N items only")
    d.add_argument("--subtitles", action="store_true",
                   help="show the subtitle lines at the selected timestamps (Video-MME, "
                        "LongVideoBench)")
    m = p.add_argument_group("model and selection")
    m.add_argument("--model", metavar="SPEC",
                   help="ovis:DIR, hf:DIR_OR_HUB_ID, vllm:DIR_OR_HUB_ID or py:module:function")
    m.add_argument("--model-option", action="append", metavar="NAME=VALUE",
                   help="backend option, repeatable (dtype=bfloat16, max_batch=8, "
                        "device=cuda, allow_download=true)")
    m.add_argument("--methods", default="uniform", metavar="A,B",
                   help=f"methods to compare (default: uniform): {', '.join(available_methods())}")
    m.add_argument("--budgets", default="8", metavar="N,M",
                   help="budgets in frame-equivalents of the model (default: 8)")
    m.add_argument("--embedder", "-e", metavar="SPEC",
                   help="embedder of text-relevance methods (mdp3, topk, dpp, bolt, aks); "
                        "default VIDSEL_EMBEDDER / the config file")
    m.add_argument("--param", "-p", action="append", metavar="NAME=VALUE",
                   help="method option / parameter, repeatable (given to methods that take it)")
    m.add_argument("--device", metavar="DEV", help="embedder device (cpu, cuda, auto)")
    m.add_argument("--max-new-tokens", type=positive_int, metavar="N",
                   help="generation limit (default per task: mcq 16, grounding 48, "
                        "highlights 96, open 128)")
    r = p.add_argument_group("execution")
    r.add_argument("--out", "-o", metavar="RESULTS.jsonl", help="results file (JSON lines)")
    r.add_argument("--resume", action="store_true", help="skip answers already in --out")
    r.add_argument("--retry-failed", action="store_true",
                   help="with --resume: run failed answers again")
    r.add_argument("--overwrite", action="store_true", help="start --out again")
    r.add_argument("--shard", metavar="I/N",
                   help="run shard I of N (0-based; items split by a stable hash)")
    r.add_argument("--selection-cache", metavar="DIR",
                   help=f"selection cache (default: {default_cache_dir()})")
    r.add_argument("--no-selection-cache", action="store_true", help="do not cache selections")
    r.add_argument("--executor", default="serial", choices=available_executors(),
                   help="where selections run (default: serial): "
                        + executor_help().replace(" (default)", ""))
    r.add_argument("--workers", "-j", type=positive_int, help="parallel selection workers")
    r.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join")
    r.add_argument("--gpus-per-task", type=float, help="Ray: GPUs per selection task")
    r.add_argument("--replicas", metavar="N|DEVICES",
                   help="one model replica per device in worker processes: N (cuda:0..N-1) "
                        "or a list (cuda:0,cuda:2; cpu,cpu)")
    r.add_argument("--no-fsync", action="store_true",
                   help="do not fsync after each record (faster; a power cut may lose some)")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    r.add_argument("--plot", metavar="PNG", help="after the run, draw the report's plot")
    add_verbosity(p, suppress=True)
    p.set_defaults(func=run)
    sub2 = p.add_subparsers(dest="eval_command", metavar="{report,merge}",
                            title="eval commands")
    rep = sub2.add_parser("report", help="the table (and plot) of finished runs",
                          description="Metric per method x budget (mean x100, bootstrap 95% CI, n) "
                                      "and the paired comparison against uniform, from one or "
                                      "more results files (shards and models merge; a key "
                                      "seen twice counts once).")
    rep.add_argument("files", nargs="+", metavar="RESULTS.jsonl")
    rep.add_argument("--metric", metavar="NAME",
                     help="metric of the table and plot (default: each task's primary: "
                          "accuracy, R1@0.5...)")
    rep.add_argument("--failures", choices=("skip", "wrong"), default="skip",
                     help="failed answers: left out of the means and counted in 'failed' "
                          "(skip, default) or scored 0 (wrong, as a failure to answer)")
    rep.add_argument("--plot", metavar="PNG", help="metric vs budget, one panel per benchmark")
    rep.add_argument("--json", metavar="FILE", help="the report as JSON ('-': stdout)")
    rep.add_argument("--csv", metavar="FILE", help="the table as CSV")
    add_verbosity(rep, suppress=True)
    rep.set_defaults(func=run_report)
    mer = sub2.add_parser("merge", help="join shards into one results file, one record a key")
    mer.add_argument("files", nargs="+", metavar="RESULTS.jsonl")
    mer.add_argument("--out", "-o", required=True, metavar="MERGED.jsonl")
    mer.add_argument("--overwrite", action="store_true")
    add_verbosity(mer, suppress=True)
    mer.set_defaults(func=run_merge)


def _split(text: str, what: str) -> list[str]:
    out = [t.strip() for t in text.split(",") if t.strip()]
    if not out:
        raise UsageError(f"{what}: give at least one name")
    return out


def run(args: argparse.Namespace) -> int:
    missing = [flag for flag, value in (("--dataset", args.dataset),
                                        ("--annotations", args.annotations),
                                        ("--model", args.model), ("--out", args.out))
               if not value]
    if missing:
        raise UsageError(f"vidsel eval needs {', '.join(missing)} (or a command: report, "
                         f"merge); see vidsel eval --help")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if args.retry_failed and not args.resume:
        raise UsageError("--retry-failed only makes sense with --resume")
    methods = _split(args.methods, "--methods")
    budgets = parse_int_list(args.budgets, "--budgets")
    params = parse_params(args.param)
    model_options = parse_params(args.model_option)
    try:  # everything checkable before a video or a model is touched: a usage error
        for name in methods:
            get_method(name)  # an unknown one lists the choices
        parse_shard(args.shard)
        check_model(args.model, model_options)
        if args.replicas is not None:
            check_devices(parse_devices(args.replicas))
        routed = route_options(methods, params)  # a --param no method takes is a typo
    except InvalidArgumentError as e:
        raise UsageError(str(e)) from None
    config = user_config()
    embedder = args.embedder
    needs = [n for n in methods if get_method(n).needs_embedder]
    if embedder is None and needs and config.embedder is not None:
        embedder = config.embedder
    if embedder is not None:
        check_embedder_spec(embedder)
    elif needs:
        raise UsageError(f"--methods {','.join(needs)} rank frames by relevance to the "
                         f"question and need --embedder (or VIDSEL_EMBEDDER)")
    device = args.device or (config.device if embedder is not None else None)
    try:
        for name in methods:  # values the methods refuse (--param lam=banana)
            options_for(name, routed[name], embedder)
    except InvalidArgumentError as e:
        raise UsageError(str(e)) from None
    if not progress_enabled(args.progress):  # no bars on a pipe or with -q: transformers' too
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if verbosity(args) < 0:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a directory; name a .jsonl file")
    try:
        items = load_dataset(args.dataset, args.annotations, args.videos, limit=args.limit)
    except InvalidArgumentError as e:  # unknown format, malformed annotations (file:line)
        raise UsageError(str(e)) from None
    if not items:
        print(f"vidsel eval: no items in {args.annotations}", file=sys.stderr)
        return 1
    cache: Any = default_cache_dir()
    if args.no_selection_cache:
        cache = None
    elif args.selection_cache:
        cache = args.selection_cache
    executor_options: dict[str, Any] = {}
    if args.executor == "ray":
        executor_options = {"address": args.ray_address, "gpus_per_task": args.gpus_per_task,
                            "uses_gpu": embedder is not None}
    try:
        summary = run_eval(items, args.model, methods=methods, budgets=budgets, out=out,
                           embedder=embedder, method_options=params, subtitles=args.subtitles,
                           max_new_tokens=args.max_new_tokens, shard=args.shard,
                           resume=args.resume, overwrite=args.overwrite,
                           retry_failed=args.retry_failed, cache_dir=cache,
                           executor=args.executor, workers=args.workers,
                           replicas=args.replicas, model_options=model_options, device=device,
                           fsync=not args.no_fsync, log_level=verbosity(args),
                           progress=args.progress, executor_options=executor_options)
    except KeyboardInterrupt:
        if out.is_file():  # what is safe in the results file, and how to go on
            recs = read_records(out)
            ok = sum(r.get("status") == "ok" for r in recs)
            print(f"vidsel eval: interrupted: {out} holds {len(recs)} answers ({ok} ok, "
                  f"{len(recs) - ok} failed); --resume runs the rest", file=sys.stderr)
        raise
    return _finish(args, summary, out, len(items))


def _finish(args: argparse.Namespace, summary: Any, out: Path, n_items: int) -> int:
    """The summary line (stderr), the table (stdout), the plot; the exit code."""
    if getattr(args, "quiet", 0) < 2:  # -qq: the summary line goes too
        rate = (f", {60 * (summary.ok + summary.failed) / summary.seconds:.1f} answers/min"
                if summary.seconds > 0 and summary.ok + summary.failed else "")
        shard = f" (shard {args.shard} of {n_items})" if args.shard else ""
        print(f"vidsel eval: {summary.items} items{shard} x {len(summary.methods)} methods x "
              f"{len(summary.budgets)} budgets: {summary.ok} ok, {summary.failed} failed, "
              f"{summary.skipped} already done in {fmt_seconds(summary.seconds)}{rate}",
              file=sys.stderr)
        print(f"  results: {out}", file=sys.stderr)
    report = load_report([out])
    if report.rows:  # the result: printed at -q too (-q quiets logs and progress only)
        print(report)
    if args.plot:
        report.plot(prepare_output(args.plot, "plot"))
    return 1 if summary.failed else 0


def run_report(args: argparse.Namespace) -> int:
    args.command = "eval report"  # the name errors are printed under
    for f in args.files:
        if not Path(f).exists():
            raise UsageError(f"no such results file or folder: {f}")
    try:
        report = load_report(args.files, metric=args.metric, failures=args.failures)
    except InvalidArgumentError as e:  # an unknown --metric, files without records
        raise UsageError(str(e)) from None
    if not report.rows:
        print("vidsel eval report: no records in " + " ".join(args.files), file=sys.stderr)
        return 1
    if args.json != "-":
        print(report)
    if args.json:
        dump_json(report.to_dict(), args.json)
    if args.csv:
        _write_csv(report.rows, args.csv)
    if args.plot:
        report.plot(prepare_output(args.plot, "plot"))
    return 0


def _write_csv(rows: list[dict[str, Any]], path: str) -> None:
    """The report's rows as CSV (atomically, never through a symbolic link)."""
    target = prepare_output(path, "CSV file")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
    writer.writeheader()
    writer.writerows(rows)
    try:
        safe_write(target, lambda fh: fh.write(buf.getvalue().encode("utf-8")))
    except UnsafeOutputError:
        raise
    except OSError as e:
        raise output_failed(target, e, "CSV file") from None


def run_merge(args: argparse.Namespace) -> int:
    args.command = "eval merge"
    try:
        merged = merge_results(args.files, args.out, overwrite=args.overwrite)
    except InvalidArgumentError as e:  # a missing input, the output among the inputs
        raise UsageError(str(e)) from None
    print(f"vidsel eval merge: {merged.records} records from {merged.files} files "
          f"({merged.duplicates} duplicates dropped) -> {merged.out}", file=sys.stderr)
    return 0
