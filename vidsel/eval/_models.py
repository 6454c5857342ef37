"""Where the model half of an evaluation runs: in this process, or one model replica per
device in worker processes (one per GPU of a node).

Both pools take batches of :class:`~vidsel.eval.Request` and hand back, for each batch, its
generations or the exception that stopped it; the runner never waits on a replica while
another one is free.
"""

from __future__ import annotations

import abc
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgumentError
from ..optional import require
from ..runs import WorkerCrashedError, configure_logging, exit_with_parent
from ._answerer import Answerer, AnswererSpec, GeometryFn
from ._types import Generation, Request

__all__ = ["LocalModel", "ModelPool", "ReplicaPool", "check_devices", "parse_devices"]

logger = logging.getLogger(__name__)


@dataclass
class Finished:
    """A batch that came back: its tag, its generations (or the exception), seconds taken."""

    tag: Any
    result: list[Generation] | BaseException
    seconds: float


class ModelPool(abc.ABC):
    """One or more copies of a model taking batches."""

    max_batch: int = 1

    @abc.abstractmethod
    def geometry(self) -> GeometryFn:
        """The model's geometry function."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """The model's identity (:meth:`Answerer.describe`)."""

    @abc.abstractmethod
    def free(self) -> bool:
        """A batch submitted now would start without waiting."""

    @abc.abstractmethod
    def submit(self, tag: Any, requests: list[Request]) -> None:
        """Start (or run) a batch."""

    @abc.abstractmethod
    def finished(self, *, block: bool) -> list[Finished]:
        """Batches done since the last call (``block``: wait for at least one if any runs)."""

    @abc.abstractmethod
    def busy(self) -> int:
        """Batches submitted and not yet returned by :meth:`finished`."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model(s)."""

    def abort(self) -> None:
        """Stop at once (interrupted run): work in flight is dropped."""
        self.close()


def _run(answerer: Answerer, requests: Sequence[Request]) -> list[Generation]:
    out = answerer.generate(list(requests))
    if len(out) != len(requests):
        raise InvalidArgumentError(f"{answerer.name} returned {len(out)} answers for "
                                   f"{len(requests)} requests")
    return [Generation.coerce(g) for g in out]


class LocalModel(ModelPool):
    """The answerer in this process: :meth:`submit` runs the batch at once.

    Args:
        answerer: the model.
        owned: :meth:`close` closes it (it was loaded for this run); an answerer the caller
            passed in stays open for the next run.
    """

    def __init__(self, answerer: Answerer, *, owned: bool = True) -> None:
        self.answerer = answerer
        self.owned = owned
        self.max_batch = max(1, int(answerer.max_batch))
        self._done: list[Finished] = []

    def geometry(self) -> GeometryFn:
        return self.answerer.geometry()

    def describe(self) -> dict[str, Any]:
        return self.answerer.describe()

    def free(self) -> bool:
        return True

    def submit(self, tag: Any, requests: list[Request]) -> None:
        t0 = time.perf_counter()
        try:
            result: list[Generation] | BaseException = _run(self.answerer, requests)
        except Exception as e:  # the batch's failure, recorded per request by the runner
            result = e
        self._done.append(Finished(tag, result, time.perf_counter() - t0))

    def finished(self, *, block: bool) -> list[Finished]:
        done, self._done = self._done, []
        return done

    def busy(self) -> int:
        return len(self._done)

    def close(self) -> None:
        if self.owned:
            self.answerer.close()


# -- replicas in worker processes ---------------------------------------------------------------

_REPLICA: Answerer | None = None
#: A failure to load the model in this worker, raised by the first call (an initializer's own
#: exception would only break the pool, without its message).
_REPLICA_ERROR: BaseException | None = None


def _replica_init(spec: AnswererSpec, visible: str | None, log_level: int) -> None:
    """Worker start-up: exit with the parent, see only its device, load the model once."""
    global _REPLICA, _REPLICA_ERROR
    exit_with_parent()
    if visible is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible
    configure_logging(log_level)
    try:
        _REPLICA = spec.load()
    except Exception as e:  # reported by the first call
        _REPLICA_ERROR = e


