"""Executors for ``vidsel batch`` and ``vidsel eval``: where the per-input work runs.

- ``process`` (default): a local pool of worker processes (``spawn``), one video per task.
  A worker that dies (segfaulting decoder, OOM kill, ``kill -9``) breaks the pool; the pool is
  rebuilt and the videos that were in flight are re-run one at a time, so the one that kills
  its worker again is pinned down and gets a failure record
  (:class:`WorkerCrashedError`) while the others finish normally. Three races in the standard
  library's pool (Python 3.11) are closed here rather than left to hang or end the batch: a
  worker started while the pool is breaking is never told to stop (the pool then waits for it
  forever) or fails to start (``submit`` raises ``OSError``: its queue is already closed), and
  a worker started after the pool's last look at its workers can die unseen while holding the
  task queue's lock. The executor kills a broken pool's workers itself, treats a failed start
  as a broken pool, and checks on the workers every :data:`WATCH_INTERVAL_S` while waiting.
- ``ray``: tasks on a Ray cluster (``pip install 'vidsel[ray]'``): an existing one
  (``--ray-address`` or ``RAY_ADDRESS``) or a local one started for the run. GPU-aware: with an
  embedder and GPUs in the cluster each task asks for ``--gpus-per-task`` GPUs (default 1) and
  embeds on the GPU Ray assigns it.
- ``serial``: in this process, one video after another (debugging, profiling; no isolation).

Worker processes never outlive the batch: they exit as soon as their parent dies, even by
SIGKILL (:func:`exit_with_parent`), and the multiprocessing resource tracker ends with them.

Every executor has the same contract: ``map_unordered(fn, items)`` yields ``(item, result)`` as
tasks finish, where ``result`` is ``fn(item)`` or the exception that stopped it. The parent
process writes the results, so the output contract and resumability are the executor's no
concern. Executors live in the :data:`EXECUTORS` registry (:class:`vidsel.registry.Registry`);
new ones plug in with :func:`register_executor` (the CLI's choices come from
:func:`available_executors`).
"""

from __future__ import annotations

import abc
import ctypes
import logging
import multiprocessing
import multiprocessing.connection as mp_connection
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import InvalidArgumentError, VidselError
from ..io import DECODE_WORKERS_ENV, usable_cpus
from ..optional import require
from ..registry import Registry
from ._output import configure_logging

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorEntry",
    "ProcessExecutor",
    "RayExecutor",
    "SerialExecutor",
    "WorkerCrashedError",
    "available_executors",
    "default_workers",
    "executor_help",
    "exit_with_parent",
    "make_executor",
    "register_executor",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
Outcome = tuple[Any, Any]  # (item, result or exception)


#: Seconds between checks that every worker of a process pool is still alive.
WATCH_INTERVAL_S = 1.0
#: Seconds to wait for a broken pool to settle its futures after its workers were killed.
SETTLE_S = 10.0


class WorkerCrashedError(VidselError, RuntimeError):
    """The worker process running a task died (signal, out of memory, native crash)."""


def default_workers() -> int:
    """CPU cores this process may use (:func:`vidsel.io.usable_cpus`)."""
    return usable_cpus()


