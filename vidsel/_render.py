"""Contact sheets: labelled thumbnails of selected frames in a grid (Pillow only).

Shared by :class:`vidsel.selection.Selection` (``_repr_png_`` in notebooks,
``save_contact_sheet``), the command line (``vidsel select --contact-sheet``, ``vidsel demo``)
and, for codec results, :func:`patch_selection_sheet` (selected patches in place, the rest grey).
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
                          columns: int | None = None) -> Image.Image:
    """Contact sheet of a codec :class:`~vidsel.codec.PatchSelection`: every contributing frame
    (evenly chosen when more than :data:`MAX_TILES`), selected patches in place, the rest grey;
    anchor frames get a yellow border, motion-only frames a cyan one.
    """
    if sel.pixels is None:
        raise InvalidArgumentError("a PatchSelection contact sheet needs pixels "
                                   "(select with pixels='decode')")
    src = sel.source_frames
    src = src[_evenly(len(src), MAX_TILES)]
    h, w = sel.frame_size
    p = sel.patch_size
    tiles, labels, borders = [], [], []
    for f in src.tolist():
        rows = np.flatnonzero(sel.positions[:, 0] == f)
        canvas = np.full((h, w, 3), 60, np.uint8)
        for i in rows.tolist():
            _, r, c = sel.positions[i]
            canvas[r * p:(r + 1) * p, c * p:(c + 1) * p] = sel.pixels[i]
        anchor = bool(sel.is_anchor[rows].any())
        tiles.append(canvas)
        tokens = len(rows) // sel.merge ** 2
        labels.append(f"#{f}  {float(sel.timestamps[rows[0]]):.2f}s\n"
                      f"{'anchor' if anchor else 'motion'} {tokens} tok")
        borders.append((250, 220, 40) if anchor else (40, 200, 220))
    title = (f"{sel.method}: {sel.num_tokens}/{sel.budget_tokens} tokens from "
             f"{len(sel.source_frames)} frames")
    return contact_sheet(np.stack(tiles), labels, columns=columns, thumb=thumb,
                         borders=borders, title=title)
