"""``run_eval``: benchmark items x methods x budgets through one model, into one resumable
JSON-lines file, at equal visual tokens for that model.

The run has two halves that overlap. Selections (decode, embed, select, fetch the pixels) run
on an executor of :mod:`vidsel.runs` (in-process, a local process pool, Ray) through the
selection cache; as each finishes, its requests are batched to the model (this process, or one
replica per GPU). The parent alone writes records, atomically, so a kill loses at most the
batches in flight and ``resume=True`` picks up the rest. A failing item (missing or broken
video, a method that refuses, a model error) is a failure record, never the end of the run.

Record schema (``vidsel.eval/1``), one JSON object per (item, method, budget, model)::

    schema, key, status ("ok" | "error"), stage (error: "select" | "model"), dataset, item_id,
    task, video, question, options, answer, spans_s, meta, method, budget, model, embedder,
    geometry {patch_size, merge, frame_size}, selection {kind, source_frames,
    source_timestamps_s, num_tokens, num_patches}, visual_tokens (the selection's, in the
    model's geometry), model_visual_tokens (what the model's preprocessing spent), prompt,
    subtitles (lines shown), output, parsed, score, notes, cache_hit, timings_s {open, select,
    frames, model, total}, selection_timings_s, shard, vidsel_version, host, finished_at,
    error {type, message}
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._json import json_safe
from .._progress import progress_bar
from .._validate import check_positive_int
from ..errors import InvalidArgumentError, VidselError
from ..methods import get_method
from ..results import PatchSelection, VisualSelection
from ..runs import ResultsFile, default_workers, make_executor
from ._answerer import Answerer, AnswererSpec, load_answerer
from ._cache import CachedSelection
from ._metrics import parse_answer, score_item
from ._models import (
    Finished,
    LocalModel,
    ModelPool,
    ReplicaPool,
    check_devices,
    parse_devices,
)
from ._prompts import PROMPT_VERSION, build_prompt
from ._report import load_report
from ._subtitles import load_subtitles, subtitles_at
from ._types import SCHEMA, EvalItem, Request, VisualInput
from ._work import (
    SelectJob,
    keyed_options,
    options_for,
    preload_embedder,
    route_options,
    select_job,
)

__all__ = ["SCHEMA", "EvalSummary", "default_cache_dir", "parse_shard", "run_eval",
           "shard_of", "visual_input"]

logger = logging.getLogger(__name__)

#: Generation length per task when none is given.
MAX_NEW_TOKENS = {"mcq": 16, "grounding": 48, "highlights": 96, "open": 128}


def default_cache_dir() -> Path:
    """``$VIDSEL_CACHE_DIR/selections``, else ``$XDG_CACHE_HOME/vidsel/selections``
    (``~/.cache/vidsel/selections``)."""
    base = os.environ.get("VIDSEL_CACHE_DIR")
    if base:
        return Path(base).expanduser() / "selections"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "vidsel" / "selections"


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"2/8"`` or ``(2, 8)`` -> ``(2, 8)``: this run takes shard 2 of 8 (0-based)."""
    if shard is None:
        return None
    if isinstance(shard, str):
        try:
            i_s, n_s = shard.split("/")
            i, n = int(i_s), int(n_s)
        except ValueError:
            raise InvalidArgumentError(f"shard={shard!r} must be I/N, e.g. 0/4") from None
    else:
        i, n = shard
    if not (isinstance(i, int) and isinstance(n, int)) or n < 1 or not 0 <= i < n:
        raise InvalidArgumentError(f"shard={shard!r}: need 0 <= I < N")
    return i, n


def shard_of(item: EvalItem, n: int) -> int:
    """The shard (of ``n``) an item belongs to: a stable hash of dataset and item id, so every
    shard of every run agrees whatever the order or ``limit``."""
    h = hashlib.sha256(f"{item.dataset}\0{item.item_id}".encode()).digest()
    return int.from_bytes(h[:8], "big") % n


