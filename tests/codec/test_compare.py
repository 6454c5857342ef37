"""compare(): uniform vs codec at equal budgets, with the hold-last fidelity proxy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidsel.codec import Comparison, compare, select_patches
from vidsel.codec._compare import hold_last_psnr


def test_compare_box(videos, tmp_path):
    c = compare(videos["box"].path, budgets=(2, 4), frame_size=224, eval_frames=45)
    assert isinstance(c, Comparison) and len(c.rows) == 4
    by = {(r.method, r.budget_frames): r for r in c.rows}
    for b in (2, 4):
        u, k = by[("uniform", b)], by[("codec", b)]
        assert u.num_tokens == k.num_tokens == b * 64
        assert k.frames_touched > 4 * u.frames_touched
        assert k.span_fraction >= u.span_fraction
        assert k.moving_share > u.moving_share
        assert k.psnr_db > u.psnr_db  # the moving box is re-rendered where it is
    assert "| 2 | codec |" in c.table()
    assert json.loads(c.to_json())["rows"][0]["method"] == "uniform"
    pytest.importorskip("matplotlib")
    assert c.plot(tmp_path / "cmp.png").stat().st_size > 0


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
    assert c.plot(tmp_path / "cmp.png").stat().st_size > 0
    assert matplotlib.get_backend() == backend and plt.get_fignums() == figs
