"""Parallel decode passes (``decode_pass(workers=...)``) and RGB converted ahead
(``ConvertAhead``): the same frames, motion vectors and pixels as a sequential pass."""

from __future__ import annotations

import hashlib
import logging
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vidsel.errors import InvalidArgumentError
from vidsel.io import ConvertAhead, PacketTable, decode_pass, packet_index, write_video
from vidsel.io._stream import _stretches, split_points
from vidsel.synth import make_video, render_frame

SIZE = (48, 64)


def _digest(_table, frames) -> tuple[str, int, list[int]]:
    """Everything a consumer can read of each frame: index, types, vectors, luma, RGB."""
    h = hashlib.sha256()
    ahead: list[int] = []
    n = 0
    for sf in frames:
        n += 1
        h.update(repr((sf.index, sf.pict_type, sf.key_frame, sf.coded_size)).encode())
        mvs = sf.motion_vectors
        if mvs is not None:  # field by field: the struct has padding bytes
            for name in mvs.dtype.names:
                h.update(np.ascontiguousarray(mvs[name]).tobytes())
        h.update(sf.luma(4).tobytes())
        if type(sf).__name__ == "AheadFrame":
            ahead.append(sf.index)
        h.update(sf.rgb(SIZE).tobytes())
    return h.hexdigest(), n, ahead


@pytest.fixture(scope="module")
def bframes_clip(tmp_path_factory) -> Path:
    """H.264 with 3 B-frames (b-pyramid: reference B-frames) and a keyframe every 24 frames."""
    path = tmp_path_factory.mktemp("par") / "pan_b3.mp4"
    make_video(path, scene="pan", num_frames=240, fps=24, width=192, height=112, gop=24,
               bframes=3, preset="veryfast")
    return path


def test_split_points_need_clean_keyframes():
    """A keyframe is a split point only when no picture crosses it in presentation order."""
    # presentation order 0..7; decode order: I0 P3 B1 B2 | I4 B... (closed), key at 4 clean
    def table(decode_order, keys):
        n = len(decode_order)
        return PacketTable(path="x.mp4", stream_index=0, codec="h264",
                           time_base=Fraction(1, 30), pts=np.arange(n),
                           timestamps_s=np.arange(n) / 30.0, size=np.ones(n, np.int64),
                           is_keyframe=np.isin(np.arange(n), keys),
                           decode_order=np.asarray(decode_order))

    closed = table([0, 3, 1, 2, 4, 7, 5, 6], [0, 4])  # frame i decoded at position order[i]
    assert split_points(closed).tolist() == [4]
    # open GOP: frame 3 (a B-frame) is decoded after keyframe 4, so 4 is no split point
    open_gop = table([0, 2, 1, 5, 3, 4, 6, 7], [0, 4])
    assert split_points(open_gop).tolist() == []
    unreliable = PacketTable(**{**closed.__dict__, "pts_reliable": False})
    assert split_points(unreliable).tolist() == []


def test_stretches_cut_only_h264_at_split_points(bframes_clip):
    index = packet_index(bframes_clip)
    spans = _stretches(index, 2)
    assert len(spans) > 1
    starts = [s[2] for s in spans]
    assert starts[0] == 0 and set(starts[1:]) <= set(split_points(index).tolist())
    assert _stretches(index, 1) == [(None, None, 0)]


@pytest.mark.parametrize("export_mvs", [True, False])
def test_parallel_pass_equals_sequential(bframes_clip, export_mvs):
    index = packet_index(bframes_clip)
    skip = index.skip_mode("reference")
    assert skip == "NONREF"  # reference B-frames are decoded: the hard case for a cut
    keep = index.pict_type != "B" if not export_mvs else None
    ref = decode_pass(index, _digest, skip=skip, export_mvs=export_mvs, keep=keep, threads=1)
    assert ref[1] > 100
    for workers in (2, 3, 4):
        got = decode_pass(index, _digest, skip=skip, export_mvs=export_mvs, keep=keep,
                          threads=1, prefetch=4, workers=workers)
        assert got[:2] == ref[:2], workers


def test_parallel_pass_is_used_and_stops_cleanly(bframes_clip):
    """The workers really run (frames arrive from decode threads) and an early stop of the
    consumer ends them."""
    index = packet_index(bframes_clip)
    before = threading.active_count()
    names: set[str] = set()

    def first_frames(_table, frames):
        out = []
        for sf in frames:
            names.update(t.name for t in threading.enumerate())
            out.append(sf.index)
            if len(out) == 30:
                break
        return out

    got = decode_pass(index, first_frames, export_mvs=True, workers=3, prefetch=2)
    assert got == list(range(30))
    # parallel workers are vidsel-decode-0, -1, -2 (a sequential pass has one
    # vidsel-decode-ahead); on a busy machine one may be done before the first frame is read
    workers = {n for n in names if n.startswith("vidsel-decode-") and n[-1].isdigit()}
    assert len(workers) >= 2, names
    assert threading.active_count() == before


