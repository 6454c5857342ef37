"""Contact sheets and heat maps of selections (Pillow only).

The one implementation behind :class:`vidsel.selection.Selection` (``contact_sheet``,
``save_contact_sheet``, ``_repr_png_`` in notebooks), :class:`vidsel.codec.PatchSelection`
(the same three plus ``save_heatmap``) and the command line (``vidsel select --contact-sheet``,
``vidsel demo``, batch assets). Codec results use :func:`patch_selection_sheet` (selected
patches in place, the rest grey) and :func:`patch_selection_heatmap`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidArgumentError

if TYPE_CHECKING:
    from PIL import Image

    from .codec import PatchSelection
    from .selection import Selection

__all__ = [
    "DEFAULT_THUMB",
    "contact_sheet",
    "patch_selection_heatmap",
    "patch_selection_sheet",
    "selection_sheet",
    "to_png",
]

#: Long side of a thumbnail in pixels.
DEFAULT_THUMB = 160
#: Most tiles in one sheet (evenly chosen when a selection has more).
MAX_TILES = 48
_BG = (16, 16, 16)
_TEXT = (230, 230, 230)
_LABEL_H = 28
_PAD = 4
#: Border / bar colours of anchor (dense) and motion-only frames in codec sheets and heat maps.
ANCHOR_COLOUR = (250, 220, 40)
MOTION_COLOUR = (40, 200, 220)
#: Grey of the patches a codec selection did not keep.
_UNSELECTED = 60


def _font(size: int = 11) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def contact_sheet(frames: np.ndarray | Sequence[np.ndarray], labels: Sequence[str], *,
                  columns: int | None = None, thumb: int = DEFAULT_THUMB,
                  borders: Sequence[tuple[int, int, int] | None] | None = None,
                  title: str | None = None) -> Image.Image:
    """Tile frames into one image, each with a one- or two-line label underneath.

    Args:
        frames: (N, H, W, 3) uint8 RGB (or a sequence of such arrays, sizes may differ).
        labels: N strings; a newline splits a label over two lines.
        columns: tiles per row (default: up to 8, as square as possible).
        thumb: long side of each tile in pixels.
        borders: N optional RGB border colours (e.g. to mark anchors).
        title: a line of text above the grid.

    Returns:
        A ``PIL.Image.Image`` (RGB).
    """
    from PIL import Image, ImageDraw

    n = len(frames)
    if n != len(labels):
        raise InvalidArgumentError(f"contact_sheet got {n} frames but {len(labels)} labels")
    if n == 0:
        raise InvalidArgumentError("contact_sheet needs at least one frame")
    cols = columns or min(8, max(1, math.ceil(math.sqrt(n * 1.5))))
    rows = -(-n // cols)
    h0, w0 = np.asarray(frames[0]).shape[:2]
    scale = thumb / max(h0, w0)
    tw, th = max(1, round(w0 * scale)), max(1, round(h0 * scale))
    head = 18 if title else 0
    sheet = Image.new("RGB", (cols * (tw + 2 * _PAD), head + rows * (th + 2 * _PAD + _LABEL_H)),
                      _BG)
    draw = ImageDraw.Draw(sheet)
    font = _font()
    if title:
        draw.text((_PAD, 3), title, fill=_TEXT, font=font)
    for i in range(n):
        img = Image.fromarray(np.ascontiguousarray(frames[i], dtype=np.uint8)).resize((tw, th))
        x0 = (i % cols) * (tw + 2 * _PAD)
        y0 = head + (i // cols) * (th + 2 * _PAD + _LABEL_H)
        colour = borders[i] if borders is not None else None
        if colour is not None:
            draw.rectangle([x0, y0, x0 + tw + 2 * _PAD - 1, y0 + th + 2 * _PAD - 1],
                           outline=colour, width=2)
        sheet.paste(img, (x0 + _PAD, y0 + _PAD))
        draw.multiline_text((x0 + _PAD, y0 + th + 2 * _PAD), labels[i], fill=_TEXT, font=font,
                            spacing=1)
    return sheet


def to_png(image: Image.Image) -> bytes:
    """PNG bytes of a Pillow image (what Jupyter's ``_repr_png_`` returns)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _evenly(n: int, most: int) -> np.ndarray:
    """(min(n, most),) int64 positions spread evenly over range(n), ends included."""
    if n <= most:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, most).round().astype(np.int64))


