"""Codec patch selections as pictures: contact sheets with the selected patches in place, heat
maps of where and when tokens were spent, tokens over time, and the uniform-vs-codec
comparison plot.

Arrays in, ``PIL.Image`` / matplotlib ``Figure`` out; nothing here opens a video or knows a
result type (:class:`vidsel.results.PatchSelection` and :class:`vidsel.results.Comparison`
pass their arrays).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..errors import InvalidArgumentError
from ..optional import require
from ._sheet import (
    _BG,
    _TEXT,
    DEFAULT_THUMB,
    MAX_TILES,
    _font,
    contact_sheet,
    shown_title,
    tile_positions,
)

__all__ = ["ANCHOR_COLOUR", "MOTION_COLOUR", "comparison_plot", "patch_selection_heatmap",
           "patch_selection_plot", "patch_selection_sheet"]

#: Border / bar colours of anchor (dense) and motion-only frames in codec sheets and heat maps.
ANCHOR_COLOUR = (250, 220, 40)
MOTION_COLOUR = (40, 200, 220)
#: Grey of the patches a codec selection did not keep.
_UNSELECTED = 60


def patch_selection_sheet(pixels: np.ndarray, positions: np.ndarray, is_anchor: np.ndarray,
                          timestamps_s: np.ndarray, *, frame_size: tuple[int, int],
                          merge: int, title: str | None = None, thumb: int = DEFAULT_THUMB,
                          columns: int | None = None, max_tiles: int = MAX_TILES
                          ) -> Image.Image:
    """Contact sheet of selected patches: every contributing frame, selected patches in place,
    the rest grey; anchor frames get a yellow border, motion-only frames a cyan one.

    More than ``max_tiles`` contributing frames: every anchor frame is shown (evenly chosen
    only if the anchors alone exceed ``max_tiles``), the other tiles spread evenly over the
    motion-only frames, and the title says so ("48 of 51 frames shown").

    Args:
        pixels: (N, p, p, 3) uint8 patches.
        positions: (N, 3) int64 (source frame, patch row, patch column) of each patch.
        is_anchor: (N,) bool, the patch belongs to a dense anchor frame.
        timestamps_s: (N,) float64 time of each patch's source frame.
        frame_size: (height, width) of the frames the patches were cut from.
        merge: patches per token side (the labels count tokens).
        title: a line above the grid (a note is added when frames are left out).
        thumb: long side of each tile in pixels.
        columns: tiles per row (default: about square, at most 8).
        max_tiles: most frames shown.
    """
    if max_tiles < 1:
        raise InvalidArgumentError(f"max_tiles={max_tiles!r} must be at least 1")
    if len(pixels) != len(positions) or not len(positions):
        raise InvalidArgumentError(f"a patch sheet needs one patch per position, got "
                                   f"{len(pixels)} patches for {len(positions)} positions")
    src = np.unique(positions[:, 0])  # (S,) contributing frames
    anchor_src = np.zeros(len(src), bool)  # (S,) a source frame is an anchor frame
    anchor_src[np.searchsorted(src, positions[np.asarray(is_anchor, bool), 0])] = True
    total = len(src)
    src = src[tile_positions(total, max_tiles, keep=anchor_src)]
    title = shown_title(title, len(src), total)
    h, w = frame_size
    p = int(pixels.shape[1])
    tiles, labels, borders = [], [], []
    for f in src.tolist():
        rows = np.flatnonzero(positions[:, 0] == f)
        canvas = np.full((h, w, 3), _UNSELECTED, np.uint8)
        for i in rows.tolist():
            _, r, c = positions[i]
            canvas[r * p:(r + 1) * p, c * p:(c + 1) * p] = pixels[i]
        anchor = bool(is_anchor[rows].any())
        tiles.append(canvas)
        tokens = len(rows) // merge ** 2
        labels.append(f"#{f}  {float(timestamps_s[rows[0]]):.2f}s\n"
                      f"{'anchor' if anchor else 'motion'} {tokens} tok")
        borders.append(ANCHOR_COLOUR if anchor else MOTION_COLOUR)
    return contact_sheet(np.stack(tiles), labels, columns=columns, thumb=thumb,
                         borders=borders, title=title)


# A short perceptual ramp (dark blue -> teal -> yellow), interpolated.
_RAMP = np.array([[20, 20, 60], [40, 90, 150], [40, 160, 140], [150, 210, 70], [250, 230, 40]],
                 np.float32)


def _colormap(x: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to (..., 3) uint8 colours."""
    t = np.clip(x, 0, 1) * (len(_RAMP) - 1)
    i = np.minimum(t.astype(np.int64), len(_RAMP) - 2)
    f = (t - i)[..., None]
    return (_RAMP[i] * (1 - f) + _RAMP[i + 1] * f).astype(np.uint8)  # type: ignore[no-any-return]