@dataclass
class EvalSummary:
    """What a run did.

    Attributes:
        out: the results file (None: records kept in :attr:`records`).
        units: (item, method, budget) combinations this run covers.
        items, methods, budgets: the items (after ``limit`` and ``shard``), methods and
            budgets it covers (each once).
        ok, failed: records written by this run.
        skipped: units the results file already had (``resume``).
        seconds: wall time.
        records: the records written (all of them when ``out`` is None; else empty).
        model: the model's identity.
    """

    out: Path | None
    units: int
    items: int = 0
    methods: tuple[str, ...] = ()
    budgets: tuple[int, ...] = ()
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""

    def report(self, **kwargs: Any) -> Any:
        """The :class:`~vidsel.eval.EvalReport` of this run's results."""
        return load_report([self.out] if self.out is not None else self.records, **kwargs)


@dataclass
class _Unit:
    item: EvalItem
    method: str
    budget: int
    key: str
    options: dict[str, Any]


def _model_identity(model: Any, pool: ModelPool | None, options: Mapping[str, Any]) -> str:
    if isinstance(model, (str, AnswererSpec)):
        spec = model if isinstance(model, AnswererSpec) else AnswererSpec.parse(model)
        # where and how many at once do not change an answer: not part of the identity
        opts = {k: v for k, v in {**spec.options, **options}.items()
                if k not in ("device", "max_batch")}
        target = spec.target
        if spec.kind != "py" and os.path.isdir(target):  # a local folder: wherever run from
            target = os.path.abspath(target)
        return (f"{spec.kind}:{target}" + (json.dumps(json_safe(opts), sort_keys=True,
                                                      default=repr) if opts else ""))
    if pool is None:  # pragma: no cover - run_eval builds the pool for answerers first
        raise InvalidArgumentError("no model")
    desc = pool.describe()
    return str(desc.get("name", "model")) if len(desc) == 1 else json.dumps(
        json_safe(desc), sort_keys=True)


def _key(unit_item: EvalItem, method: str, budget: int, model: str, options: Mapping[str, Any],
         settings: Mapping[str, Any]) -> str:
    # not the video's path: the same benchmark mounted elsewhere (another node, another
    # working directory) must resume and merge into the same records
    ident = {"dataset": unit_item.dataset, "item_id": unit_item.item_id,
             "question": unit_item.question, "method": method, "budget": budget, "model": model,
             "options": json_safe(keyed_options(options)),
             "embedder": options.get("embedder"), "settings": json_safe(dict(settings)),
             "prompt": PROMPT_VERSION}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()


