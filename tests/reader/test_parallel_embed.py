"""Decoding overlapped with embedding (``embed_candidates`` / ``select_frames``) and the decode
workers of batch worker processes: same results bit for bit, errors surface, threads end."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from vidsel import FrameIndexError, VideoReader
from vidsel.embed import HFEmbedder
from vidsel.io._parallel import DECODE_WORKERS_ENV, default_workers, usable_cpus
from vidsel.runs import ProcessExecutor
from vidsel.selection import _candidates, select_frames
from vidsel.selection._candidates import embed_candidates
from vidsel.synth import make_video

CHUNK = _candidates._DECODE_CHUNK


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("overlap") / "counter.mp4"
    make_video(path, scene="counter", num_frames=3 * CHUNK + 20, fps=30, width=160,
               height=120, gop=20)
    return str(path)


@pytest.fixture(scope="module")
def embedder(tiny_siglip_dir) -> HFEmbedder:
    return HFEmbedder.from_pretrained(str(tiny_siglip_dir))


def _plain_loop(path: str, cand: np.ndarray, emb: HFEmbedder, size: int) -> np.ndarray:
    """The reference: decode a chunk, embed it, then the next (no overlap)."""
    out = []
    with VideoReader(path) as r:
        for start in range(0, len(cand), CHUNK):
            batch = r.decode(cand[start:start + CHUNK], size=size, on_missing="skip")
            out.append(emb.embed_images(batch.frames, progress=False))
    return np.concatenate(out)


def _decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vidsel-decode-ahead"]


def test_overlapped_embeddings_equal_a_plain_loop(long_video, embedder):
    with VideoReader(long_video) as r:
        cand = np.arange(len(r))
        e, idx, ts, t_dec, t_emb = embed_candidates(r, cand, embedder, size=64, mode="exact")
        assert np.array_equal(ts, r.metadata.timestamps_s)
    assert len(cand) > 3 * CHUNK  # several chunks: the producer thread ran
    assert np.array_equal(idx, cand)
    assert np.array_equal(e, _plain_loop(long_video, cand, embedder, 64))
    assert t_dec > 0 and t_emb > 0
    assert _decode_threads() == []


class _Rendezvous(HFEmbedder):
    """Embeds for real; on its first call it waits until the reader has started decoding the
    next chunk (which only a decode running ahead, in another thread, can do)."""

    decoding: threading.Event
    calls: int

    def embed_images(self, frames, **kw):
        self.calls += 1
        if self.calls == 1:
            self.saw_next_decode = self.decoding.wait(timeout=60)
        return super().embed_images(frames, **kw)


class _SignallingReader(VideoReader):
    """A real reader that signals when its second decode call starts, and in which thread."""

    def __init__(self, *a, event: threading.Event, **kw):
        super().__init__(*a, **kw)
        self.event, self.calls, self.threads = event, 0, set()

    def decode(self, *a, **kw):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if self.calls == 2:
            self.event.set()
        return super().decode(*a, **kw)


def test_next_chunk_decodes_while_the_current_one_embeds(long_video, tiny_siglip_dir):
    event = threading.Event()
    emb = _Rendezvous.from_pretrained(str(tiny_siglip_dir))
    emb.decoding, emb.calls = event, 0
    with _SignallingReader(long_video, event=event) as r:
        e, *_ = embed_candidates(r, np.arange(2 * CHUNK + 5), emb, size=64, mode="exact")
        assert r.threads == {"vidsel-decode-ahead"}
    assert emb.saw_next_decode
    assert len(e) == 2 * CHUNK + 5


def test_a_decode_error_in_the_producer_reaches_the_caller(long_video, embedder):
    with VideoReader(long_video) as r:
        cand = np.concatenate([np.arange(2 * CHUNK), [10 ** 6]])  # the third chunk is invalid
        with pytest.raises(FrameIndexError):
            embed_candidates(r, cand, embedder, size=64, mode="exact")
        assert _decode_threads() == []
        assert len(r.get_frames([1, 2])) == 2  # the reader is still usable


class _FailsOnSecondChunk(HFEmbedder):
    calls = 0

    def embed_images(self, frames, **kw):
        type(self).calls += 1
        if type(self).calls == 2:
            raise RuntimeError("embedder failed")
        return super().embed_images(frames, **kw)


def test_an_embedder_error_stops_the_producer(long_video, tiny_siglip_dir):
    emb = _FailsOnSecondChunk.from_pretrained(str(tiny_siglip_dir))
    with VideoReader(long_video) as r:
        with pytest.raises(RuntimeError, match="embedder failed"):
            embed_candidates(r, np.arange(len(r)), emb, size=64, mode="exact")
        assert _decode_threads() == []
        assert len(r.get_frames([0, len(r) - 1])) == 2


def test_select_frames_same_result_with_and_without_overlap(long_video, embedder, monkeypatch):
    runs = []
    for ahead in (1, 0):
        monkeypatch.setattr(_candidates, "_DECODE_AHEAD", ahead)
        sel = select_frames(long_video, "a red box", k=6, embedder=embedder, candidates="all")
        runs.append(sel)
    a, b = runs
    assert a.indices.tolist() == b.indices.tolist()
    np.testing.assert_array_equal(a.scores, b.scores)
    np.testing.assert_array_equal(a.timestamps_s, b.timestamps_s)


def test_decode_workers_from_the_environment(monkeypatch):
    monkeypatch.setenv(DECODE_WORKERS_ENV, "3")
    assert default_workers() == 3
    monkeypatch.setenv(DECODE_WORKERS_ENV, "zero")
    assert default_workers() == min(usable_cpus(), 16)
    monkeypatch.setenv(DECODE_WORKERS_ENV, "0")
    assert default_workers() == min(usable_cpus(), 16)


def test_batch_worker_processes_share_the_cpus_among_decoders(monkeypatch):
    monkeypatch.delenv(DECODE_WORKERS_ENV, raising=False)
    with ProcessExecutor(workers=2) as ex:  # os.getenv runs in the spawned workers
        out = [res for _, res in ex.map_unordered(os.getenv, [DECODE_WORKERS_ENV] * 2)]
    assert out == [str(max(1, usable_cpus() // 2))] * 2
    assert os.environ.get(DECODE_WORKERS_ENV) is None  # the parent's own readers keep theirs
