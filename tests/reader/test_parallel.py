"""Parallel stretch decoding (``VideoReader(workers=...)``): the same frames as one worker and
as a plain sequential decode, on every core codec, on damaged files and on real clips."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from vidsel import InvalidArgumentError, VideoReader, VidselError
from vidsel.io import _parallel, register_backend
from vidsel.io._parallel import default_workers, parallel_workers, usable_cpus
from vidsel.io._pyav import PyAVBackend
from vidsel.io._reader import BACKENDS
from vidsel.synth import decode_counter

from .test_damaged_files import DETERMINISM_CASES, _mutant

# many short GOPs, so that a request spans many independent stretches
CODECS = [
    (".mp4", "libx264", {"bframes": 3, "gop": 10}),
    (".mp4", "libx264", {"bframes": 0, "gop": 8}),
    (".mkv", "libx264", {"bframes": 2, "gop": 12}),
    (".mp4", "libx265", {"bframes": 3, "gop": 10}),
    (".avi", "mpeg4", {"bframes": 2, "gop": 10}),
    (".webm", "libvpx-vp9", {"gop": 10}),
]


@pytest.fixture(autouse=True)
def small_stretches_in_parallel(monkeypatch):
    """The test videos are small: let their stretches run in parallel too (by default only
    stretches worth ~30 ms of decoding do)."""
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_PIXELS", 0)


def _sequential(path: str, wanted: set[int]) -> dict[int, np.ndarray]:
    out = {}
    with av.open(path) as c:
        for i, f in enumerate(c.decode(c.streams.video[0])):
            if i in wanted:
                out[i] = f.to_ndarray(format="rgb24")
    return out


def _digests(batch) -> dict[int, str]:
    return {int(i): hashlib.md5(f.tobytes()).hexdigest()
            for i, f in zip(batch.indices, batch.frames)}


@pytest.mark.parametrize("suffix,codec,extra", CODECS, ids=[f"{c}{s}-{e}" for s, c, e in CODECS])
def test_workers_give_the_frames_of_a_sequential_decode(make_synth, suffix, codec, extra):
    info = make_synth(suffix, scene="counter", codec=codec, num_frames=80, **extra)
    rng = np.random.default_rng(3)
    idx = np.concatenate([rng.integers(0, 80, 25), [79, 0, 41, 41, -1]])
    ref = _sequential(info.path, {int(i) % 80 for i in idx})
    for workers in (1, 2, 4, 7):
        with VideoReader(info.path, workers=workers) as r:
            frames = r.get_frames(idx)
            assert r._backend.workers == workers
        for k, i in enumerate(idx):
            i = int(i) % 80
            assert np.array_equal(frames[k], ref[i]), f"workers={workers}: frame {i} differs"
            assert decode_counter(frames[k]) == i


def _read_until_cloned(r: VideoReader, read, clones: int, tries: int = 10):
    """``read(r)`` until the reader holds ``clones`` extra decoders, every result the same.

    A pool worker that has not started when the other workers run out of stretches has its
    stretch taken from it, and then makes no clone: on a loaded machine one read may open
    none. Returns the first result."""
    first = read(r)
    for _ in range(tries):
        if len(r._backend._clones) == clones:
            return first
        again = read(r)
        if hasattr(first, "indices"):  # a FrameBatch
            assert _digests(again) == _digests(first)
        else:
            assert np.array_equal(again, first)
    raise AssertionError(f"{len(r._backend._clones)} clones after {tries + 1} reads, "
                         f"expected {clones}")


def test_parallel_plan_is_used_and_clones_are_closed(make_synth):
    info = make_synth(scene="counter", num_frames=80, gop=10, bframes=2)
    with VideoReader(info.path, workers=3) as r:
        # 8 balanced stretches on 3 workers: two extra decoders
        a = _read_until_cloned(r, lambda r: r.decode(r.uniform_indices(16), size=64), 2)
        clones = list(r._backend._clones)
        b = r.decode(r.uniform_indices(16), size=64)  # reused, not reopened
        assert r._backend._clones == clones
    assert _digests(a) == _digests(b)
    assert r.closed
    for clone in clones:
        assert clone._closed
    with VideoReader(info.path, workers=1) as r:
        assert _digests(r.decode(r.uniform_indices(16), size=64)) == _digests(a)
        assert r._backend._clones == []


def test_small_stretches_stay_serial(make_synth, monkeypatch):
    monkeypatch.setattr(_parallel, "MIN_PARALLEL_PIXELS", 8_000_000)
    assert parallel_workers([10] * 8, 4, 768 * 432) == 1  # short GOPs of small pictures
    assert parallel_workers([200] * 8, 4, 1280 * 720) == 4
    info = make_synth(scene="counter", num_frames=80, gop=10, bframes=2)
    with VideoReader(info.path, workers=3) as r:
        r.decode(r.uniform_indices(16))
        assert r._backend._clones == []


def test_unbalanced_plans_stay_serial():
    assert parallel_workers([240, 40], 2) == 1  # the long stretch would run alone
    assert parallel_workers([100, 100], 2) == 2
    assert parallel_workers([240] * 7 + [50], 2) == 2
    assert parallel_workers([10] * 30, 4) == 4
    assert parallel_workers([10, 10], 8) == 2  # at most one worker per stretch
    assert parallel_workers([300], 4) == 1
    assert parallel_workers([], 4) == 1


def test_single_core_decoders_need_only_a_saving():
    """A decoder without threads (VP6, FLV1) gains from any schedule on two workers once it
    saves MIN_SAVED_PIXELS: balance does not matter, one core is all it uses alone."""
    vp6 = 112 * 80
    assert parallel_workers([58, 58, 58], 2, vp6, threaded=False) == 2
    assert parallel_workers([58, 58, 58], 2, vp6) == 1  # threaded: unbalanced, too small
    assert parallel_workers([240, 40], 2, 1280 * 720, threaded=False) == 2
    assert parallel_workers([5, 5], 2, vp6, threaded=False) == 1  # 45k pixels saved: not worth it
    assert parallel_workers([300], 4, 1280 * 720, threaded=False) == 1


def test_single_core_decoder_decodes_stretches_in_parallel(make_synth, monkeypatch):
    """FLV1 (Sorenson) has no decoder threads: its stretches go to clones made on the worker
    threads, and the frames are those of a sequential decode."""
    monkeypatch.setattr(_parallel, "MIN_SAVED_PIXELS", 0)
    info = make_synth(".flv", scene="counter", codec="flv", num_frames=90, gop=30, bframes=0)
    idx = np.array([0, 10, 29, 30, 45, 59, 60, 89, 75])
    ref = _sequential(info.path, set(idx.tolist()))
    with VideoReader(info.path, workers=2) as r:
        assert r.metadata.codec == "flv"
        frames = _read_until_cloned(r, lambda r: r.get_frames(idx), 1)  # the second worker's
        again = r.get_frames(idx)
        assert len(r._backend._clones) == 1  # kept
    for k, i in enumerate(idx):
        assert np.array_equal(frames[k], ref[int(i)]), f"frame {i} differs"
        assert np.array_equal(again[k], frames[k])
    with VideoReader(info.path, workers=1) as r:
        assert np.array_equal(r.get_frames(idx), frames)
        assert r._backend._clones == []


def test_a_clone_that_cannot_open_fails_cleanly(make_synth, tmp_path):
    """The second worker opens its file on its own thread: an error there (the file is gone
    since the reader opened it) reaches the caller as a VidselError and the reader stays
    usable with one worker (its own demuxer still reads the open file)."""
    info = make_synth(scene="counter", num_frames=80, gop=10, bframes=2)
    path = tmp_path / "soon_gone.mp4"
    path.write_bytes(Path(info.path).read_bytes())
    with VideoReader(path, workers=2) as r:
        path.unlink()
        with pytest.raises(VidselError, match="no such file"):
            r.get_frames(r.uniform_indices(16))
        assert r._backend._clones == []
        r._backend.workers = 1
        assert [decode_counter(f) for f in r.get_frames([3, 41])] == [3, 41]


def test_one_keyframe_video_decodes_in_one_stretch(make_synth):
    info = make_synth(scene="counter", num_frames=60, gop=300, bframes=2)
    with VideoReader(info.path, workers=4) as r:
        frames = r.get_frames([5, 30, 59])
        assert r._backend._clones == []
    assert [decode_counter(f) for f in frames] == [5, 30, 59]


@pytest.mark.parametrize(("suffix", "codec", "how", "seed"), DETERMINISM_CASES,
                         ids=[f"{c[2]}{c[3]}{c[0]}" for c in DETERMINISM_CASES])
def test_damaged_files_same_pixels_and_missing_with_any_workers(tmp_path, make_synth, suffix,
                                                                codec, how, seed):
    path = _mutant(tmp_path, make_synth, suffix, codec, how, seed)
    results = []
    for workers in (1, 3):
        try:
            r = VideoReader(path, workers=workers)
        except VidselError:
            pytest.skip("this damage makes the file unreadable in this FFmpeg build")
        with r:
            batch = r.decode(np.arange(0, len(r), 2), on_missing="skip")
        results.append((_digests(batch), batch.missing))
    assert results[0] == results[1]


def test_real_clips_agree_across_workers(fixtures_dir: Path):
    clips = ["clips/intelsamplevideos__one-by-one-person-detection.mp4",  # 140 short GOPs
             "clips/moviepy__1.mp4", "derived/concat_multiscene_480x270_hevc_main.mp4",
             "edge/androidxmedia__sample.avi", "edge/decord__corrupted.mp4"]
    for name in clips:
        path = fixtures_dir / name
        out = []
        for workers in (1, 2, 4):
            with VideoReader(path, workers=workers) as r:
                out.append(_digests(r.decode(r.uniform_indices(40), on_missing="skip")))
        assert out[0] == out[1] == out[2], name
        assert out[0], name


def test_vp6_clip_decodes_its_gops_in_parallel(fixtures_dir: Path):
    """The 112x80 VP6 FLV (three GOPs, a decoder without threads) with the shipped thresholds:
    two workers, a clone, and the frames of one worker and of a plain sequential decode."""
    path = str(fixtures_dir / "clips/moviepy__clip1024.flv")
    idx = np.linspace(0, 173, 8).round().astype(int)
    ref = _sequential(path, set(idx.tolist()))
    with VideoReader(path, workers=2) as r:
        par = _read_until_cloned(r, lambda r: r.get_frames(idx), 1)
    with VideoReader(path, workers=1) as r:
        assert np.array_equal(r.get_frames(idx), par)
    for k, i in enumerate(idx):
        assert np.array_equal(par[k], ref[int(i)]), f"frame {i} differs"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_workers_validated(make_synth, bad):
    info = make_synth(scene="counter", num_frames=10)
    with pytest.raises(InvalidArgumentError, match="workers"):
        VideoReader(info.path, workers=bad)


def test_default_workers_follow_the_usable_cpus(make_synth):
    assert default_workers() == min(usable_cpus(), 16) >= 1
    info = make_synth(scene="counter", num_frames=10)
    with VideoReader(info.path) as r:
        assert r._backend.workers == default_workers()


def test_backend_factory_without_workers_still_works(make_synth):
    info = make_synth(scene="counter", num_frames=20, gop=5)
    seen = {}

    def old_style(path, *, stream, threads, interpolation):  # a factory from before `workers`
        seen["called"] = True
        return PyAVBackend(path, stream=stream, threads=threads, interpolation=interpolation)

    register_backend("old-style-test", old_style)
    try:
        with VideoReader(info.path, backend="old-style-test", workers=3) as r:
            frames = r.get_frames([3, 17])
    finally:
        BACKENDS.unregister("old-style-test")
    assert seen["called"]
    assert [decode_counter(f) for f in frames] == [3, 17]


def test_backend_factory_that_is_an_unhashable_object(make_synth):
    """Factories' signatures are cached; a callable object that cannot be hashed is read
    each time instead of failing."""
    info = make_synth(scene="counter", num_frames=20, gop=10, bframes=0)

    class Factory:
        __hash__ = None  # type: ignore[assignment]

        def __eq__(self, other):
            return isinstance(other, Factory)

        def __call__(self, path, *, stream, threads, interpolation, workers=None):
            return PyAVBackend(path, stream=stream, threads=threads,
                               interpolation=interpolation, workers=workers)

    register_backend("unhashable-test", Factory())
    try:
        with VideoReader(info.path, backend="unhashable-test", workers=2) as r:
            assert [decode_counter(f) for f in r.get_frames([3, 17])] == [3, 17]
    finally:
        BACKENDS.unregister("unhashable-test")


# -- the scheduler on its own (plain objects as backends) ------------------------------------
def _pool_threads() -> set[int]:
    return {t.ident for t in threading.enumerate() if t.name.startswith("vidsel-decode_")}


def test_decode_parallel_runs_each_backend_on_one_thread_and_keeps_the_order():
    busy: dict[str, int] = {}
    lock = threading.Lock()

    def run(backend, key, group):
        with lock:
            assert busy.get(backend, 0) == 0, "a backend used by two threads at once"
            busy[backend] = 1
        time.sleep(0.002 * len(group))
        with lock:
            busy[backend] = 0
        return [key, *group]

    groups = [(k, list(range(k, k + n))) for k, n in [(0, 3), (10, 7), (20, 1), (30, 5)]]
    made: list[str] = []
    spawned = iter(["clone1", "clone2"])
    out = list(_parallel.decode_parallel(["self"], groups, run, workers=3,
                                         spawn=lambda: next(spawned), spawned=made))
    assert out == [[k, *g] for k, g in groups]
    assert sorted(made) == ["clone1", "clone2"]  # one per extra worker, made on its thread


def test_decode_parallel_makes_no_more_workers_than_groups():
    made: list[str] = []
    out = list(_parallel.decode_parallel(["self"], [(0, [1])], lambda b, k, g: g, workers=8,
                                         spawn=lambda: "clone", spawned=made))
    assert out == [[1]] and made == []


class _Counting:
    """A stretch runner that counts the stretches running at the moment (raises at ``fail``)."""

    def __init__(self, fail: int | None = None) -> None:
        self.running, self.fail, self.lock = 0, fail, threading.Lock()

    def __call__(self, backend, key, group):
        with self.lock:
            self.running += 1
        try:
            if key == self.fail:
                raise RuntimeError(f"stretch {key} failed")
            time.sleep(0.004)
            return group
        finally:
            with self.lock:
                self.running -= 1


def test_decode_parallel_hands_errors_over_and_leaves_no_backend_in_use():
    run = _Counting(fail=1)
    with pytest.raises(RuntimeError, match="stretch 1 failed"):
        for _ in _parallel.decode_parallel(["a", "b"], [(k, [k]) for k in range(12)], run):
            pass
    assert run.running == 0  # every stretch begun had ended when the error reached the caller


def test_decode_parallel_stops_a_worker_on_keyboard_interrupt():
    """Ctrl-C in the calling thread's share is not held back until its stretches are done."""
    ran = []

    def run(backend, key, group):
        ran.append(key)
        if backend == "self":
            raise KeyboardInterrupt
        time.sleep(0.005)
        return group

    groups = [(k, [k]) for k in range(30)]
    with pytest.raises(KeyboardInterrupt):
        list(_parallel.decode_parallel(["self", "other"], groups, run))
    assert ran.count(0) == 1 and len(ran) < len(groups)