def _loaded() -> Answerer:
    if _REPLICA_ERROR is not None:
        raise _REPLICA_ERROR
    if _REPLICA is None:  # pragma: no cover - the initializer ran first
        raise InvalidArgumentError("the model replica is not loaded")
    return _REPLICA


def _replica_info() -> tuple[GeometryFn, dict[str, Any], int]:
    """The loaded replica's geometry function, identity and batch size."""
    answerer = _loaded()
    return answerer.geometry(), answerer.describe(), int(answerer.max_batch)


def _replica_generate(requests: list[Request]) -> tuple[list[Generation], float]:
    answerer = _loaded()
    t0 = time.perf_counter()
    return _run(answerer, requests), time.perf_counter() - t0


def parse_devices(devices: int | str | Sequence[str]) -> list[str]:
    """``2`` -> ``["cuda:0", "cuda:1"]``; ``"cuda:0,cuda:3"`` or a list as given; ``"cpu,cpu"``
    gives two CPU replicas (tests, or a CPU-only machine)."""
    if isinstance(devices, bool):
        raise InvalidArgumentError(f"replicas={devices!r} must be a count or device names")
    if isinstance(devices, int):
        if devices < 1:
            raise InvalidArgumentError(f"replicas={devices!r} must be >= 1")
        return [f"cuda:{i}" for i in range(devices)]
    if isinstance(devices, str):
        if devices.strip().isdigit():
            return parse_devices(int(devices))
        devices = [d.strip() for d in devices.split(",") if d.strip()]
    out = [str(d) for d in devices]
    if not out:
        raise InvalidArgumentError("replicas: no devices given")
    for d in out:
        if d != "cpu" and not (d.startswith("cuda:") and d[5:].isdigit()):
            raise InvalidArgumentError(f"replica device {d!r} must be 'cuda:N' or 'cpu'")
    return out


def check_devices(devices: Sequence[str]) -> None:
    """Refuse CUDA devices torch cannot see, before any replica starts.

    Raises:
        InvalidArgumentError: naming the devices asked for and how many there are.
    """
    wanted = [int(d[5:]) for d in devices if d.startswith("cuda:")]
    if not wanted:
        return
    torch = require("torch", "model replicas on CUDA devices", extra="model")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if max(wanted) >= count:
        raise InvalidArgumentError(
            f"replicas on {', '.join(d for d in devices if d.startswith('cuda:'))}: torch sees "
            f"{count} CUDA device(s) here; use replicas='cpu,cpu' (--replicas cpu,cpu) for CPU "
            f"workers, or fewer devices")


