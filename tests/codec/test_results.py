"""Codec results: JSON round trips (pixels left out), the VisualSelection face, renamed
fields and the deprecated METHODS alias."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from vidsel.codec import motion_vectors, select_patches
from vidsel.errors import InvalidArgumentError
from vidsel.results import (
    Canvases,
    Comparison,
    ComparisonRow,
    MotionFields,
    PatchConfig,
    PatchSelection,
    VisualSelection,
)

FS = 224


def _same(a, b, skip=()):
    for f in dataclasses.fields(a):
        if f.name in skip:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), \
                f.name
        else:
            assert x == y, f.name


def test_patch_selection_round_trips_through_json(videos):
    sel = select_patches(videos["cut"].path, budget_frames=3, frame_size=FS)
    d = json.loads(json.dumps(sel.to_dict()))
    assert "pixels" not in d and d["kind"] == "patches" and "timestamps_s" in d
    back = PatchSelection.from_dict(d)
    _same(sel, back, skip=("pixels",))
    assert back.pixels is None and back.timings_s == sel.timings_s
    # old key names are read too
    d["timestamps"] = d.pop("timestamps_s")
    d["timings"] = d.pop("timings_s")
    _same(sel, PatchSelection.from_dict(d), skip=("pixels",))
    # the compact summary: per_patch=False, not invertible
    s = sel.summary()
    assert sel.to_dict(per_patch=False) == s and "positions" not in s
    with pytest.raises(InvalidArgumentError, match="summary"):
        PatchSelection.from_dict(s)


def test_patch_selection_is_a_visual_selection(videos):
    sel = select_patches(videos["box"].path, budget_frames=2, frame_size=FS)
    assert isinstance(sel, VisualSelection) and sel.kind == "patches"
    np.testing.assert_array_equal(sel.source_timestamps_s,
                                  sel.timestamps_s[np.unique(sel.positions[:, 0],
                                                             return_index=True)[1]])
    assert len(sel.source_timestamps_s) == len(sel.source_frames)
    imgs, labels = sel.images()
    assert imgs.shape[1:] == (FS, FS, 3) and imgs.dtype == np.uint8
    assert labels == [f"canvas_{i:03d}" for i in range(len(imgs))]
    assert sel._repr_png_().startswith(b"\x89PNG")
    with pytest.warns(DeprecationWarning, match="timestamps_s"):
        np.testing.assert_array_equal(sel.timestamps, sel.timestamps_s)
    with pytest.warns(DeprecationWarning, match="timings_s"):
        assert sel.timings == sel.timings_s
    kw = {f.name: getattr(sel, f.name) for f in dataclasses.fields(sel)}
    kw["timestamps"], kw["timings"] = kw.pop("timestamps_s"), kw.pop("timings_s")
    with pytest.warns(DeprecationWarning) as caught:
        old = PatchSelection(**kw)
    msgs = sorted(str(w.message) for w in caught)
    assert len(msgs) == 2 and all("deprecated" in m for m in msgs)
    assert "timestamps" in msgs[0] and "timings" in msgs[1]
    np.testing.assert_array_equal(old.timestamps_s, sel.timestamps_s)
    none = select_patches(videos["box"].path, budget_frames=2, frame_size=FS, pixels="none")
    with pytest.raises(InvalidArgumentError, match="pixels"):
        none.images()


def test_canvases_round_trip(videos):
    sel = select_patches(videos["box"].path, budget_frames=2, frame_size=FS)
    cv = sel.canvases()
    back = Canvases.from_dict(json.loads(json.dumps(cv.to_dict())))
    _same(cv, back, skip=("images",))
    assert back.images is None
    with pytest.warns(DeprecationWarning):
        np.testing.assert_array_equal(cv.timestamps, cv.timestamps_s)


def test_motion_fields_round_trip(videos):
    mf = motion_vectors(videos["box"].path)
    back = MotionFields.from_dict(json.loads(json.dumps(mf.to_dict())))
    _same(mf, back)


def test_comparison_round_trip():
    rows = tuple(ComparisonRow(method=m, budget_frames=b, num_tokens=b * 64, span_s=1.0,
                               span_fraction=0.5, frames_touched=b, moving_share=0.5,
                               psnr_db=float("nan") if b == 2 else 20.0, elapsed_s=0.1,
                               anchor_tokens=0, motion_tokens=b * 64)
                 for m in ("uniform", "codec") for b in (2, 4))
    c = Comparison(path="x.mp4", num_frames=90, duration_s=3.0, signal="motion_vectors",
                   eval_frames=10, config=PatchConfig.make(frame_size=(224, 448)), rows=rows)
    d = json.loads(json.dumps(c.to_dict()))
    back = Comparison.from_dict(d)
    assert back.config == c.config and back.path == c.path and len(back.rows) == 4
    assert np.isnan(back.rows[0].psnr_db) and back.rows[1] == c.rows[1]
    d["rows"][1]["seconds"] = d["rows"][1].pop("elapsed_s")  # the old key
    assert Comparison.from_dict(d).rows[1] == c.rows[1]
    with pytest.warns(DeprecationWarning, match="elapsed_s"):
        assert rows[0].seconds == 0.1


def test_methods_alias_is_deprecated():
    import vidsel.codec as codec

    with pytest.warns(DeprecationWarning, match="vidsel.methods"):
        assert codec.METHODS["codec"] is select_patches


@pytest.mark.parametrize("budget_tokens", [1, 7, 195, 197])
def test_budget_tokens_below_a_frame_gives_a_valid_selection(videos, budget_tokens):
    """Trial 7: `select_patches(path, budget_frames=None, budget_tokens=7)` raised a raw
    IndexError (a video with a cut, fewer tokens than one frame): now exactly that many
    tokens, a valid result."""
    for name in ("cut", "box"):
        sel = select_patches(videos[name].path, budget_frames=None, budget_tokens=budget_tokens)
        assert sel.num_tokens == sel.budget_tokens == budget_tokens
        assert sel.positions.shape == (4 * budget_tokens, 3)
        assert sel.pixels is not None and sel.pixels.shape == (4 * budget_tokens, 14, 14, 3)
        assert len(sel.anchor_frames) <= budget_tokens // 196  # no anchor beyond the budget
        assert PatchSelection.from_dict(json.loads(json.dumps(sel.to_dict()))) == \
            dataclasses.replace(sel, pixels=None)


def _header(img, height: int = 16) -> np.ndarray:
    return np.asarray(img)[:height]


def test_codec_contact_sheet_shows_every_anchor_and_says_what_it_left_out(videos):
    """Trial 14: a sheet capped at `max_frames` tiles keeps every anchor frame and its title
    says "6 of 33 frames shown" (it used to drop tiles, anchors included, silently)."""
    from vidsel.render import ANCHOR_COLOUR, MOTION_COLOUR, contact_sheet

    sel = select_patches(videos["cut"].path, budget_frames=8, frame_size=112)
    total, anchors = len(sel.source_frames), len(sel.anchor_frames)
    assert anchors == 2 and total > 6
    sheet = sel.contact_sheet(thumb=32, max_frames=6)
    title = (f"codec: {sel.num_tokens}/{sel.budget_tokens} tokens from {total} frames - "
             f"6 of {total} frames shown")
    blank = np.zeros((6, 112, 112, 3), np.uint8)
    ref = contact_sheet(blank, [""] * 6, thumb=32, title=title, borders=[ANCHOR_COLOUR] * 6)
    assert sheet.size == ref.size
    np.testing.assert_array_equal(_header(sheet), _header(ref))  # the title, pixel for pixel
    border = (np.asarray(ref) == ANCHOR_COLOUR).all(-1)  # every tile's frame
    per_tile = border.sum() // 6
    px = np.asarray(sheet)
    assert ((px == ANCHOR_COLOUR).all(-1) & border).sum() == anchors * per_tile
    assert ((px == MOTION_COLOUR).all(-1) & border).sum() == (6 - anchors) * per_tile
    # nothing left out: no note
    full = sel.contact_sheet(thumb=32)
    ref_full = contact_sheet(np.zeros((total, 112, 112, 3), np.uint8), [""] * total, thumb=32,
                             title=f"codec: {sel.num_tokens}/{sel.budget_tokens} tokens from "
                                   f"{total} frames")
    np.testing.assert_array_equal(_header(full), _header(ref_full))


def test_frame_contact_sheet_says_what_it_left_out(videos):
    from vidsel import run_method
    from vidsel.render import MAX_TILES, contact_sheet

    sel = run_method("uniform", videos["box"].path, budget=60)
    sheet = sel.contact_sheet(thumb=24)
    ref = contact_sheet(np.zeros((MAX_TILES, 18, 24, 3), np.uint8), [""] * MAX_TILES, thumb=24,
                        title=f"uniform, k=60 - {MAX_TILES} of 60 frames shown")
    assert sheet.size == ref.size
    np.testing.assert_array_equal(_header(sheet), _header(ref))


def test_tile_positions_keeps_marked_rows():
    from vidsel.render import tile_positions

    keep = np.zeros(51, bool)
    keep[[0, 17, 33, 34]] = True
    pos = tile_positions(51, 8, keep=keep)
    assert len(pos) == 8 and set(pos.tolist()) >= {0, 17, 33, 34}
    assert np.all(np.diff(pos) > 0)
    assert tile_positions(51, 3, keep=keep).tolist() == [0, 33, 34]  # evenly among the kept
    assert tile_positions(5, 8, keep=keep[:5]).tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(tile_positions(51, 48), tile_positions(51, 48, keep=None))


def test_every_result_plots_the_same_way(videos, tmp_path):
    """Trial 13: `plot(path=None)` returns a matplotlib Figure for Selection, PatchSelection
    and Comparison, and saves it when a path is given."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from vidsel import run_method

    path = videos["box"].path
    frames = run_method("uniform", path, budget=4)
    patches = select_patches(path, budget_frames=2, frame_size=FS)
    for name, res in (("frames", frames), ("patches", patches)):
        fig = res.plot()
        assert isinstance(fig, Figure) and len(fig.axes) == 1
        out = tmp_path / f"{name}.png"
        assert isinstance(res.plot(out), Figure) and out.read_bytes().startswith(b"\x89PNG")
        other = Figure()
        ax = other.add_subplot()
        assert res.plot(ax=ax, title="t") is other and ax.get_title() == "t"
    ax = patches.plot().axes[0]
    tokens = sum(seg[1][1] for c in ax.collections for seg in c.get_segments())
    assert tokens == patches.num_tokens  # one bar per contributing frame, its token count
    with pytest.warns(DeprecationWarning, match="plot"):
        ax = Figure().add_subplot()
        assert frames.plot(ax) is ax.figure  # the 0.1 call still works
    with pytest.raises(InvalidArgumentError, match="path"):
        patches.plot(Figure().add_subplot())
