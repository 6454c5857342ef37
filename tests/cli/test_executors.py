"""Executors: same results, per-item failures, and a dying worker pinned down."""

from __future__ import annotations

import pytest

from vidsel.cli._executors import (
    ProcessExecutor,
    SerialExecutor,
    WorkerCrashedError,
    available_executors,
    make_executor,
)
from vidsel.errors import InvalidArgumentError

# ``eval`` is a builtin, so spawn-ed workers can unpickle it: items are expressions.
ITEMS = ["1 + 1", "2 * 3", "1 / 0", "__import__('os')._exit(3)", "7", "8", "9"]


def _collect(executor, items):
    return {item: out for item, out in executor.map_unordered(eval, items)}


def test_registry() -> None:
    assert available_executors()[0] == "process"
    assert {"process", "ray", "serial"} <= set(available_executors())
    with pytest.raises(InvalidArgumentError, match="executor='mpi' is not allowed"):
        make_executor("mpi")


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
