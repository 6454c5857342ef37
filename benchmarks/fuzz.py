"""Mutation fuzz of the reader and the codec pass: 1000+ damaged files, a JSON report.

The corpus and the checks are the CI fuzz test's (tests/fuzz/): seed videos of several codecs
and containers generated with PyAV's bundled encoders (plus, with ``--fixtures``, the small real
clips of ../shared/fixtures), mutated by bit flips, truncation, zeroed blocks, shuffled chunks,
container-structure damage and timestamp damage. Every mutant goes through open, metadata,
get_frames, sample_uniform, iter_frames, packet_index and select_patches in a pool of worker
subprocesses with a timeout. A mutant passes when only VidselError subclasses escape, nothing
hangs or crashes, counts and shapes are as asked and the same request gives the same pixels
(see tests/fuzz/worker.py).

Usage:
    python benchmarks/fuzz.py                            # 1000 mutants, 2 workers
    python benchmarks/fuzz.py --count 3000 --jobs 8 --fixtures
    python benchmarks/fuzz.py --only h264_ts__pts_00096  # rebuild one mutant, print its result
    python benchmarks/fuzz.py --only h264_ts__pts_00096 --keep /tmp/fuzz   # ... and keep it

Exit status: 0 when every mutant passed, 1 otherwise.
"""

from __future__ import annotations

import sys

# This folder holds select.py (the selection benchmark), which would shadow the standard
# library's `select` module (used by subprocess) when a script here runs: drop the folder.
if sys.path and sys.path[0] and __file__.startswith(sys.path[0]):
    sys.path.pop(0)

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.fuzz: the corpus and checks shared with the CI test

from tests.fuzz.corpus import (  # noqa: E402
    FIXTURE_SEEDS,
    SEEDS,
    Seed,
    fixture_seeds,
    make_mutant,
    make_mutants,
    make_seeds,
    parse_name,
)
from tests.fuzz.runner import run_files, summarise  # noqa: E402


def _seeds(fixtures: bool) -> tuple[Seed, ...]:
    if not fixtures:
        return SEEDS
    root = Path(os.environ.get("VIDSEL_SHARED", REPO.parent / "shared")) / "fixtures"
    extra = fixture_seeds(root)
    if len(extra) < len(FIXTURE_SEEDS):
        print(f"{len(FIXTURE_SEEDS) - len(extra)} fixture clips not found under {root}",
              file=sys.stderr)
    return (*SEEDS, *extra)


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    out = {"file": Path(r["path"]).name, "ok": r["ok"], "elapsed_s": r["elapsed_s"],
           "calls": r["calls"]}
    if r["notes"]:
        out["notes"] = r["notes"]
    if r["failures"]:
        out["failures"] = r["failures"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000, help="mutants (default 1000)")
    ap.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 8),
                    help="worker processes")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds one mutant may take before it counts as a hang")
    ap.add_argument("--base-seed", type=int, default=1000,
                    help="number of the first mutant (the CI test uses 0..)")
    ap.add_argument("--fixtures", action="store_true",
                    help="add the small real clips of ../shared/fixtures as seeds")
    ap.add_argument("--only", help="rebuild one mutant by name (seed__kind_number)")
    ap.add_argument("--keep", type=Path, help="write seeds and mutants here and keep them")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "fuzz.json",
                    help="JSON report")
    args = ap.parse_args(argv)

    work = args.keep or Path(tempfile.mkdtemp(prefix="vidsel-fuzz-"))
    try:
        seeds = make_seeds(work / "seeds", _seeds(args.fixtures or bool(args.only)))
        if args.only:
            seed, kind, number = parse_name(args.only)
            if seed not in seeds:
                ap.error(f"unknown seed {seed!r} (known: {', '.join(sorted(seeds))})")
            (work / "mutants").mkdir(parents=True, exist_ok=True)
            m = make_mutant(seeds[seed], seed, kind, number, work / "mutants")
            res = run_files([m.path], jobs=1, timeout=args.timeout)[0]
            print(json.dumps(res, indent=1))
            return 0 if res["ok"] else 1

        t0 = time.perf_counter()
        mutants = list(make_mutants(seeds, args.count, work / "mutants",
                                    base_seed=args.base_seed))
        results = run_files([m.path for m in mutants], jobs=args.jobs, timeout=args.timeout)
        elapsed = time.perf_counter() - t0
        summary = summarise(results)
        report = {
            "config": {"count": args.count, "jobs": args.jobs, "timeout_s": args.timeout,
                       "base_seed": args.base_seed, "fixtures": args.fixtures,
                       "seeds": sorted(seeds), "python": platform.python_version(),
                       "machine": platform.machine(), "cpus": os.cpu_count()},
            "elapsed_s": round(elapsed, 1),
            "summary": summary,
            "failing": [_brief(r) for r in results if not r["ok"]],
            "mutants": [{"file": Path(r["path"]).name, "ok": r["ok"], "calls": r["calls"],
                         "notes": r["notes"], "elapsed_s": r["elapsed_s"]} for r in results],
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
        print(f"{summary['files']} mutants in {elapsed:.0f} s: {summary['failing_files']} "
              f"failing ({summary['failures_by_kind']}); report: {args.out}")
        for r in results:
            for f in r["failures"]:
                print(f"  {Path(r['path']).name}: {f['check']} {f['kind']}: "
                      f"{f['message'][:160]}")
        return 0 if summary["failing_files"] == 0 else 1
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
