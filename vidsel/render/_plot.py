"""Relevance over time as a matplotlib ``Figure`` (arrays in; needs the ``plot`` extra), and
the one plotting convention of every result.

The figure is built with ``matplotlib.figure.Figure`` directly: no pyplot state is touched and
no backend is selected, so it works the same in scripts, servers and notebooks.

Convention: every result's ``plot(path=None)`` (``Selection``, ``PatchSelection``,
``Comparison``) returns a matplotlib ``Figure`` and, when ``path`` is given, also saves it
there (:func:`save_figure`); ``figure_png`` gives the PNG bytes a notebook shows.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..optional import require

__all__ = ["FIGURE_DPI", "figure_png", "relevance_plot", "save_figure"]

#: Resolution of saved figures and of their PNG bytes.
FIGURE_DPI = 100


def relevance_plot(timestamps_s: np.ndarray, scores: np.ndarray | None = None, *,
                   candidate_timestamps_s: np.ndarray | None = None,
                   candidate_scores: np.ndarray | None = None,
                   duration_s: float | None = None, title: str = "",
                   ax: Any = None) -> Any:
    """Draw the relevance curve of the candidates and mark the chosen frames.

    Args:
        timestamps_s: (k,) float64 time of each chosen frame.
        scores: (k,) float64 relevance of each chosen frame, or None (the frames are then
            drawn as ticks on the time axis).
        candidate_timestamps_s: (n,) float64 time of every candidate, or None.
        candidate_scores: (n,) float64 relevance of every candidate (drawn as a curve), or
            None.
        duration_s: right end of the time axis (default: matplotlib's choice).
        title: axes title (cut to 100 characters).
        ax: a matplotlib ``Axes`` to draw on (default: a new figure).

    Returns:
        The matplotlib ``Figure`` drawn on (``ax.figure`` when ``ax`` is given).

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    require("matplotlib", "plotting a selection", extra="plot")  # the package itself, too
    Figure = require("matplotlib.figure", "plotting a selection", extra="plot").Figure
    if ax is None:
        fig = Figure(figsize=(9, 2.8), layout="tight")
        ax = fig.add_subplot()
    ts = np.asarray(timestamps_s, dtype=np.float64)
    k = len(ts)
    if candidate_scores is not None and candidate_timestamps_s is not None:
        ax.plot(candidate_timestamps_s, candidate_scores, color="0.45", lw=1.2,
                label=f"relevance ({len(candidate_scores)} candidates)")
    if scores is not None:
        ax.scatter(ts, scores, color="tab:red", zorder=3, s=28, label=f"chosen ({k})")
        ax.set_ylabel("relevance (cosine)")
    else:
        ax.scatter(ts, np.zeros(k), color="tab:red", zorder=3, s=28, marker="|",
                   label=f"chosen ({k})")
        ax.set_yticks([])
    for t in ts.tolist():
        ax.axvline(t, color="tab:red", alpha=0.25, lw=0.8)
    if duration_s:
        ax.set_xlim(0.0, max(float(duration_s), float(ts[-1]) if k else 0.0))
    ax.set_xlabel("time (s)")
    ax.set_title(title[:100], fontsize=9)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return ax.figure


def save_figure(fig: Any, path: str | os.PathLike[str] | None) -> Any:
    """Save ``fig`` to ``path`` (format from the suffix) when a path is given; returns ``fig``
    (what every result's ``plot(path=None)`` returns).

    Raises:
        InvalidArgumentError: ``path`` is not a file path (e.g. a matplotlib ``Axes``: pass
            it as ``ax=``).
    """
    if path is None:
        return fig
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"plot(path={path!r}): path must be a file path (str or "
                                   f"os.PathLike); to draw on axes pass ax=")
    fig.savefig(os.fspath(path), dpi=FIGURE_DPI)
    return fig


def figure_png(fig: Any) -> bytes:
    """PNG bytes of a matplotlib ``Figure`` (what Jupyter's ``_repr_png_`` returns)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIGURE_DPI)
    return buf.getvalue()
