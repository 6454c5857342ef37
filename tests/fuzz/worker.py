"""The fuzz checks for one file, run in a worker subprocess (``python worker.py --serve``).

Every call a user makes on a video goes through the public API: ``VideoReader`` (open),
``metadata``, ``get_frames``, ``sample_uniform``, ``iter_frames``, ``packet_index`` and
``select_patches``. What passes (:func:`check_file`):

- only :class:`vidsel.VidselError` subclasses escape (anything else is a ``foreign`` failure
  with its traceback);
- counts and shapes are what was asked (``contract``): ``get_frames`` gives one (h, w, 3)
  uint8 frame per requested index at the requested size, ``sample_uniform(n)`` as many frames
  as ``uniform_indices(n)``, ``iter_frames`` covers every frame once (decoded or listed
  missing), ``select_patches`` spends exactly its budget;
- the same request gives the same pixels (``nondeterministic``): ``get_frames`` vs
  ``sample_uniform`` on one reader, single-frame vs batch requests on a fresh reader, three
  fresh readers, two identical ``select_patches`` calls.

Hangs and crashes are caught by the parent (:mod:`tests.fuzz.runner`): a timeout or a worker
that dies. Findings that are not part of the pass criteria (e.g. ``iter_frames`` pixels
differing from random access, absurd durations) are returned as ``notes``.

Serve protocol: one JSON object per line on stdin (``{"path": ...}``), one JSON result per line
on stdout. Run ``python tests/fuzz/worker.py FILE`` to check one file and print the result.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

SIZE = (32, 48)  # (h, w) asked of every frame request
UNIFORM = 5
BUDGET_FRAMES = 2
PATCH = dict(patch_size=14, merge=2, frame_size=56)  # 4 tokens per frame


class _Report:
    def __init__(self, path: str) -> None:
        self.path = path
        self.calls: dict[str, str] = {}
        self.failures: list[dict[str, str]] = []
        self.notes: list[str] = []

    def fail(self, check: str, kind: str, message: str, tb: str = "") -> None:
        self.failures.append({"check": check, "kind": kind, "message": message[:2000],
                              "traceback": tb[-6000:]})

    def call(self, name: str, fn: Callable[[], Any]) -> Any:
        """``fn()``; None after a VidselError (recorded) or a foreign exception (a failure)."""
        from vidsel import VidselError

        try:
            out = fn()
        except VidselError as e:
            self.calls[name] = type(e).__name__
            return None
        except Exception as e:
            self.calls[name] = f"FOREIGN {type(e).__module__}.{type(e).__name__}"
            self.fail(name, "foreign", f"{type(e).__module__}.{type(e).__name__}: {e}",
                      traceback.format_exc())
            return None
        self.calls.setdefault(name, "ok")
        return out

    def check(self, name: str, cond: bool, message: str,
              kind: str = "contract") -> bool:
        if not cond:
            self.fail(name, kind, message)
        return cond


def _frames_by_index(batch: Any) -> dict[int, np.ndarray]:
    return {int(i): f for i, f in zip(batch.indices, batch.frames)}


def _same(rep: _Report, name: str, a: Any, b: Any, what: str) -> None:
    """Two ``decode(..., on_missing="skip")`` batches of the same request must agree."""
    if a is None or b is None:
        return
    fa, fb = _frames_by_index(a), _frames_by_index(b)
    if set(a.missing) != set(b.missing):
        rep.fail(name, "nondeterministic",
                 f"{what}: missing frames differ: {sorted(a.missing)[:10]} vs "
                 f"{sorted(b.missing)[:10]}")
    diff = [i for i in sorted(set(fa) & set(fb)) if not np.array_equal(fa[i], fb[i])]
    if diff:
        i = diff[0]
        mad = float(np.abs(fa[i].astype(np.int16) - fb[i].astype(np.int16)).mean())
        rep.fail(name, "nondeterministic",
                 f"{what}: different pixels for frames {diff[:10]} (frame {i}: mean |diff| "
                 f"{mad:.2f})")


def _check_batch(rep: _Report, name: str, frames: Any, count: int) -> None:
    if frames is None:
        return
    want = (count, *SIZE, 3)
    rep.check(name, isinstance(frames, np.ndarray) and frames.dtype == np.uint8
              and tuple(frames.shape) == want,
              f"got {type(frames).__name__} {getattr(frames, 'dtype', '')} "
              f"{tuple(getattr(frames, 'shape', ()))}, asked {want} uint8")


def _reader_checks(rep: _Report, path: str) -> None:
    from vidsel import VideoReader

    r = rep.call("open", lambda: VideoReader(path))
    if r is None:
        return
    md = rep.call("metadata", lambda: r.metadata)
    if md is None:
        return
    n = int(md.num_frames)
    ts = np.asarray(md.timestamps_s)
    ok = rep.check("metadata", n >= 1 and len(ts) == n and md.width > 0 and md.height > 0,
                   f"num_frames={n}, {len(ts)} timestamps, {md.width}x{md.height}")
    ok = ok and rep.check("metadata", bool(np.all(np.isfinite(ts))) and np.isfinite(md.fps)
                          and np.isfinite(md.duration_s) and md.duration_s >= 0,
                          f"non-finite values: fps={md.fps} duration_s={md.duration_s}")
    if not ok:
        return
    if n > 1 and not np.all(np.diff(ts) > 0):
        rep.notes.append("metadata: timestamps not strictly increasing")
    if md.duration_s > 60 or (md.fps and md.fps < 1):
        rep.notes.append(f"metadata: duration_s={md.duration_s:.4g} fps={md.fps:.4g} "
                         f"(seed: about 1 s at 25 fps)")

    # get_frames: order kept, duplicates allowed
    req = [n - 1, 0, n // 2, n // 2]
    frames = rep.call("get_frames", lambda: r.get_frames(req, size=SIZE))
    _check_batch(rep, "get_frames", frames, len(req))
    uniq = sorted(set(req))
    batch = rep.call("get_frames", lambda: r.decode(uniq, size=SIZE, on_missing="skip"))
    if batch is not None:
        _check_batch(rep, "get_frames", batch.frames, len(uniq) - len(batch.missing))

    # sample_uniform vs get_frames on the same reader
    su = rep.call("sample_uniform", lambda: r.sample_uniform(UNIFORM, size=SIZE))
    want_idx = rep.call("sample_uniform", lambda: r.uniform_indices(UNIFORM))
    if su is not None and want_idx is not None:
        _check_batch(rep, "sample_uniform", su.frames, len(want_idx))
        rep.check("sample_uniform", list(map(int, su.indices)) == list(map(int, want_idx)),
                  f"indices {list(su.indices)} != uniform_indices {list(want_idx)}")
        again = rep.call("sample_uniform",
                         lambda: r.decode(su.indices, size=SIZE, on_missing="skip"))
        _same(rep, "sample_uniform", su, again, "sample_uniform vs get_frames, one reader")

    # iter_frames: every frame once, decoded or listed missing
    def run_iter() -> list[Any]:
        return list(r.iter_frames(size=SIZE, batch_size=8, on_missing="skip"))

    batches = rep.call("iter_frames", run_iter)
    if batches is not None:
        got = [int(i) for b in batches for i in b.indices]
        miss = {int(m) for b in batches for m in b.missing}
        rep.check("iter_frames", sorted(set(got) | miss) == list(range(n))
                  and len(got) == len(set(got)) and got == sorted(got),
                  f"{len(got)} frames + {len(miss)} missing do not cover 0..{n - 1} once, "
                  f"in order")
        for b in batches:
            _check_batch(rep, "iter_frames", b.frames, len(b.indices))
        if batch is not None:
            seq = {int(i): f for b in batches for i, f in zip(b.indices, b.frames)}
            bad = [i for i, f in _frames_by_index(batch).items()
                   if i in seq and not np.array_equal(seq[i], f)]
            if bad:
                rep.notes.append(f"iter_frames: sequential pixels differ from get_frames for "
                                 f"frames {bad}")

    # fresh readers: single-frame vs batch, and three identical readers
    def fresh(indices: list[int]) -> Any:
        with VideoReader(path) as f:
            return f.decode(indices, size=SIZE, on_missing="skip")

    if batch is not None:
        singles = [rep.call("fresh_single", lambda i=i: fresh([i])) for i in uniq]
        if all(s is not None for s in singles):
            merged = _Merged(singles)
            _same(rep, "fresh_single", batch, merged, "fresh single-frame vs batch")
    runs = [rep.call("fresh_readers", lambda: fresh(uniq)) for _ in range(3)]
    for k in (1, 2):
        _same(rep, "fresh_readers", runs[0], runs[k], f"fresh reader 1 vs {k + 1}")
    rep.call("close", r.close)


class _Merged:
    """Several one-frame batches seen as one (indices, frames, missing)."""

    def __init__(self, batches: list[Any]) -> None:
        self.indices = [i for b in batches for i in b.indices]
        self.frames = [f for b in batches for f in b.frames]
        self.missing = tuple(m for b in batches for m in b.missing)


def _codec_checks(rep: _Report, path: str) -> None:
    from vidsel.codec import packet_index, select_patches

    index = rep.call("packet_index", lambda: packet_index(path))
    if index is not None:
        rep.check("packet_index", index.num_frames >= 1
                  and len(index.pict_type) == index.num_frames,
                  f"num_frames={index.num_frames}, {len(index.pict_type)} picture types")

    def select(pixels: str) -> Any:
        return select_patches(path, budget_frames=BUDGET_FRAMES, pixels=pixels, **PATCH)

    a = rep.call("select_patches", lambda: select("decode"))
    if a is None:
        return
    m2 = a.config.merge ** 2
    tpf = a.config.tokens_per_frame
    budget = BUDGET_FRAMES * tpf
    want = budget * m2 if a.num_frames * tpf > budget else a.num_frames * tpf * m2
    rep.check("select_patches", len(a.positions) == want and a.pixels is not None
              and tuple(a.pixels.shape) == (want, 14, 14, 3),
              f"{len(a.positions)} patches (pixels "
              f"{None if a.pixels is None else a.pixels.shape}), asked {want}")
    b = rep.call("select_patches", lambda: select("decode"))
    if b is not None and not (np.array_equal(a.positions, b.positions)
                              and np.array_equal(a.pixels, b.pixels)):
        rep.fail("select_patches", "nondeterministic", "two identical calls differ")
    c = rep.call("select_patches_reader", lambda: select("reader"))
    if c is not None and not (np.array_equal(a.positions, c.positions)
                              and np.array_equal(a.pixels, c.pixels)):
        rep.notes.append("select_patches: pixels='reader' differs from pixels='decode'")


def check_file(path: str) -> dict[str, Any]:
    """Run every check on ``path``; a JSON-able report (see the module doc)."""
    import warnings

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    rep = _Report(path)
    for part in (_reader_checks, _codec_checks):
        try:
            part(rep, path)
        except Exception as e:  # a bug of the checks themselves, or an escape from a lambda
            rep.fail(part.__name__, "foreign", f"{type(e).__name__}: {e}",
                     traceback.format_exc())
    return {"path": path, "ok": not rep.failures, "failures": rep.failures,
            "notes": rep.notes, "calls": rep.calls,
            "elapsed_s": round(time.perf_counter() - t0, 3)}


def serve() -> None:
    """Answer ``{"path": ...}`` lines on stdin with JSON results on stdout."""
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the parent's hang report
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray writes to fd 1 (C libraries) must not corrupt the protocol
    sys.stdout = sys.stderr
    import logging

    logging.disable(logging.CRITICAL)
    try:
        import av

        av.logging.set_level(None)
    except Exception:  # pragma: no cover - older PyAV
        pass
    import vidsel.codec  # noqa: F401  (import once, before the first file)

    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        path = json.loads(line)["path"]
        out.write(json.dumps(check_file(path)) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        for p in sys.argv[1:]:
            json.dump(check_file(p), sys.stdout, indent=1)
            sys.stdout.write("\n")
