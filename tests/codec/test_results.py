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
