"""Shards (and reruns) into one results file with one record per key."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from ..runs import ResultsFile, read_records

__all__ = ["MergeSummary", "better_record", "merge_results", "unique_records"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MergeSummary:
    """``records`` written to ``out`` from ``files`` files; ``duplicates`` dropped (a key seen
    again: the ok record wins over a failure, then the later one)."""

    out: Path
    files: int
    records: int
    duplicates: int


def better_record(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    """Whether ``new`` replaces ``old`` (same key): an ok record wins over a failure, then the
    later one (``finished_at``)."""
    rank_new, rank_old = new.get("status") == "ok", old.get("status") == "ok"
    if rank_new != rank_old:
        return rank_new
    return str(new.get("finished_at", "")) >= str(old.get("finished_at", ""))


def unique_records(records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """One record per ``key`` (first-seen order), and how many duplicates were dropped."""
    best: dict[str, dict[str, Any]] = {}
    dropped = 0
    for rec in records:
        key = str(rec.get("key"))
        if key in best:
            dropped += 1
            if not better_record(rec, best[key]):
                continue
        best[key] = rec
    return list(best.values()), dropped


def merge_results(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                  overwrite: bool = False) -> MergeSummary:
    """Merge results files (the shards of a run, reruns) into ``out``.

    Raises:
        InvalidArgumentError: an input does not exist (nothing is written), ``out`` is one of
            the inputs, or already has results and ``overwrite`` is False.
    """
    paths = [Path(p) for p in inputs]
    if not paths:
        raise InvalidArgumentError("merge: no results files given")
    out_p = Path(out)
    for p in paths:
        if not p.is_file():
            raise InvalidArgumentError(f"no such results file: {str(p)!r}")
        if out_p.exists() and os.path.samefile(p, out_p):
            raise InvalidArgumentError(f"{out_p} is also an input: write the merge elsewhere")
    records: list[dict[str, Any]] = []
    for p in paths:
        records.extend(read_records(p))
    merged, dropped = unique_records(records)
    with ResultsFile(out_p, mode="overwrite" if overwrite else "new", fsync=False) as res:
        for rec in merged:
            res.append(rec)
    if dropped:
        logger.info("merge: %d duplicate records dropped", dropped)
    return MergeSummary(out=out_p, files=len(paths), records=len(merged), duplicates=dropped)
