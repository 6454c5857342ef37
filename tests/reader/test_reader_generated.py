"""VideoReader on videos generated in-process: exactness, modes, sizes, rotation, VFR."""

from __future__ import annotations

import av
import numpy as np
import pytest

from vidsel import FrameIndexError, InvalidArgumentError, VideoReader
from vidsel.io import apply_display_op, output_size, packet_table
from vidsel.synth import decode_counter

# (suffix, codec, extra encoder args): the codecs the core suite must handle.
CODECS = [
    (".mp4", "libx264", {"bframes": 3, "gop": 25}),
    (".mp4", "libx264", {"bframes": 0, "gop": 60}),
    (".mkv", "libx264", {"bframes": 2, "gop": 12}),
    (".mp4", "libx265", {"bframes": 3, "gop": 30}),
    (".avi", "mpeg4", {"bframes": 2, "gop": 20}),
    (".webm", "libvpx-vp9", {"gop": 30}),
]


def full_decode(path: str) -> list[np.ndarray]:
    """Reference: a plain sequential PyAV decode of every frame, RGB, in output order."""
    out = []
    with av.open(path) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            out.append(f.to_ndarray(format="rgb24"))
    return out


@pytest.mark.parametrize("suffix,codec,extra", CODECS, ids=[f"{c}{s}-{e}" for s, c, e in CODECS])
def test_random_access_equals_sequential_decode(make_synth, suffix, codec, extra):
    info = make_synth(suffix, scene="counter", codec=codec, num_frames=90, **extra)
    ref = full_decode(info.path)
    with VideoReader(info.path) as r:
        md = r.metadata
        assert md.num_frames == 90 == len(ref)
        rng = np.random.default_rng(1)
        idx = np.concatenate([rng.integers(0, 90, 20), [89, 0, 45, 45, -1]])
        frames = r.get_frames(idx)
    assert frames.shape == (len(idx), 240, 320, 3) and frames.dtype == np.uint8
    for k, i in enumerate(idx):
        assert np.array_equal(frames[k], ref[i]), f"frame {i} differs"
        # and it is the right picture, not merely a consistent one
        assert decode_counter(frames[k]) == (i % 90)


def test_metadata_from_packets(make_synth):
    info = make_synth(scene="moving_box", num_frames=75, fps=25, gop=25, bframes=2)
    with VideoReader(info.path) as r:
        md = r.metadata
    assert md.num_frames == 75
    assert md.fps == pytest.approx(25.0)
    assert md.duration_s == pytest.approx(3.0)
    assert md.start_time_s == pytest.approx(0.0)
    assert md.codec == "h264" and md.pix_fmt == "yuv420p"
    assert (md.width, md.height, md.rotation) == (320, 240, 0)
    assert list(md.keyframe_indices) == [0, 25, 50]
    np.testing.assert_allclose(md.timestamps_s, np.arange(75) / 25.0)
    assert md.to_dict()["num_frames"] == 75
    assert "75" in repr(md) and "timestamps" not in repr(md)


def test_vfr_timestamps(make_synth):
    info = make_synth(scene="counter", num_frames=40, fps=20, vfr=True)
    with VideoReader(info.path) as r:
        md = r.metadata
        np.testing.assert_allclose(md.timestamps_s, info.timestamps_s, atol=1e-6)
        assert md.variable_frame_rate
        # the frame displayed at t is the last frame whose timestamp is <= t
        t = np.array(info.timestamps_s[7]) + 1e-3
        batch = r.get_frames_at([t, info.timestamps_s[20]])
        assert list(batch.indices) == [7, 20]
        assert decode_counter(batch.frames[0]) == 7
        np.testing.assert_allclose(batch.timestamps_s, [info.timestamps_s[7],
                                                        info.timestamps_s[20]])


def test_keyframe_mode_snaps_and_reports(make_synth):
    info = make_synth(scene="counter", num_frames=120, gop=30, bframes=2)
    with VideoReader(info.path) as r:
        b = r.decode([5, 20, 44, 46, 119], mode="keyframe")
        exact = r.get_frames(b.indices)
    assert list(b.indices) == [0, 30, 30, 60, 120 - 30]
    assert list(b.requested) == [5, 20, 44, 46, 119]
    np.testing.assert_allclose(b.timestamps_s, b.indices / 30.0)
    assert np.array_equal(b.frames, exact)
    assert [decode_counter(f) for f in b.frames] == list(b.indices)