def test_parallel_pass_on_damaged_data_equals_sequential(bframes_clip, tmp_path, caplog):
    """Damage in a later stretch: the parallel pass gives way to a sequential one (error
    concealment reads pictures across the cut), so the result is the sequential one."""
    data = bytearray(bframes_clip.read_bytes())
    for at in range(int(len(data) * 0.55), int(len(data) * 0.75), 997):
        data[at] ^= 0x5A
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    index = packet_index(path)
    skip = index.skip_mode("reference")
    ref = decode_pass(index, _digest, skip=skip, export_mvs=True, threads=1)
    with caplog.at_level(logging.INFO, logger="vidsel.io._stream"):
        got = decode_pass(index, _digest, skip=skip, export_mvs=True, workers=2, prefetch=4)
    assert got[:2] == ref[:2]
    assert any("decoding sequentially" in r.getMessage() for r in caplog.records)


def test_parallel_pass_on_open_gop_equals_sequential(tmp_path):
    """Open GOPs (leading B-frames refer across the keyframe): no cut there."""
    path = tmp_path / "open_gop.mp4"
    frames = (render_frame("pan", i, num_frames=120, width=128, height=96, box=24)
              for i in range(120))
    write_video(path, frames, fps=24, gop=24, bframes=3, preset="veryfast",
                options={"x264-params": "keyint=24:min-keyint=24:scenecut=0:bframes=3:"
                                        "open-gop=1"})
    index = packet_index(path)
    order = index.decode_order
    keys = np.flatnonzero(index.is_keyframe)[1:]
    leading = [int(k) for k in keys if np.any(order[:k] > order[k])]  # open-GOP keyframes
    assert leading
    assert not set(leading) & set(split_points(index).tolist())
    ref = decode_pass(index, _digest, export_mvs=True, threads=1)
    got = decode_pass(index, _digest, export_mvs=True, workers=2, prefetch=2)
    assert got[:2] == ref[:2]


def test_parallel_pass_on_real_clips(fixtures_dir):
    for name in ("clips/intelsamplevideos__bottle-detection.mp4",
                 "derived/car-detection_truncated_60pct_moovfront.mp4",
                 "clips/decord__flipping_a_pancake.mkv"):
        index = packet_index(fixtures_dir / name)
        assert len(_stretches(index, 2)) > 1, name
        skip = index.skip_mode("reference")
        ref = decode_pass(index, _digest, skip=skip, export_mvs=True, threads=1)
        got = decode_pass(index, _digest, skip=skip, export_mvs=True, workers=2, prefetch=4)
        assert got[:2] == ref[:2], name


@pytest.mark.parametrize("workers", [1, 3])
def test_convert_ahead_gives_the_same_pixels_on_the_snapped_frames(bframes_clip, workers):
    """Converted ahead: the first analysed frame at or after each target, same bytes."""
    index = packet_index(bframes_clip)
    analysed = index.pict_type != "B"
    targets = np.array([0, 5, 6, 7, 50, 51, 100, 239])
    ahead = ConvertAhead(size=SIZE, targets=targets, analysed=analysed)
    skip = index.skip_mode("reference")
    ref = decode_pass(index, _digest, skip=skip, export_mvs=True, threads=1)
    got = decode_pass(index, _digest, skip=skip, export_mvs=True, prefetch=3, workers=workers,
                      convert_ahead=ahead)
    assert got[:2] == ref[:2]
    frames = np.flatnonzero(analysed)
    want = sorted(set(frames[np.searchsorted(frames, t)].item() for t in targets
                      if t <= frames[-1]))
    if workers == 1:
        assert got[2] == want
    else:  # a target just before a cut may be converted on demand instead
        assert set(got[2]) <= set(want) and len(got[2]) >= len(want) - len(_stretches(index, 3))


def test_convert_ahead_other_size_converts_on_demand(bframes_clip):
    index = packet_index(bframes_clip)
    ahead = ConvertAhead(size=(32, 32), targets=np.arange(0, 240, 10))

    def both(_table, frames):
        out = []
        for sf in frames:
            if type(sf).__name__ == "AheadFrame":
                out.append((sf.rgb((32, 32)).tobytes(), sf.rgb(SIZE).shape,
                            sf.converter.rgb(sf._frame, (32, 32)).tobytes()))
        return out

    got = decode_pass(index, both, prefetch=2, convert_ahead=ahead)
    assert len(got) == 24
    assert all(a == c and s == (*SIZE, 3) for a, s, c in got)


