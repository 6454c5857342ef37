"""The codec pass measures frames in chunks (``vidsel.codec._features``): the batched
measurements must equal plain per-frame formulas, and a chunk's results must not depend on
which frames share it (so every chunking, and every worker count, gives the same selection)."""

from __future__ import annotations

import numpy as np
import pytest

from vidsel.codec._features import chunk_features, dark_flat, fade_ratios
from vidsel.codec._motion import BLOCK, luma_step
from vidsel.codec._score import (
    HIST_BINS,
    _quantile,
    block_means,
    cut_histograms,
    masked_quantile,
)
from vidsel.io import decode_pass, packet_index


@pytest.mark.parametrize("shape,grid", [((3, 90, 160), (23, 40)), ((2, 45, 80), (12, 20)),
                                        ((4, 16, 16), (4, 4)), ((1, 7, 9), (2, 3))])
def test_block_means_equal_padded_cell_means(shape, grid):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape).astype(np.float32)
    for x in (img, img * img):  # luma and its square: integer sums, exact
        n, h, w = x.shape
        ch, cw = -(-h // grid[0]), -(-w // grid[1])
        pad = np.pad(x, ((0, 0), (0, grid[0] * ch - h), (0, grid[1] * cw - w)), mode="edge")
        ref = pad.reshape(n, grid[0], ch, grid[1], cw).mean(axis=(2, 4))
        np.testing.assert_array_equal(block_means(x, grid), ref)


def test_dark_flat_blocks():
    luma = np.full((2, 32, 32), 200.0, np.float32)
    luma[0, :8, :8] = 16.0  # black and flat: dark
    luma[1, :8, :8] = np.tile([10.0, 30.0], (8, 4))  # dark but not flat
    got = dark_flat(luma, (4, 4))
    assert got[0, 0, 0] and got[0].sum() == 1
    assert not got[1].any()


def test_cut_histograms_match_numpy():
    rng = np.random.default_rng(1)
    luma = rng.integers(0, 256, (3, 120, 200)).astype(np.float32)  # 24000 samples: subsampled
    got = cut_histograms(luma)
    for g, y in zip(got, luma, strict=True):
        sub = y[::2, ::2]
        ref = np.histogram(sub, bins=HIST_BINS, range=(0, 256))[0] / sub.size
        np.testing.assert_allclose(g, ref, rtol=1e-6)


@pytest.mark.parametrize("g", [50, 920, 5000])
def test_masked_quantile_matches_numpy(g):
    rng = np.random.default_rng(g)
    v = rng.random((5, g)).astype(np.float32)
    mask = rng.random((5, g)) > 0.3
    mask[3] = False  # no entry: 0
    for q in (0.5, 0.95):
        got = masked_quantile(v, mask, q)
        for i in range(5):
            if mask[i].any():
                assert got[i] == _quantile(v[i][mask[i]], q)  # the per-frame formula, exactly
                assert got[i] == pytest.approx(np.quantile(v[i][mask[i]], q), rel=1e-6)
            else:
                assert got[i] == 0
        np.testing.assert_array_equal(masked_quantile(v, None, q),
                                      [_quantile(row, q) for row in v])


def test_fade_ratios_match_the_least_squares_fit():
    rng = np.random.default_rng(2)
    prev = rng.integers(20, 230, (2, 30, 40)).astype(np.float32)
    luma = np.stack([16 + 0.5 * (prev[0] - 16), rng.integers(0, 255, (30, 40))]).astype(
        np.float32)
    mad = np.abs(luma - prev).mean(axis=(1, 2))
    got = fade_ratios(luma, prev, mad)
    for i in range(2):
        x, y = prev[i].ravel()[::3].astype(np.float64), luma[i].ravel()[::3].astype(np.float64)
        best = min(float(np.abs((y - k) - (((x - k) @ (y - k)) / ((x - k) @ (x - k)))
                                * (x - k)).mean()) for k in (16.0, 0.0))
        assert got[i] == pytest.approx(best / float(mad[i]), rel=1e-9)
    assert got[0] < 0.05 < 0.5 < got[1]  # a fade to black; unrelated content
    assert fade_ratios(luma, prev, np.zeros(2)).tolist() == [1.0, 1.0]


def _frames(path):
    """(motion vectors, luma) of every frame of an H.264 clip, and its block grid."""
    index = packet_index(path)

    def take(_t, frames):
        out = []
        for sf in frames:
            h, w = sf.coded_size
            out.append((sf.motion_vectors, sf.luma(luma_step(h, w)), (h, w)))
        return out

    got = decode_pass(index, take, export_mvs=True, threads=1)
    h, w = got[0][2]
    return got, (-(-h // BLOCK), -(-w // BLOCK))


@pytest.mark.parametrize("camera", ["affine", "median", "none"])
def test_chunk_features_do_not_depend_on_the_chunk(videos, camera):
    """One chunk of every frame, or one frame at a time: the same measurements, bit for bit."""
    got, grid = _frames(videos["pyramid"].path)
    mvs = [m for m, _, _ in got]
    analysed = np.array([i % 4 != 1 for i in range(len(got))])  # some frames only add energy
    luma = np.stack([y for (_, y, _), a in zip(got, analysed, strict=True) if a])
    active = (slice(2, -2), slice(None))
    kw = dict(use_mv=True, camera=camera, grid=grid, active=active)
    whole = chunk_features(mvs, analysed, luma, None, None, **kw)
    prev_luma = prev_hist = None
    j = 0
    for i in range(len(got)):
        one = chunk_features(mvs[i:i + 1], analysed[i:i + 1], luma[j:j + analysed[i]],
                             prev_luma, prev_hist, **kw)
        np.testing.assert_array_equal(one.energy[0], whole.energy[i])
        assert one.adds[0] == whole.adds[i]
        if analysed[i]:
            for name in ("hdist", "mad", "has_prev", "intra", "ratio", "direction", "dark",
                         "std", "dim"):
                np.testing.assert_array_equal(getattr(one, name)[0], getattr(whole, name)[j],
                                              err_msg=name)
            j += 1
        prev_luma, prev_hist = one.last_luma, one.last_hist
    assert j == analysed.sum() and whole.energy.any()