def _selection_summary(sel: VisualSelection, key: str | None) -> dict[str, Any]:
    """What was selected: the frames (indices, stream times), for patches also each token's
    (source frame, token row, token column), and the selection-cache key that holds it all."""
    d: dict[str, Any] = {"kind": sel.kind, "source_frames": sel.source_frames,
                         "source_timestamps_s": sel.source_timestamps_s,
                         "num_tokens": sel.num_tokens, "cache_key": key}
    if isinstance(sel, PatchSelection):
        m2 = sel.merge * sel.merge
        first = sel.positions[::m2]  # (tokens, 3): the token's top-left patch
        tokens = np.stack([first[:, 0], first[:, 1] // sel.merge, first[:, 2] // sel.merge],
                          axis=1)
        d.update(num_patches=sel.num_patches, anchor_frames=sel.anchor_frames,
                 frame_equivalents=sel.frame_equivalents, token_positions=tokens)
    return json_safe(d)


def visual_input(entry: CachedSelection, path: str) -> VisualInput:
    """What the model gets, its times counted from the start of playback (as annotations,
    subtitles and ``frame_indices / fps`` count them: a stream that starts at 8.3 s shows its
    first frame at 0 s)."""
    sel = entry.selection
    start = entry.start_time_s
    common = dict(path=path, selection=sel,
                  timestamps_s=np.asarray(sel.source_timestamps_s) - start,
                  frame_indices=np.asarray(sel.source_frames), source_fps=entry.source_fps,
                  num_frames=entry.num_frames, duration_s=entry.duration_s)
    if isinstance(sel, PatchSelection):
        patches = replace(sel, timestamps_s=sel.timestamps_s - start) if start else sel
        return VisualInput(kind="patches", patches=patches, **common)  # type: ignore[arg-type]
    return VisualInput(kind="frames", frames=entry.frames, **common)  # type: ignore[arg-type]


class _Subtitles:
    """Parsed subtitle files, once each."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def lines(self, item: EvalItem, timestamps_s: np.ndarray) -> list[str]:
        """The lines shown at the frames' playback times."""
        if item.subtitles is None or not os.path.isfile(item.subtitles):
            return []
        if item.subtitles not in self._cache:
            self._cache[item.subtitles] = load_subtitles(item.subtitles)
        return list(subtitles_at(self._cache[item.subtitles], timestamps_s,
                                 offset_s=item.subtitle_offset_s))


class _Run:
    """State of one :func:`run_eval` call (the parent's side)."""

    def __init__(self, pool: ModelPool, model_id: str, *, results: ResultsFile | None,
                 subtitles: bool, max_new_tokens: int | None, shard: tuple[int, int] | None,
                 embedder: str | None, summary: EvalSummary, on_record: Callable[..., None],
                 ) -> None:
        self.pool = pool
        self.model_id = model_id
        self.results = results
        self.subtitles = subtitles
        self.max_new_tokens = max_new_tokens
        self.shard = shard
        self.embedder = embedder
        self.summary = summary
        self.on_record = on_record
        self.subs = _Subtitles()
        self.ready: list[tuple[_Unit, Request, dict[str, Any]]] = []
        self.backlog = 4 * pool.max_batch * len(getattr(pool, "devices", [None]))
        self.host = socket.gethostname()

    # -- records --------------------------------------------------------------------------------
    def _base(self, unit: _Unit) -> dict[str, Any]:
        item = unit.item
        return {"schema": SCHEMA, "key": unit.key, "status": "ok", "dataset": item.dataset,
                "item_id": item.item_id, "task": item.task, "video": item.video,
                "question": item.question, "options": list(item.options),
                "answer": item.answer, "spans_s": [list(s) for s in item.spans_s],
                "meta": dict(item.meta), "method": unit.method, "budget": unit.budget,
                "model": self.model_id, "embedder": self.embedder if
                get_method(unit.method).needs_embedder else None,
                "shard": None if self.shard is None else f"{self.shard[0]}/{self.shard[1]}",
                "vidsel_version": __version__, "host": self.host}

    def _write(self, record: dict[str, Any]) -> None:
        record["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(
            timespec="seconds")
        record = json_safe(record)
        if self.results is not None:
            self.results.append(record)
        else:
            self.summary.records.append(record)
        if record["status"] == "ok":
            self.summary.ok += 1
        else:
            self.summary.failed += 1
        self.on_record(record)

    def fail(self, unit: _Unit, exc: BaseException, stage: str,
             extra: Mapping[str, Any] | None = None) -> None:
        rec = self._base(unit)
        rec.update(extra or {})
        rec.update(status="error", stage=stage, score={},
                   error={"type": type(exc).__name__, "message": str(exc)})
        if not isinstance(exc, VidselError):
            logger.error("%s (%s @ %d): unexpected %s: %s", unit.item.item_id, unit.method,
                         unit.budget, type(exc).__name__, exc)
        self._write(rec)

    # -- the two halves -------------------------------------------------------------------------
    def selected(self, units: Sequence[_Unit], outcome: CachedSelection | BaseException) -> None:
        """A selection finished: queue its requests (or record its failure)."""
        for unit in units:
            if isinstance(outcome, BaseException):
                self.fail(unit, outcome, "select")
                continue
            item = unit.item
            try:
                visual = visual_input(outcome, item.video)
                lines = self.subs.lines(item, visual.timestamps_s) if self.subtitles else []
                prompt = build_prompt(item, duration_s=item.duration_s or outcome.duration_s,
                                      subtitles=lines)
            except VidselError as e:
                self.fail(unit, e, "select")
                continue
            sel = outcome.selection
            extra = {"geometry": outcome.geometry.to_dict(),
                     "selection": _selection_summary(sel, outcome.key),
                     "visual_tokens": (outcome.visual_tokens if outcome.visual_tokens
                                       is not None else sel.num_tokens),
                     "prompt": prompt, "subtitles": lines, "cache_hit": outcome.cache_hit,
                     "selection_timings_s": dict(getattr(sel, "timings_s", {}) or {}),
                     "timings_s": dict(outcome.timings_s)}
            limit = self.max_new_tokens or MAX_NEW_TOKENS[item.task]
            request = Request(visual=visual, prompt=prompt, max_new_tokens=limit,
                              item_id=item.item_id)
            self.ready.append((unit, request, extra))
        self.pump(block=False)
        # answers waiting for the model hold their frames: when selections come faster than
        # the model answers (a warm cache), wait for the model instead of piling them up
        while len(self.ready) >= self.backlog:
            self.pump(block=True)

    def pump(self, *, block: bool, flush: bool = False) -> None:
        """Submit full batches while the model has room; record what came back."""
        batch = self.pool.max_batch
        while self.ready and (len(self.ready) >= batch or flush) and self.pool.free():
            chunk, self.ready = self.ready[:batch], self.ready[batch:]
            self.pool.submit(chunk, [r for _, r, _ in chunk])
        for fin in self.pool.finished(block=block and self.pool.busy() > 0):
            self.answered(fin)

    def answered(self, fin: Finished) -> None:
        chunk: list[tuple[_Unit, Request, dict[str, Any]]] = fin.tag
        if isinstance(fin.result, BaseException):
            if len(chunk) > 1:  # one bad request must not fail its batch-mates: one by one
                logger.warning("a batch of %d failed (%s: %s); retrying one at a time",
                               len(chunk), type(fin.result).__name__, fin.result)
                for one in chunk:
                    self.pool.submit([one], [one[1]])
                return
            unit, _, extra = chunk[0]
            self.fail(unit, fin.result, "model", extra)
            return
        share = fin.seconds / max(1, len(chunk))
        for (unit, _, extra), gen in zip(chunk, fin.result):
            rec = self._base(unit)
            rec.update(extra)
            try:
                parsed = parse_answer(unit.item, gen.text)
                score = score_item(unit.item, parsed)
            except VidselError as e:
                self.fail(unit, e, "model", extra)
                continue
            timings = dict(extra.get("timings_s", {}))
            timings["model"] = share
            timings["total"] = sum(v for k, v in timings.items() if k != "total")
            rec.update(output=gen.text, parsed=parsed, score=score,
                       model_visual_tokens=gen.visual_tokens, prompt_tokens=gen.prompt_tokens,
                       notes=list(gen.notes), timings_s=timings)
            self._write(rec)

    def drain(self) -> None:
        while self.ready or self.pool.busy():
            self.pump(block=True, flush=True)


def run_eval(items: Iterable[EvalItem], model: str | AnswererSpec | Answerer | Callable[..., Any],
             *, methods: Sequence[str] = ("uniform",), budgets: Sequence[int] = (8,),
             out: str | os.PathLike[str] | None = None, embedder: str | None = None,
             method_options: Mapping[str, Any] | None = None, subtitles: bool = False,
             max_new_tokens: int | None = None, limit: int | None = None,
             shard: str | tuple[int, int] | None = None, resume: bool = False,
             overwrite: bool = False, retry_failed: bool = False,
             cache_dir: str | os.PathLike[str] | bool | None = None,
             executor: str = "serial", workers: int | None = None,
             replicas: int | str | Sequence[str] | None = None,
             model_options: Mapping[str, Any] | None = None, device: str | None = None,
             fsync: bool = True, log_level: int = 0, progress: bool | None = None,
             executor_options: Mapping[str, Any] | None = None) -> EvalSummary:
    """Run ``items`` x ``methods`` x ``budgets`` through ``model``.

    Args:
        items: the questions (:func:`vidsel.eval.load_dataset`).
        model: a spec (``"ovis:DIR"``, ``"hf:DIR_OR_ID"``, ``"vllm:DIR_OR_ID"``,
            ``"py:pkg.mod:fn"``), an :class:`~vidsel.eval.AnswererSpec`, an
            :class:`~vidsel.eval.Answerer`, or a callable ``fn(request) -> str``.
        methods: registered methods (:func:`vidsel.methods.available_methods`).
        budgets: frame-equivalents in the model's geometry: every method gets
            ``budget * tokens_per_frame`` visual tokens of this model.
        out: the results file (JSON lines); None keeps records in memory.
        embedder: embedder spec for text-relevance methods (``mdp3``, ``topk``...).
        method_options: options passed to each method that takes them.
        subtitles: show the subtitle lines at the selected timestamps (items with subtitles).
        max_new_tokens: generation limit (default per task: mcq 16, grounding 48, highlights
            96, open 128).
        limit: the first ``limit`` items only.
        shard: ``"I/N"``: only items whose stable hash falls in shard I of N (run N of these
            on a cluster, each with its own ``out``; :func:`vidsel.eval.merge_results`).
        resume: skip units the results file has; ``retry_failed`` reruns its failures.
        overwrite: start the results file again.
        cache_dir: the selection cache folder (None / False: none, the default here; True:
            :func:`default_cache_dir`, the command line's default). Text-relevance methods
            keep their frame embeddings under it too (``embeddings/``).
        executor: where selections run: ``serial`` (default), ``process``, ``ray``.
        workers: parallel selection workers.
        replicas: one model replica per device in worker processes (``2``: cuda:0 and
            cuda:1; ``"cuda:0,cuda:3"``; ``"cpu,cpu"``); needs a spec ``model``.
        model_options: backend options (``device``, ``dtype``, ``max_batch``...).
        device: the embedder's device.
        fsync, log_level, progress: results-file durability, worker verbosity, progress bar.
        executor_options: extra executor options (``address``, ``gpus_per_task`` for Ray).

    Returns:
        an :class:`EvalSummary` (``.report()`` gives the table).

    Raises:
        InvalidArgumentError: unknown methods, bad budgets or shard, an existing results
            file without ``resume`` / ``overwrite``; model loading errors
            (ModelNotAvailableError...). Bad items never raise: they are failure records.
    """
    t_start = time.perf_counter()
    if isinstance(methods, str):  # "uniform,codec"
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = [str(m) for m in methods]
    if not methods:
        raise InvalidArgumentError("methods: give at least one method")
    for m in methods:
        get_method(m)
    budgets = [check_positive_int("budget", b) for b in budgets]
    if not budgets:
        raise InvalidArgumentError("budgets: give at least one budget")
    shard_t = parse_shard(shard)
    if resume and overwrite:
        raise InvalidArgumentError("resume and overwrite exclude each other")
    if retry_failed and not resume:
        raise InvalidArgumentError("retry_failed needs resume")
    methods = list(dict.fromkeys(methods))  # a name or budget given twice runs once
    budgets = list(dict.fromkeys(budgets))
    if cache_dir in (None, False):
        cache_root: str | None = None
    elif cache_dir is True:
        cache_root = str(default_cache_dir())
    else:
        cache_root = os.fspath(cache_dir)  # type: ignore[arg-type]
    routed = route_options(methods, dict(method_options or {}))
    per_method = {m: options_for(m, routed[m], embedder, cache_root=cache_root)
                  for m in methods}
    items = list(items)
    if subtitles and items and not any(it.subtitles for it in items):
        logger.warning("subtitles=True, but no item has a subtitle file (%s annotations name "
                       "none): the prompts carry no subtitles", items[0].dataset)
    seen: set[tuple[str, str]] = set()
    for it in items:
        if (it.dataset, it.item_id) in seen:
            raise InvalidArgumentError(f"item id {it.item_id!r} of {it.dataset!r} appears twice: "
                                       f"records are keyed by (dataset, item_id)")
        seen.add((it.dataset, it.item_id))
    if limit is not None:
        items = items[:check_positive_int("limit", limit)]
    if shard_t is not None:
        items = [it for it in items if shard_of(it, shard_t[1]) == shard_t[0]]
    m_opts = dict(model_options or {})
    # a spec is loaded only when there is work for it (a finished resume loads nothing); a
    # ready answerer or callable is wrapped now (it names itself)
    pool: ModelPool | None = None
    if not isinstance(model, (str, AnswererSpec)):
        pool = _model_pool(model, replicas, m_opts, log_level)
    results: ResultsFile | None = None
    try:
        model_id = _model_identity(model, pool, m_opts)
        settings = {"subtitles": subtitles, "max_new_tokens": max_new_tokens}
        units = [_Unit(it, m, b, _key(it, m, b, model_id, per_method[m], settings),
                       per_method[m]) for it in items for m in methods for b in budgets]
        summary = EvalSummary(out=None if out is None else Path(out), units=len(units),
                              items=len(items), methods=tuple(methods),
                              budgets=tuple(budgets), model=model_id)
        if out is not None:
            results = ResultsFile(out, mode="resume" if resume else
                                  "overwrite" if overwrite else "new", fsync=fsync)
            todo = [u for u in units if not results.done(u.key, retry_failed=retry_failed)]
            summary.skipped = len(units) - len(todo)
            results.drop([u.key for u in todo if u.key in results.records])
            units = todo
        if not units:
            logger.info("eval: nothing to run (%d answers done before)", summary.skipped)
            summary.seconds = time.perf_counter() - t_start
            return summary
        if pool is None:
            pool = _model_pool(model, replicas, m_opts, log_level)
        _run_units(units, pool, summary, results=results, model_id=model_id,
                   cache_root=cache_root, device=device, subtitles=subtitles,
                   max_new_tokens=max_new_tokens, shard=shard_t, embedder=embedder,
                   executor=executor, workers=workers, log_level=log_level,
                   progress=progress, executor_options=executor_options)
    except BaseException:
        if pool is not None:
            pool.abort()
            pool = None
        raise
    finally:
        if pool is not None:
            pool.close()
        if results is not None:
            results.close()
    summary.seconds = time.perf_counter() - t_start
    return summary


def _run_units(units: list[_Unit], pool: ModelPool, summary: EvalSummary, *,
               results: ResultsFile | None, model_id: str, cache_root: str | None,
               device: str | None, subtitles: bool, max_new_tokens: int | None,
               shard: tuple[int, int] | None, embedder: str | None, executor: str,
               workers: int | None, log_level: int, progress: bool | None,
               executor_options: Mapping[str, Any] | None) -> None:
    """Selections on the executor, answers as they come (the body of :func:`run_eval`)."""
    geometry = pool.geometry()
    # a missing embedder fails the run here, once, not every item in a worker
    for spec in sorted({str(u.options["embedder"]) for u in units if "embedder" in u.options}):
        preload_embedder(spec, device)
    # one selection per (video, question if the method reads it, method, budget)
    by_ident: dict[str, tuple[SelectJob, list[_Unit]]] = {}
    for u in sorted(units, key=lambda u: u.item.video):
        entry = get_method(u.method)
        question = u.item.question if entry.needs_question or entry.needs_embedder else None
        ident = json.dumps([u.item.video, question, u.method, u.budget,
                            json_safe(keyed_options(u.options)), u.options.get("embedder")],
                           sort_keys=True, default=str)
        if ident not in by_ident:
            by_ident[ident] = (SelectJob(video=u.item.video, question=question,
                                         method=u.method, budget=u.budget, geometry=geometry,
                                         options=u.options, cache_root=cache_root,
                                         device=device), [])
        by_ident[ident][1].append(u)
    jobs = [job for job, _ in by_ident.values()]
    units_of = {id(job): us for job, us in by_ident.values()}
    bar = progress_bar(total=len(units), desc="eval", unit="answer", progress=progress)
    run = _Run(pool, model_id, results=results, subtitles=subtitles,
               max_new_tokens=max_new_tokens, shard=shard, embedder=embedder,
               summary=summary, on_record=lambda rec: bar.update(1))
    logger.info("eval: %d answers to run (%d done before), %d selections; model %s",
                len(units), summary.skipped, len(jobs), model_id)
    n_workers = workers or (1 if executor == "serial" else default_workers())
    ex = make_executor(executor, workers=min(n_workers, max(1, len(jobs))),
                       log_level=log_level, **dict(executor_options or {}))
    try:
        with bar:
            for job, outcome in ex.map_unordered(select_job, jobs):
                run.selected(units_of[id(job)], outcome)
            run.drain()
    finally:
        ex.close()


def _model_pool(model: Any, replicas: Any, options: dict[str, Any], log_level: int,
                ) -> ModelPool:
    if replicas is None:
        return LocalModel(load_answerer(model, **options),
                          owned=not isinstance(model, Answerer))
    if isinstance(model, str):
        spec = AnswererSpec.parse(model, **options)
    elif isinstance(model, AnswererSpec):
        spec = AnswererSpec(model.kind, model.target, {**model.options, **options})
    else:
        raise InvalidArgumentError("replicas need a model spec ('hf:DIR', 'ovis:DIR'...), "
                                   "which each worker loads; a Python answerer runs in this "
                                   "process only")
    devices = parse_devices(replicas)
    check_devices(devices)
    return ReplicaPool(spec, devices, log_level=log_level)