def patch_selection_heatmap(positions: np.ndarray, is_anchor: np.ndarray, *, merge: int,
                            token_grid: tuple[int, int], num_frames: int, duration_s: float,
                            cell: int = 12, time_bins: int = 64) -> Image.Image:
    """Heat map of selected tokens: motion tokens per token position (where, top) and tokens
    per time bin (when, bottom; anchors yellow, motion cyan).

    Args:
        positions: (N, 3) int64 patch positions, token-major (every ``merge**2`` rows one token).
        is_anchor: (N,) bool.
        merge: patches per token side.
        token_grid: (rows, cols) of tokens per frame.
        num_frames: frames in the video (the time axis).
        duration_s: video duration (the caption).
        cell: pixels per token cell.
        time_bins: bars of the time histogram.
    """
    m2 = merge * merge
    th, tw = token_grid
    tok = positions[::m2]
    anchor = is_anchor[::m2]
    spatial = np.zeros((th, tw), np.float32)
    np.add.at(spatial, (tok[~anchor, 1] // merge, tok[~anchor, 2] // merge), 1.0)
    norm = spatial / max(float(spatial.max()), 1.0)
    heat = _colormap(norm).repeat(cell, 0).repeat(cell, 1)  # (th*cell, tw*cell, 3)
    width = max(tw * cell, 512)
    hist_h = 120
    img = Image.new("RGB", (width, th * cell + hist_h + 30), _BG)
    img.paste(Image.fromarray(heat), (0, 0))
    draw = ImageDraw.Draw(img)
    bins = np.linspace(0, num_frames, time_bins + 1)
    ha = np.histogram(tok[anchor, 0], bins)[0]
    hm = np.histogram(tok[~anchor, 0], bins)[0]
    top = max(int((ha + hm).max()), 1)
    bw = width / time_bins
    base = th * cell + hist_h + 10
    for i in range(time_bins):
        a = ha[i] / top * hist_h
        mo = hm[i] / top * hist_h
        x0, x1 = i * bw, (i + 1) * bw - 1
        draw.rectangle([x0, base - a, x1, base], fill=ANCHOR_COLOUR)
        draw.rectangle([x0, base - a - mo, x1, base - a], fill=MOTION_COLOUR)
    draw.text((4, base + 4), f"tokens over time (0 - {duration_s:.1f} s); "
              f"yellow anchors, cyan motion", fill=_TEXT, font=_font())
    return img


def comparison_plot(series: Mapping[str, Sequence[tuple[int, float, int, float]]], *,
                    title: str = "") -> Any:
    """PSNR / frames touched / moving share against the budget, one line per method.

    Args:
        series: ``{method: [(budget_frames, psnr_db, frames_touched, moving_share), ...]}``.
        title: the figure title.

    Returns:
        A matplotlib ``Figure`` (built directly: no pyplot state, no backend switch).

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    require("matplotlib", "plotting a comparison", extra="plot")  # the package itself, too
    Figure = require("matplotlib.figure", "plotting a comparison", extra="plot").Figure
    fig = Figure(figsize=(12, 3.4))
    axes = fig.subplots(1, 3)
    for method in sorted(series):
        pts = sorted(series[method])
        b = [r[0] for r in pts]
        for k, ax in enumerate(axes):
            ax.plot(b, [r[k + 1] for r in pts], marker="o", label=method)
    for ax, name in zip(axes, ("hold-last PSNR (dB)", "source frames touched",
                               "share of tokens on moving content")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("budget (frame-equivalents)")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def patch_selection_plot(positions: np.ndarray, is_anchor: np.ndarray,
                         timestamps_s: np.ndarray, *, merge: int,
                         duration_s: float | None = None, title: str = "",
                         ax: Any = None) -> Any:
    """Tokens spent per contributing frame over time (anchor frames yellow, motion cyan): the
    codec counterpart of :func:`vidsel.render.relevance_plot`.

    Args:
        positions: (N, 3) int64 patch positions, token-major (every ``merge**2`` rows one token).
        is_anchor: (N,) bool.
        timestamps_s: (N,) float64 time of each patch's source frame.
        merge: patches per token side.
        duration_s: right end of the time axis (default: matplotlib's choice).
        title: axes title (cut to 100 characters).
        ax: a matplotlib ``Axes`` to draw on (default: a new figure).

    Returns:
        The matplotlib ``Figure`` drawn on (``ax.figure`` when ``ax`` is given).

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    require("matplotlib", "plotting a patch selection", extra="plot")
    Figure = require("matplotlib.figure", "plotting a patch selection", extra="plot").Figure
    if ax is None:
        fig = Figure(figsize=(9, 2.8), layout="tight")
        ax = fig.add_subplot()
    m2 = merge * merge
    _, first, tokens = np.unique(positions[::m2, 0], return_index=True,
                                 return_counts=True)  # (S,) per contributing frame
    t = np.asarray(timestamps_s, np.float64)[::m2][first]  # (S,) time of each frame
    anchor = np.asarray(is_anchor, bool)[::m2][first]  # (S,)
    for mask, colour, name in ((anchor, ANCHOR_COLOUR, "anchor"),
                               (~anchor, MOTION_COLOUR, "motion")):
        if mask.any():
            ax.vlines(t[mask], 0, tokens[mask], colors=[tuple(c / 255 for c in colour)],
                      lw=2.0, label=f"{name} frames ({int(mask.sum())}, "
                                    f"{int(tokens[mask].sum())} tok)")
    if duration_s:
        ax.set_xlim(0.0, max(float(duration_s), float(t.max()) if len(t) else 0.0))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("tokens")
    ax.set_title(title[:100], fontsize=9)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return ax.figure
