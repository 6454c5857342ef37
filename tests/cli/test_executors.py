"""Executors: same results, per-item failures, and a dying worker pinned down."""

from __future__ import annotations

import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from vidsel.errors import InvalidArgumentError
from vidsel.runs._executors import (
    EXECUTORS,
    ProcessExecutor,
    SerialExecutor,
    WorkerCrashedError,
    available_executors,
    executor_help,
    make_executor,
    register_executor,
)

# ``eval`` is a builtin, so spawn-ed workers can unpickle it: items are expressions.
ITEMS = ["1 + 1", "2 * 3", "1 / 0", "__import__('os')._exit(3)", "7", "8", "9"]


def _collect(executor, items):
    return {item: out for item, out in executor.map_unordered(eval, items)}


def test_registry() -> None:
    assert available_executors() == EXECUTORS.names() == ("process", "ray", "serial")
    with pytest.raises(InvalidArgumentError,
                       match="executor='mpi' is not registered; choose one of 'process'"):
        make_executor("mpi")
    with pytest.raises(InvalidArgumentError, match="already registered"):
        register_executor("serial", SerialExecutor)
    register_executor("serial-test", SerialExecutor, description="a test entry")
    try:
        assert isinstance(make_executor("serial-test"), SerialExecutor)
        assert "serial-test: a test entry" in executor_help()
    finally:
        EXECUTORS.unregister("serial-test")


def test_serial_reports_exceptions_per_item() -> None:
    got = _collect(SerialExecutor(), ["1 + 1", "1 / 0"])
    assert got["1 + 1"] == 2 and isinstance(got["1 / 0"], ZeroDivisionError)


def test_process_pool_pins_down_the_item_that_kills_its_worker() -> None:
    with ProcessExecutor(workers=2) as ex:
        got = _collect(ex, ITEMS)
    assert set(got) == set(ITEMS)
    assert got["1 + 1"] == 2 and got["2 * 3"] == 6 and got["9"] == 9
    assert isinstance(got["1 / 0"], ZeroDivisionError)
    assert isinstance(got["__import__('os')._exit(3)"], WorkerCrashedError)
    assert ex.crashes == 2  # once among others, once alone


def _kill_first_worker(ex: ProcessExecutor, delay: float, stop: threading.Event,
                       killed: list[int]) -> None:
    """Kill the pool's first worker ``delay`` seconds after it appears (0: as it starts)."""
    while not stop.is_set():
        procs = ex._workers_of()
        if procs:
            time.sleep(delay)
            pid = procs[0].pid
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            return
        time.sleep(0.002)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.4])
def test_process_pool_survives_a_worker_killed_from_outside(delay: float) -> None:
    """Killed while starting, idle (holding the task queue's lock) or busy: every item still
    gets its result and the map ends. The standard pool alone can wait forever here when a
    worker is started while the pool is breaking."""
    items = [f"__import__('time').sleep(0.05) or {i}" for i in range(8)]
    got: dict[str, object] = {}
    stop, killed = threading.Event(), []
    with ProcessExecutor(workers=2) as ex:
        watcher = threading.Thread(target=_kill_first_worker, args=(ex, delay, stop, killed))
        runner = threading.Thread(target=lambda: got.update(_collect(ex, items)))
        watcher.start()
        runner.start()
        runner.join(timeout=90)
        stop.set()
        watcher.join()
        hung = runner.is_alive()
        if hung:  # free the runner before failing
            ex._kill_workers()
        assert not hung, "the map hung after a worker was killed"
    assert killed
    assert got == {item: i for i, item in enumerate(items)}


class _RacyPool(ProcessPoolExecutor):
    """The standard pool, whose first submit fails the way a worker spawned while the pool
    breaks makes it fail (the spawn passes pipes the breaking pool has just closed)."""

    failed = 0

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        if _RacyPool.failed == 0:
            _RacyPool.failed += 1
            raise ValueError("bad value(s) in fds_to_keep")
        return super().submit(fn, *args, **kwargs)


def test_process_pool_survives_a_spawn_into_a_breaking_pool(monkeypatch) -> None:
    import vidsel.runs._executors as ex_mod

    monkeypatch.setattr(ex_mod, "ProcessPoolExecutor", _RacyPool)
    _RacyPool.failed = 0
    with ProcessExecutor(workers=2) as ex:
        got = _collect(ex, ["1 + 1", "2 * 3", "7"])
    assert got == {"1 + 1": 2, "2 * 3": 6, "7": 7}
    assert _RacyPool.failed == 1
