"""io's contract at its edges: only VidselErrors escape on bad input, results compare with ``==``
and round-trip through JSON, one content rule decides what is a video, and io is the only door
to FFmpeg (also for writing)."""

from __future__ import annotations

import ast
import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vidsel.errors import (
    CorruptVideoError,
    InvalidArgumentError,
    NotAVideoError,
    UnsupportedCodecError,
)
from vidsel.io import (
    INTERPOLATIONS,
    VIDEO_KINDS,
    FrameBatch,
    FrameConverter,
    PacketIndex,
    PacketTable,
    VideoMetadata,
    VideoReader,
    is_video,
    packet_index,
    packet_table,
    probe_kind,
    write_video,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip(make_synth):
    return make_synth(scene="counter", num_frames=40, gop=10, width=192, height=96)


def _json(d):
    return json.loads(json.dumps(d))


# -- bad arguments ---------------------------------------------------------------------------

def test_unknown_interpolation_lists_the_choices(clip):
    with pytest.raises(InvalidArgumentError, match="interpolation='foo'.*'BILINEAR'"):
        VideoReader(clip.path, interpolation="foo")
    with pytest.raises(InvalidArgumentError, match="AREA"):
        FrameConverter(interpolation="foo")
    # names are case-insensitive; the reader reports swscale's name
    with VideoReader(clip.path, interpolation="area") as r:
        assert r.interpolation == "AREA" and "AREA" in INTERPOLATIONS
        assert r.get_frames([0], size=48).shape == (1, 48, 96, 3)


def test_swscale_threads_change_no_byte(clip):
    """FrameConverter's swscale thread count (one below SWS_THREADS_MIN_PIXELS, FFmpeg's
    choice above, or as asked) gives the same bytes, resized, cropped or not."""
    import av

    with av.open(str(clip.path)) as c:
        frames = [f for _, f in zip(range(6), c.decode(video=0))]
    for kw in ({"out_hw": (96, 192)}, {"out_hw": (50, 70)}, {"out_hw": (64, 64), "crop": (8, 8, 16, 16)}):
        outs = [np.stack([FrameConverter(interpolation="BICUBIC", threads=t).rgb(f, **kw)
                          for f in frames]) for t in (None, 0, 1, 3)]
        assert all(np.array_equal(outs[0], o) for o in outs[1:])
    with pytest.raises(InvalidArgumentError, match="threads"):
        FrameConverter(threads=-1)


@pytest.mark.parametrize("stream", ["a", -1, True, 1.5])
def test_bad_stream_argument(clip, stream):
    for call in (lambda: VideoReader(clip.path, stream=stream),
                 lambda: packet_table(clip.path, stream=stream),
                 lambda: packet_index(clip.path, stream=stream)):
        with pytest.raises(InvalidArgumentError, match="stream="):
            call()


@pytest.mark.parametrize("path", [None, 3, 2.5, b"clip.mp4"])
def test_path_must_be_a_path(path):
    for call in (lambda: VideoReader(path), lambda: packet_table(path),
                 lambda: packet_index(path)):
        with pytest.raises(InvalidArgumentError, match="must be a str or os.PathLike"):
            call()
    assert is_video(path) is False and probe_kind(path) == "missing"


def test_non_numeric_times_and_indices(clip):
    with VideoReader(clip.path) as r:
        with pytest.raises(InvalidArgumentError, match="seconds"):
            r.get_frames_at(["x"])
        with pytest.raises(InvalidArgumentError, match="seconds"):
            r.index_at("x")
        with pytest.raises(InvalidArgumentError, match="seconds"):
            r.index_at([{"a": 1}])
        with pytest.raises(InvalidArgumentError, match="indices"):
            r.get_frames([[1], [2, 3]])
        with pytest.raises(InvalidArgumentError, match="indices"):
            r.get_frames(["x"])


@pytest.mark.parametrize("cls", [PacketTable, PacketIndex, VideoMetadata, FrameBatch])
@pytest.mark.parametrize("data", [None, [], "x", {}, {"path": 3}, {"indices": 5}])
def test_from_dict_malformed_input(cls, data):
    with pytest.raises(InvalidArgumentError, match=f"{cls.__name__}.from_dict"):
        cls.from_dict(data)


def test_from_dict_wrong_value_types(clip):
    with VideoReader(clip.path) as r:
        md = r.metadata
        batch = r.decode([0, 3])
    for key, bad in (("timestamps_s", "abc"), ("num_frames", "many"), ("rotation", [1])):
        d = md.to_dict()
        d[key] = bad
        with pytest.raises(InvalidArgumentError, match="VideoMetadata.from_dict: malformed"):
            VideoMetadata.from_dict(d)
    d = batch.to_dict()
    d["indices"] = [[0, 1], [2]]
    with pytest.raises(InvalidArgumentError, match="FrameBatch.from_dict: malformed"):
        FrameBatch.from_dict(d)
    t = packet_table(clip.path).to_dict()
    t["time_base"] = "not a fraction"
    with pytest.raises(InvalidArgumentError, match="PacketTable.from_dict: malformed"):
        PacketTable.from_dict(t)


def test_result_constructors_take_lists():
    b = FrameBatch(frames=np.zeros((2, 4, 4, 3), np.uint8).tolist(), indices=[1, 2],
                   timestamps_s=[0.1, 0.2], requested=[1, 2])
    assert isinstance(b.frames, np.ndarray) and b.frames.shape == (2, 4, 4, 3)
    assert isinstance(b.indices, np.ndarray) and len(b) == 2
    t = PacketTable(path="x.mp4", stream_index=0, codec="h264", time_base=Fraction(1, 25),
                    pts=[0, 1], timestamps_s=[0.0, 0.04], size=[10, 5],
                    is_keyframe=[True, False], decode_order=[0, 1])
    assert t.keyframe_indices.tolist() == [0] and t.duration_s == pytest.approx(0.08)
    with pytest.raises(InvalidArgumentError, match="FrameBatch.indices"):
        FrameBatch(frames=np.zeros((1, 2, 2, 3), np.uint8), indices=7, timestamps_s=[0.0])
    with pytest.raises(InvalidArgumentError, match="PacketTable.pts"):
        PacketTable(path="x", stream_index=0, codec="h264", time_base=Fraction(1, 25),
                    pts=None, timestamps_s=[], size=[], is_keyframe=[], decode_order=[])


# -- equality and round trips ----------------------------------------------------------------

def test_io_results_compare_and_round_trip(clip):
    with VideoReader(clip.path) as r:
        md = r.metadata
        batch = r.decode([5, 0, 5], size=32)
    table = packet_table(clip.path)
    index = packet_index(clip.path)
    for res in (md, table, index):
        back = type(res).from_dict(_json(res.to_dict()))
        assert back == res and (back != res) is False
        with pytest.raises(TypeError):
            hash(res)
    # a changed array field makes them differ (and never raises "truth value ... ambiguous")
    other = PacketTable.from_dict({**table.to_dict(), "size": (table.size + 1).tolist()})
    assert other != table
    assert md != VideoMetadata.from_dict({**md.to_dict(), "timestamps_s": [0.0] * md.num_frames})
    # FrameBatch: pixels are left out; give them back, or get an empty-pixel batch
    d = _json(batch.to_dict())
    assert "frames" not in d and d["frame_shape"] == [32, 64, 3]
    assert FrameBatch.from_dict(d, frames=batch.frames) == batch
    empty = FrameBatch.from_dict(d)
    assert empty.frames.shape == (3, 0, 0, 3) and empty != batch
    np.testing.assert_array_equal(empty.requested, [5, 0, 5])
    assert empty == FrameBatch.from_dict(d)


def test_video_metadata_full_dict_and_summary(clip):
    with VideoReader(clip.path) as r:
        md = r.metadata
    d = md.to_dict()
    assert len(d["timestamps_s"]) == md.num_frames
    s = md.summary()
    assert "timestamps_s" not in s and s["keyframe_indices"] == [0, 10, 20, 30]
    assert {k: v for k, v in d.items() if k != "timestamps_s"} == s
    with pytest.raises(InvalidArgumentError, match="summary"):
        VideoMetadata.from_dict(s)
    back = VideoMetadata.from_dict(_json(d))
    np.testing.assert_array_equal(back.timestamps_s, md.timestamps_s)
    assert back.timestamps_s.dtype == np.float64 and back.keyframe_indices.dtype == np.int64


# -- what is a video: one content rule -------------------------------------------------------

def test_probe_kind_judges_by_content(tmp_path, clip):
    data = Path(clip.path).read_bytes()
    files = {
        "clip.bin": data,                                  # a video under any name
        "notes.mp4": b"this is not a video\n" * 50,        # text named .mp4
        "noise.mp4": bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8)),
        "noise.mkv": bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8)),
        "empty.mp4": b"",
        "torn.mp4": data[:600],                            # ftyp + a torn moov
        "torn.bin": data[:600],                            # same bytes, any name
    }
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
    kinds = {name: probe_kind(tmp_path / name) for name in files}
    assert kinds == {"clip.bin": "video", "notes.mp4": "not_video", "noise.mp4": "not_video",
                     "noise.mkv": "not_video", "empty.mp4": "not_video",
                     "torn.mp4": "damaged", "torn.bin": "damaged"}
    assert probe_kind(tmp_path / "absent.mp4") == "missing"
    assert probe_kind(tmp_path) == "missing"
    assert set(kinds.values()) | {"missing"} == set(VIDEO_KINDS)
    for name, kind in kinds.items():
        assert is_video(tmp_path / name) == (kind == "video"), name
    # the reader uses the same rule
    for name in ("notes.mp4", "noise.mp4", "noise.mkv"):
        with pytest.raises(NotAVideoError, match="not a video"):
            VideoReader(tmp_path / name)
    for name in ("torn.mp4", "torn.bin"):
        with pytest.raises(CorruptVideoError, match=name):
            VideoReader(tmp_path / name)


