"""``vidsel batch``: many videos to one resumable JSON-lines file, in parallel."""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._progress import progress_enabled
from ..runs import (
    ResultsFile,
    available_executors,
    default_workers,
    executor_help,
    make_executor,
)
from ._common import UsageError, add_verbosity, fmt_seconds, mapping_get, verbosity
from ._discover import discover
from ._select import add_selection_options, print_method_note, spec_from_args
from ._work import (
    LEGACY_SCHEMA,
    AssetSpec,
    Task,
    failure_record,
    file_identity,
    make_key,
    record_path,
    run_task,
)

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Run a method over many videos and append one JSON record per video (and question) to a
results file: selection, metadata, timings, vidsel version, parameters, or a failure record
for a bad file (the batch goes on). Inputs are folders (searched recursively; a file is a
video when its content says so, whatever its name), glob patterns, list files (.txt, one path
per line; '-' for stdin) or video files.

Resumable: --resume skips videos already in the results file (a torn last line left by a
killed run is dropped); records are appended atomically by this process only, so a crash or
kill never leaves a duplicated or half-written record. Exit code 1 when any input failed."""

EPILOG = """\
examples:
  vidsel batch videos/ --out runs/uniform.jsonl --method uniform --budget 16
  vidsel batch 'data/**/*.mp4' --out runs/codec.jsonl --method codec --budget 8 --contact-sheets
  vidsel batch videos/ --out runs/mdp3.jsonl --questions questions.csv \\
      --embedder hf:/models/siglip --cache-dir ~/.cache/vidsel --workers 4
  vidsel batch videos/ --out runs/mdp3.jsonl --resume          # after a crash or Ctrl-C
  vidsel batch videos/ --out runs/mdp3.jsonl --executor ray --ray-address auto \\
      --embedder hf:/models/siglip --questions q.jsonl           # on a Ray cluster

questions file: CSV with columns path,question (or video/file, prompt/query), JSON lines
{"path": ..., "question": ...}, or one JSON object {path: question or [questions]}.
A video matches by its path relative to the input folder, absolute path, file name or stem;
several rows for one video give one record per question.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("batch", help="process a folder / glob / list of videos to JSON lines",
                       description=DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="DIR_OR_GLOB_OR_LIST",
                   help="folders, glob patterns, list files or videos")
    p.add_argument("--out", "-o", required=True, metavar="RESULTS.jsonl",
                   help="results file (JSON lines); assets go to RESULTS_assets/ beside it")
    q = p.add_argument_group("questions")
    q.add_argument("--question", "-Q", help="one question for every video (or the default for "
                                            "videos missing from --questions)")
    q.add_argument("--questions", metavar="FILE", help="CSV / JSONL / JSON video->question map")
    add_selection_options(p)
    r = p.add_argument_group("execution")
    r.add_argument("--executor", default="process", choices=available_executors(),
                   help=executor_help())
    r.add_argument("--workers", "-j", type=int, default=None,
                   help="parallel workers (default: the cores this process may use, at most one "
                        "per video to run)")
    r.add_argument("--ray-address", metavar="ADDR",
                   help="Ray cluster to join ('auto', 'ray://host:10001'; default: "
                        "RAY_ADDRESS, else a local cluster)")
    r.add_argument("--gpus-per-task", type=float, default=None,
                   help="Ray: GPUs per task (default: 1 when embedding on a cluster with GPUs)")
    r.add_argument("--resume", action="store_true", help="skip videos already in the results")
    r.add_argument("--retry-failed", action="store_true",
                   help="with --resume: run failed videos again (their old record is replaced)")
    r.add_argument("--overwrite", action="store_true", help="start a new results file")
    r.add_argument("--no-probe", action="store_true", help=argparse.SUPPRESS)  # deprecated
    r.add_argument("--no-fsync", action="store_true",
                   help="do not fsync after each record (faster; a power cut may lose some)")
    r.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar (default: when stderr is a terminal)")
    a = p.add_argument_group("per-video files (written under RESULTS_assets/)")
    a.add_argument("--save-frames", action="store_true",
                   help="write what the model sees: the frames (patch methods: canvases)")
    a.add_argument("--contact-sheets", action="store_true", help="write a contact sheet each")
    a.add_argument("--frame-format", choices=("jpg", "png"), default="jpg")
    add_verbosity(p, suppress=True)
    p.set_defaults(func=run)


