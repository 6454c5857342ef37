"""The frame size changes mid-stream (MPEG-PS / MPEG-TS splices of two encodes).

Issue 10: ``select_patches`` raised ``ValueError: operands could not be broadcast together with
shapes (32,32) (32,33)`` in the decode pass when a stream's frame size changed (the luma
difference and the block grids assumed the first frame's size).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.fuzz.corpus import SEEDS, make_seeds
from vidsel import VideoReader
from vidsel.codec import motion_vectors, select_patches

RESIZED = ("mpeg1_resize_mpg", "mpeg2_resize_ts", "h264_splice_ts")
FS = 56  # 2 x 2 tokens of 2 x 2 patches of 14 px


@pytest.fixture(scope="module")
def resized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    seeds = tuple(s for s in SEEDS if s.name in RESIZED)
    return make_seeds(tmp_path_factory.mktemp("resized"), seeds)


@pytest.mark.parametrize("name", RESIZED)
def test_stream_really_changes_size(resized: dict[str, Path], name: str) -> None:
    import av

    with av.open(str(resized[name])) as c:
        sizes = {(f.width, f.height) for f in c.decode(video=0)}
    assert len(sizes) == 2, sizes


@pytest.mark.parametrize("name", RESIZED)
@pytest.mark.parametrize("pixels", ["decode", "reader"])
def test_select_patches_across_a_size_change(resized: dict[str, Path], name: str,
                                             pixels: str) -> None:
    sel = select_patches(resized[name], budget_frames=3, frame_size=FS, pixels=pixels)
    tpf = sel.config.tokens_per_frame
    assert sel.num_tokens == 3 * tpf
    assert sel.pixels is not None and sel.pixels.shape == (3 * tpf * 4, 14, 14, 3)
    if name != "h264_splice_ts":  # (in the splice, the two parts' timestamps interleave)
        # tokens come from both parts of the stream (the energy of each part counts)
        assert sel.positions[:, 0].min() < 16 <= sel.positions[:, 0].max()


def test_decode_pixels_equal_reader_pixels(resized: dict[str, Path]) -> None:
    path = resized["mpeg2_resize_ts"]
    a = select_patches(path, budget_frames=3, frame_size=FS, pixels="decode")
    b = select_patches(path, budget_frames=3, frame_size=FS, pixels="reader")
    assert np.array_equal(a.positions, b.positions)
    assert np.array_equal(a.pixels, b.pixels)
    with VideoReader(path) as r:
        frames = r.get_frames(a.positions[:, 0], size=(FS, FS))
    ys, xs = a.positions[:, 1], a.positions[:, 2]
    crops = np.stack([f[y * 14:(y + 1) * 14, x * 14:(x + 1) * 14]
                      for f, y, x in zip(frames, ys, xs)])
    assert np.array_equal(crops, a.pixels)


@pytest.mark.parametrize("name", ["mpeg1_resize_mpg", "mpeg2_resize_ts"])
def test_motion_vectors_keep_one_grid(resized: dict[str, Path], name: str) -> None:
    mf = motion_vectors(resized[name], frames="all")
    assert mf.flow.shape[1:3] == (4, 6)  # the first part's 96 x 64 on 16 px blocks
    assert len(mf.indices) >= 30
    assert np.all(np.isfinite(mf.flow))