# -- writing videos: io is the only door to FFmpeg -------------------------------------------

def test_write_video_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    # 8 x 8 blocks of one colour: 4:2:0 chroma subsampling keeps them
    base = np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
    frames = [np.roll(base, 8 * i, axis=1) for i in range(12)]
    path = tmp_path / "out.mkv"
    assert write_video(path, iter(frames), fps=12, gop=4, bframes=0, crf=10) == 12
    with VideoReader(path) as r:
        assert r.metadata.num_frames == 12 and r.metadata.keyframe_indices.tolist() == [0, 4, 8]
        got = r.get_frames([0, 11]).astype(int)
    assert np.abs(got - np.stack([frames[0], frames[11]]).astype(int)).mean() < 8
    # variable frame rate through explicit timestamps
    vfr = tmp_path / "vfr.mp4"
    write_video(vfr, frames[:4], fps=10, pts=[0, 1, 4, 5], time_base=Fraction(1, 20))
    with VideoReader(vfr) as r:
        np.testing.assert_allclose(r.metadata.timestamps_s - r.metadata.start_time_s,
                                   [0.0, 0.05, 0.2, 0.25])


def test_write_video_errors(tmp_path):
    good = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(InvalidArgumentError, match="at least one frame"):
        write_video(tmp_path / "a.mp4", [])
    with pytest.raises(InvalidArgumentError, match=r"frame 0 must be an \(H, W, 3\) uint8"):
        write_video(tmp_path / "a.mp4", [np.zeros((16, 16), np.uint8)])
    with pytest.raises(InvalidArgumentError, match="frame 1 is 8x16"):
        write_video(tmp_path / "a.mp4", [good, good[:8]])
    with pytest.raises(InvalidArgumentError, match="pts has 1 entries"):
        write_video(tmp_path / "a.mp4", [good, good], pts=[0])
    with pytest.raises(UnsupportedCodecError, match="no encoder 'nope264'"):
        write_video(tmp_path / "a.mp4", [good], codec="nope264")


