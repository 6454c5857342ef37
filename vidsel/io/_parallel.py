"""Parallel exact decoding: how many stretch decoders a reader runs at once, and running them.

A stretch (a seek point to the last frame wanted before the next one) is decoded by a fresh
decoder from its keyframe, independently of every other stretch, so stretches can run at once
in threads, each with its own demuxer and decoder (FFmpeg releases the GIL while it demuxes,
decodes and converts). The pixels do not depend on the number of workers.
"""

from __future__ import annotations

import collections
import copy
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["BALANCE", "DECODE_WORKERS_ENV", "MAX_DEFAULT_WORKERS", "MIN_PARALLEL_PIXELS",
           "MIN_SAVED_PIXELS", "POOL_THREADS", "Sink", "Stretch", "decode_parallel",
           "decode_pool", "default_workers", "parallel_workers", "spawn_clone", "usable_cpus"]

logger = logging.getLogger(__name__)

#: Most parallel stretch decoders a reader uses by default (``workers=None``).
MAX_DEFAULT_WORKERS = 16
#: Environment variable overriding the default number of workers (see :func:`default_workers`).
DECODE_WORKERS_ENV = "VIDSEL_DECODE_WORKERS"

#: Stretches are decoded in parallel only when the longest-first schedule of their lengths on
#: the workers ends within this factor of a perfect split; otherwise one after the other with
#: frame threads (two stretches of 240 and 40 frames: the long one alone would run
#: single-threaded while the other worker idles). Single-threaded decoders on separate
#: stretches spend ~20-25% less CPU than FFmpeg's frame threads (which wait on each other's
#: reference rows), so balanced plans gain more than the core count.
BALANCE = 1.25

#: Nor when the mean stretch is smaller than this many decoded pixels (stretch length x picture
#: size; ~30 ms of decoding): on short GOPs of small pictures the per-stretch costs (seek,
#: decoder set-up, the demux loop's Python share, which holds the GIL) outweigh the gain
#: (measured on a 140-GOP 768x432 clip: 50% more CPU at 2 workers for 128 frames).
MIN_PARALLEL_PIXELS = 8_000_000

#: A decoder that runs on one core (no frame or slice threads: VP6, FLV1) decodes one stretch
#: after another on one core however many are free, so any schedule on two workers helps,
#: once it takes at least this many decoded pixels off the longest worker's load. Measured on
#: a 112x80 VP6 clip (three GOPs of 58 pictures, 2 cores, benchmarks/decode.py): 8 / 128
#: exact frames (~0.5 M pixels saved) take 12.6 / 14.9 ms on one worker, 9.5 / 13.0 ms
#: on two; the second demuxer costs ~0.6 ms CPU, beside the first stretch's decode.
MIN_SAVED_PIXELS = 300_000

#: Where a backend hands each decoded picture: ``sink(frame index, (H, W, 3) uint8 RGB)``;
#: the array may be a view of the decoder's buffer, valid only during the call.
Sink = Callable[[int, np.ndarray], None]
#: The targets one decoded stretch did not produce (the others went to the sink).
Stretch = list[int]

B = TypeVar("B")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def default_workers(cap: int = MAX_DEFAULT_WORKERS) -> int:
    """Parallel stretch decoders used when ``workers`` is None: ``VIDSEL_DECODE_WORKERS`` when
    set to an integer >= 1 (``vidsel batch`` / ``eval`` worker processes set it to their share
    of the CPUs), else one per usable CPU, at most ``cap`` (the reader's
    :data:`MAX_DEFAULT_WORKERS`; codec passes use a lower one)."""
    env = os.environ.get(DECODE_WORKERS_ENV, "").strip()
    if env:
        if env.isdigit() and int(env) >= 1:
            return int(env)
        logger.warning("%s=%r is not an integer >= 1; ignored", DECODE_WORKERS_ENV, env)
    return min(usable_cpus(), cap)


def parallel_workers(costs: Sequence[int], workers: int, pixels: int = 1 << 40, *,
                     threaded: bool = True) -> int:
    """How many workers to decode stretches of these costs (frames of ``pixels`` pixels) with:
    ``workers`` (at most one per stretch) when the stretches are large enough (see
    :data:`MIN_PARALLEL_PIXELS`) and their longest-first schedule is balanced (see
    :data:`BALANCE`), else 1. For a decoder without threads (``threaded=False``) the schedule
    only has to save :data:`MIN_SAVED_PIXELS` against decoding them all on one core."""
    workers = min(workers, len(costs))
    if workers <= 1:
        return 1
    loads = [0] * workers
    for c in sorted(costs, reverse=True):
        loads[loads.index(min(loads))] += c
    if not threaded:
        return workers if (sum(costs) - max(loads)) * pixels >= MIN_SAVED_PIXELS else 1
    if sum(costs) * pixels < MIN_PARALLEL_PIXELS * len(costs):
        return 1
    return workers if max(loads) <= BALANCE * sum(costs) / workers else 1