class ReplicaPool(ModelPool):
    """One model replica per device, each in its own worker process (``spawn``).

    A replica that dies (a native crash, the out-of-memory killer, a driver fault) is started
    again; the batches it held are re-run one at a time, alone, once the others are done, so a
    request that kills its replica again is pinned down and fails with
    :class:`~vidsel.runs.WorkerCrashedError` while the innocent ones are answered.

    Args:
        spec: the model to load in each worker (an :class:`AnswererSpec`).
        devices: ``cuda:N`` (the worker sees only GPU N, as ``cuda``) or ``cpu``.
        log_level: the workers' verbosity.
        depth: batches queued per replica beyond the running one.
    """

    def __init__(self, spec: AnswererSpec, devices: Sequence[str], *, log_level: int = 0,
                 depth: int = 1) -> None:
        self.spec = spec
        self.devices = list(devices)
        self.depth = max(0, depth)
        self.log_level = log_level
        self.crashes = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._starts: list[tuple[AnswererSpec, str | None]] = []
        self._pools: list[ProcessPoolExecutor] = []
        self._load: list[int] = []
        #: future -> (replica, its pool, tag, requests, running alone)
        self._inflight: dict[Future[Any], tuple[int, ProcessPoolExecutor, Any, list[Request],
                                                bool]] = {}
        self._suspects: deque[tuple[Any, list[Request]]] = deque()
        self._ready: deque[Finished] = deque()
        for device in self.devices:
            options = dict(spec.options)
            visible = device[5:] if device.startswith("cuda:") else None
            # model backends take device=; a py: answerer places itself, and vLLM takes no
            # device (it places the model on the one GPU the replica sees)
            if spec.kind not in ("py", "vllm"):
                options["device"] = "cuda" if visible is not None else "cpu"
            self._starts.append((AnswererSpec(spec.kind, spec.target, options), visible))
            self._pools.append(self._new_pool(len(self._pools)))
            self._load.append(0)
        # the replicas' answers to these also prove that they start and load
        try:
            info = [pool.submit(_replica_info) for pool in self._pools]
            self._geometry, self._describe, batch = info[0].result()
            for fut in info[1:]:
                fut.result()
        except BrokenProcessPool:
            self.abort()
            raise WorkerCrashedError(f"a model replica of {spec} died while loading (killed, "
                                     f"out of memory or a crash in native code)") from None
        except BaseException:
            self.abort()
            raise
        self.max_batch = max(1, batch)
        logger.info("model replicas: %s on %s", spec, ", ".join(self.devices))

    def _new_pool(self, i: int) -> ProcessPoolExecutor:
        replica, visible = self._starts[i]
        return ProcessPoolExecutor(max_workers=1, mp_context=self._ctx,
                                   initializer=_replica_init,
                                   initargs=(replica, visible, self.log_level))

    def _restart(self, i: int, broken: ProcessPoolExecutor) -> None:
        """Replace replica ``i``'s pool if it is still the one that broke."""
        if self._pools[i] is not broken:
            return
        self.crashes += 1
        logger.warning("the model replica on %s died; starting it again (the requests it held "
                       "are re-run one at a time)", self.devices[i])
        broken.shutdown(wait=False, cancel_futures=True)
        self._pools[i] = self._new_pool(i)

    def geometry(self) -> GeometryFn:
        return self._geometry  # type: ignore[no-any-return]

    def describe(self) -> dict[str, Any]:
        return dict(self._describe)

    def free(self) -> bool:
        return not self._suspects and min(self._load) <= self.depth

    def submit(self, tag: Any, requests: list[Request]) -> None:
        i = min(range(len(self._pools)), key=self._load.__getitem__)
        self._submit(i, tag, requests, alone=False)

    def _submit(self, i: int, tag: Any, requests: list[Request], *, alone: bool) -> None:
        pool = self._pools[i]
        try:
            fut = pool.submit(_replica_generate, requests)
        except BrokenProcessPool:  # it died since the last look: start it again first
            self._restart(i, pool)
            pool = self._pools[i]
            fut = pool.submit(_replica_generate, requests)
        self._load[i] += 1
        self._inflight[fut] = (i, pool, tag, requests, alone)

    def finished(self, *, block: bool) -> list[Finished]:
        if self._suspects and not self._inflight:  # re-run one suspect alone
            tag, requests = self._suspects.popleft()
            self._submit(0, tag, requests, alone=True)
        if self._inflight:
            done, _ = wait(list(self._inflight), timeout=None if block else 0,
                           return_when=FIRST_COMPLETED)
            for fut in done:
                i, pool, tag, requests, alone = self._inflight.pop(fut)
                self._load[i] -= 1
                exc = fut.exception()
                if isinstance(exc, BrokenProcessPool):
                    self._restart(i, pool)
                    if alone:
                        self._ready.append(Finished(tag, WorkerCrashedError(
                            "the model replica died answering this request alone (killed, "
                            "out of memory or a crash in native code)"), 0.0))
                    else:
                        self._suspects.append((tag, requests))
                elif exc is not None:
                    self._ready.append(Finished(tag, exc, 0.0))
                else:
                    gens, seconds = fut.result()
                    self._ready.append(Finished(tag, gens, seconds))
        out = list(self._ready)
        self._ready.clear()
        return out

    def busy(self) -> int:
        return len(self._inflight) + len(self._ready) + len(self._suspects)

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
        self._pools = []

    def abort(self) -> None:
        """Terminate the replicas without waiting for batches in flight."""
        for pool in self._pools:
            procs = list(getattr(pool, "_processes", {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                if proc.is_alive():
                    proc.terminate()
        self._pools = []
