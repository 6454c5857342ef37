"""Run the fuzz checks of :mod:`tests.fuzz.worker` over many files in a pool of subprocesses.

Each worker process serves files one at a time; a file that takes longer than ``timeout``
seconds is a ``hang`` (the worker is killed and replaced), a worker that dies is a ``crash``
(e.g. a segfault in FFmpeg). The pool keeps ``jobs`` workers busy.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["WORKER", "run_files", "summarise"]

WORKER = Path(__file__).with_name("worker.py")
#: Seconds a worker may take to start (imports) before it counts as broken.
START_TIMEOUT = 120.0


class _Proc:
    """One worker subprocess and a thread reading its result lines."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
        # the worker's stderr (closed in kill / close): thread stacks of a hang
        self.err = tempfile.TemporaryFile()  # noqa: SIM115
        self.p = subprocess.Popen(
            [sys.executable, str(WORKER), "--serve"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.err, text=True, env=env,
            start_new_session=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        first = self._get(START_TIMEOUT)
        if first is None or not json.loads(first).get("ready"):
            self.kill()
            raise RuntimeError("fuzz worker failed to start")

    def _pump(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _get(self, timeout: float) -> str | None:
        return self.lines.get(timeout=timeout)

    def run(self, path: str, timeout: float) -> dict[str, Any]:
        assert self.p.stdin is not None
        t0 = time.perf_counter()
        try:
            self.p.stdin.write(json.dumps({"path": path}) + "\n")
            self.p.stdin.flush()
            line = self._get(timeout)
        except queue.Empty:
            stacks = self._stacks()
            self.kill()
            return _broken(path, "hang", f"no answer within {timeout:.0f} s", t0, stacks)
        except (BrokenPipeError, OSError):
            line = None
        if line is None:
            rc = self.p.wait()
            try:
                name: object = signal.Signals(-rc).name if rc < 0 else rc
            except ValueError:
                name = rc
            return _broken(path, "crash", f"worker died (exit {name})", t0)
        return json.loads(line)  # type: ignore[no-any-return]

    def _stacks(self) -> str:
        """The worker's thread stacks (faulthandler on SIGUSR1), for a hang's report."""
        try:
            self.err.seek(0, os.SEEK_END)
            start = self.err.tell()
            os.kill(self.p.pid, signal.SIGUSR1)
            time.sleep(1.0)
            self.err.seek(start)
            return self.err.read().decode("utf-8", "replace")[-6000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.p.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait()
        self.err.close()

    def close(self) -> None:
        if self.p.stdin is not None:
            with contextlib.suppress(OSError):
                self.p.stdin.close()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        self.err.close()


def _broken(path: str, kind: str, message: str, t0: float, tb: str = "") -> dict[str, Any]:
    return {"path": path, "ok": False, "calls": {}, "notes": [],
            "failures": [{"check": "process", "kind": kind, "message": message,
                          "traceback": tb}],
            "elapsed_s": round(time.perf_counter() - t0, 3)}


def run_files(paths: Iterable[str | os.PathLike[str]], *, jobs: int = 2,
              timeout: float = 60.0) -> list[dict[str, Any]]:
    """Check every file in a pool of ``jobs`` worker processes; results in input order."""
    todo = [os.fspath(p) for p in paths]
    results: list[dict[str, Any] | None] = [None] * len(todo)
    work: queue.Queue[int] = queue.Queue()
    for i in range(len(todo)):
        work.put(i)

    def loop() -> None:
        proc: _Proc | None = None
        try:
            while True:
                try:
                    i = work.get_nowait()
                except queue.Empty:
                    return
                if proc is None or not proc.alive():
                    proc = _Proc()
                results[i] = proc.run(todo[i], timeout)
        finally:
            if proc is not None:
                proc.close()

    threads = [threading.Thread(target=loop) for _ in range(max(1, min(jobs, len(todo))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r if r is not None else _broken(p, "crash", "not run", time.perf_counter())
            for p, r in zip(todo, results)]


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of failures by kind and check, and the failing files."""
    by_kind: dict[str, int] = {}
    by_check: dict[str, int] = {}
    for r in results:
        for f in r["failures"]:
            by_kind[f["kind"]] = by_kind.get(f["kind"], 0) + 1
            by_check[f["check"]] = by_check.get(f["check"], 0) + 1
    failing = [r for r in results if not r["ok"]]
    return {"files": len(results), "failing_files": len(failing), "failures_by_kind": by_kind,
            "failures_by_check": by_check,
            "noted_files": sum(1 for r in results if r["notes"])}
