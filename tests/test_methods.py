"""The video-level method registry: one call shape for every method, codec included."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidsel.errors import InvalidArgumentError
from vidsel.methods import METHODS, available_methods, get_method, register_method, run_method
from vidsel.results import PatchConfig, PatchSelection, Selection, VisualSelection

ROOT = Path(__file__).resolve().parents[1]
GEOMETRY = PatchConfig.make(patch_size=14, merge=2, frame_size=112)  # 16 tokens per frame


@pytest.fixture(scope="module")
def clip(make_synth) -> str:
    return make_synth(num_frames=90, gop=15, width=160, height=120).path


def test_builtin_names() -> None:
    assert available_methods() == tuple(sorted(available_methods()))
    for name in ("uniform", "topk", "dpp", "mdp3", "mdp3-reference", "bolt", "aks", "codec"):
        assert name in available_methods()
    assert get_method("codec").kind == "patches"
    assert get_method("uniform").kind == "frames"
    assert get_method("mdp3").needs_embedder and get_method("mdp3").needs_question
    assert not get_method("uniform").needs_embedder


@pytest.mark.parametrize("name", ["uniform", "codec"])
def test_one_call_shape_and_equal_tokens(clip: str, name: str) -> None:
    res = run_method(name, clip, budget=4, geometry=GEOMETRY)
    assert isinstance(res, VisualSelection)
    assert res.kind == get_method(name).kind
    assert res.method == name and res.path == clip
    # equal budgets cost equal tokens, whatever the method
    assert res.num_tokens == 4 * GEOMETRY.tokens_per_frame
    frames = np.asarray(res.source_frames)
    assert frames.ndim == 1 and np.all(np.diff(frames) > 0)
    assert len(res.source_timestamps_s) == len(frames)
    images, labels = res.images()
    assert images.ndim == 4 and images.dtype == np.uint8 and len(labels) == len(images)
    d = json.loads(json.dumps(res.to_dict()))
    back = type(res).from_dict(d)
    np.testing.assert_array_equal(back.source_frames, res.source_frames)
    np.testing.assert_allclose(back.timestamps_s, res.timestamps_s)
    assert back.num_tokens == res.num_tokens


def test_frame_methods_take_an_open_reader(clip: str) -> None:
    import vidsel

    with vidsel.VideoReader(clip) as r:
        res = run_method("uniform", r, budget=3)
    assert isinstance(res, Selection) and len(res) == 3


def test_text_method_with_a_real_tiny_embedder(clip: str, tiny_siglip_dir: Path) -> None:
    res = run_method("mdp3", clip, question="where does the box go", budget=3,
                     geometry=GEOMETRY, embedder=f"hf:{tiny_siglip_dir}", candidates=16)
    assert isinstance(res, Selection) and len(res) == 3
    assert res.num_tokens == 3 * GEOMETRY.tokens_per_frame
    assert res.scores is not None


def test_codec_options_pass_through(clip: str) -> None:
    res = run_method("codec", clip, budget=3, geometry=GEOMETRY, anchors="uniform",
                     pixels="none")
    assert isinstance(res, PatchSelection) and res.pixels is None


@pytest.mark.parametrize(("call", "match"), [
    (lambda c: run_method("nope", c), "method='nope' is not registered; choose one of"),
    (lambda c: run_method("uniform", c, budget=0), "budget=0 must be >= 1"),
    (lambda c: run_method("uniform", c, anchors="uniform"), "does not take option"),
    (lambda c: run_method("codec", c, embedder="x"), "needs question="),
    (lambda c: run_method("codec", c, relevance_share=0.5), "needs a question"),
    (lambda c: run_method("codec", c, question="q", anchors="mdp3"), "needs a question"),
    (lambda c: run_method("codec+mdp3", c, question="q"), "needs an embedder"),
    (lambda c: run_method("mdp3", c, question="q"), "needs an embedder"),
    (lambda c: run_method("mdp3", c, embedder="hf:/x"), "needs a question"),
    (lambda c: run_method("uniform", c, geometry=(14, 2)), "must be a vidsel.results"),
])
def test_bad_calls_are_clear(clip: str, call, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        call(clip)


def test_third_party_method_registers_with_the_same_call(clip: str) -> None:
    @register_method("every-tenth-test", description="frames 0, 10, 20, ...")
    def every_tenth(path, *, question, budget, geometry, step: int = 10):
        import vidsel

        with vidsel.VideoReader(path) as r:
            idx = np.arange(0, len(r), step)[:budget]
            return Selection(indices=idx, timestamps_s=r.metadata.timestamps_s[idx],
                             scores=None, method="every-tenth-test", source_fps=r.metadata.fps,
                             path=r.path, num_frames=len(r),
                             tokens_per_frame=geometry.tokens_per_frame)

    try:
        assert get_method("every-tenth-test").options == frozenset({"step"})
        res = run_method("every-tenth-test", clip, budget=3, step=20)
        assert res.source_frames.tolist() == [0, 20, 40]
        with pytest.raises(InvalidArgumentError, match="already registered"):
            register_method("every-tenth-test", every_tenth)
    finally:
        METHODS.unregister("every-tenth-test")
    assert "every-tenth-test" not in available_methods()


def test_custom_method_example_runs(clip: str) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "custom_method.py"), clip],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [ln.split(":")[0].strip() for ln in lines] == ["uniform", "codec", "keyframes"]
    assert all("tokens" in ln for ln in lines)


def test_method_result_does_not_depend_on_entry_point(clip: str) -> None:
    """run_method and the underlying public functions agree (no hidden re-implementation)."""
    from vidsel import select_frames
    from vidsel.codec import select_patches

    a = run_method("uniform", clip, budget=5)
    b = select_frames(clip, None, 5, method="uniform")
    np.testing.assert_array_equal(a.source_frames, b.indices)
    c = run_method("codec", clip, budget=3, geometry=GEOMETRY)
    d = select_patches(clip, budget_frames=3, patch_size=14, merge=2, frame_size=112)
    np.testing.assert_array_equal(c.positions, d.positions)


def test_options_are_checked_before_any_video_is_read(tmp_path: Path) -> None:
    missing = str(tmp_path / "never-read.mp4")
    with pytest.raises(InvalidArgumentError, match="segment_size"):
        get_method("uniform").check_options({"params": {"segment_size": 3}})
    with pytest.raises(InvalidArgumentError, match="segment_size"):
        run_method("uniform", missing, params={"segment_size": 3})  # not VideoNotFoundError
    get_method("mdp3").check_options({"params": {"lam": 0.2}, "embedder": "x"})
    with pytest.raises(InvalidArgumentError, match="does not take option"):
        get_method("codec").check_options({"candidate_mode": "x"})
    with pytest.raises(InvalidArgumentError, match="relevance_share"):
        run_method("codec", missing, relevance_share=2.0)  # not VideoNotFoundError
    with pytest.raises(InvalidArgumentError, match="does not take"):
        run_method("codec+mdp3", missing, question="q", embedder="x", relevance_share=0.3,
                   anchor_params={"nope": 1})


def test_a_reader_reaches_path_only_methods_as_its_path(clip: str) -> None:
    """Methods registered without takes_reader always get a file path, even from a reader
    (the documented plugin shape opens VideoReader(path) itself)."""
    import vidsel

    seen = []

    @register_method("path-only-test")
    def path_only(path, *, question, budget, geometry):
        seen.append(path)
        return run_method("uniform", path, budget=budget, geometry=geometry)

    try:
        with vidsel.VideoReader(clip) as r:
            res = run_method("path-only-test", r, budget=2)
        assert seen == [clip] and len(res.source_frames) == 2
        runpy_globals = runpy.run_path(str(ROOT / "examples" / "custom_method.py"))
        with vidsel.VideoReader(clip) as r:
            assert len(run_method("keyframes", r, budget=2).source_frames) >= 1
        del runpy_globals
    finally:
        METHODS.unregister("path-only-test")
        if "keyframes" in METHODS:
            METHODS.unregister("keyframes")


def test_codec_from_an_open_reader_uses_its_interpolation(clip: str) -> None:
    import vidsel
    from vidsel.codec import select_patches

    with vidsel.VideoReader(clip, interpolation="AREA") as r:
        res = run_method("codec", r, budget=2, geometry=GEOMETRY)
    ref = select_patches(clip, budget_frames=2, patch_size=14, merge=2, frame_size=112,
                         interpolation="AREA")
    np.testing.assert_array_equal(res.positions, ref.positions)
    np.testing.assert_array_equal(res.pixels, ref.pixels)


def test_result_kind_must_match_the_registration(clip: str) -> None:
    @register_method("liar-test", kind="patches")
    def liar(path, *, question, budget, geometry):
        return run_method("uniform", path, budget=budget)

    try:
        with pytest.raises(InvalidArgumentError, match="registered as kind='patches'"):
            run_method("liar-test", clip, budget=2)
    finally:
        METHODS.unregister("liar-test")


def test_options_a_method_ignores_are_refused_and_none_means_default(clip: str) -> None:
    with pytest.raises(InvalidArgumentError, match="does not take option"):
        run_method("uniform", clip, embedder="hf:/x")
    with pytest.raises(InvalidArgumentError, match="does not take option"):
        run_method("uniform", clip, cache_dir="/tmp/x")
    res = run_method("uniform", clip, budget=2, embedder=None, cache_dir=None)
    assert len(res.source_frames) == 2
    with pytest.raises(InvalidArgumentError, match="must be a video file path"):
        run_method("uniform", None)  # type: ignore[arg-type]


def test_docs_list_every_builtin_method():
    """docs/cli.md names the registry's methods; a new built-in must appear there too."""
    import re
    from pathlib import Path

    from vidsel.methods import available_methods, get_method

    builtin = {n for n in available_methods()  # not the ones other tests register
               if getattr(get_method(n).fn, "__module__", "").startswith("vidsel.")}
    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    listed = text.split("(`available_methods()`:", 1)[1].split("and any method", 1)[0]
    assert set(re.findall(r"`([^`]+)`", listed)) == builtin