class Executor(abc.ABC):
    """Base class: runs ``fn`` over items, yielding ``(item, result_or_exception)``.

    Args:
        workers: parallel tasks (processes, or Ray CPUs for a local Ray cluster).
        log_level: verbosity for logging set-up inside workers (``-v`` count minus ``-q``).
    """

    name = "base"

    def __init__(self, *, workers: int | None = None, log_level: int = 0) -> None:
        self.workers = max(1, int(workers or default_workers()))
        self.log_level = log_level

    @abc.abstractmethod
    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Outcome]:
        """Run ``fn`` over ``items`` in any order, yielding each item with its outcome."""

    def close(self) -> None:  # noqa: B027 - optional hook: executors without workers keep it
        """Release workers (idempotent); nothing to release by default."""

    def describe(self) -> str:
        return f"{self.name} x{self.workers}"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """Everything in the calling process, in order."""

    name = "serial"

    def __init__(self, *, workers: int | None = None, log_level: int = 0) -> None:
        super().__init__(workers=1, log_level=log_level)

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Outcome]:
        for item in items:
            try:
                yield item, fn(item)
            except Exception as e:  # the task's own failure, reported per item
                yield item, e


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def exit_with_parent(*, pdeathsig: bool = True) -> None:
    """Make this (spawned) worker process exit as soon as the process that started it dies,
    even by SIGKILL, which runs no clean-up in the parent.

    Two mechanisms: on Linux the kernel sends SIGKILL when the parent dies
    (``prctl(PR_SET_PDEATHSIG)``; ``pdeathsig=False`` skips it, for pools started from a
    thread that may end before the process does, since that signal follows the thread), and
    everywhere a daemon thread waits on the parent's sentinel (a pipe the parent holds open)
    and ends the process when it closes. Workers that exit also release the multiprocessing
    resource tracker, which ends by itself once no process holds its pipe.
    """
    parent = multiprocessing.parent_process()
    if parent is None:  # not a multiprocessing child
        return
    if pdeathsig and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread remains
            logger.debug("prctl(PR_SET_PDEATHSIG) is not available")
    sentinel = parent.sentinel

    def watch() -> None:
        mp_connection.wait([sentinel])  # returns when the parent's end of the pipe closes
        os._exit(1)

    threading.Thread(target=watch, name="vidsel-parent-watch", daemon=True).start()


def _init_worker(log_level: int, threads: int, pdeathsig: bool = True) -> None:
    """Worker start-up: exit with the parent, logging like the parent, and a fair share of
    BLAS / torch threads and of parallel frame decoders (``VIDSEL_DECODE_WORKERS``, read by
    :class:`vidsel.VideoReader`)."""
    exit_with_parent(pdeathsig=pdeathsig)
    configure_logging(log_level)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                DECODE_WORKERS_ENV):
        os.environ.setdefault(var, str(threads))


