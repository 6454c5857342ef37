"""The fast paths of the selection pass: I+P candidates, closed-form camera fit, token pool,
decode-ahead thread, vector gridding, notebook preview."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vidsel.codec import packet_index, select_patches
from vidsel.codec._motion import _MV_DTYPE, mv_grid
from vidsel.codec._pool import TokenPool as _TokenPool
from vidsel.codec._pool import rank_tokens, tie_keys
from vidsel.codec._score import _affine_fit, _quantile
from vidsel.io import VideoReader
from vidsel.io import decode_ahead as prefetch

FS = 224


def test_ip_candidates_with_reference_b_frames(videos):
    info = videos["pyramid"]
    idx = packet_index(info.path)
    assert np.any(idx.is_reference & (idx.pict_type == "B"))  # b-pyramid: B-refs exist
    sel = select_patches(info.path, budget_frames=2, frame_size=FS)
    assert sel.num_tokens == 128
    # candidates and anchors are I/P frames: no B-frame is ever converted
    assert np.all(idx.pict_type[sel.candidate_frames] != "B")
    assert np.all(idx.pict_type[sel.source_frames] != "B")
    with VideoReader(sel.path) as r:
        imgs = r.get_frames(sel.source_frames, size=sel.frame_size)
    j = np.searchsorted(sel.source_frames, sel.positions[:, 0])
    p = sel.patch_size
    assert sel.pixels is not None
    for i, (_f, row, col) in enumerate(sel.positions):
        np.testing.assert_array_equal(imgs[j[i], row * p:(row + 1) * p, col * p:(col + 1) * p],
                                      sel.pixels[i])
    ref = select_patches(info.path, budget_frames=2, frame_size=FS, pixels="reader")
    np.testing.assert_array_equal(ref.positions, sel.positions)
    np.testing.assert_array_equal(ref.pixels, sel.pixels)


def _affine_lstsq(flow: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Reference: the same robust fit with a generic weighted lstsq on the full grid."""
    gh, gw = coverage.shape
    yy, xx = np.mgrid[0:gh, 0:gw].astype(np.float64)
    a = np.stack([np.ones(gh * gw), xx.ravel() / gw, yy.ravel() / gh], axis=1)
    f = flow.reshape(-1, 2).astype(np.float64)
    w = (coverage.ravel() > 0.5).astype(np.float64)
    model = np.zeros_like(f)
    for _ in range(2):
        if w.sum() < 6:
            break
        sw = np.sqrt(w)[:, None]
        coef = np.linalg.lstsq(a * sw, f * sw, rcond=None)[0]
        model = a @ coef
        res = np.hypot(*(f - model).T)
        med = float(np.median(res[w > 0]))
        w = w * (res <= max(3.0 * med, 1.0))
    return model.reshape(gh, gw, 2)


@pytest.mark.parametrize("grid", [(15, 20), (45, 80), (68, 120)])
def test_affine_fit_matches_lstsq(grid):
    rng = np.random.default_rng(0)
    gh, gw = grid
    yy, xx = np.mgrid[0:gh, 0:gw]
    # zoom + pan camera, noise, and a moving object (outliers)
    flow = np.stack([2 + 3.0 * xx / gw, -1 + 2.0 * yy / gh], -1) + rng.normal(0, 0.2, (gh, gw, 2))
    flow[gh // 4:gh // 2, gw // 4:gw // 2] += 10.0
    cov = (rng.random((gh, gw)) > 0.1).astype(np.float32)
    got = _affine_fit(flow.astype(np.float32), cov)
    ref = _affine_lstsq(flow, cov)
    # large grids are fitted on a subsample: same camera model within a few hundredths of px
    tol = 1e-4 if gh * gw <= 1200 else 0.1
    np.testing.assert_allclose(got, ref, atol=tol)
    # the object does not bias the fit
    cam = np.stack([2 + 3.0 * xx / gw, -1 + 2.0 * yy / gh], -1)
    assert np.abs(got - cam).max() < 0.2


def test_affine_fit_degenerate_inliers():
    rng = np.random.default_rng(1)
    flow = rng.normal(0, 0.3, (45, 80, 2)).astype(np.float32) + 2.0
    cov = np.zeros((45, 80), np.float32)
    cov[5] = 1.0  # one row of inter cells: no vertical extent
    got = _affine_fit(flow, cov)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, _affine_lstsq(flow, cov), atol=1e-4)
    assert not _affine_fit(flow, np.zeros_like(cov)).any()  # all intra: no model


@pytest.mark.parametrize("n", [1, 2, 7, 920, 3601])
def test_quantile_matches_numpy(n):
    v = np.random.default_rng(n).random(n).astype(np.float32)
    for q in (0.0, 0.5, 0.95, 1.0):
        assert _quantile(v, q) == pytest.approx(float(np.quantile(v, q)), rel=1e-6)