def test_parallel_arguments_are_checked(bframes_clip):
    index = packet_index(bframes_clip)
    with pytest.raises(InvalidArgumentError):
        decode_pass(index, _digest, workers=0)
    with pytest.raises(InvalidArgumentError):
        decode_pass(index, _digest, convert_ahead=(SIZE, [0]))  # type: ignore[arg-type]


def test_a_conversion_is_done_once_by_whichever_thread_runs_it_first(bframes_clip):
    """The decode thread's idle conversions and the consumer's give the same bytes, once."""
    import av

    from vidsel.io._convert import FrameConverter
    from vidsel.io._frames import Conversion, IdleConversions

    with av.open(str(bframes_clip)) as container:
        frames = [f for _, f in zip(range(3), container.decode(video=0), strict=False)]
    consumer = FrameConverter.for_frame(frames[0])
    idle = IdleConversions(consumer.interpolation)
    assert not idle()  # nothing queued: no work
    done = [Conversion(f, SIZE, None) for f in frames]
    for c, f in zip(done, frames, strict=True):
        idle.add(c, f)
    assert idle() and done[0].rgb is not None and done[1].rgb is None  # one at a time
    first = done[0].rgb
    assert done[0].run(consumer) is first  # not converted again
    got = done[1].run(consumer)  # the consumer asks first: the idle thread skips it
    assert idle() and done[2].rgb is not None
    assert not idle()
    for c, f in zip(done, frames, strict=True):
        np.testing.assert_array_equal(c.rgb, consumer.rgb(f, SIZE))
    assert got is done[1].rgb
    dropped = Conversion(frames[0], SIZE, None)
    idle.add(dropped, frames[0])
    del dropped  # the consumer dropped its frame: nothing left to convert
    assert not idle()


def test_idle_conversions_start_at_the_consumers_batch(bframes_clip):
    """With ``ConvertAhead.batch`` the consumer counts as behind once one batch of pictures
    waits for it (``min(pictures, pixels // picture size)``); without, from IDLE_AHEAD."""
    import av

    from vidsel.io._ahead import IDLE_AHEAD
    from vidsel.io._frames import Conversion, IdleConversions

    with av.open(str(bframes_clip)) as container:
        frame = next(container.decode(video=0))
    area = frame.width * frame.height
    for batch, want in [(None, IDLE_AHEAD), ((32, 10**9), 32), ((32, 5 * area + 1), 5),
                        ((32, 1), 1)]:
        idle = IdleConversions("BILINEAR", batch)
        assert idle.ahead == IDLE_AHEAD  # until a picture is seen
        idle.add(Conversion(frame, SIZE, None), frame)
        assert idle.ahead == want, batch


@pytest.mark.parametrize("ahead,first_idle", [(None, 16), (4, 4)])
def test_a_decode_thread_turns_to_idle_work_at_the_consumers_batch(ahead, first_idle):
    """The decoding thread runs the consumer's pending work (``idle``) only once ``ahead``
    items wait for the consumer (IdleConversions.ahead, from ConvertAhead.batch), else once
    the queue is full: counted by the items produced before the first idle call."""
    import time

    from vidsel.io import decode_ahead

    produced = 0
    first: list[int] = []

    def items():
        nonlocal produced
        for k in range(40):
            produced += 1
            yield k

    class Idle:
        def __call__(self) -> bool:
            if not first:
                first.append(produced)
            return False  # no work: the thread goes on putting

    idle = Idle()
    if ahead is not None:
        idle.ahead = ahead  # type: ignore[attr-defined]
    it = decode_ahead(items(), depth=16, idle=idle)
    time.sleep(0.3)  # the consumer is busy: the thread fills the queue
    assert list(it) == list(range(40))
    assert first and first[0] == first_idle + 1, first  # the next item waits on the idle work


def test_codec_passes_follow_the_decode_workers_variable(monkeypatch):
    """VIDSEL_DECODE_WORKERS (set by ``vidsel batch`` workers) rules codec passes too."""
    from vidsel.io import DECODE_WORKERS_ENV, usable_cpus
    from vidsel.io._stream import MAX_AUTO_WORKERS, auto_workers

    monkeypatch.setenv(DECODE_WORKERS_ENV, "1")
    assert auto_workers() == 1
    monkeypatch.setenv(DECODE_WORKERS_ENV, "3")
    assert auto_workers() == 3
    monkeypatch.delenv(DECODE_WORKERS_ENV)
    assert auto_workers() == min(MAX_AUTO_WORKERS, usable_cpus())
