"""The result contract of the codec package and vidsel.results: ``==`` on every result type,
exact JSON round trips, only VidselErrors on bad input, registries, and the ``indices`` name."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from vidsel.codec import compare, motion_vectors, select_patches, uniform_patches
from vidsel.codec._score import ENERGY, motion_energy
from vidsel.errors import InvalidArgumentError
from vidsel.registry import Registry
from vidsel.results import (
    PRESETS,
    Canvases,
    Comparison,
    ComparisonRow,
    MotionFields,
    PatchConfig,
    PatchSelection,
    Selection,
)

FS = 224


def _json(d):
    return json.loads(json.dumps(d))


@pytest.fixture(scope="module")
def sel(videos):
    return select_patches(videos["cut"].path, budget_frames=3, frame_size=FS)


@pytest.fixture(scope="module")
def mf(videos):
    return motion_vectors(videos["box"].path)


def _row(b: int, psnr: float) -> ComparisonRow:
    return ComparisonRow(method="codec", budget_frames=b, num_tokens=b * 64, span_s=1.0,
                         span_fraction=0.5, frames_touched=b, moving_share=0.5, psnr_db=psnr,
                         elapsed_s=0.1, anchor_tokens=0, motion_tokens=b * 64)


def _selection() -> Selection:
    return Selection(indices=[0, 5, 9], timestamps_s=[0.0, 0.2, 0.36], scores=[0.1, np.nan, 0.3],
                     method="dpp", params={"sizes": (1, 2), "alpha": 0.5}, source_fps=25.0,
                     path="x.mp4", num_frames=10, num_candidates=10, question="why?",
                     timings_s={"decode": 0.5, "embed_images": float("nan")},
                     candidate_timestamps_s=np.linspace(0, 0.36, 10),
                     candidate_scores=np.full(10, 0.2), tokens_per_frame=196)


# -- == and exact round trips ----------------------------------------------------------------

def test_every_result_round_trips_exactly(sel, mf):
    comparison = Comparison(path="x.mp4", num_frames=90, duration_s=3.0, signal="pixel_diff",
                            eval_frames=10, config=PatchConfig.make(frame_size=(224, 448)),
                            rows=(_row(2, float("nan")), _row(4, 21.5)))
    # pixels are not serialised: the rebuilt result equals the original without its pixels
    cases = [
        (dataclasses.replace(sel, pixels=None), PatchSelection),
        (dataclasses.replace(sel.canvases(), images=None), Canvases),
        (mf, MotionFields),
        (comparison, Comparison),
        (_row(2, float("nan")), ComparisonRow),
        (sel.config, PatchConfig),
        (_selection(), Selection),
    ]
    for res, cls in cases:
        back = cls.from_dict(_json(res.to_dict()))
        assert back == res, cls.__name__
        assert type(back) is cls
    # results hold arrays: unhashable, and == never raises on them
    for res in (sel, mf, comparison, _selection()):
        with pytest.raises(TypeError):
            hash(res)
    assert sel == sel and sel != dataclasses.replace(sel, pixels=None)
    assert sel != dataclasses.replace(sel, scores=sel.scores + 1)
    assert (sel == "not a selection") is False


def test_nan_timings_and_scores_survive(sel):
    s = dataclasses.replace(sel, pixels=None, timings_s={**sel.timings_s, "pixels": math.nan})
    back = PatchSelection.from_dict(_json(s.to_dict()))
    assert math.isnan(back.timings_s["pixels"]) and back == s
    assert np.isnan(back.scores[back.is_anchor]).all()
    sel2 = Selection.from_dict(_json(_selection().to_dict()))
    assert math.isnan(sel2.timings_s["embed_images"]) and np.isnan(sel2.scores[1])
    assert sel2.params["sizes"] == [1, 2]  # JSON has no tuples; == treats them alike
    assert sel2 == _selection()


def test_equal_ignores_wall_times_only(mf):
    assert mf == dataclasses.replace(mf, elapsed_s=mf.elapsed_s + 5)
    flow = mf.flow.copy()
    flow[0, 0, 0, 0] += 1
    assert mf != dataclasses.replace(mf, flow=flow)


# -- the indices name ------------------------------------------------------------------------

def test_motion_fields_indices_with_deprecated_alias(mf):
    assert mf.indices.dtype == np.int64 and len(mf) == len(mf.indices)
    with pytest.warns(DeprecationWarning, match="frame_indices"):
        np.testing.assert_array_equal(mf.frame_indices, mf.indices)
    kw = {f.name: getattr(mf, f.name) for f in dataclasses.fields(mf)}
    kw["frame_indices"] = kw.pop("indices")
    with pytest.warns(DeprecationWarning, match="frame_indices"):
        assert MotionFields(**kw) == mf
    d = _json(mf.to_dict())
    assert "indices" in d and "frame_indices" not in d
    d["frame_indices"] = d.pop("indices")  # what older releases wrote
    assert MotionFields.from_dict(d) == mf


def test_patch_selection_documents_its_scores():
    doc = PatchSelection.__doc__ or ""
    assert "change energy" in doc and "Selection.scores" in doc


# -- bad input raises VidselErrors only ------------------------------------------------------

@pytest.mark.parametrize("cls", [PatchSelection, Canvases, MotionFields, Comparison,
                                 ComparisonRow, PatchConfig, Selection])
@pytest.mark.parametrize("data", [None, [], "x", {}, {"path": 3}])
def test_from_dict_malformed_input(cls, data):
    with pytest.raises(InvalidArgumentError, match=f"{cls.__name__}.from_dict"):
        cls.from_dict(data)


def test_from_dict_wrong_value_types(sel, mf):
    d = _json(sel.to_dict())
    d["positions"] = "abc"
    with pytest.raises(InvalidArgumentError, match="PatchSelection.from_dict: malformed"):
        PatchSelection.from_dict(d)
    d = _json(sel.to_dict())
    d["timings_s"] = [1, 2]
    with pytest.raises(InvalidArgumentError, match="PatchSelection.from_dict: malformed"):
        PatchSelection.from_dict(d)
    d = _json(mf.to_dict())
    d["coded_size"] = 5
    with pytest.raises(InvalidArgumentError, match="MotionFields.from_dict: malformed"):
        MotionFields.from_dict(d)
    d = _json(_selection().to_dict())
    d["indices"] = {"a": 1}
    with pytest.raises(InvalidArgumentError, match="Selection.from_dict: malformed"):
        Selection.from_dict(d)


def test_result_constructors_take_lists(sel, mf):
    kw = {f.name: getattr(sel, f.name) for f in dataclasses.fields(sel)}
    for name in ("positions", "timestamps_s", "is_anchor", "scores", "anchor_frames",
                 "candidate_frames", "cut_frames"):
        kw[name] = kw[name].tolist()
    kw["pixels"] = None
    lst = PatchSelection(**kw)
    assert isinstance(lst.positions, np.ndarray) and lst.num_tokens == sel.num_tokens
    assert lst == dataclasses.replace(sel, pixels=None)
    cv = sel.canvases()
    cv2 = Canvases(images=None, positions=cv.positions.tolist(), valid=cv.valid.tolist(),
                   timestamps_s=cv.timestamps_s.tolist(), patch_size=cv.patch_size)
    assert cv2 == dataclasses.replace(cv, images=None)
    kw = {f.name: getattr(mf, f.name) for f in dataclasses.fields(mf)}
    for name in ("indices", "pict_type", "flow", "coverage", "intra_share"):
        kw[name] = kw[name].tolist()
    assert MotionFields(**kw) == mf
    # not an array at all: an InvalidArgumentError naming the field, never AttributeError
    with pytest.raises(InvalidArgumentError, match="PatchSelection.positions"):
        PatchSelection(**{**kw_of(sel), "positions": 3})
    with pytest.raises(InvalidArgumentError, match="MotionFields.flow"):
        MotionFields(**{**kw_of(mf), "flow": None})
    with pytest.raises(InvalidArgumentError, match="config"):
        PatchSelection(**{**kw_of(sel), "config": {"patch_size": 14}})


def kw_of(res):
    return {f.name: getattr(res, f.name) for f in dataclasses.fields(res)}


def test_bad_arguments_to_codec_functions(videos):
    path = videos["box"].path
    for fn in (select_patches, uniform_patches):
        with pytest.raises(InvalidArgumentError, match="interpolation='foo'.*'BILINEAR'"):
            fn(path, interpolation="foo")
        with pytest.raises(InvalidArgumentError, match="stream="):
            fn(path, stream="a")
        with pytest.raises(InvalidArgumentError, match="must be a str or os.PathLike"):
            fn(None)
    with pytest.raises(InvalidArgumentError, match="budgets=None"):
        compare(path, budgets=None)
    with pytest.raises(InvalidArgumentError, match="budgets='a'"):
        compare(path, budgets=["a"])
    with pytest.raises(InvalidArgumentError, match="budgets="):
        compare(path, budgets="48")
    with pytest.raises(InvalidArgumentError, match="at least one"):
        compare(path, budgets=[])


def test_compare_takes_a_single_budget(videos):
    c = compare(videos["box"].path, budgets=1, frame_size=FS, eval_frames=8)
    assert sorted({r.budget_frames for r in c.rows}) == [1] and len(c.rows) == 2


# -- registries ------------------------------------------------------------------------------

def test_presets_and_energy_are_registries():
    assert isinstance(PRESETS, Registry) and isinstance(ENERGY, Registry)
    assert PRESETS["ovis2.5"] == PatchConfig.preset("ovis2.5") == PatchConfig(16, 2, (448, 448))
    assert "llava-ov-2" in PRESETS and PRESETS.names() == ("llava-ov-2", "ovis2.5")
    with pytest.raises(InvalidArgumentError, match="'llava-ov-2', 'ovis2.5'"):
        PatchConfig.preset("nope")
    assert ENERGY["motion_vectors"] is motion_energy
    assert ENERGY.names() == ("motion_vectors", "pixel_diff")
    with pytest.raises(InvalidArgumentError, match="'motion_vectors', 'pixel_diff'"):
        ENERGY.get("optical_flow")