def _pool_run(scores: np.ndarray, budget: int) -> tuple[np.ndarray, ...]:
    """Feed (frames, tokens) scores through a _TokenPool frame by frame; its result."""
    pool = _TokenPool(budget, keep_pixels=True)
    for f, tok in enumerate(scores):
        good, keys = pool.better(f, tok)
        assert np.all((tok[good] > pool.floor) | (keys > pool.floor_key))
        crops = np.full((len(good), 2, 2, 3), f, np.uint8)
        pool.add(f, good, tok[good], keys, crops)
    return pool.result()


def test_token_pool_keeps_the_best():
    rng = np.random.default_rng(0)
    budget = 50
    scores = rng.random((40, 16))
    s, _k, fr, b, pix = _pool_run(scores, budget)
    assert len(s) == budget and pix is not None
    np.testing.assert_allclose(np.sort(s)[::-1], np.sort(scores.ravel())[::-1][:budget])
    np.testing.assert_array_equal(s, scores[fr, b])  # scores are stored as computed, no noise
    assert np.all(pix[:, 0, 0, 0] == fr)  # pixels travel with their token


def test_token_pool_ties_are_deterministic_and_spread():
    # clipped energies tie a lot: the pool keeps exactly what a full ranking by (score, tie
    # key) keeps, whatever the arrival order, and tied tokens spread over frames and positions
    scores = np.zeros((40, 16))
    scores[:, :4] = 1.0  # 160 tokens tie at the top, budget 50
    s, _k, fr, b, _pix = _pool_run(scores, 50)
    assert np.all(s == 1.0)
    f_all, b_all = np.divmod(np.flatnonzero(scores.ravel() == 1.0), 16)
    k_all = np.concatenate([tie_keys(int(f), np.array([t])) for f, t in zip(f_all, b_all)])
    best = rank_tokens(np.ones(len(f_all)), k_all, f_all, b_all)[:50]
    assert sorted(zip(fr.tolist(), b.tolist())) == sorted(zip(f_all[best].tolist(),
                                                              b_all[best].tolist()))
    assert len(np.unique(fr)) > 20 and fr.min() < 10  # not piled into the last frames
    assert len(np.unique(b)) == 4
    # reversed arrival order: same set
    pool = _TokenPool(50, keep_pixels=False)
    for f in range(39, -1, -1):
        good, keys = pool.better(f, scores[f])
        pool.add(f, good, scores[f][good], keys, None)
    _s2, _k2, fr2, b2, _ = pool.result()
    assert sorted(zip(fr2.tolist(), b2.tolist())) == sorted(zip(fr.tolist(), b.tolist()))
    np.testing.assert_array_equal(tie_keys(7, np.arange(5)), tie_keys(7, np.arange(5)))
    assert not np.array_equal(tie_keys(7, np.arange(5)), tie_keys(8, np.arange(5)))


def test_reported_scores_are_noise_free(videos):
    sel = select_patches(videos["box"].path, budget_frames=2, frame_size=FS, pixels="none")
    m = ~sel.is_anchor
    assert m.any() and np.isnan(sel.scores[~m]).all()
    # energies are clipped, so equal token scores are common; tie-break noise would make
    # every reported score distinct
    tok = sel.scores[m][::4]
    assert len(np.unique(tok)) < len(tok)
    again = select_patches(videos["box"].path, budget_frames=2, frame_size=FS, pixels="none")
    np.testing.assert_array_equal(again.positions, sel.positions)
    np.testing.assert_array_equal(again.scores, sel.scores)


def test_prefetch_order_errors_and_early_stop():
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))

    def broken():
        yield 1
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        list(prefetch(broken()))
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    it = prefetch(endless(), depth=2)
    assert next(it) == 0
    it.close()  # the consumer gives up: the worker stops and closes the source
    assert closed.wait(5.0)
    assert not any(t.name == "vidsel-codec-decode" and t.is_alive()
                   for t in threading.enumerate())


def test_mv_grid_directions_and_coverage():
    mv = np.zeros(3, _MV_DTYPE)
    # block at (0, 0) predicted from the past, content moved +4 px in x (dst - src = +4)
    mv[0] = (-1, 16, 16, 4, 8, 8, 8, 0, -8, 0, 2)  # motion_x / scale = -4 = src - dst
    # block at cell (0, 1): bi-predicted, past and future rows (counted once in coverage)
    mv[1] = (-1, 16, 16, 20, 8, 24, 8, 0, -4, 0, 1)
    mv[2] = (1, 16, 16, 28, 8, 24, 8, 0, 4, 0, 1)
    flow, cov = mv_grid(mv, (2, 2))
    np.testing.assert_allclose(flow[0, 0], [4.0, 0.0])
    np.testing.assert_allclose(flow[0, 1], [4.0, 0.0])  # future: src - dst, same direction
    np.testing.assert_allclose(cov, [[1, 1], [0, 0]])
    f0, c0 = mv_grid(np.zeros(0, _MV_DTYPE), (2, 2))
    assert not f0.any() and not c0.any()


def test_repr_png(videos):
    sel = select_patches(videos["box"].path, budget_frames=2, frame_size=FS)
    png = sel._repr_png_()
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    assert select_patches(videos["box"].path, budget_frames=2, frame_size=FS,
                          pixels="none")._repr_png_() is None