def test_decode_parallel_spawn_failure_reaches_the_caller():
    """A worker whose backend cannot be made fails the group it took; the caller gets the
    error when it reaches that group."""
    def spawn():
        raise OSError("cannot open")

    def run(backend, key, group):
        time.sleep(0.02)  # the other worker takes a group meanwhile
        return group

    groups = [(k, [k]) for k in range(6)]
    with pytest.raises(OSError, match="cannot open"):
        list(_parallel.decode_parallel(["self"], groups, run, workers=2, spawn=spawn,
                                       spawned=[]))


def test_parallel_reads_reuse_the_pool_threads(make_synth, monkeypatch):
    """Decode threads are kept between requests and readers (a new thread's first stretch
    started up to 3.6 ms late): the pool and its threads outlive each read."""
    monkeypatch.setattr(_parallel, "MIN_SAVED_PIXELS", 0)
    monkeypatch.setattr(_parallel, "_pool", None)  # a pool of this test's own
    info = make_synth(".flv", scene="counter", codec="flv", num_frames=60, gop=20, bframes=0)
    idx = [5, 25, 45, 59]
    with VideoReader(info.path, workers=2) as r:
        first = r.get_frames(idx)
    pool = _parallel._pool
    assert pool is not None, "the parallel plan was not used"
    try:
        kept = set(pool._threads)  # the standard library's record of the pool's threads
        assert kept
        for _ in range(3):
            with VideoReader(info.path, workers=2) as r:
                assert np.array_equal(r.get_frames(idx), first)
            assert _parallel._pool is pool
        assert all(t.is_alive() for t in kept)  # not joined at the end of a read
    finally:
        pool.shutdown(wait=True)


