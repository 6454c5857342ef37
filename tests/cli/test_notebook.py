"""Notebook rendering: Selection contact sheet (``_repr_png_``) and relevance plot, codec sheets."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from vidsel.errors import InvalidArgumentError, MissingDependencyError
from vidsel.render import contact_sheet, relevance_plot, to_png
from vidsel.selection import Selection, select_frames


def test_uniform_selection_renders_as_png(clip: str) -> None:
    from PIL import Image

    sel = select_frames(clip, k=6, method="uniform")
    png = sel._repr_png_()
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    img = Image.open(io.BytesIO(png))
    assert img.size[0] >= 3 * 160 and img.mode == "RGB"
    assert "Selection(k=6" in repr(sel)  # the text repr is unchanged


def test_repr_png_never_raises(tmp_path) -> None:
    sel = Selection(indices=np.array([0, 3]), timestamps_s=[0.0, 0.1], scores=None,
                    method="uniform", source_fps=30.0, path=str(tmp_path / "gone.mp4"))
    assert sel._repr_png_() is None
    assert Selection(indices=np.array([0]), timestamps_s=[0.0], scores=None, method="x",
                     source_fps=30.0)._repr_png_() is None


def test_plot_relevance_curve_marks_chosen_frames(clip: str, tiny_clip_dir) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = select_frames(clip, "where is the yellow box", k=4, method="topk",
                        embedder=str(tiny_clip_dir), candidates=12)
    assert sel.candidate_scores is not None and sel.candidate_scores.shape == (12,)
    assert sel.candidate_timestamps_s is not None
    np.testing.assert_allclose(np.sort(sel.candidate_scores)[-4:], np.sort(sel.scores),
                               rtol=1e-6)  # top-k picks the highest relevance
    open_before = plt.get_fignums()
    fig = sel.plot()
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure) and plt.get_fignums() == open_before  # no pyplot state
    (ax,) = fig.axes
    line = ax.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), sel.candidate_timestamps_s)
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 0], sel.timestamps_s)
    d = sel.to_dict()
    back = Selection.from_dict(d)
    np.testing.assert_allclose(back.candidate_scores, sel.candidate_scores)
    assert back.to_dict() == d
    png = sel._repr_png_()
    assert png is not None and png.startswith(b"\x89PNG")


def test_uniform_plot_and_no_candidate_keys(clip: str) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = select_frames(clip, k=3, method="uniform")
    assert "candidate_scores" not in sel.to_dict()  # unchanged when there is no relevance
    fig, ax = plt.subplots()
    assert sel.plot(ax=ax) is fig and len(ax.collections) == 1  # draws on the given axes
    plt.close(fig)


def test_plot_without_matplotlib_says_how_to_install(clip: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    sel = select_frames(clip, k=3, method="uniform")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'vidsel\[plot\]'"):
        sel.plot()


def test_candidate_fields_are_checked() -> None:
    ok = dict(indices=np.array([1]), timestamps_s=[0.0], scores=None, method="x",
              source_fps=30.0)
    with pytest.raises(InvalidArgumentError, match="together"):
        Selection(**ok, candidate_scores=np.zeros(3))
    with pytest.raises(InvalidArgumentError, match="same length"):
        Selection(**ok, candidate_scores=np.zeros(3), candidate_timestamps_s=np.zeros(2))


def test_patch_selection_sheet(clip: str) -> None:
    from vidsel.codec import select_patches

    res = select_patches(clip, budget_frames=2, frame_size=112)
    img = res.contact_sheet(thumb=64)
    assert to_png(img).startswith(b"\x89PNG")
    with pytest.raises(InvalidArgumentError, match="pixels"):
        select_patches(clip, budget_frames=2, frame_size=112, pixels="none").contact_sheet()


def test_render_takes_arrays_and_never_opens_a_video() -> None:
    frames = np.zeros((3, 20, 40, 3), np.uint8)
    img = contact_sheet(frames, ["a", "b", "c\nd"], thumb=40, title="t")
    assert img.mode == "RGB" and img.size[0] == 3 * (40 + 8)
    with pytest.raises(InvalidArgumentError, match="labels"):
        contact_sheet(np.zeros((2, 8, 8, 3), np.uint8), ["one"])
    with pytest.raises(InvalidArgumentError, match="at least one frame"):
        contact_sheet(np.zeros((0, 8, 8, 3), np.uint8), [])
    sel = Selection(indices=np.array([0, 3]), timestamps_s=[0.0, 0.1], scores=[0.2, 0.3],
                    method="topk", source_fps=30.0, question="q")  # no path: nothing to decode
    sheet = sel.contact_sheet(frames=frames[:2], thumb=40)
    assert sheet.size == contact_sheet(frames[:2], ["x", "y"], thumb=40, title="t").size
    pytest.importorskip("matplotlib")
    fig = relevance_plot(np.array([1.0, 2.0]), np.array([0.1, 0.2]),
                         candidate_timestamps_s=np.arange(4.0), candidate_scores=np.zeros(4),
                         duration_s=5.0, title="r")
    (ax,) = fig.axes
    assert ax.get_title() == "r" and ax.get_xlim()[1] == pytest.approx(5.0)


def test_plot_leaves_matplotlib_global_state_alone(clip: str, tmp_path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    sel = select_frames(clip, k=3, method="uniform")
    backend = matplotlib.get_backend()
    figs = plt.get_fignums()
    fig = sel.plot(title="t")
    assert matplotlib.get_backend() == backend and plt.get_fignums() == figs
    fig.savefig(tmp_path / "p.png")  # no pyplot needed to save
    assert (tmp_path / "p.png").stat().st_size > 0
    assert fig.axes[0].get_title() == "t"
