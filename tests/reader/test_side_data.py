"""Motion vectors read without keeping the decoded picture alive (``vidsel.io._sidedata``).

PyAV's side-data container refers back to its frame: read naively, every picture of a
motion-vector pass waits for the cyclic garbage collector, and the decoder allocates new
picture buffers meanwhile. These tests pin the vectors to PyAV's own export and check that
the pictures of a whole pass go away by reference counting alone.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.conftest import skip_or_fail
from vidsel.io import MV_DTYPE, decode_pass, packet_index
from vidsel.io._display import frame_display_transform
from vidsel.io._sidedata import clear_side_data, frame_motion_vectors


@pytest.fixture(scope="module")
def mv_clip(make_synth) -> Path:
    return Path(make_synth(scene="pan", num_frames=60, fps=24, width=160, height=96, gop=30,
                           bframes=2).path)


def _frames(path: Path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.options = {"flags2": "+export_mvs"}
        yield from c.decode(s)


def test_vectors_equal_pyav_export(mv_clip):
    """Every picture: the same rows as ``side_data["MOTION_VECTORS"].to_ndarray()``, field by
    field, in vidsel's dtype (40-byte rows with the C struct's padding)."""
    assert MV_DTYPE.itemsize == 40
    seen = 0
    with av.open(str(mv_clip)) as c:
        s = c.streams.video[0]
        s.codec_context.options = {"flags2": "+export_mvs"}
        for frame in c.decode(s):
            sd = frame.side_data.get("MOTION_VECTORS")
            want = None if sd is None else sd.to_ndarray().copy()
            del sd
            frame2 = frame  # the same frame, read through the helper (container cached)
            got = frame_motion_vectors(frame2)
            if want is None:
                assert got is None
                continue
            seen += 1
            assert got is not None and got.dtype == MV_DTYPE and len(got) == len(want)
            for name in MV_DTYPE.names:
                np.testing.assert_array_equal(got[name], want[name])
    assert seen > 10


def test_pictures_freed_without_the_collector(mv_clip):
    """With the cyclic collector off, a whole motion-vector pass leaves no picture behind for
    it to find (each is freed when the pass drops it); reading ``frame.side_data`` naively
    leaves every picture in a cycle (the problem the helper solves)."""

    def read_all(read) -> Callable[[], None]:
        def run() -> None:
            for frame in _frames(mv_clip):
                read(frame)
        return run

    assert _left_for_collector(read_all(frame_motion_vectors))[1] == 0
    # the check sees the cycle where there is one (PyAV <= 18 at least)
    naive = _left_for_collector(read_all(lambda f: f.side_data.get("MOTION_VECTORS")))[1]
    assert naive > 10 or tuple(int(v) for v in av.__version__.split(".")[:1]) > (18,), (
        f"PyAV {av.__version__}: no frame left in a cycle by a naive read")

    # and the real pass: every StreamFrame's picture goes with it
    n, left = _left_for_collector(lambda: decode_pass(
        packet_index(mv_clip), lambda _t, frames: sum(sf.motion_vectors is not None
                                                      for sf in frames),
        export_mvs=True, prefetch=4, workers=1))
    assert n > 10 and left == 0


def _left_for_collector(run: Callable[[], Any]) -> tuple[Any, int]:
    """``run()`` with the cyclic collector off: (its result, the decoded pictures it left for
    the collector)."""
    gc.collect()
    gc.disable()
    try:
        out = run()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return out, sum(isinstance(o, av.VideoFrame) for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_cleared_frame_reads_as_unrotated(mv_clip):
    """A cleared container (no display matrix: the only ones cleared) reads as the identity
    display transform; the vectors stay readable after the clear."""
    frame = next(f for f in _frames(mv_clip) if f.side_data.get("MOTION_VECTORS") is not None)
    want = frame_display_transform(frame)
    mvs = frame_motion_vectors(frame)
    assert mvs is not None and len(mvs) and int(mvs["w"].max()) > 0
    assert frame_display_transform(frame) == want == (0, False, "")
    assert clear_side_data(frame.side_data) is True  # clearing twice is harmless


def test_rotated_frames_keep_their_matrix(fixtures_dir):
    """A picture with a display matrix keeps its side data: the converter made from it after
    the vectors were read still rotates."""
    path = fixtures_dir / "edge/torchcodec__nasa_13013_rotated.mp4"
    if not path.is_file():
        skip_or_fail("shared fixture edge/torchcodec__nasa_13013_rotated.mp4 is not available")
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.codec_context.options = {"flags2": "+export_mvs"}
        frame = next(iter(c.decode(s)))
        want = frame_display_transform(frame)
        frame_motion_vectors(frame)
        assert want[0] != 0
        assert frame_display_transform(frame) == want