def test_decode_parallel_does_not_wait_for_a_busy_pool(monkeypatch):
    """Stretches given to pool workers that cannot start (every pool thread busy) are taken
    by the caller: the call ends without waiting for a thread."""
    monkeypatch.setattr(_parallel, "POOL_THREADS", 1)
    monkeypatch.setattr(_parallel, "_pool", None)
    pool = _parallel.decode_pool()
    release = threading.Event()
    pool.submit(release.wait, 30)  # the pool's only thread is busy
    try:
        threads = []

        def run(backend, key, group):
            threads.append(threading.get_ident())
            return group

        groups = [(k, [k]) for k in range(6)]
        t = time.perf_counter()
        out = list(_parallel.decode_parallel(["a", "b", "c"], groups, run))
        assert out == [[k] for k in range(6)]
        assert time.perf_counter() - t < 5
        assert set(threads) == {threading.get_ident()}
    finally:
        release.set()
        pool.shutdown(wait=True)


def test_decode_parallel_leaves_out_the_groups_after_a_failure():
    started = []

    def run(backend, key, group):
        started.append(key)
        time.sleep(0.005)
        if key == 2:
            raise RuntimeError("stretch 2 failed")
        return group

    groups = [(k, [k]) for k in range(30)]
    with pytest.raises(RuntimeError, match="stretch 2 failed"):
        list(_parallel.decode_parallel(["a", "b"], groups, run))
    assert {0, 1, 2} <= set(started) and len(started) < 10


