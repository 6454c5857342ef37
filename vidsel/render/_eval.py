"""The evaluation figure: a metric against the budget (log2 axis), one line per method with its
confidence band, one panel per benchmark, as in the codec-vs-frame papers.

Plain data in (no records, no report object), a matplotlib ``Figure`` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidArgumentError
from ..optional import require

__all__ = ["BASELINE_METHOD", "eval_plot"]

#: The method drawn as the reference line (grey, dashed) when present.
BASELINE_METHOD = "uniform"
#: Panels per row before the figure wraps.
_MAX_COLUMNS = 3

#: One point of a line: (budget, mean, ci_low, ci_high); ci bounds may be None.
Point = tuple[float, float, float | None, float | None]


def eval_plot(panels: Sequence[tuple[str, str, Mapping[str, Sequence[Point]]]], *,
              title: str = "", xlabel: str = "budget (frame-equivalents)") -> Any:
    """Draw metric vs budget, one panel per entry of ``panels``.

    Args:
        panels: ``[(panel_title, ylabel, {line_label: [(budget, mean, ci_low, ci_high), ...]}),
            ...]``; points need not be sorted; a line labelled :data:`BASELINE_METHOD` (or
            starting with it, ``"uniform (model)"``) is drawn grey and dashed. Each line keeps
            one colour across panels.
        title: the figure title.
        xlabel: the x axis label of every panel.

    Returns:
        A matplotlib ``Figure`` (built directly: no pyplot state, no backend switch); the x
        axis is log2 with a tick at every budget drawn.

    Raises:
        InvalidArgumentError: ``panels`` is empty or a point is not 4 numbers.
        MissingDependencyError: matplotlib is not installed.
    """
    if not panels:
        raise InvalidArgumentError("eval_plot: no panels to draw (no scored results?)")
    require("matplotlib", "plotting an evaluation", extra="plot")  # the package itself, too
    Figure = require("matplotlib.figure", "plotting an evaluation", extra="plot").Figure
    labels = sorted({label for _, _, lines in panels for label in lines},
                    key=lambda s: (not s.startswith(BASELINE_METHOD), s))
    palette = [f"C{i}" for i in range(10)]
    others = [label for label in labels if not label.startswith(BASELINE_METHOD)]
    colours = {label: palette[i % len(palette)] for i, label in enumerate(others)}
    cols = min(len(panels), _MAX_COLUMNS)
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(4.4 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (panel_title, ylabel, lines) in zip(axes, panels):
        budgets: set[float] = set()
        n_base = 0  # several models: each uniform line its own grey and marker
        for label in sorted(lines, key=labels.index):
            try:
                pts = sorted((float(b), float(m), lo, hi) for b, m, lo, hi in lines[label])
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"eval_plot: panel {panel_title!r} line {label!r}: "
                                           f"points must be (budget, mean, ci_low, ci_high)"
                                           ) from None
            if not pts:
                continue
            x = [p[0] for p in pts]
            budgets.update(x)
            base = label.startswith(BASELINE_METHOD)
            marker = "o"
            if base:
                style = {"color": ("0.35", "0.6", "0.15", "0.75")[n_base % 4], "linestyle": "--"}
                marker = ("o", "s", "^", "D")[n_base % 4]
                n_base += 1
            else:
                style = {"color": colours[label]}
            ax.plot(x, [p[1] for p in pts], marker=marker, ms=4, label=label, **style)
            band = [(p[0], p[2], p[3]) for p in pts if p[2] is not None and p[3] is not None]
            if band:
                ax.fill_between([b[0] for b in band], [float(b[1]) for b in band],
                                [float(b[2]) for b in band], color=style["color"], alpha=0.15,
                                lw=0)
        ax.set_xscale("log", base=2)
        if budgets:
            ticks = sorted(budgets)
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(panel_title[:80], fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
