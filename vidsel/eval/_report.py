"""From results files to the table and the figure: :func:`load_report` and :class:`EvalReport`.

A results file holds one JSON record per (item, method, budget, model) (schema
``vidsel.eval/1``, written by :func:`vidsel.eval.run_eval`). The report reads several files
(shards, models, runs), keeps the last record of each ``key``, groups the records by
(dataset, task, model, method, budget) and gives, per group and metric, the mean over items
x100 with a bootstrap 95% confidence interval, plus the paired comparison of every method
against ``uniform`` on the same items.

Record fields read: ``schema``, ``key``, ``status`` (``"ok"`` / ``"error"``), ``dataset``,
``item_id``, ``task``, ``method``, ``budget``, ``model``, ``model_visual_tokens`` (else
``visual_tokens``: the table's ``tokens``), ``score`` and, for
failures, ``error.type``. Everything else is ignored.
"""

from __future__ import annotations

import html
import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._json import json_safe
from ..errors import InvalidArgumentError
from ..optional import require
from ..render import eval_plot, save_figure
from ..runs import read_records
from ._merge import better_record
from ._metrics import METRICS, PRIMARY, score_key
from ._types import SCHEMA

__all__ = ["BASELINE", "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "FAILURE_POLICIES", "RECORD_SCHEMA",
           "EvalReport",
           "bootstrap_ci", "load_report"]

logger = logging.getLogger(__name__)

#: What a failed answer counts as: left out of the means (``"skip"``, the default; the ``failed``
#: column counts it) or a wrong answer, 0 on every metric (``"wrong"``, as papers count a
#: failure to answer).
FAILURE_POLICIES = ("skip", "wrong")


def _labelled(rec: Mapping[str, Any]) -> bool:
    """A record's item has a ground truth (records without the fields: assume so)."""
    if "answer" not in rec and "spans_s" not in rec:
        return True
    return rec.get("answer") is not None or bool(rec.get("spans_s"))


#: A method whose median visual tokens differ from uniform's by more than this share is
#: flagged in the paired table.
TOKEN_TOLERANCE = 0.1

#: The schema of the records a report reads.
RECORD_SCHEMA = SCHEMA  # (its name here before 0.3)
#: The method every other one is compared with, item by item.
BASELINE = "uniform"
#: Bootstrap resamples and their fixed seed (the intervals are deterministic).
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
#: Budgets, metrics and numbers in the text table.
_ROW_FIELDS = ("dataset", "task", "model", "method", "budget", "visual_tokens", "metric",
               "mean", "ci_low", "ci_high", "n", "failed")
_CMP_FIELDS = ("dataset", "task", "model", "budget", "method", "baseline", "metric", "n", "wins",
               "losses", "ties", "mean_delta", "ci_low", "ci_high")
#: Infers a record's task from its score keys when the record does not say.
_TASK_OF_KEY = (("accuracy", "mcq"), ("mAP", "highlights"), ("iou", "grounding"),
                ("contains", "open"))

GroupKey = tuple[str, str, str, str, int | None]  # dataset, task, model, method, budget


def bootstrap_ci(values: Sequence[float] | np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile bootstrap confidence interval.

    Args:
        values: (n,) per-item scores, n >= 1.
        resamples: bootstrap resamples (with replacement, n draws each).
        seed: the generator seed (same values in the same order -> same interval).
        level: the interval's coverage (0.95: the 2.5th and 97.5th percentiles of the
            resampled means).

    Returns:
        ``(mean, low, high)`` in the values' units.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise InvalidArgumentError(f"bootstrap_ci needs a non-empty 1-D sequence, got shape "
                                   f"{x.shape}")
    rng = np.random.default_rng(seed)
    n = len(x)
    chunk = max(1, min(resamples, (1 << 22) // n))  # keep the (chunk, n) index block small
    means = []
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))  # (chunk, n)
        means.append(x[idx].mean(axis=1))
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(np.concatenate(means), [tail, 100.0 - tail])
    return float(x.mean()), float(low), float(high)


@dataclass
class _Group:
    """The records of one (dataset, task, model, method, budget)."""

    scores: dict[str, dict[str, float]] = field(default_factory=dict)  # item_id -> score
    tokens: list[int] = field(default_factory=list)
    failed: int = 0


def _task_of(rec: Mapping[str, Any]) -> str:
    task = rec.get("task")
    if isinstance(task, str) and task:
        return task
    score = rec.get("score") or {}
    return next((t for k, t in _TASK_OF_KEY if k in score), "?")