#: Most threads the process-wide decode pool keeps (see :func:`decode_pool`). A call's workers
#: that find no free thread are done by the caller instead (see :func:`decode_parallel`).
POOL_THREADS = 4 * MAX_DEFAULT_WORKERS

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool() -> None:
    """In a forked child: the parent's pool threads do not exist there (and the lock may
    have been held by one of them)."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def decode_pool() -> ThreadPoolExecutor:
    """The process's pool of decode threads, made on first use and kept: its threads wait
    idle between requests, so a request does not pay for starting threads (on a 2-vCPU VM a
    new thread's first stretch started 0.2-3.6 ms late, a third of an 8-frame read of a
    small clip). A forked child makes its own."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="vidsel-decode")
        return _pool


def decode_parallel(backends: Sequence[B], groups: Sequence[tuple[int, list[int]]],
                    run: Callable[[B, int, list[int]], Stretch], *, workers: int = 0,
                    spawn: Callable[[], B] | None = None, spawned: list[B] | None = None
                    ) -> Iterator[Stretch]:
    """``run(backend, key, group)`` for every group, by one worker per backend (each backend
    is used by one thread at a time); results come back in the order of ``groups``.

    The calling thread is the first worker (with ``backends[0]``), the others run on threads
    of :func:`decode_pool`. A thread woken for work can wait milliseconds for a free CPU:
    measured on a 2-vCPU VM right after a single-threaded read, the second of two pool
    threads started 2-5 ms late or shared the first one's CPU (an 8-frame read of a small VP6
    clip: 11.8 ms with two pool threads, 8.3 ms with the caller as the first worker; one
    worker: 10.9 ms).

    With ``spawn``, ``workers`` workers run (at least ``len(backends)``): a worker without a
    backend makes one with ``spawn()`` on its own thread before its first group, so the
    first stretches start decoding while the other workers open their files; each backend
    made is appended to ``spawned`` (the caller keeps them for later calls and closes them).
    A ``spawn()`` that raises fails that group. There are never more workers than groups.

    Each worker is given one of the longest stretches, then takes the longest left whenever
    it is free, so the last ones to finish are short. A stretch given to a pool worker that
    has not started when the others run out of work is taken by one of them (a busy pool
    never leaves the caller waiting for a thread). After a group fails, the groups after it
    that have not started are left out (the caller gets the error at that group); leaving
    early (an exception, or the caller stops iterating) cancels the groups not started. Either
    way the call waits for the running ones, so no backend is in use afterwards.
    """
    slots: list[B | None] = list(backends)
    if spawn is not None and workers > len(slots):
        slots += [None] * (workers - len(slots))  # backends still to be made
    if groups and not slots:
        raise InvalidArgumentError("decode_parallel: no backend and nothing to make one with")
    slots = slots[:max(1, len(groups))]
    todo = collections.deque(sorted(range(len(groups)),
                                    key=lambda g: groups[g][0] - groups[g][1][-1]))
    given: list[int | None] = [todo.popleft() if todo else None for _ in slots]
    results: list[Future[Stretch]] = [Future() for _ in groups]
    failed = [len(groups)]  # the first group that failed (len: none)
    lock = threading.Lock()

    def take(w: int) -> int | None:
        """The group worker ``w`` decodes next (None: no work left for it), under ``lock``."""
        if given[w] is not None:
            g, given[w] = given[w], None
            return g
        if todo:
            return todo.popleft()
        for other in range(1, len(given)):  # a pool worker's stretch it has not begun
            if given[other] is not None:
                g, given[other] = given[other], None
                return g
        return None

    def worker(w: int) -> None:
        backend = slots[w]
        while True:
            with lock:
                g = take(w)
                if g is not None and g > failed[0]:
                    results[g].cancel()
                    continue
            if g is None:
                return
            if not results[g].set_running_or_notify_cancel():
                continue  # the caller left
            try:
                if backend is None and spawn is not None:
                    backend = spawn()
                    if spawned is not None:
                        with lock:
                            spawned.append(backend)
                results[g].set_result(run(backend, *groups[g]))  # type: ignore[arg-type]
            except BaseException as e:  # handed to the caller with this group's result
                with lock:
                    failed[0] = min(failed[0], g)
                results[g].set_exception(e)
                if not isinstance(e, Exception):
                    raise  # KeyboardInterrupt, SystemExit: this worker stops at once

    pool = decode_pool()
    runners: list[Future[None]] = []
    try:
        runners.extend(pool.submit(worker, w) for w in range(1, len(slots)))
        if groups:
            worker(0)  # the calling thread is the first worker
        for f in results:
            yield f.result()
    finally:
        for f in results:
            f.cancel()
        # a worker not started holds no backend: cancelled, it is not waited for
        wait([r for r in runners if not r.cancel()])


def spawn_clone(backend: Any, open_container: Callable[[str], Any],
                converter: Callable[[], Any], stats: Callable[[], Any]) -> Any:
    """Another worker on ``backend``'s file: a shallow copy with its own demuxer, decoder and
    converter, sharing the packet index, the reference flags and the seek positions learnt
    (read-mostly; what a worker writes there is the same whichever worker writes it)."""
    clone = copy.copy(backend)
    clone._clones = []
    clone._first_key = None  # the picture probed at open stays with the backend that did
    clone._container = open_container(backend.path)
    try:
        clone._stream = clone._container.streams[backend._stream.index]
        clone._configure_threads("AUTO")
    except BaseException:
        clone._container.close()
        raise
    clone._converter = converter()
    clone._stats = stats()
    clone._drain = False
    return clone