def selection_sheet(sel: Selection, *, thumb: int = DEFAULT_THUMB,
                    columns: int | None = None, frames: np.ndarray | None = None
                    ) -> Image.Image:
    """Contact sheet of a :class:`~vidsel.selection.Selection`: each frame with its index,
    timestamp and (when known) relevance score.

    Args:
        sel: the selection (decoded through its ``video`` unless ``frames`` is given).
        thumb: long side of each tile in pixels.
        columns: tiles per row.
        frames: (k, H, W, 3) uint8 frames already decoded for ``sel``.
    """
    pick = _evenly(len(sel), MAX_TILES)
    if frames is None:
        from .io import VideoReader

        if sel.video is None:
            raise InvalidArgumentError("this Selection has no video path to decode frames from")
        with VideoReader(sel.video) as reader:
            md = reader.metadata
            short = max(1, round(thumb * min(md.height, md.width) / max(md.height, md.width)))
            frames = reader.get_frames(sel.indices[pick], size=short)
    else:
        frames = np.asarray(frames)[pick]
    labels = []
    for j in pick.tolist():
        line = f"#{int(sel.indices[j])}  {float(sel.timestamps_s[j]):.2f}s"
        if sel.scores is not None and math.isfinite(float(sel.scores[j])):
            line += f"\nscore {float(sel.scores[j]):.3f}"
        labels.append(line)
    q = f" | {sel.question}" if sel.question else ""
    title = f"{sel.method}, k={len(sel)}{q}"
    return contact_sheet(frames, labels, columns=columns, thumb=thumb,
                         title=title[:120])


def patch_selection_sheet(sel: PatchSelection, *, thumb: int = DEFAULT_THUMB,
                          columns: int | None = None, max_tiles: int = MAX_TILES
                          ) -> Image.Image:
    """Contact sheet of a codec :class:`~vidsel.codec.PatchSelection`: every contributing frame
    (evenly chosen when more than ``max_tiles``), selected patches in place, the rest grey;
    anchor frames get a yellow border, motion-only frames a cyan one.

    Args:
        sel: a selection with pixels.
        thumb: long side of each tile in pixels.
        columns: tiles per row (default: about square, at most 8).
        max_tiles: most frames shown.
    """
    if sel.pixels is None:
        raise InvalidArgumentError("a PatchSelection contact sheet needs pixels "
                                   "(select with pixels='decode')")
    if max_tiles < 1:
        raise InvalidArgumentError(f"max_tiles={max_tiles!r} must be at least 1")
    src = sel.source_frames
    src = src[_evenly(len(src), max_tiles)]
    h, w = sel.frame_size
    p = sel.patch_size
    tiles, labels, borders = [], [], []
    for f in src.tolist():
        rows = np.flatnonzero(sel.positions[:, 0] == f)
        canvas = np.full((h, w, 3), _UNSELECTED, np.uint8)
        for i in rows.tolist():
            _, r, c = sel.positions[i]
            canvas[r * p:(r + 1) * p, c * p:(c + 1) * p] = sel.pixels[i]
        anchor = bool(sel.is_anchor[rows].any())
        tiles.append(canvas)
        tokens = len(rows) // sel.merge ** 2
        labels.append(f"#{f}  {float(sel.timestamps[rows[0]]):.2f}s\n"
                      f"{'anchor' if anchor else 'motion'} {tokens} tok")
        borders.append(ANCHOR_COLOUR if anchor else MOTION_COLOUR)
    title = (f"{sel.method}: {sel.num_tokens}/{sel.budget_tokens} tokens from "
             f"{len(sel.source_frames)} frames")
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


def patch_selection_heatmap(sel: PatchSelection, *, cell: int = 12,
                            time_bins: int = 64) -> Image.Image:
    """Heat map of a codec :class:`~vidsel.codec.PatchSelection`: motion tokens per token
    position (where, top) and tokens per time bin (when, bottom; anchors yellow, motion cyan).
    """
    from PIL import Image, ImageDraw

    m = sel.merge
    m2 = m * m
    th, tw = sel.config.token_grid
    tok = sel.positions[::m2]
    anchor = sel.is_anchor[::m2]
    spatial = np.zeros((th, tw), np.float32)
    np.add.at(spatial, (tok[~anchor, 1] // m, tok[~anchor, 2] // m), 1.0)
    norm = spatial / max(float(spatial.max()), 1.0)
    heat = _colormap(norm).repeat(cell, 0).repeat(cell, 1)  # (th*cell, tw*cell, 3)
    width = max(tw * cell, 512)
    hist_h = 120
    img = Image.new("RGB", (width, th * cell + hist_h + 30), _BG)
    img.paste(Image.fromarray(heat), (0, 0))
    draw = ImageDraw.Draw(img)
    bins = np.linspace(0, sel.num_frames, time_bins + 1)
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
    draw.text((4, base + 4), f"tokens over time (0 - {sel.duration_s:.1f} s); "
              f"yellow anchors, cyan motion", fill=_TEXT, font=_font())
    return img