def test_decode_parallel_closed_early_leaves_no_backend_in_use():
    run = _Counting()
    it = _parallel.decode_parallel(["a", "b", "c"], [(k, [k]) for k in range(12)], run)
    assert next(it) == [0]
    it.close()
    assert run.running == 0


def test_decode_parallel_needs_a_backend():
    with pytest.raises(InvalidArgumentError, match="no backend"):
        list(_parallel.decode_parallel([], [(0, [0])], lambda b, k, g: g))


def _child_read(path: str, idx: list[int], q) -> None:  # runs in a forked child
    with VideoReader(path, workers=2) as r:
        q.put((hashlib.md5(r.get_frames(idx).tobytes()).hexdigest(), bool(_pool_threads())))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_decodes_in_parallel(make_synth, monkeypatch):
    """The parent's pool threads do not exist in a forked child (a user's fork-based
    multiprocessing pool): the child makes its own pool instead of queueing work for threads
    that are gone (the caller would then decode every stretch itself)."""
    monkeypatch.setattr(_parallel, "MIN_SAVED_PIXELS", 0)
    info = make_synth(".flv", scene="counter", codec="flv", num_frames=60, gop=20, bframes=0)
    idx = [5, 25, 45, 59]
    with VideoReader(info.path, workers=2) as r:
        want = hashlib.md5(r.get_frames(idx).tobytes()).hexdigest()
    assert _pool_threads()
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    child = ctx.Process(target=_child_read, args=(info.path, idx, q))
    child.start()
    try:
        assert q.get(timeout=60) == (want, True)  # a pool of its own, with live threads
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
