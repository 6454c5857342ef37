"""Threads that decode ahead of their consumer: :func:`decode_ahead` (one decoding iterator on
a worker thread) and :class:`Queue` (one stretch of a parallel pass), both bounded, both
letting the decoding thread do the consumer's pending work (RGB conversions) while it is
ahead instead of racing on."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["IDLE_AHEAD", "Queue", "decode_ahead"]

#: A decode thread this many pictures ahead of its consumer (or with a full queue) first does
#: the consumer's pending RGB conversions (:class:`~vidsel.io._frames.IdleConversions`): the
#: consumer is then the slower side. Closer, it decodes on and leaves them to the consumer,
#: which converts while the decoder works. More than a chunk of the codec analysis (32
#: frames), which the consumer takes at once.
IDLE_AHEAD = 48


def _behind_at(idle: Callable[[], bool], cap: int) -> int:
    """Pictures waiting from which the consumer counts as behind: ``idle.ahead`` (an
    :class:`~vidsel.io._frames.IdleConversions`' batch) or IDLE_AHEAD, at most ``cap``."""
    return min(getattr(idle, "ahead", IDLE_AHEAD), cap)


class Queue:
    """The frames of one stretch, from its worker to the consumer; ``cap`` pictures at most
    (set from the first picture's size)."""

    def __init__(self) -> None:
        self.items: deque[tuple[int, Any]] = deque()
        self.cond = threading.Condition()
        self.cap = 8
        self.reading = False  # the consumer has reached this stretch

    def put(self, item: tuple[int, Any], stop: threading.Event,
            idle: Callable[[], bool] | None = None) -> bool:
        """Append ``item``; while the consumer has not reached this stretch yet, or is
        behind (:func:`_behind_at`), first run ``idle`` (a conversion the consumer has not done
        yet, outside the lock) as long as it finds work; while the queue is full, wait."""
        while True:
            if idle is not None and item[0] == 0:
                with self.cond:
                    behind = not self.reading or len(self.items) >= _behind_at(idle, self.cap)
                if behind and idle():
                    continue
            with self.cond:
                if len(self.items) < self.cap or item[0] != 0:
                    self.items.append(item)
                    self.cond.notify_all()
                    return not stop.is_set()
                if stop.is_set():
                    return False
                self.cond.wait(0.1)

    def get(self) -> tuple[int, Any]:
        with self.cond:
            self.reading = True
            while not self.items:
                self.cond.wait(0.1)
            item = self.items.popleft()
            self.cond.notify_all()
            return item


def decode_ahead(items: Iterator[Any], depth: int = 6,
                 idle: Callable[[], bool] | None = None) -> Iterator[Any]:
    """Run a (decoding) iterator in a worker thread, ``depth`` items ahead of the consumer.

    FFmpeg releases the GIL while it decodes and scales, so the decode of the next frames
    overlaps the per-frame work done in Python. While the consumer is behind (:func:`_behind_at`
    with ``depth``), the worker first runs ``idle`` (work the consumer would otherwise do,
    such as an :class:`IdleConversions`; it returns False when there is none).
    Exceptions raised by ``items`` are re-raised in the consumer; abandoning the returned
    iterator stops the worker.
    """
    q: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: tuple[int, Any]) -> bool:
        while not stop.is_set():
            if idle is not None and q.qsize() >= _behind_at(idle, depth) and idle():
                continue
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for it in items:
                if not put((0, it)):
                    break
        except BaseException as e:  # handed to the consumer
            put((1, e))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None and stop.is_set():
                with contextlib.suppress(Exception):
                    close()
        put((2, None))

    worker = threading.Thread(target=work, name="vidsel-decode-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = q.get()
            if kind == 0:
                yield value
            elif kind == 1:
                raise value
            else:
                return
    finally:
        stop.set()
        worker.join()
