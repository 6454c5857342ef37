"""Codec passes decoded in parallel stretches (``workers``) give the sequential result.

``select_patches(workers=...)`` / ``motion_vectors(workers=...)`` cut H.264 streams at clean
keyframes and decode the stretches on several threads; the analysis still sees the frames in
presentation order, so positions, scores, pixels and motion fields must be identical to a
sequential pass, run after run, damaged files included (they fall back to sequential).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from vidsel.codec import motion_vectors, packet_index, select_patches
from vidsel.io._stream import _stretches
from vidsel.synth import make_video


def _same(a, b) -> None:
    assert a == b  # field-wise: positions, scores, pixels, anchors, cuts, candidates...


@pytest.fixture(scope="module")
def long_pyramid(tmp_path_factory) -> Path:
    """A clip long enough for several stretches: b-pyramid, keyframe every 30 frames."""
    path = tmp_path_factory.mktemp("speed") / "pyramid_long.mp4"
    make_video(path, scene="multi_scene", n_scenes=4, num_frames=300, width=256, height=144,
               gop=30, bframes=3, preset="veryfast")
    return path


@pytest.mark.parametrize("name", ["pyramid", "cut", "multi", "pan"])
def test_parallel_select_equals_sequential_on_generated_videos(videos, name):
    path = videos[name].path
    assert len(_stretches(packet_index(path), 2)) > 1
    for budget in (2, 4):
        ref = select_patches(path, budget_frames=budget, workers=1)
        for workers in (2, 3):
            _same(select_patches(path, budget_frames=budget, workers=workers), ref)


def test_parallel_select_equals_sequential_on_a_long_clip(long_pyramid):
    assert len(_stretches(packet_index(long_pyramid), 2)) >= 4
    for budget in (4, 8):
        ref = select_patches(long_pyramid, budget_frames=budget, workers=1)
        runs = [select_patches(long_pyramid, budget_frames=budget, workers=w)
                for w in (2, 2, 4)]
        for got in runs:
            _same(got, ref)


def test_parallel_select_on_damaged_data_equals_sequential(long_pyramid, tmp_path, caplog):
    data = bytearray(long_pyramid.read_bytes())
    for at in range(int(len(data) * 0.5), int(len(data) * 0.8), 1499):
        data[at] ^= 0x33
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    ref = select_patches(path, budget_frames=4, workers=1)
    with caplog.at_level(logging.INFO, logger="vidsel.io._stream"):
        got = select_patches(path, budget_frames=4, workers=2)
    _same(got, ref)
    assert any("decoding sequentially" in r.getMessage() for r in caplog.records)
    _same(select_patches(path, budget_frames=4, workers=2), got)


def test_parallel_select_on_real_clips(fixture_file):
    for rel in ("clips/intelsamplevideos__bottle-detection.mp4",
                "derived/car-detection_truncated_60pct_moovfront.mp4"):
        path = fixture_file(rel)
        ref = select_patches(path, budget_frames=8, workers=1)
        _same(select_patches(path, budget_frames=8, workers=2), ref)


def test_parallel_motion_vectors_equal_sequential(long_pyramid):
    for frames in ("ip", "reference", "all"):
        ref = motion_vectors(long_pyramid, frames=frames, workers=1)
        assert motion_vectors(long_pyramid, frames=frames, workers=3) == ref


def test_workers_is_checked(videos):
    from vidsel.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        motion_vectors(videos["box"].path, workers=0)
    with pytest.raises(InvalidArgumentError):
        select_patches(videos["box"].path, budget_frames=2, workers=-1)
