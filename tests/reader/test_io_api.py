"""io's public faces: is_video, the backend registry, the one converter, the decode pass and its
fallback for unreliable timestamps, PacketTable / PacketIndex JSON and deprecated names."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from vidsel.errors import InvalidArgumentError
from vidsel.io import (
    PacketIndex,
    PacketTable,
    VideoReader,
    available_backends,
    decode_pass,
    decode_stream,
    is_video,
    packet_index,
    packet_table,
    register_backend,
)


def test_is_video_decides_by_content(tmp_path, make_synth):
    clip = make_synth(".mp4", num_frames=10, width=64, height=48)
    renamed = tmp_path / "clip.dat"  # content decides, not the suffix
    renamed.write_bytes(Path(clip.path).read_bytes())
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "fake.mp4").write_text("not a video\n")
    (tmp_path / "empty.mp4").write_bytes(b"")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "still.png")
    frames = [Image.fromarray(np.full((16, 16, 3), v, np.uint8)) for v in (0, 120, 240)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    audio = tmp_path / "tone.wav"
    with av.open(str(audio), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16",
                                        layout="mono")
        fr.sample_rate = 8000
        for p in s.encode(fr):
            c.mux(p)
    assert is_video(clip.path) and is_video(renamed)
    for bad in ("notes.txt", "fake.mp4", "empty.mp4", "still.png", "anim.gif", "tone.wav",
                "missing.mp4"):
        assert not is_video(tmp_path / bad), bad
    assert not is_video(tmp_path)  # a folder


def test_backend_registry_guards_overwrite():
    assert available_backends() == ("decord", "pyav")
    with pytest.raises(InvalidArgumentError, match="already registered"):
        register_backend("pyav", lambda *a, **k: None)
    with pytest.raises(InvalidArgumentError, match="choose one of 'decord', 'pyav'"):
        VideoReader(__file__, backend="nope")


@pytest.mark.parametrize("interpolation", ["BILINEAR", "AREA", "BICUBIC"])
def test_select_patches_pixels_equal_the_readers_at_its_interpolation(make_synth, interpolation):
    from vidsel.codec import select_patches

    clip = make_synth(".mp4", scene="moving_box", num_frames=40, width=320, height=240)
    sel = select_patches(clip.path, budget_frames=2, frame_size=112,
                         interpolation=interpolation)
    with VideoReader(clip.path, interpolation=interpolation) as r:
        assert r.interpolation == interpolation
        imgs = r.get_frames(sel.source_frames, size=sel.frame_size)
    p = sel.patch_size
    j = np.searchsorted(sel.source_frames, sel.positions[:, 0])
    crops = np.stack([imgs[j[i], r_ * p:(r_ + 1) * p, c * p:(c + 1) * p]
                      for i, (_, r_, c) in enumerate(sel.positions)])
    np.testing.assert_array_equal(crops, sel.pixels)
    ref = select_patches(clip.path, budget_frames=2, frame_size=112, pixels="reader",
                         interpolation=interpolation)
    np.testing.assert_array_equal(ref.pixels, sel.pixels)


def test_decode_pass_restarts_counting_when_timestamps_go_backwards(make_synth):
    clip = make_synth(".mp4", scene="counter", num_frames=30, gop=10, bframes=2)
    index = packet_index(clip.path)
    assert index.pts_reliable
    # a table whose timestamps map decoded pictures to the wrong frames (backwards)
    scrambled = dataclasses.replace(index, pts=index.pts[::-1].copy())
    calls: list[tuple[bool, list[int]]] = []

    def consume(table, frames):
        got = [sf.index for sf in frames]
        calls.append((table.pts_reliable, got))
        return got

    got = decode_pass(scrambled, consume, prefetch=2)
    assert got == list(range(30))
    assert calls[-1] == (False, list(range(30))) and len(calls) == 1  # raised mid-way
    with pytest.raises(Exception, match="not monotonic"):
        list(decode_stream(scrambled))
    # the codec pipeline re-plans on the counted index: same result as asking for counting
    from vidsel.codec import select_patches

    a = select_patches(clip.path, budget_frames=2, frame_size=112, index=scrambled)
    b = select_patches(clip.path, budget_frames=2, frame_size=112, index=index.sequential())
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.pixels, b.pixels)


def test_stream_frames(make_synth):
    clip = make_synth(".mp4", scene="moving_box", num_frames=20, width=96, height=64)
    index = packet_index(clip.path)
    frames = list(decode_stream(index, export_mvs=True, prefetch=3))
    assert [sf.index for sf in frames] == list(range(20))
    assert frames[0].key_frame and frames[0].pict_type == "I"
    assert frames[0].coded_size == (64, 96)
    assert frames[0].luma(4).shape == (16, 24)
    assert any(sf.motion_vectors is not None and len(sf.motion_vectors) for sf in frames[1:])
    with VideoReader(clip.path) as r:
        np.testing.assert_array_equal(frames[5].rgb((32, 48)), r.get_frames([5], size=32)[0])
    with pytest.raises(InvalidArgumentError, match="skip"):
        decode_stream(index, skip="SOME")


def test_packet_tables_round_trip_and_renamed_fields(make_synth):
    clip = make_synth(".mp4", num_frames=12, width=64, height=48)
    for table in (packet_table(clip.path), packet_index(clip.path)):
        d = json.loads(json.dumps(table.to_dict()))
        back = type(table).from_dict(d)
        for f in dataclasses.fields(table):
            if f.name == "elapsed_s":
                continue
            a, b = getattr(table, f.name), getattr(back, f.name)
            assert (np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b), f.name
        d["seconds"] = d.pop("timestamps_s")  # the old key
        np.testing.assert_array_equal(type(table).from_dict(d).timestamps_s,
                                      table.timestamps_s)
        with pytest.warns(DeprecationWarning, match="timestamps_s"):
            np.testing.assert_array_equal(table.seconds, table.timestamps_s)
    idx = packet_index(clip.path)
    assert isinstance(idx, PacketTable) and idx.num_frames == 12
    with pytest.warns(DeprecationWarning):
        old = PacketIndex(**{**{f.name: getattr(idx, f.name) for f in dataclasses.fields(idx)
                                if f.name != "timestamps_s"}, "seconds": idx.timestamps_s})
    np.testing.assert_array_equal(old.timestamps_s, idx.timestamps_s)
    with pytest.raises(InvalidArgumentError, match="rows"):
        dataclasses.replace(idx, size=idx.size[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert idx.skip_mode("all") == "DEFAULT" and idx.sequential().skip_mode("ip") == "DEFAULT"
