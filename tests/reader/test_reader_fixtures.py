"""VideoReader on the real clips and edge cases in ../shared/fixtures (skipped when absent).

Every readable fixture: metadata derived from packets is right, and frames fetched by random
access equal a full sequential decode (the definition of frame i).
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from vidsel import (
    CorruptVideoError,
    NotAVideoError,
    NoVideoStreamError,
    VideoReader,
    VidselError,
)
from vidsel.io import apply_display_op, display_transform

pytestmark = pytest.mark.fixtures

# Readable fixtures with their exact frame counts (from a full decode) and displayed size.
READABLE = {
    "clips/androidxmedia__hdr10-av1.mp4": (127, 720, 1280),
    "clips/androidxmedia__roadtrip-vp92-10bit.webm": (72, 426, 240),  # 80 packets, 8 hidden
    "clips/androidxmedia__sample_edit_list.mp4": (77, 1080, 1920),  # edit list, rotated
    "clips/codecpatchstream__demo.mp4": (115, 1920, 1080),
    "clips/decord__flipping_a_pancake.mkv": (310, 426, 240),
    "clips/intelsamplevideos__bottle-detection.mp4": (1189, 640, 360),
    "clips/mmaction2__test.avi": (164, 320, 240),  # packed B-frames: decoded sequentially
    "clips/moviepy__clip1024.flv": (174, 112, 80),
    "clips/sam2__01_dog.mp4": (289, 1280, 720),
    "clips/torchcodec__nasa_13013.mp4": (325, 320, 180),
    "derived/car-detection_truncated_60pct_moovfront.mp4": (220, 768, 432),
    "edge/androidxmedia__bt601.mov": (30, 640, 428),
    "edge/androidxmedia__sample.avi": (96, 960, 400),
    "edge/androidxmedia__sample_h264_iframes_only.ts": (30, 854, 480),
    "edge/decord__unordered.mov": (4, 50, 50),
    "edge/decord__video_0.mov": (3, 568, 320),
    "edge/decord__video_90.mov": (3, 320, 568),
    "edge/decord__video_180.mov": (3, 568, 320),
    "edge/decord__video_270.mov": (3, 320, 568),
    "edge/moviepy__transparent.webm": (150, 200, 200),
    "edge/torchcodec__av1_video.mkv": (125, 640, 360),
    "edge/torchcodec__bt2020_10bit.mp4": (60, 320, 240),
    "edge/torchcodec__discard_first_keyframe.mp4": (25, 64, 64),  # 30 packets, 5 discarded
    "edge/torchcodec__h264_10bits.mp4": (30, 200, 200),
    "edge/torchcodec__h265_10bits.mp4": (30, 200, 200),
    "edge/torchcodec__h265_video.mp4": (10, 128, 128),
    "edge/torchcodec__nasa_13013_mkv_duration_tag.mkv": (390, 480, 270),
    "edge/torchcodec__nasa_13013_rotated.mp4": (17, 270, 480),
    "edge/torchcodec__nasa_13013_vfr.mp4": (50, 480, 270),
    "edge/torchcodec__sine_stereo_mp2.mpg": (100, 128, 128),  # MPEG-PS, no index
    "edge/torchcodec__test_non_zero_start.mp4": (12, 200, 112),
    "edge/torchcodec__testsrc2_av1_10bit.mp4": (25, 320, 240),
    "edge/torchcodec__testsrc2_mpeg4.avi": (30, 1280, 720),
    "edge/torchcodec__testsrc2_odd_height_and_width_mpeg2.mp4": (10, 121, 81),
    "edge/torchcodec__testsrc2_odd_height_and_width_vp9_10bit.mp4": (25, 321, 241),
    "edge/torchcodec__testsrc2_vp8.webm": (30, 1280, 720),
    "edge/torchcodec__testsrc2_vp9.webm": (30, 1280, 720),
    "edge/torchcodec__var_fps_video.mp4": (300, 128, 128),
}


def reference_decode(path: Path, keep: set[int] | None = None) -> list[np.ndarray | None]:
    """Plain sequential PyAV decode, display matrix applied the way ffmpeg autorotates.

    Frames not in ``keep`` are decoded (to count them) but not converted.
    """
    out: list[np.ndarray | None] = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for f in c.decode(s):
            if keep is not None and len(out) not in keep:
                out.append(None)
                continue
            matrix = None
            for sd in f.side_data:
                if "DISPLAYMATRIX" in str(sd.type):
                    matrix = bytes(sd)
            out.append(apply_display_op(f.to_ndarray(format="rgb24"),
                                        display_transform(matrix)[2]))
    return out


@pytest.mark.parametrize("name", sorted(READABLE))
def test_fixture_metadata_and_random_access(fixtures_dir, name):
    path = fixtures_dir / name
    n, width, height = READABLE[name]
    with VideoReader(path) as r:
        md = r.metadata
        assert (md.num_frames, md.width, md.height) == (n, width, height)
        assert len(md.timestamps_s) == n and np.all(np.diff(md.timestamps_s) > 0)
        assert md.duration_s > 0 and md.fps > 0
        rng = np.random.default_rng(7)
        idx = np.concatenate([rng.integers(0, n, min(n, 8)), [n - 1, 0]])
        if n > 400:  # keep big clips cheap: compare a prefix-heavy sample
            idx = np.concatenate([rng.integers(0, 200, 6), [n - 1, 0]])
        got = r.get_frames(idx)
    ref = reference_decode(path, set(idx.tolist()))
    assert len(ref) == n
    for k, i in enumerate(idx):
        assert np.array_equal(got[k], ref[i]), f"{name}: frame {i} differs from sequential decode"


@pytest.mark.parametrize("name", sorted(READABLE))
def test_fixture_keyframe_mode_equals_exact(fixtures_dir, name):
    """Keyframe mode gives the exact frames on every fixture, the first keyframe included (it
    comes from the picture the reader probed when it opened the file)."""
    with VideoReader(fixtures_dir / name) as r:
        keys = r.metadata.keyframe_indices[:3]
        fast = r.decode(keys, mode="keyframe", on_missing="skip")
        again = r.decode(keys[:1], mode="keyframe", on_missing="skip")
        exact = r.decode(fast.indices, on_missing="skip")
    assert fast.indices.tolist() == exact.indices.tolist() and len(fast.indices)
    np.testing.assert_array_equal(fast.frames, exact.frames)
    np.testing.assert_array_equal(again.frames, fast.frames[:1])


def test_annotated_timestamps(fixtures_dir):
    """Timestamps equal ffprobe's frame list for the annotated clips (non-zero start included)."""
    ann = fixtures_dir / "annotations"
    for clip in ("clips/torchcodec__nasa_13013.mp4", "edge/torchcodec__test_non_zero_start.mp4",
                 "edge/torchcodec__nasa_13013_rotated.mp4"):
        frames = json.loads((ann / f"{Path(clip).name}.stream0.all_frames_info.json").read_text())
        expect = np.array([float(f["pts_time"]) for f in frames])
        with VideoReader(fixtures_dir / clip) as r:
            np.testing.assert_allclose(r.metadata.timestamps_s, expect, atol=1e-5)
            assert r.metadata.start_time_s == pytest.approx(expect[0], abs=1e-5)