class ProcessExecutor(Executor):
    """A local pool of ``spawn``-ed worker processes (see the module doc for crash handling).

    Args:
        prefetch: tasks queued per worker beyond the running one (keeps workers busy).
    """

    name = "process"

    def __init__(self, *, workers: int | None = None, log_level: int = 0,
                 prefetch: int = 1) -> None:
        super().__init__(workers=workers, log_level=log_level)
        self.prefetch = max(0, prefetch)
        self._pool: ProcessPoolExecutor | None = None
        self.crashes = 0

    def _new_pool(self) -> ProcessPoolExecutor:
        threads = max(1, default_workers() // self.workers)
        # workers are spawned by the thread that submits (this one); PDEATHSIG follows that
        # thread, so it is safe only from the main thread (the parent-watch thread covers both)
        main = threading.current_thread() is threading.main_thread()
        return ProcessPoolExecutor(max_workers=self.workers,
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker,
                                   initargs=(self.log_level, threads, main))

    def _workers_of(self) -> list[multiprocessing.process.BaseProcess]:
        """The current pool's worker processes (the standard pool keeps them in
        ``_processes``; none when it does not)."""
        return list((getattr(self._pool, "_processes", None) or {}).values())

    def _lost_worker(self) -> bool:
        """A worker of the current pool has exited (workers only exit when the pool shuts
        down, so this is a crash the pool itself may not have seen yet)."""
        return any(p.exitcode is not None for p in self._workers_of())

    def _kill_workers(self) -> None:
        for p in self._workers_of():
            if p.exitcode is None:
                p.kill()
        for p in self._workers_of():
            p.join(timeout=SETTLE_S)

    def _drop_pool(self, *, terminate: bool = False, broken: bool = False) -> None:
        """Shut the pool down: ``terminate`` (interrupted) kills the workers without waiting
        for running tasks; ``broken`` (a worker died) kills the survivors first, so the pool's
        own clean-up, which joins every worker, cannot wait on one it never stopped."""
        if terminate or broken:
            self._kill_workers()
        pool, self._pool = self._pool, None
        if pool is None:
            return
        pool.shutdown(wait=not terminate, cancel_futures=True)

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Outcome]:
        pending: deque[Any] = deque(items)
        suspects: deque[Any] = deque()  # in flight when a worker died: re-run one at a time
        inflight: dict[Future[Any], Any] = {}
        alone: Any = None  # the suspect running by itself
        limit = self.workers * (1 + self.prefetch)
        finished = False
        empty_breaks = 0  # pools that broke with nothing running (e.g. workers fail to start)
        start_error: BaseException | None = None  # why the last submit failed
        try:
            while pending or suspects or inflight:
                if self._pool is None:
                    self._pool = self._new_pool()
                broken = False  # the pool died between the last wait and a submit
                try:
                    if suspects:
                        if not inflight:
                            alone = suspects[0]
                            inflight[self._pool.submit(fn, alone)] = alone
                            suspects.popleft()
                    else:
                        while pending and len(inflight) < limit:
                            item = pending[0]
                            inflight[self._pool.submit(fn, item)] = item
                            pending.popleft()
                except (BrokenProcessPool, OSError, ValueError) as e:
                    # the item that failed to submit is still queued; OSError, or ValueError
                    # "bad value(s) in fds_to_keep": a worker spawned while the pool was
                    # breaking (its queue or its pipes are already closed)
                    if isinstance(e, ValueError) and "fds_to_keep" not in str(e):
                        raise
                    broken, start_error = True, e
                    if alone is not None and alone not in inflight.values():
                        alone = None
                crashed: list[Any] = []
                if inflight and not broken:
                    done, _ = wait(inflight, timeout=WATCH_INTERVAL_S,
                                   return_when=FIRST_COMPLETED)
                    for fut in done:
                        item = inflight.pop(fut)
                        if isinstance(fut.exception(), BrokenProcessPool):
                            crashed.append(item)
                        else:
                            yield item, fut.exception() or fut.result()
                    if not done and self._lost_worker():
                        broken = True  # a worker died unseen by the pool
                if not crashed and not broken:
                    if alone is not None and not inflight:
                        alone = None
                    continue
                # The pool is dead: stop its workers, then the other futures fail the same way
                # (or finished just before); one still open after SETTLE_S counts as crashed.
                self._kill_workers()
                wait(inflight, timeout=SETTLE_S)
                for fut, item in inflight.items():
                    if not fut.done() or isinstance(fut.exception(), BrokenProcessPool):
                        crashed.append(item)
                    else:
                        yield item, fut.exception() or fut.result()
                inflight.clear()
                self.crashes += 1
                self._drop_pool(broken=True)
                if not crashed:
                    empty_breaks += 1
                    if empty_breaks >= 3:
                        raise WorkerCrashedError(
                            "worker processes keep dying before taking any task (they fail to "
                            "start); try --executor serial -v") from start_error
                    continue  # nothing was running when the pool broke: start a new one
                empty_breaks = 0
                if alone is not None and crashed == [alone]:
                    logger.error("a worker died while processing %r alone: recording a failure",
                                 getattr(alone, "path", alone))
                    yield alone, WorkerCrashedError(
                        "the worker process died while processing this input (killed by a "
                        "signal, out of memory or a crash in native code)")
                else:
                    logger.warning("a worker process died; re-running the %d tasks it may have "
                                   "taken down, one at a time", len(crashed))
                    suspects.extend(crashed)
                alone = None
            finished = True
        finally:
            if not finished:  # interrupted (Ctrl-C, generator closed early)
                self._drop_pool(terminate=True)

    def close(self) -> None:
        self._drop_pool()


# -- Ray ---------------------------------------------------------------------------------------


def _import_ray() -> Any:
    return require("ray", "--executor ray", extra="ray", needs="Ray")


_RAY_WORKER_CONFIGURED = False


def _ray_call(fn: Callable[[Any], Any], item: Any, log_level: int) -> Any:
    """Runs inside a Ray worker process."""
    global _RAY_WORKER_CONFIGURED
    if not _RAY_WORKER_CONFIGURED:
        configure_logging(log_level)
        _RAY_WORKER_CONFIGURED = True
    return fn(item)


