"""Real clips from ../shared/fixtures (skipped when absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidsel.codec import packet_index, select_patches

pytestmark = pytest.mark.fixtures


def test_multishot_adaptive_anchors_near_boundaries(fixture_file):
    path = fixture_file("derived/concat_multiscene_640x360_h264.mp4")
    seg = json.loads(fixture_file(
        "annotations/concat_multiscene_640x360_h264.segments.json").read_text())
    bounds = np.array([s["start_frame"] for s in seg["segments"][1:]])
    sel = select_patches(path, budget_frames=32, pixels="none")
    assert sel.num_tokens == 32 * 196 and sel.signal == "motion_vectors"
    dist = np.abs(sel.anchor_frames[None, :] - bounds[:, None]).min(axis=1)
    # an anchor within a second of (almost) every shot boundary
    assert np.mean(dist <= 30) >= 0.9, dist
    assert len(sel.anchor_frames) <= 16  # never "every I-frame": bounded by half the budget
    assert len(sel.source_frames) > 200


@pytest.mark.parametrize("rel", [
    "clips/androidxmedia__roadtrip-vp92-10bit.webm",   # VP9 10-bit, hidden frames
    "edge/torchcodec__testsrc2_av1_10bit.mp4",          # AV1
    "edge/torchcodec__h265_10bits.mp4",                 # HEVC 10-bit
])
def test_fallback_on_real_codecs(fixture_file, rel):
    sel = select_patches(fixture_file(rel), budget_frames=2, frame_size=224)
    assert sel.fallback and sel.signal == "pixel_diff"
    assert sel.num_tokens == min(128, packet_index(sel.path).num_frames * 64)


@pytest.mark.parametrize("rel", [
    "clips/mmaction2__test.avi",                         # MPEG-4 ASP, B-frames, AVI
    "clips/codecpatchstream__demo.mp4",                  # H.264 High 1080p
    "edge/torchcodec__nasa_13013_rotated.mp4",           # rotation metadata
    "edge/torchcodec__nasa_13013_vfr.mp4",               # variable frame rate
])
def test_real_clips_pixels_match_reader(fixture_file, rel):
    from vidsel.io import VideoReader

    sel = select_patches(fixture_file(rel), budget_frames=2, frame_size=224)
    assert sel.num_tokens == min(128, packet_index(sel.path).num_frames * 64)
    p = sel.patch_size
    with VideoReader(sel.path) as r:
        imgs = r.get_frames(sel.source_frames, size=sel.frame_size)
    j = np.searchsorted(sel.source_frames, sel.positions[:, 0])
    assert sel.pixels is not None
    for i in range(0, sel.num_patches, 7):
        _f, row, col = sel.positions[i]
        np.testing.assert_array_equal(imgs[j[i], row * p:(row + 1) * p, col * p:(col + 1) * p],
                                      sel.pixels[i])


def test_display_transform_matches_the_reader(fixture_file):
    import av

    from vidsel.io import VideoReader
    from vidsel.io._display import frame_display_transform

    path = fixture_file("edge/torchcodec__nasa_13013_rotated.mp4")
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
    with VideoReader(path, backend="pyav") as r:
        b = r._backend
        assert frame_display_transform(frame) == (b.rotation, b.mirrored, b._display_op)
    assert frame_display_transform(frame)[0] != 0
    assert frame_display_transform(object()) == (0, False, "")  # no side data: identity


def test_fixture_file_skips_or_fails(fixture_file, monkeypatch):
    monkeypatch.delenv("VIDSEL_REQUIRE_SHARED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no/such.mp4"):
        fixture_file("no/such.mp4")
    monkeypatch.setenv("VIDSEL_REQUIRE_SHARED", "1")
    with pytest.raises(pytest.fail.Exception, match="VIDSEL_REQUIRE_SHARED"):
        fixture_file("no/such.mp4")
