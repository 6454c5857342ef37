"""Images of a selection: a contact sheet and a heat map (Pillow only)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from ._result import PatchSelection

__all__ = ["contact_sheet", "contact_sheet_image", "contact_sheet_png", "heatmap"]

# A short perceptual ramp (dark blue -> teal -> yellow), interpolated.
_RAMP = np.array([[20, 20, 60], [40, 90, 150], [40, 160, 140], [150, 210, 70], [250, 230, 40]],
                 np.float32)


def _colormap(x: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to (..., 3) uint8 colours."""
    t = np.clip(x, 0, 1) * (len(_RAMP) - 1)
    i = np.minimum(t.astype(np.int64), len(_RAMP) - 2)
    f = (t - i)[..., None]
    return (_RAMP[i] * (1 - f) + _RAMP[i + 1] * f).astype(np.uint8)  # type: ignore[no-any-return]


def contact_sheet(sel: PatchSelection, path: str | Path, *, max_frames: int = 48,
                  columns: int = 8, thumb: int = 160) -> Path:
    """Tiles of contributing frames (evenly chosen), selected patches in place, the rest grey.

    Anchor tiles get a yellow border, motion tiles a cyan one; each tile is labelled with its
    frame index and time.
    """
    out = Path(path)
    contact_sheet_image(sel, max_frames=max_frames, columns=columns, thumb=thumb).save(out)
    return out


def contact_sheet_png(sel: PatchSelection, *, max_frames: int = 24, columns: int = 6,
                      thumb: int = 128) -> bytes:
    """The contact sheet as PNG bytes (for notebooks)."""
    import io

    buf = io.BytesIO()
    contact_sheet_image(sel, max_frames=max_frames, columns=columns, thumb=thumb).save(
        buf, format="PNG")
    return buf.getvalue()


def contact_sheet_image(sel: PatchSelection, *, max_frames: int = 48, columns: int = 8,
                        thumb: int = 160) -> Any:
    """The contact sheet as a ``PIL.Image`` (see :func:`contact_sheet`)."""
    from PIL import Image, ImageDraw

    if sel.pixels is None:
        raise InvalidArgumentError("contact_sheet needs a selection with pixels")
    frames = sel.source_frames
    if len(frames) > max_frames:
        frames = frames[np.unique(np.linspace(0, len(frames) - 1, max_frames).round()
                                  .astype(np.int64))]
    h, w = sel.frame_size
    p = sel.patch_size
    tw = thumb
    th = max(1, round(thumb * h / w))
    rows = -(-len(frames) // columns)
    sheet = Image.new("RGB", (columns * (tw + 4), rows * (th + 18)), (16, 16, 16))
    draw = ImageDraw.Draw(sheet)
    for k, f in enumerate(frames.tolist()):
        sel_rows = np.flatnonzero(sel.positions[:, 0] == f)
        canvas = np.full((h, w, 3), 60, np.uint8)
        for i in sel_rows.tolist():
            _, r, c = sel.positions[i]
            canvas[r * p:(r + 1) * p, c * p:(c + 1) * p] = sel.pixels[i]
        img = Image.fromarray(canvas).resize((tw, th))
        x0 = (k % columns) * (tw + 4)
        y0 = (k // columns) * (th + 18)
        anchor = bool(sel.is_anchor[sel_rows].any())
        draw.rectangle([x0, y0, x0 + tw + 3, y0 + th + 3],
                       outline=(250, 220, 40) if anchor else (40, 200, 220), width=2)
        sheet.paste(img, (x0 + 2, y0 + 2))
        draw.text((x0 + 3, y0 + th + 4), f"#{f} {sel.timestamps[sel_rows[0]]:.1f}s",
                  fill=(220, 220, 220))
    return sheet


def heatmap(sel: PatchSelection, path: str | Path, *, cell: int = 12,
            time_bins: int = 64) -> Path:
    """Left: motion tokens per token position (where); bottom: tokens per time bin (when).

    Anchor tokens are drawn in yellow in the time histogram, motion tokens in cyan.
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
    img = Image.new("RGB", (width, th * cell + hist_h + 30), (16, 16, 16))
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
        draw.rectangle([x0, base - a, x1, base], fill=(250, 220, 40))
        draw.rectangle([x0, base - a - mo, x1, base - a], fill=(40, 200, 220))
    draw.text((4, base + 4), f"tokens over time (0 - {sel.duration_s:.1f} s); "
              f"yellow anchors, cyan motion", fill=(220, 220, 220))
    out = Path(path)
    img.save(out)
    return out