class RayExecutor(Executor):
    """Tasks on a Ray cluster.

    Args:
        workers: CPUs of the local cluster started when no cluster address is known (ignored
            when connecting to a cluster).
        address: a cluster address (``"auto"``, ``"ray://head:10001"``); None: ``RAY_ADDRESS``
            if set, else a local cluster for this run.
        gpus_per_task: GPUs each task asks for; None: 1 when ``uses_gpu`` and the cluster has
            GPUs, else 0.
        uses_gpu: the tasks embed frames with a model (GPU-worthy work).
        max_in_flight: tasks submitted ahead (default: twice the cluster's CPUs).
    """

    name = "ray"

    def __init__(self, *, workers: int | None = None, log_level: int = 0,
                 address: str | None = None, gpus_per_task: float | None = None,
                 uses_gpu: bool = False, max_in_flight: int | None = None) -> None:
        super().__init__(workers=workers, log_level=log_level)
        ray = _import_ray()
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "configure_logging": False,
                                      "log_to_driver": log_level >= 1}
            if address is None and not os.environ.get("RAY_ADDRESS"):
                kwargs["num_cpus"] = self.workers
            else:
                kwargs["address"] = address
            logger.info("starting Ray (%s)", address or os.environ.get("RAY_ADDRESS") or "local")
            ray.init(**kwargs)
            self._owns = True
        resources = ray.cluster_resources()
        self.cluster_cpus = int(resources.get("CPU", self.workers))
        cluster_gpus = float(resources.get("GPU", 0.0))
        if gpus_per_task is None:
            gpus_per_task = 1.0 if uses_gpu and cluster_gpus > 0 else 0.0
        if gpus_per_task < 0:
            raise InvalidArgumentError(f"gpus_per_task={gpus_per_task!r} must be >= 0")
        self.gpus_per_task = float(gpus_per_task)
        self.max_in_flight = max_in_flight or max(2, 2 * self.cluster_cpus)
        self._remote = ray.remote(num_cpus=1, num_gpus=self.gpus_per_task,
                                  max_retries=1)(_ray_call)
        logger.info("Ray cluster: %d CPUs, %g GPUs; %g GPUs per task", self.cluster_cpus,
                    cluster_gpus, self.gpus_per_task)

    def describe(self) -> str:
        gpu = f", {self.gpus_per_task:g} GPU/task" if self.gpus_per_task else ""
        return f"ray ({self.cluster_cpus} CPUs{gpu})"

    def map_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[Outcome]:
        ray = self._ray
        pending: deque[Any] = deque(items)
        inflight: dict[Any, Any] = {}
        fn_ref = ray.put(fn)
        try:
            while pending or inflight:
                while pending and len(inflight) < self.max_in_flight:
                    item = pending.popleft()
                    inflight[self._remote.remote(fn_ref, item, self.log_level)] = item
                done, _ = ray.wait(list(inflight), num_returns=1)
                for ref in done:
                    item = inflight.pop(ref)
                    try:
                        yield item, ray.get(ref)
                    except ray.exceptions.WorkerCrashedError as e:
                        yield item, WorkerCrashedError(f"the Ray worker died: {e}")
                    except ray.exceptions.RayTaskError as e:
                        yield item, e.as_instanceof_cause()
                    except ray.exceptions.RayError as e:
                        yield item, e
        finally:
            for ref in inflight:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns = False


# -- registry ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutorEntry:
    """A registered executor: ``factory(workers=..., log_level=..., **options) -> Executor``
    and a one-line description for ``--help``."""

    factory: Callable[..., Executor]
    description: str = ""


#: Executors by name.
EXECUTORS: Registry[ExecutorEntry] = Registry("executor")


def register_executor(name: str, factory: Callable[..., Executor], *, description: str = "",
                      overwrite: bool = False) -> None:
    """Add an executor: ``factory(workers=..., log_level=..., **options) -> Executor``.

    Raises:
        InvalidArgumentError: ``name`` is taken and ``overwrite`` is False.
    """
    EXECUTORS.register(name, ExecutorEntry(factory, description), overwrite=overwrite)


def available_executors() -> tuple[str, ...]:
    """Registered executor names, sorted."""
    return EXECUTORS.names()


def executor_help() -> str:
    """One line per executor for ``--help``."""
    return "; ".join(f"{n}: {e.description}" for n, e in EXECUTORS.items())


def make_executor(name: str, **options: Any) -> Executor:
    """Build a registered executor by name (an unknown name lists the choices)."""
    return EXECUTORS.get(name).factory(**options)


register_executor("process", ProcessExecutor,
                  description="local worker processes (default)")
register_executor("ray", RayExecutor,
                  description="a Ray cluster: RAY_ADDRESS / --ray-address, else a local one")
register_executor("serial", SerialExecutor, description="in this process, one at a time")