def test_keyframe_mode_hands_out_the_probed_keyframe_once(make_synth):
    """The keyframe probed at open serves keyframe mode's first request for it, then is let
    go (the reader holds no decoded picture after that); the frames equal exact decoding."""
    info = make_synth(scene="counter", num_frames=120, gop=30, bframes=2)
    with VideoReader(info.path) as r:
        backend = r._backend
        assert backend._first_key is not None and backend._first_key[0] == 0
        b = r.decode([0, 30], mode="keyframe")
        assert backend._first_key is None
        again = r.decode([0, 30], mode="keyframe")
        exact = r.get_frames([0, 30])
    np.testing.assert_array_equal(b.frames, exact)
    np.testing.assert_array_equal(again.frames, exact)
    assert [decode_counter(f) for f in b.frames] == [0, 30]


@pytest.mark.parametrize("size,expect", [(120, (120, 160)), ((60, 100), (60, 100)), (None, (240, 320))])
def test_resize_during_conversion(make_synth, size, expect):
    info = make_synth(scene="counter", num_frames=30)
    with VideoReader(info.path) as r:
        frames = r.get_frames([0, 29], size=size)
    assert frames.shape[1:3] == expect
    assert output_size(224, 1080, 1920) == (224, 398)
    assert output_size(224, 1920, 1080) == (398, 224)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_applied(tmp_path, rotation):
    """A display matrix written by the muxer is honoured like ffmpeg's autorotate."""
    from vidsel.synth import render_frame

    path = tmp_path / f"rot{rotation}.mp4"
    frames = [render_frame("counter", i, num_frames=10, width=320, height=240, box=40)
              for i in range(10)]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.options = {"crf": "18", "preset": "ultrafast"}
        s.set_display_rotation(rotation)
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with VideoReader(path) as r:
        md = r.metadata
        out = r.get_frames([3])[0]
        small = r.get_frames([3], size=60)[0]
    assert md.rotation == rotation % 360
    assert (md.coded_width, md.coded_height) == (320, 240)
    swap = rotation in (90, 270)
    assert (md.width, md.height) == ((240, 320) if swap else (320, 240))
    # counter-clockwise rotation of the coded picture, as FFmpeg's display matrix says
    expect = np.rot90(full_decode(str(path))[3], k=rotation // 90)
    assert out.shape == expect.shape
    assert np.abs(out.astype(int) - expect.astype(int)).max() == 0
    assert small.shape[:2] == ((80, 60) if swap else (60, 80))


def test_display_ops_mirror():
    img = np.arange(2 * 3 * 1).reshape(1, 2, 3, 1)
    assert apply_display_op(img, "cclock_flip").shape == (1, 3, 2, 1)
    assert np.array_equal(apply_display_op(img, "cclock_flip")[0, :, :, 0], img[0, :, :, 0].T)
    assert np.array_equal(apply_display_op(img, "hflip")[0, :, :, 0], img[0, :, ::-1, 0])


def test_iter_frames_streams_in_bounded_batches(make_synth):
    info = make_synth(scene="counter", num_frames=90, fps=30)
    with VideoReader(info.path) as r:
        batches = list(r.iter_frames(fps=2.0, batch_size=2, size=48))
        every = list(r.iter_frames(batch_size=40))
    idx = np.concatenate([b.indices for b in batches])
    assert list(idx) == [0, 15, 30, 45, 60, 75]
    assert all(len(b) <= 2 for b in batches)
    assert batches[0].frames.shape[1] == 48
    assert sum(len(b) for b in every) == 90


def test_sample_uniform_and_duplicates(make_synth):
    info = make_synth(scene="counter", num_frames=50)
    with VideoReader(info.path) as r:
        b = r.sample_uniform(5)
        assert list(b.indices) == [0, 12, 24, 37, 49]
        assert [decode_counter(f) for f in b.frames] == list(b.indices)
        many = r.sample_uniform(500)  # more than the video has: every frame once
        assert len(many) == 50
        dup = r.get_frames([7, 7, 3])
        assert np.array_equal(dup[0], dup[1]) and decode_counter(dup[2]) == 3


def test_bad_arguments(make_synth):
    info = make_synth(scene="counter", num_frames=20)
    with VideoReader(info.path) as r:
        with pytest.raises(FrameIndexError, match="frame index 20 out of range"):
            r.get_frames([20])
        with pytest.raises(FrameIndexError, match="out of range"):
            r.get_frames([-21])
        with pytest.raises(FrameIndexError, match="outside the video"):
            r.get_frames_at([100.0])
        with pytest.raises(InvalidArgumentError, match="mode='fast' is not allowed"):
            r.decode([0], mode="fast")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgumentError, match="integers"):
            r.get_frames([0.5])
        with pytest.raises(InvalidArgumentError, match="size"):
            r.get_frames([0], size=0)
        with pytest.raises(InvalidArgumentError, match="size"):
            r.get_frames([0], size=(10, -1))
        with pytest.raises(InvalidArgumentError, match="n=0"):
            r.sample_uniform(0)
        with pytest.raises(InvalidArgumentError, match="fps"):
            list(r.iter_frames(fps=-1))
        assert r.get_frames([]).shape == (0, 240, 320, 3)
    with pytest.raises(InvalidArgumentError, match="backend='nope'"):
        VideoReader(info.path, backend="nope")


