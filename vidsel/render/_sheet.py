"""Contact sheets: frames (arrays) and labels in, one ``PIL.Image`` out; PNG bytes.

Nothing here opens a video: a result decodes (or holds) its pixels and passes them with one
label per tile. The codec sheets and heat maps (:mod:`vidsel.render._patches`) build on
:func:`contact_sheet` and the drawing constants below.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import InvalidArgumentError

__all__ = ["DEFAULT_THUMB", "MAX_TILES", "contact_sheet", "shown_title", "tile_positions",
           "to_png"]

#: Long side of a thumbnail in pixels.
DEFAULT_THUMB = 160
#: Most tiles in one sheet (evenly chosen when a selection has more).
MAX_TILES = 48
_BG = (16, 16, 16)
_TEXT = (230, 230, 230)
_LABEL_H = 28
_PAD = 4


def _font(size: int = 11) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def tile_positions(n: int, most: int = MAX_TILES, *,
                   keep: np.ndarray | None = None) -> np.ndarray:
    """(min(n, most),) int64 ascending positions of ``range(n)``: which rows of a long
    selection a sheet shows (decode only these).

    Without ``keep`` they are spread evenly, ends included. ``keep`` ((n,) bool, e.g. the
    anchor frames of a codec selection) marks rows that are shown first: all of them when
    they fit, the remaining tiles spread evenly over the other rows (evenly among the kept
    rows when they alone exceed ``most``).
    """
    if most < 1:
        raise InvalidArgumentError(f"most={most!r} tiles must be at least 1")
    if n <= most:
        return np.arange(n, dtype=np.int64)
    if keep is None or not np.any(keep):
        return np.unique(np.linspace(0, n - 1, most).round().astype(np.int64))
    kept = np.flatnonzero(np.asarray(keep, dtype=bool))
    if len(kept) >= most:
        return kept[tile_positions(len(kept), most)]
    rest = np.flatnonzero(~np.asarray(keep, dtype=bool))
    return np.sort(np.concatenate([kept, rest[tile_positions(len(rest), most - len(kept))]]))


def shown_title(title: str | None, shown: int, total: int, what: str = "frames") -> str | None:
    """``title`` plus "- 48 of 51 frames shown" when a sheet leaves tiles out (never silently)."""
    if shown >= total:
        return title
    note = f"{shown} of {total} {what} shown"
    return f"{title} - {note}" if title else note



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

    Raises:
        InvalidArgumentError: no frames, or frame and label counts differ.
    """
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
