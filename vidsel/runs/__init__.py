"""Long runs over many inputs, shared by ``vidsel batch`` and ``vidsel eval``.

- :class:`ResultsFile` / :func:`read_records`: the append-only, crash-safe, resumable
  JSON-lines results file (one record per finished unit of work, written by the parent only).
- Executors (:data:`EXECUTORS`, :func:`make_executor`): where per-input work runs: a local
  pool of worker processes that survives crashing workers, a Ray cluster, or in-process.
- :class:`UsageError`, :class:`OutputError`, :func:`prepare_output`, :func:`dumps`,
  :func:`configure_logging`: what the runs and the command line share.
"""

from ._executors import (
    EXECUTORS,
    Executor,
    ExecutorEntry,
    ProcessExecutor,
    RayExecutor,
    SerialExecutor,
    WorkerCrashedError,
    available_executors,
    default_workers,
    executor_help,
    exit_with_parent,
    make_executor,
    register_executor,
)
from ._jsonl import ResultsFile, ResultsWriteError, read_records
from ._output import (
    HANDLER_NAME,
    OWN_LOGGERS,
    OutputError,
    UsageError,
    configure_logging,
    dumps,
    log_level,
    output_failed,
    prepare_output,
)

__all__ = [
    "EXECUTORS",
    "HANDLER_NAME",
    "OWN_LOGGERS",
    "Executor",
    "ExecutorEntry",
    "OutputError",
    "ProcessExecutor",
    "RayExecutor",
    "ResultsFile",
    "ResultsWriteError",
    "SerialExecutor",
    "UsageError",
    "WorkerCrashedError",
    "available_executors",
    "configure_logging",
    "default_workers",
    "dumps",
    "executor_help",
    "exit_with_parent",
    "log_level",
    "make_executor",
    "output_failed",
    "prepare_output",
    "read_records",
    "register_executor",
]