# -- questions ---------------------------------------------------------------------------------

#: Names of the video column of a questions file, first match wins (``video``: before 0.2).
PATH_COLUMNS = ("path", "video", "file", "filename")


def load_questions(path: str) -> list[tuple[str, str]]:
    """(video path, question) pairs from a CSV, JSON lines or JSON file.

    The video column is ``path`` (also read: ``video``, its name before 0.2, ``file``,
    ``filename``); the question column ``question`` (also ``prompt``, ``query``, ``text``).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"--questions {path}: {e.strerror or e}") from None
    pairs: list[tuple[str, str]] = []
    stripped = text.lstrip()
    if p.suffix.lower() == ".csv" or not stripped.startswith(("{", "[")):
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames:
            raise UsageError(f"--questions {path}: empty CSV")
        for n, row in enumerate(reader, start=2):
            video = mapping_get(row, *PATH_COLUMNS)
            question = mapping_get(row, "question", "prompt", "query", "text")
            if video is None or question is None:
                raise UsageError(f"--questions {path}:{n}: needs columns path,question "
                                 f"(got {reader.fieldnames})")
            pairs.append((str(video), str(question)))
        return pairs
    try:
        obj = json.loads(text)
        rows: list[Any] = [obj] if isinstance(obj, dict) else list(obj)
    except json.JSONDecodeError:
        try:
            rows = [json.loads(ln) for ln in text.splitlines() if ln.strip()]
        except json.JSONDecodeError as e:
            raise UsageError(f"--questions {path}: not JSON / JSON lines ({e})") from None
    for row in rows:
        if not isinstance(row, dict):
            raise UsageError(f"--questions {path}: expected objects, got {row!r:.60}")
        video = mapping_get(row, *PATH_COLUMNS)
        if video is not None:
            question = mapping_get(row, "question", "prompt", "query")
            if question is None:
                raise UsageError(f"--questions {path}: no question for {video!r}")
            pairs.append((str(video), str(question)))
        else:  # {video: question or [questions]}
            for v, qs in row.items():
                for qn in (qs if isinstance(qs, list) else [qs]):
                    pairs.append((str(v), str(qn)))
    return pairs


def _match_keys(rel: str, path: str) -> list[str]:
    relp = os.path.normpath(rel)
    return [relp, os.path.normpath(path), os.path.realpath(path), os.path.basename(path),
            os.path.splitext(os.path.basename(path))[0]]


def assign_questions(videos: Sequence[Any], pairs: Sequence[tuple[str, str]],
                     default: str | None) -> list[tuple[Any, str | None]]:
    """(found video, question) for each video and each of its questions."""
    if not pairs:
        return [(v, default) for v in videos]
    index: dict[str, list[str]] = {}
    for video, question in pairs:
        index.setdefault(os.path.normpath(video), []).append(question)
        if os.path.isabs(video):
            index.setdefault(os.path.realpath(video), []).append(question)
    used: set[str] = set()
    out: list[tuple[Any, str | None]] = []
    for v in videos:
        for key in _match_keys(v.rel, v.path):
            if key in index:
                used.add(key)
                out.extend((v, q) for q in dict.fromkeys(index[key]))
                break
        else:
            if default is None:
                logger.warning("%s: no question in the questions file", v.rel)
            out.append((v, default))
    unused = {os.path.normpath(video) for video, _ in pairs} - used
    unused = {u for u in unused if os.path.realpath(u) not in used}
    if unused:
        logger.warning("%d videos of the questions file were not found among the inputs "
                       "(e.g. %s)", len(unused), sorted(unused)[0])
    return out


# -- planning -----------------------------------------------------------------------------------


@dataclass
class Plan:
    todo: list[Any] = field(default_factory=list)
    done_ok: int = 0
    done_failed: list[dict[str, Any]] = field(default_factory=list)
    retry_keys: set[str] = field(default_factory=set)


def plan_tasks(tasks: Sequence[Any], results: Any, *, retry_failed: bool) -> Plan:
    """Split tasks into those to run and those the results file already has (records of
    every readable schema count; a ``vidsel.batch/1`` record matches by its legacy key)."""
    plan = Plan()
    if not results.records:
        plan.todo = list(tasks)
        return plan
    by_path: dict[str, list[dict[str, Any]]] = {}
    for rec in results.records.values():
        by_path.setdefault(str(rec.get("realpath")), []).append(rec)
    cids: dict[str, str] = {}
    for task in tasks:
        real = task.realpath
        prev = by_path.get(real)
        if not prev:
            plan.todo.append(task)
            continue
        if real not in cids:
            try:
                st = os.stat(real)
                stat_id: tuple[Any, Any] = (st.st_size, st.st_mtime_ns)
            except OSError:
                stat_id = (None, None)
            same = [r for r in prev if (r.get("size"), r.get("mtime_ns")) == stat_id]
            cids[real] = str(same[0]["content_id"]) if same else file_identity(real)[0]
        key = make_key(real, cids[real], task.question, task.spec.params_hash())
        rec = results.records.get(key)
        if rec is None:
            old = make_key(real, cids[real], task.question, task.spec.legacy_params_hash())
            found = results.records.get(old)
            if found is not None and found.get("schema") == LEGACY_SCHEMA:
                key, rec = old, found
        if rec is not None and results.done(key, retry_failed=retry_failed):
            if rec.get("status") == "ok":
                plan.done_ok += 1
            else:
                plan.done_failed.append(rec)
            continue
        if rec is not None:
            plan.retry_keys.add(key)
        plan.todo.append(replace(task, content_id=cids[real]))
    return plan


# -- running ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C so workers are stopped and the summary printed."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run(args: argparse.Namespace) -> int:
    if args.retry_failed and not args.resume:
        raise UsageError("--retry-failed only makes sense with --resume")
    if args.resume and args.overwrite:
        raise UsageError("--resume and --overwrite exclude each other")
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers {args.workers} must be >= 1")
    spec = spec_from_args(args)
    level = verbosity(args)
    out = Path(args.out)
    if out.exists() and out.is_dir():
        raise UsageError(f"--out {out} is a directory; name a .jsonl file")
    assets = AssetSpec(root=str(out.parent.resolve() / f"{out.stem}_assets"),
                       frames=args.save_frames, contact_sheet=args.contact_sheets,
                       fmt=args.frame_format)
    pairs = load_questions(args.questions) if args.questions else []

    t0 = time.perf_counter()
    if args.no_probe:
        logger.warning("--no-probe is deprecated and ignored: vidsel.io decides what is a "
                       "video by content")
    found = discover(args.inputs)
    out_real = os.path.realpath(out)
    videos = [v for v in found.videos if os.path.realpath(v.path) != out_real]
    if not videos:
        print(f"vidsel batch: no videos found in {' '.join(args.inputs)}", file=sys.stderr)
        return 1
    tasks = [Task(path=v.path, rel=v.rel, question=q, spec=spec, assets=assets)
             for v, q in assign_questions(videos, pairs, args.question)]
    mode = "resume" if args.resume else ("overwrite" if args.overwrite else "new")
    with ResultsFile(out, mode=mode, fsync=not args.no_fsync) as results:
        print_method_note(args)  # inputs and output checked: say which method runs
        plan = plan_tasks(tasks, results, retry_failed=args.retry_failed)
        if plan.retry_keys:
            results.drop(plan.retry_keys)
        logger.info("%d videos, %d tasks: %d to run, %d done, %d failed before", len(videos),
                    len(tasks), len(plan.todo), plan.done_ok, len(plan.done_failed))
        ok, failed, interrupted = 0, [], False
        desc = "nothing to run"
        executor = None
        if plan.todo:
            options: dict[str, Any] = {"workers": args.workers, "log_level": level}
            if args.executor == "ray":
                options.update(address=args.ray_address, gpus_per_task=args.gpus_per_task,
                               uses_gpu=spec.embedder is not None)
                if spec.embedder is not None and spec.device is None:
                    spec = replace(spec, device="auto")
                    plan.todo = [replace(t, spec=spec) for t in plan.todo]
            elif args.executor == "process":
                # never more workers than cores (or --workers) or than videos to run
                options["workers"] = min(args.workers or default_workers(), len(plan.todo))
            executor = make_executor(args.executor, **options)
            desc = executor.describe()
        show = progress_enabled(args.progress)  # None: what main() set (a terminal, not -q)
        from tqdm import tqdm  # optional third-party, imported when a batch runs
        from tqdm.contrib.logging import logging_redirect_tqdm

        try:
            with _sigterm_as_interrupt(), \
                    tqdm(total=len(plan.todo), unit="video", desc="vidsel batch",
                         disable=not show, dynamic_ncols=True, smoothing=0.1) as bar, \
                    logging_redirect_tqdm():
                if executor is not None:
                    for task, outcome in executor.map_unordered(run_task, plan.todo):
                        rec = outcome if isinstance(outcome, dict) else \
                            failure_record(task, outcome)
                        results.append(rec)
                        if rec["status"] == "ok":
                            ok += 1
                        else:
                            failed.append(rec)
                            logger.info("%s failed: %s: %s", task.rel, rec["error"]["type"],
                                        rec["error"]["message"])
                        bar.update(1)
                        if failed:
                            bar.set_postfix(failed=len(failed), refresh=False)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if executor is not None:
                executor.close()
            if assets.wanted and assets.root is not None:
                with contextlib.suppress(OSError):  # only when empty: every write failed
                    Path(assets.root).rmdir()
    elapsed = time.perf_counter() - t0
    _summary(args, out, len(videos), len(tasks), ok, failed, plan, elapsed, desc, interrupted,
             len(found.skipped))
    if interrupted:
        return 130
    return 1 if failed or plan.done_failed else 0


def _summary(args: argparse.Namespace, out: Path, n_videos: int, n_tasks: int, ok: int,
             failed: list[dict[str, Any]], plan: Plan, elapsed: float, desc: str,
             interrupted: bool, n_skipped: int) -> None:
    if getattr(args, "quiet", 0) >= 2:
        return
    ran = ok + len(failed)
    rate = f", {ran / elapsed:.2f} videos/s" if ran and elapsed > 0 else ""
    parts = [f"{ok} ok", f"{len(failed)} failed"]
    if plan.done_ok or plan.done_failed:
        parts.append(f"{plan.done_ok + len(plan.done_failed)} already done "
                     f"({len(plan.done_failed)} of them failed)")
    if interrupted:
        parts.append(f"{len(plan.todo) - ran} not run (interrupted: rerun with --resume)")
    noun = f"{n_videos} videos" + (f", {n_tasks} tasks" if n_tasks != n_videos else "")
    print(f"vidsel batch: {noun}: {', '.join(parts)} in {fmt_seconds(elapsed)}{rate} [{desc}]")
    if n_skipped:
        print(f"  {n_skipped} {'file was' if n_skipped == 1 else 'files were'} not videos "
              f"and {'was' if n_skipped == 1 else 'were'} skipped (-v lists them)")
    print(f"  results: {out}")
    bad = failed + plan.done_failed
    for rec in bad[:20]:
        err = rec.get("error") or {}
        print(f"  FAILED {record_path(rec)}: {err.get('type')}: {err.get('message')}")
    if len(bad) > 20:
        print(f"  ... and {len(bad) - 20} more (status 'error' in the results)")