def _budget(value: Any, where: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{where}: budget={value!r} is not an integer") from None


def _metrics_for(task: str, metric: str | Sequence[str] | None) -> tuple[str, ...]:
    if metric is None:
        return (PRIMARY[task],) if task in PRIMARY else ()
    if isinstance(metric, str):
        if metric == "all":
            return METRICS.get(task, ())
        metric = (metric,)
    names = METRICS.get(task, ())
    keys = {score_key(m): m for m in names}
    return tuple(keys.get(score_key(m), m) for m in metric if score_key(m) in keys)


def _number(v: Any, digits: int = 1) -> str:
    """``-`` for None, floats with ``digits`` decimals (whole numbers without any when
    ``digits`` is 0), the rest as ``str``."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return str(int(v)) if digits == 0 and v.is_integer() else f"{v:.{max(digits, 1)}f}"
    return str(v)


def _aligned(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A text table: text columns left-aligned, the others right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    numeric = [all(r[i].lstrip("+-").replace(".", "", 1).isdigit() or r[i] in ("-", "")
                   or r[i].startswith("[") for r in rows) and bool(rows)
               for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric)).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


class EvalReport:
    """Metrics per (dataset, task, model, method, budget) and the paired comparison against
    ``uniform``, from evaluation records.

    Attributes:
        rows: one dict per group and metric: ``dataset, task, model, method, budget,
            visual_tokens`` (median over the group's answered items of the tokens the model
            counted, ``model_visual_tokens``, else the selection's), ``metric``, ``mean``,
            ``ci_low``, ``ci_high`` (x100, bootstrap 95% CI; None when no item was scored),
            ``n`` (items scored), ``failed`` (error records: not in the mean).
        comparisons: one dict per method other than ``uniform`` and (dataset, task, model,
            budget) where uniform also ran: ``baseline``, ``metric`` (the task's primary one,
            or the one metric asked for), ``n`` (items scored in both), ``wins`` / ``losses``
            / ``ties`` (items where the method scored higher / lower / the same),
            ``mean_delta`` with ``ci_low`` / ``ci_high`` (x100, paired bootstrap).
        metric: what was asked for (None: each task's primary metric; ``"all"``; a name or
            names).
        sources: where the records came from (file paths, ``"<records>"``).
        records: distinct evaluation records (one per key).
        duplicates: records dropped because a later one had the same key.
        ignored: records that were not evaluation records (other schemas).
        failures: ``{error type: count}`` over the error records.
    """

    def __init__(self, records: Iterable[Mapping[str, Any]], *,
                 metric: str | Sequence[str] | None = None, sources: Sequence[str] = (),
                 duplicates: int = 0, ignored: int = 0, failures: str = "skip") -> None:
        if failures not in FAILURE_POLICIES:
            raise InvalidArgumentError(f"failures={failures!r} must be one of "
                                       f"{', '.join(FAILURE_POLICIES)}")
        self.failure_policy = failures
        self.metric = metric
        self.sources = tuple(sources)
        self.duplicates = duplicates
        self.ignored = ignored
        self._groups: dict[GroupKey, _Group] = {}
        errors: Counter[str] = Counter()
        count = 0
        for i, rec in enumerate(records):
            count += 1
            where = f"record {i} ({rec.get('key', '?')})"
            try:
                key: GroupKey = (str(rec["dataset"]), _task_of(rec), str(rec["model"]),
                                 str(rec["method"]), _budget(rec.get("budget"), where))
                item_id, status = str(rec["item_id"]), rec["status"]
            except KeyError as exc:
                raise InvalidArgumentError(f"{where} has no {exc.args[0]!r} field") from None
            group = self._groups.setdefault(key, _Group())
            if status != "ok":
                group.failed += 1
                error = rec.get("error") or {}
                errors[str(error.get("type") or "error")
                       if isinstance(error, Mapping) else "error"] += 1
                if self.failure_policy == "wrong" and _labelled(rec):
                    group.scores[item_id] = {score_key(m): 0.0 for m in METRICS.get(key[1], ())}
                continue
            score = rec.get("score") or {}
            if not isinstance(score, Mapping):
                raise InvalidArgumentError(f"{where}: score must be an object, got {score!r}")
            group.scores[item_id] = {str(k): float(v) for k, v in score.items()
                                     if isinstance(v, (int, float))}
            # what the model's processor counted when the backend says, else the selection's
            tokens = rec.get("model_visual_tokens")
            if not isinstance(tokens, (int, float)) or isinstance(tokens, bool):
                tokens = rec.get("visual_tokens")
            if isinstance(tokens, (int, float)) and not isinstance(tokens, bool):
                group.tokens.append(int(tokens))
        self.records = count
        self.failures = dict(errors.most_common())
        self.rows = self._rows(metric)
        self.comparisons = self._comparisons(metric)

    # -- the numbers ------------------------------------------------------------------------

    def _sorted_keys(self) -> list[GroupKey]:
        return sorted(self._groups, key=lambda k: (k[0], k[1], k[2], k[3] != BASELINE, k[3],
                                                   k[4] is None, k[4] or 0))

    def _rows(self, metric: str | Sequence[str] | None) -> list[dict[str, Any]]:
        rows = []
        for key in self._sorted_keys():
            dataset, task, model, method, budget = key
            group = self._groups[key]
            tokens = float(np.median(group.tokens)) if group.tokens else None
            for name in _metrics_for(task, metric):
                k = score_key(name)
                values = [group.scores[i][k] for i in sorted(group.scores)
                          if k in group.scores[i]]
                mean = low = high = None
                if values:
                    mean, low, high = (100.0 * v for v in bootstrap_ci(values))
                rows.append({
                    "dataset": dataset, "task": task, "model": model, "method": method,
                    "budget": budget,
                    "visual_tokens": int(tokens) if tokens is not None and tokens.is_integer()
                    else tokens,
                    "metric": name, "mean": mean, "ci_low": low, "ci_high": high,
                    "n": len(values), "failed": group.failed})
        if not rows and self._groups:
            asked = metric if isinstance(metric, str) or metric is None else ", ".join(metric)
            tasks = sorted({k[1] for k in self._groups})
            known = sorted({m for t in tasks for m in METRICS.get(t, ())})
            raise InvalidArgumentError(f"metric={asked!r} applies to none of the tasks here "
                                       f"({', '.join(tasks)}); choose from {', '.join(known)} "
                                       f"or 'all'")
        return rows

    def _comparisons(self, metric: str | Sequence[str] | None) -> list[dict[str, Any]]:
        out = []
        for key in self._sorted_keys():
            dataset, task, model, method, budget = key
            base_key = (dataset, task, model, BASELINE, budget)
            if method == BASELINE or base_key not in self._groups:
                continue
            named = isinstance(metric, str) and metric != "all"
            one = _metrics_for(task, metric) if named else ()
            if named and not one:
                continue  # as the main table: a named metric leaves out the tasks it is not
            name = one[0] if one else PRIMARY.get(task)
            if name is None:
                continue
            k = score_key(name)
            mine, base = self._groups[key].scores, self._groups[base_key].scores
            items = sorted(i for i in mine.keys() & base.keys() if k in mine[i] and k in base[i])
            deltas = np.array([mine[i][k] - base[i][k] for i in items], dtype=np.float64)
            mean = low = high = None
            if len(deltas):
                mean, low, high = (100.0 * v for v in bootstrap_ci(deltas))
            # the model's tokens against the baseline's: "equal tokens" as it really was
            t_mine, t_base = self._groups[key].tokens, self._groups[base_key].tokens
            ratio = (float(np.median(t_mine)) / float(np.median(t_base))
                     if t_mine and t_base and np.median(t_base) > 0 else None)
            out.append({"dataset": dataset, "task": task, "model": model, "budget": budget,
                        "method": method, "baseline": BASELINE, "metric": name,
                        "n": len(items), "wins": int(np.sum(deltas > 0)),
                        "losses": int(np.sum(deltas < 0)), "ties": int(np.sum(deltas == 0)),
                        "mean_delta": mean, "ci_low": low, "ci_high": high,
                        "token_ratio": ratio})
        return out

    # -- views ------------------------------------------------------------------------------

    def table(self) -> str:
        """The metrics table as aligned text (what ``vidsel eval report`` prints)."""
        head = ["dataset", "task", "model", "method", "budget", "tokens", "metric", "mean x100",
                "95% CI", "n", "failed"]
        body = [[r["dataset"], r["task"], r["model"], r["method"], _number(r["budget"]),
                 _number(r["visual_tokens"], 0), r["metric"], _number(r["mean"]),
                 "-" if r["mean"] is None else f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]",
                 str(r["n"]), str(r["failed"])] for r in self.rows]
        return _aligned(head, body)

    def comparison_table(self) -> str:
        """The paired comparisons against uniform as aligned text ("" when there are none)."""
        if not self.comparisons:
            return ""
        head = ["dataset", "task", "model", "budget", "method", "metric", "n", "wins",
                "losses", "ties", "delta", "95% CI", "tokens vs uniform"]
        body = [[c["dataset"], c["task"], c["model"], _number(c["budget"]), c["method"],
                 c["metric"], str(c["n"]), str(c["wins"]), str(c["losses"]), str(c["ties"]),
                 "-" if c["mean_delta"] is None else f"{c['mean_delta']:+.1f}",
                 "-" if c["mean_delta"] is None else f"[{c['ci_low']:+.1f}, {c['ci_high']:+.1f}]",
                 "-" if c.get("token_ratio") is None else f"{c['token_ratio']:.2f}x"
                 + (" (!)" if abs(c["token_ratio"] - 1.0) > TOKEN_TOLERANCE else "")]
                for c in self.comparisons]
        text = _aligned(head, body)
        if any(c.get("token_ratio") is not None and
               abs(c["token_ratio"] - 1.0) > TOKEN_TOLERANCE for c in self.comparisons):
            text += (f"\n(!) the model spent more than {TOKEN_TOLERANCE:.0%} more or fewer "
                     f"visual tokens on this method than on uniform: not an equal-token "
                     f"comparison (codec canvases' padding, or canvases a model takes as "
                     f"unpooled images)")
        return text

    def _summary(self) -> str:
        failed = sum(self.failures.values())
        parts = [f"{self.records} records from {len(self.sources)} source"
                 f"{'s' if len(self.sources) != 1 else ''}"]
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicates dropped (last kept)")
        if failed:
            parts.append(f"{failed} failed: " + ", ".join(f"{t} {n}" for t, n
                                                          in self.failures.items()))
        return "; ".join(parts)

    def __str__(self) -> str:
        text = [self._summary(), "", self.table()]
        if self.comparisons:
            text += ["", f"paired against {BASELINE} (items scored in both; delta x100, "
                         f"paired bootstrap 95% CI):", self.comparison_table()]
        return "\n".join(text)

    def __repr__(self) -> str:
        return (f"EvalReport({self.records} records, {len(self._groups)} groups, "
                f"{len(self.rows)} rows, {len(self.comparisons)} comparisons)")

    def _repr_html_(self) -> str:
        def table(fields: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
            head = "".join(f"<th>{html.escape(f)}</th>" for f in fields)
            body = "".join("<tr>" + "".join(
                f"<td>{html.escape(r[f] if isinstance(r[f], str) else _number(r[f]))}</td>"
                for f in fields) + "</tr>" for r in rows)
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

        out = [f"<p>{html.escape(self._summary())}</p>", table(_ROW_FIELDS, self.rows)]
        if self.comparisons:
            out += [f"<p>paired against {BASELINE}</p>", table(_CMP_FIELDS, self.comparisons)]
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: ``rows``, ``comparisons``, ``records``, ``duplicates``, ``ignored``,
        ``failures``, ``sources``, ``metric``."""
        return json_safe({  # type: ignore[no-any-return]
            "rows": self.rows, "comparisons": self.comparisons, "records": self.records,
            "duplicates": self.duplicates, "ignored": self.ignored, "failures": self.failures,
            "sources": list(self.sources),
            "metric": self.metric if self.metric is None or isinstance(self.metric, str)
            else list(self.metric)})

    def to_pandas(self, table: str = "rows") -> Any:
        """The rows (``table="rows"``) or the comparisons (``"comparisons"``) as a
        ``pandas.DataFrame``.

        Raises:
            MissingDependencyError: pandas is not installed (:meth:`to_dict` needs nothing).
        """
        if table not in ("rows", "comparisons"):
            raise InvalidArgumentError(f"table={table!r} must be 'rows' or 'comparisons'")
        pd = _pandas()
        data = self.rows if table == "rows" else self.comparisons
        return pd.DataFrame(data, columns=list(_ROW_FIELDS if table == "rows" else _CMP_FIELDS))

    def plot(self, path: str | os.PathLike[str] | None = None, metric: str | None = None
             ) -> Any:
        """Metric vs budget (log2 axis), one line per method with its 95% band, one panel per
        dataset (and task, when a dataset has several); saved to ``path`` when given.

        Args:
            path: an image file to save to (format from the suffix).
            metric: the metric to draw (default: each task's primary metric, or the one
                metric the report was made for).

        Returns:
            The matplotlib ``Figure``.

        Raises:
            MissingDependencyError: matplotlib is not installed.
        """
        if metric is None and isinstance(self.metric, str) and self.metric != "all":
            metric = self.metric
        rows = self._rows(metric) if metric is not None else (
            self.rows if self.metric is None else self._rows(None))
        models = {r["model"] for r in rows}
        tasks_of: dict[str, set[str]] = {}
        for r in rows:
            tasks_of.setdefault(r["dataset"], set()).add(r["task"])
        panels: dict[tuple[str, str], tuple[str, dict[str, list[Any]]]] = {}
        for r in rows:
            if r["mean"] is None or r["budget"] is None:
                continue
            title = r["dataset"] if len(tasks_of[r["dataset"]]) == 1 \
                else f"{r['dataset']} · {r['task']}"
            label = r["method"] if len(models) == 1 else f"{r['method']} · {r['model']}"
            _, lines = panels.setdefault((r["dataset"], r["task"]), (title, {}))
            lines.setdefault(label, []).append((r["budget"], r["mean"], r["ci_low"],
                                                r["ci_high"]))
        ylabels = {(r["dataset"], r["task"]): r["metric"] for r in rows}
        data = [(title, f"{ylabels[key]} (%)", lines)
                for key, (title, lines) in sorted(panels.items())]
        model = next(iter(models)) if len(models) == 1 else ""
        if len(model) > 48:  # a long model path: its end names it
            model = "…" + model[-47:]
        model_note = f" · {model}" if model else ""
        fig = eval_plot(data, title=f"vidsel eval{model_note} (95% bootstrap CI)")
        return save_figure(fig, path)


def _pandas() -> Any:
    return require("pandas", "EvalReport.to_pandas (EvalReport.to_dict needs nothing)",
                   extra="eval")


def _files(source: str | os.PathLike[str]) -> list[Path]:
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise InvalidArgumentError(f"{path}: a folder with no .jsonl results files")
        return files
    if not path.is_file():
        raise InvalidArgumentError(f"results file {path} does not exist")
    return [path]


def load_report(paths_or_records: Any, *, metric: str | Sequence[str] | None = None,
                failures: str = "skip") -> EvalReport:
    """Read results files (or records) and summarise them.

    Args:
        paths_or_records: a results file, a folder of ``.jsonl`` files, a record (dict), or a
            list mixing those; files are read in the order given, and where two records share
            a ``key`` (a shard run twice, a resumed run) the last one wins.
        metric: None (each task's primary metric: accuracy, R1@0.5, contains), a metric name
            (``"mIoU"``, ``"mAP"``...), several names, or ``"all"``.
        failures: ``"skip"`` (failed answers are left out of the means and counted in
            ``failed``) or ``"wrong"`` (they score 0, as a failure to answer).

    Returns:
        An :class:`EvalReport`; ``str(report)`` is the text table, ``report.plot(path)`` the
        figure.

    Raises:
        InvalidArgumentError: a file does not exist, holds no ``vidsel.eval/1`` records or a
            record lacks a field the report needs; ``metric`` applies to no task here.
    """
    if isinstance(paths_or_records, (str, os.PathLike, Mapping)):
        paths_or_records = [paths_or_records]
    sources: list[str] = []
    latest: dict[str, Mapping[str, Any]] = {}
    duplicates = ignored = 0
    for source in paths_or_records:
        if isinstance(source, Mapping):
            batch: list[tuple[str, Mapping[str, Any]]] = [("<records>", source)]
            if "<records>" not in sources:
                sources.append("<records>")
        elif isinstance(source, (str, os.PathLike)):
            batch = []
            for file in _files(source):
                sources.append(str(file))
                batch += [(str(file), r) for r in read_records(file)]
        else:
            raise InvalidArgumentError(f"load_report: {source!r} is neither a results file nor "
                                       f"a record")
        for where, rec in batch:
            schema = rec.get("schema")
            if not (isinstance(schema, str) and schema.startswith("vidsel.eval/")):
                ignored += 1
                continue
            if schema != RECORD_SCHEMA:
                raise InvalidArgumentError(f"{where}: record schema {schema!r} is not "
                                           f"{RECORD_SCHEMA!r} (written by a newer vidsel?)")
            if "key" not in rec:
                raise InvalidArgumentError(f"{where}: an evaluation record has no 'key'")
            key = str(rec["key"])
            if key in latest:  # as vidsel eval merge decides: ok over failure, then later
                duplicates += 1
                if not better_record(rec, latest[key]):
                    continue
                del latest[key]  # keep the order of the kept occurrence
            latest[key] = rec
    if not latest:
        raise InvalidArgumentError(f"no {RECORD_SCHEMA} records in "
                                   f"{', '.join(sources) or 'the input'}")
    if ignored:
        logger.info("ignored %d records that are not %s records", ignored, RECORD_SCHEMA)
    return EvalReport(latest.values(), metric=metric, sources=sources, duplicates=duplicates,
                      ignored=ignored, failures=failures)
