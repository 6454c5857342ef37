"""compare(): uniform vs codec at equal budgets, with the hold-last fidelity proxy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidsel import run_method
from vidsel._progress import enable_progress
from vidsel.codec import (
    Comparison,
    ComparisonRow,
    PatchConfig,
    compare,
    select_patches,
    uniform_patches,
)
from vidsel.codec._compare import hold_last_psnr


def test_compare_box(videos, tmp_path):
    c = compare(videos["box"].path, budgets=(2, 4), frame_size=224, eval_frames=45)
    assert isinstance(c, Comparison) and len(c.rows) == 4
    by = {(r.method, r.budget_frames): r for r in c.rows}
    for b in (2, 4):
        u, k = by[("uniform", b)], by[("codec", b)]
        assert u.num_tokens == k.num_tokens == b * 64
        assert k.frames_touched > 4 * u.frames_touched
        # both cover the clip (the uniform frames include the first and the last one)
        assert k.span_fraction > 0.9 and u.span_fraction > 0.9
        assert k.moving_share > u.moving_share
        assert k.psnr_db > u.psnr_db  # the moving box is re-rendered where it is
    assert "| 2 | codec |" in c.table()
    assert json.loads(c.to_json())["rows"][0]["method"] == "uniform"
    pytest.importorskip("matplotlib")
    c.plot(tmp_path / "cmp.png")
    assert (tmp_path / "cmp.png").stat().st_size > 0


def test_hold_last_is_exact_for_dense_selection(videos):
    # every frame kept dense -> re-rendering equals the frames -> PSNR at the cap
    from vidsel.io import VideoReader

    sel = select_patches(videos["box"].path, budget_frames=200, frame_size=56)
    idx = np.arange(0, 90, 10)
    with VideoReader(sel.path) as r:
        refs = r.get_frames(idx, size=(56, 56)).astype(np.float32)
    refs = refs.reshape(len(idx), 28, 2, 28, 2, 3).mean(axis=(2, 4))
    assert hold_last_psnr(sel, idx, refs) == 100.0


def test_plot_leaves_matplotlib_global_state_alone(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from vidsel.codec import ComparisonRow, PatchConfig

    def forbidden(*_a, **_k):
        raise AssertionError("library code must not touch matplotlib's global state")

    # no backend switch (breaks Jupyter inline) and no pyplot figure manager
    for mod, name in ((matplotlib, "use"), (plt, "figure"), (plt, "subplots"), (plt, "close")):
        monkeypatch.setattr(mod, name, forbidden)
    backend, figs = matplotlib.get_backend(), plt.get_fignums()
    rows = tuple(ComparisonRow(method=m, budget_frames=b, num_tokens=b * 64, span_s=1.0,
                               span_fraction=0.5, frames_touched=b, moving_share=0.5,
                               psnr_db=20.0 + b, elapsed_s=0.1, anchor_tokens=0,
                               motion_tokens=b * 64)
                 for m in ("uniform", "codec") for b in (2, 4))
    c = Comparison(path="x.mp4", num_frames=90, duration_s=3.0, signal="motion_vectors",
                   eval_frames=10, config=PatchConfig(), rows=rows)
    c.plot(tmp_path / "cmp.png")
    assert c._repr_png_().startswith(b"\x89PNG")
    assert (tmp_path / "cmp.png").stat().st_size > 0
    assert matplotlib.get_backend() == backend and plt.get_fignums() == figs


def _rows() -> tuple[ComparisonRow, ...]:
    return tuple(ComparisonRow(method=m, budget_frames=b, num_tokens=b * 64, span_s=1.0,
                               span_fraction=0.5, frames_touched=b, moving_share=0.5,
                               psnr_db=20.0 + b, elapsed_s=0.1, anchor_tokens=0,
                               motion_tokens=b * 64)
                 for m in ("uniform", "codec") for b in (2, 4))


def test_uniform_row_is_the_uniform_method_a_user_runs(videos):
    """The "uniform" row measures the frames `run_method("uniform", ...)` picks (first and
    last frame included), not another uniform rule (it used to take segment centres)."""
    path = videos["box"].path
    c = compare(path, budgets=(1, 2, 4, 7), frame_size=112, eval_frames=30)
    for r in c.rows:
        if r.method != "uniform":
            continue
        user = run_method("uniform", path, budget=r.budget_frames)
        u = uniform_patches(path, budget_frames=r.budget_frames, frame_size=112)
        np.testing.assert_array_equal(u.source_frames, user.indices)
        np.testing.assert_allclose(u.source_timestamps_s, user.timestamps_s)
        assert r.frames_touched == len(user.indices)
        assert r.span_s == pytest.approx(float(user.timestamps_s[-1] - user.timestamps_s[0]))
        assert r.num_tokens == r.budget_frames * PatchConfig.make(frame_size=112) \
            .tokens_per_frame


def test_compare_progress(videos, capsys):
    path = videos["box"].path
    kw = dict(budgets=2, frame_size=112, eval_frames=10)
    compare(path, progress=True, **kw)
    err = capsys.readouterr().err
    assert "compare" in err and "step" in err  # a tqdm bar on stderr
    compare(path, progress=False, **kw)
    compare(path, **kw)  # None: off unless switched on for the process
    assert capsys.readouterr().err == ""
    enable_progress(True)
    try:
        compare(path, **kw)
    finally:
        enable_progress(False)
    assert "compare" in capsys.readouterr().err


def test_comparison_plot_returns_a_figure_and_saves_when_asked(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    c = Comparison(path="x.mp4", num_frames=90, duration_s=3.0, signal="motion_vectors",
                   eval_frames=10, config=PatchConfig(), rows=_rows())
    fig = c.plot()  # no path: nothing written
    assert isinstance(fig, Figure) and len(fig.axes) == 3 and not list(tmp_path.iterdir())
    out = tmp_path / "cmp.png"
    assert isinstance(c.plot(out), Figure) and out.read_bytes().startswith(b"\x89PNG")
    assert isinstance(c.plot(str(tmp_path / "cmp.svg")), Figure)
    assert (tmp_path / "cmp.svg").stat().st_size > 0
    assert c._repr_png_().startswith(b"\x89PNG")
    empty = Comparison(path="x.mp4", num_frames=90, duration_s=3.0, signal="none",
                       eval_frames=10, config=PatchConfig())
    assert empty._repr_png_() is None
