"""Black, dim, fading or frozen frames are no anchors, fades and dissolves are no cuts, and
near-black flat areas do not win the motion budget (issue 13, "never spend a token on
nothing")."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.codec.test_borders import make_letterboxed, near_black_share
from vidsel.codec import select_patches
from vidsel.codec._features import fade_ratios
from vidsel.io import VideoReader, write_video

N = 150  # frames of each clip: three scenes, cuts at 50 and 100


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("blank")
    return {
        "fade": make_letterboxed(d / "fade.mp4", num_frames=N, fade_in=20, fade_out=20,
                                 n_scenes=3),
        "dip": make_letterboxed(d / "dip.mp4", num_frames=N, dip=10, n_scenes=3),
        "dissolve": make_letterboxed(d / "dissolve.mp4", num_frames=N, dissolve=15,
                                     n_scenes=3),
        "hard": make_letterboxed(d / "hard.mp4", num_frames=N, n_scenes=3),
        "plain": make_letterboxed(d / "plain.mp4", num_frames=N, bars=(0, 0, 0, 0),
                                  n_scenes=3),
    }


def active_luma(path: Path, frames: np.ndarray, crop: tuple[int, int, int, int]) -> np.ndarray:
    """(A,) mean luma of the active picture of each frame."""
    t, b, lft, r = crop
    with VideoReader(path) as reader:
        imgs = reader.get_frames(frames).astype(np.float32)
    h, w = imgs.shape[1:3]
    return imgs[:, t:h - b, lft:w - r].mean(axis=(1, 2, 3))  # type: ignore[no-any-return]


@pytest.mark.parametrize("anchors", ["adaptive", "uniform"])
@pytest.mark.parametrize("crop", ["auto", "none"])
@pytest.mark.parametrize("name", ["fade", "dip", "dissolve"])
def test_anchors_are_never_black_or_mid_fade(clips, name, anchors, crop):
    path = clips[name]
    sel = select_patches(path, budget_frames=8, frame_size=224, anchors=anchors, crop=crop)
    assert sel.num_tokens == 8 * sel.config.tokens_per_frame  # the budget stays exact
    lum = active_luma(path, sel.anchor_frames, (32, 32, 0, 0))
    assert lum.min() > 40, (sel.anchor_frames, lum)  # not black, not early in a fade
    anchor_px = sel.pixels[sel.is_anchor]
    motion_px = sel.pixels[~sel.is_anchor]
    if crop == "auto":
        assert sel.crop == (32, 32, 0, 0)
        assert near_black_share(sel.pixels) <= 0.01
    else:  # the bars are in every anchor, but not one motion token lands on them
        assert near_black_share(anchor_px) == pytest.approx(64 / 240, abs=0.05)
    assert near_black_share(motion_px) <= 0.01


def test_first_anchor_waits_for_the_fade_in(clips):
    sel = select_patches(clips["fade"], budget_frames=8, frame_size=224)
    assert sel.anchor_frames[0] >= 8  # frames 0..19 fade in from black (< 40% before 8)
    assert sel.anchor_frames[0] < 50  # ... but the anchor stays in the first scene


@pytest.mark.parametrize("name", ["fade", "dip", "dissolve"])
def test_fades_and_dissolves_are_no_cuts(clips, name):
    sel = select_patches(clips[name], budget_frames=8, frame_size=224, crop="none")
    transitions = {"fade": [(0, 20), (N - 20, N)], "dip": [(40, 60), (90, 110)],
                   "dissolve": [(35, 51), (85, 101)]}[name]
    for c in sel.cut_frames:
        assert not any(lo <= c < hi for lo, hi in transitions), (name, sel.cut_frames)
    if name == "fade":  # hard cuts between the scenes are still found
        assert any(abs(int(c) - 50) <= 3 for c in sel.cut_frames)


def test_hard_cuts_still_found(clips):
    sel = select_patches(clips["hard"], budget_frames=8, frame_size=224)
    assert any(abs(int(c) - 50) <= 3 for c in sel.cut_frames)
    assert any(abs(int(c) - 100) <= 3 for c in sel.cut_frames)


def _fade_ratio(luma: np.ndarray, prev: np.ndarray | None, mad: float) -> float:
    """:func:`fade_ratios` of one frame (1 when undefined)."""
    if prev is None or mad <= 0.0 or luma.shape != prev.shape:
        return 1.0
    return float(fade_ratios(luma[None], prev[None], np.array([mad]))[0])


def test_fade_ratio_tells_a_fade_from_a_change():
    rng = np.random.default_rng(0)
    prev = rng.uniform(16, 235, (60, 80)).astype(np.float32)
    faded = 16 + 0.7 * (prev - 16)  # a fade towards video-range black
    assert _fade_ratio(faded, prev, float(np.abs(faded - prev).mean())) < 0.05
    other = rng.uniform(16, 235, (60, 80)).astype(np.float32)
    assert _fade_ratio(other, prev, float(np.abs(other - prev).mean())) > 0.5
    assert _fade_ratio(prev, None, 3.0) == 1.0


def test_fade_ratio_of_large_pictures_from_fewer_samples(monkeypatch):
    """Above FADE_SAMPLES luma values a picture's fade fit uses a sparser subsample: it still
    tells a fade from a change, with ratios close to the every-third-sample fit."""
    import vidsel.codec._features as feats

    rng = np.random.default_rng(1)
    prev = rng.uniform(16, 235, (180, 320)).astype(np.float32)  # 720p's luma at step 4
    assert prev.size > 3 * feats.FADE_SAMPLES
    faded = 16 + 0.6 * (prev - 16) + rng.normal(0, 1.0, prev.shape).astype(np.float32)
    other = rng.uniform(16, 235, prev.shape).astype(np.float32)
    sparse = [_fade_ratio(x, prev, float(np.abs(x - prev).mean())) for x in (faded, other)]
    monkeypatch.setattr(feats, "FADE_SAMPLES", 10**9)  # every third sample
    dense = [_fade_ratio(x, prev, float(np.abs(x - prev).mean())) for x in (faded, other)]
    assert sparse[0] < 0.05 and sparse[1] > 0.5
    np.testing.assert_allclose(sparse, dense, atol=0.02)


def test_an_all_black_video_still_fills_the_budget(tmp_path):
    path = tmp_path / "black.mp4"
    write_video(path, (np.zeros((96, 128, 3), np.uint8) for _ in range(60)), fps=30)
    sel = select_patches(path, budget_frames=4, frame_size=112)
    assert sel.num_tokens == 4 * sel.config.tokens_per_frame
    assert sel.crop == (0, 0, 0, 0)  # nothing measured: no crop
    assert len(sel.anchor_frames) >= 1


def test_no_change_without_bars_or_blank_frames(clips):
    """On a picture without bars and blank frames, ``crop="auto"`` is ``crop="none"``."""
    a = select_patches(clips["plain"], budget_frames=4, frame_size=224)
    b = select_patches(clips["plain"], budget_frames=4, frame_size=224, crop="none")
    assert a.crop == (0, 0, 0, 0)
    assert a == b


# Positions that the code before the blank-frame / border work (commit bac6c89) selected on the
# codec suite's generated clips (tests/codec/conftest.py ``videos``): the change must not move
# a single token there. sha256 of ``positions.tobytes()`` (int64, native order), first 16 hex.
BEFORE = {
    ("multi", 4, "adaptive"): "4c912b5967dbc932",
    ("box", 2, "uniform"): "58e242eab7712064",
    ("cut", 4, "adaptive"): "f07b7794785e69f7",
    ("pan", 4, "adaptive"): "bd29c8f209813b39",
}


@pytest.mark.parametrize("key", sorted(BEFORE))
def test_same_positions_as_before_on_plain_clips(videos, key):
    name, budget, anchors = key
    sel = select_patches(videos[name].path, budget_frames=budget, anchors=anchors)
    digest = hashlib.sha256(np.ascontiguousarray(sel.positions).tobytes()).hexdigest()[:16]
    assert digest == BEFORE[key]