def test_truncated_file_reports_readable_part(fixtures_dir):
    with VideoReader(fixtures_dir / "derived/car-detection_truncated_60pct_moovfront.mp4") as r:
        md = r.metadata
        assert md.num_frames == 220 and md.header_num_frames == 377
        assert r.get_frames([219]).shape[0] == 1


def test_damaged_streams_decode_what_they_can(fixtures_dir):
    """Invalid NAL units / corrupt data: readable frames come back, the rest are reported."""
    for name in ("edge/androidxmedia__sample_with_invalid_nalu.mp4", "edge/decord__corrupted.mp4"):
        with VideoReader(fixtures_dir / name) as r:
            n = r.metadata.num_frames
            b = r.decode(np.arange(n), on_missing="skip")
            assert len(b) + len(b.missing) == n
            assert len(b) > 0
            # no silent duplicates: every returned frame is a distinct index
            assert len(set(b.indices.tolist())) == len(b)
            if b.missing:
                with pytest.raises(CorruptVideoError, match="could not be decoded") as ei:
                    r.get_frames(list(b.missing[:1]))
                assert ei.value.missing == (b.missing[0],)


@pytest.mark.parametrize("name,exc", [
    ("derived/empty_0bytes.mp4", NotAVideoError),
    ("edge/androidxmedia__sample_malformed_free_box.mp4", CorruptVideoError),
])
def test_unreadable_fixtures(fixtures_dir, name, exc):
    with pytest.raises(exc, match=Path(name).name):
        VideoReader(fixtures_dir / name)


def test_long_multiscene_clip_metadata(fixtures_dir):
    for name in ("derived/concat_multiscene_640x360_h264.mp4",
                 "derived/concat_multiscene_480x270_vp9.webm",
                 "derived/concat_multiscene_480x270_mpeg4part2_bframes.avi"):
        with VideoReader(fixtures_dir / name) as r:
            md = r.metadata
            assert md.num_frames == 4830
            assert md.duration_s == pytest.approx(161.0, abs=0.05)
            b = r.decode([0, 2400, 4829], mode="keyframe")
            assert all(i in set(md.keyframe_indices.tolist()) for i in b.indices)


def test_decord_agrees_on_h264(fixtures_dir):
    pytest.importorskip("decord")
    for name in ("clips/sam2__01_dog.mp4", "clips/intelsamplevideos__bottle-detection.mp4",
                 "edge/decord__video_90.mov", "edge/torchcodec__nasa_13013_vfr.mp4"):
        with VideoReader(fixtures_dir / name) as a, \
                VideoReader(fixtures_dir / name, backend="decord") as b:
            n = a.metadata.num_frames
            idx = [0, n // 3, n // 2, n - 1]
            assert np.array_equal(a.get_frames(idx), b.get_frames(idx)), name


def test_decord_refuses_what_it_gets_wrong(fixtures_dir):
    pytest.importorskip("decord")
    with pytest.raises(VidselError, match="high-bit-depth"):
        VideoReader(fixtures_dir / "edge/torchcodec__h264_10bits.mp4", backend="decord")
    with VideoReader(fixtures_dir / "clips/torchcodec__nasa_13013.mp4", backend="decord") as r, \
            pytest.raises(VidselError, match="decord counts 390 frames but the stream has 325"):
        r.get_frames([0])


def test_audio_only_file(tmp_path):
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 16000
        for i in range(5):
            frame.pts = i * 1024
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(NoVideoStreamError, match="no video stream .*audio"):
        VideoReader(path)
