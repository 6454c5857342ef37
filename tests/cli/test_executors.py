"""Executors: same results, per-item failures, and a dying worker pinned down."""

from __future__ import annotations

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