def test_packet_table_is_cheap_and_consistent(make_synth):
    info = make_synth(scene="moving_box", num_frames=60, gop=20, bframes=2)
    t = packet_table(info.path)
    assert len(t) == 60 and t.codec == "h264" and t.pts_reliable
    assert list(t.keyframe_indices) == [0, 20, 40]
    assert np.all(np.diff(t.pts) > 0)
    assert t.size[0] > 3 * np.median(t.size)  # I-frames cost far more bits
    assert sorted(t.decode_order.tolist()) == list(range(60))


def test_multiple_video_streams(tmp_path):
    path = tmp_path / "two.mkv"
    from vidsel.synth import render_frame

    with av.open(str(path), "w") as c:
        streams = []
        for w, h in ((160, 120), (96, 64)):
            s = c.add_stream("libx264", rate=10)
            s.width, s.height, s.pix_fmt = w, h, "yuv420p"
            s.options = {"preset": "ultrafast"}
            streams.append(s)
        for i in range(8):
            for s in streams:
                img = render_frame("counter", i, num_frames=8, width=s.width, height=s.height,
                                   box=16)
                f = av.VideoFrame.from_ndarray(img, format="rgb24")
                f.pts = i
                for p in s.encode(f):
                    c.mux(p)
        for s in streams:
            for p in s.encode():
                c.mux(p)
    with VideoReader(path) as r:
        assert (r.metadata.width, r.metadata.stream_index) == (160, 0)
    with VideoReader(path, stream=1) as r:
        assert (r.metadata.width, r.metadata.height) == (96, 64)
        assert r.metadata.num_frames == 8
        assert decode_counter(r.get_frames([5])[0]) == 5


def test_short_and_long_stretches_give_sequential_pictures(make_synth):
    """Short stretches run on a single-threaded decoder, long ones with frame threading (a
    fresh decoder per stretch); both give the sequential-decode pictures."""
    info = make_synth(scene="counter", num_frames=120, gop=100, bframes=2)
    ref = full_decode(info.path)
    with VideoReader(info.path) as r:
        short = r.get_frames([3, 101])  # 3 and 1 frames past their keyframes
        long = r.get_frames([90])  # 90 frames past keyframe 0: frame-threaded
    assert np.array_equal(short[0], ref[3]) and np.array_equal(short[1], ref[101])
    assert np.array_equal(long[0], ref[90])


def _anamorphic(path, rotation: int = 0) -> str:
    """176x144 stored pixels with a 16:11 sample aspect ratio (shown at 256x144, 16:9), as a
    PAL DVD stores 16:9 video in 704x576."""
    from vidsel.io import write_video
    from vidsel.synth import render_frame

    frames = [render_frame("counter", i, num_frames=6, width=176, height=144, box=16)
              for i in range(6)]
    write_video(path, frames, rotation=rotation, options={
        "x264-params": "keyint=6:min-keyint=6:scenecut=0:bframes=0:sar=16/11"})
    return str(path)


def test_sample_aspect_ratio_gives_display_aspect_when_resizing(tmp_path):
    path = _anamorphic(tmp_path / "pal169.mp4")
    with VideoReader(path) as r:
        md = r.metadata
        assert md.sample_aspect_ratio == pytest.approx(16 / 11)
        assert (md.width, md.height) == (176, 144)  # stored pixels
        assert (md.display_width, md.display_height) == (256, 144)  # 16:9
        assert r.get_frames([0]).shape == (1, 144, 176, 3)  # size=None: stored pixels
        assert r.get_frames([0], size=72).shape == (1, 72, 128, 3)  # short side, 16:9
        assert r.get_frames([0], size=(50, 60)).shape == (1, 50, 60, 3)  # taken as is
        assert type(md).from_dict(md.to_dict()) == md


def test_sample_aspect_ratio_follows_rotation(tmp_path):
    path = _anamorphic(tmp_path / "pal169_rot.mp4", rotation=90)
    with VideoReader(path) as r:
        md = r.metadata
        assert (md.width, md.height) == (144, 176)
        assert md.sample_aspect_ratio == pytest.approx(11 / 16)
        assert (md.display_width, md.display_height) == (99, 176)
        assert r.get_frames([0], size=72).shape == (1, 128, 72, 3)


def test_square_pixels_unchanged(make_synth):
    info = make_synth(scene="counter", num_frames=10)
    with VideoReader(info.path) as r:
        md = r.metadata
        assert md.sample_aspect_ratio == 1.0
        assert (md.display_width, md.display_height) == (md.width, md.height)
        assert r.get_frames([0], size=120).shape == (1, 120, 160, 3)