def _library_files():
    for pkg in ("vidsel/io", "vidsel/results", "vidsel/codec", "vidsel/render"):
        yield from sorted((ROOT / pkg).rglob("*.py"))
    yield ROOT / "vidsel" / "synth.py"
    yield ROOT / "vidsel" / "_json.py"
    yield ROOT / "vidsel" / "_fields.py"


def test_synth_encodes_through_io_only():
    tree = ast.parse((ROOT / "vidsel" / "synth.py").read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and not n.level]
    assert not [n for n in names if n == "av" or n.startswith("av.")]


def test_no_assert_statements_in_library_code():
    bad = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in _library_files()
           for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.Assert)]
    assert not bad, bad


def test_write_video_needs_existing_folder(tmp_path):
    missing = tmp_path / "no" / "such" / "dir" / "a.mp4"
    with pytest.raises(Exception) as info:
        write_video(missing, [np.zeros((16, 16, 3), np.uint8)])
    from vidsel.errors import VidselError

    assert isinstance(info.value, VidselError), type(info.value)
    assert not os.path.exists(missing)


# -- a packet table handed in ----------------------------------------------------------------

def test_reader_on_a_table_handed_in_skips_the_demux_and_reads_the_same(clip, make_synth):
    """VideoReader(table=...) uses the caller's table (no second demux pass) and gives the
    same metadata and frames; a table of another file or a non-table is refused."""
    index = packet_index(clip.path)
    with VideoReader(clip.path) as plain, VideoReader(clip.path, table=index) as fed:
        assert fed.packet_table is index
        assert fed.metadata == plain.metadata
        req = [39, 0, 17, 17, 5]
        np.testing.assert_array_equal(fed.get_frames(req), plain.get_frames(req))
        np.testing.assert_array_equal(fed.get_frames(req, mode="keyframe"),
                                      plain.get_frames(req, mode="keyframe"))
    other = make_synth(scene="counter", num_frames=12, gop=4, width=64, height=48)
    with pytest.raises(InvalidArgumentError, match="was built for"):
        VideoReader(clip.path, table=packet_table(other.path))
    with pytest.raises(InvalidArgumentError, match="must be a PacketTable"):
        VideoReader(clip.path, table={"pts": []})


def test_batch_frames_fill_one_array_in_the_order_asked(clip):
    """Frames go into one preallocated array as they are decoded: the batch in request order
    (duplicates, any order) equals frame-by-frame reads, and sorted unique requests give
    that array itself, C-contiguous and writable."""
    with VideoReader(clip.path) as r:
        singles = {i: r.get_frames([i])[0] for i in (0, 3, 9, 21, 39)}
        b = r.decode([21, 3, 39, 3, 0, 9])
        for k, i in enumerate(b.indices.tolist()):
            np.testing.assert_array_equal(b.frames[k], singles[i])
        s = r.decode([0, 3, 9, 21, 39], size=(24, 40))
        assert s.frames.shape == (5, 24, 40, 3)
        assert s.frames.flags.c_contiguous and s.frames.flags.writeable
        with VideoReader(clip.path, workers=2) as r2:
            np.testing.assert_array_equal(r2.decode([0, 3, 9, 21, 39], size=(24, 40)).frames,
                                          s.frames)
