"""vidsel's codec patches in lmms-video-utils' output layout (:class:`CodecVideoOutput`).

Layout (the same fields, dtypes and shapes as ``lmms_video_utils.CodecVideoOutput``)::

    canvases         (N, 3, H, W) uint8    packed images, H = hp * patch, W = wp * patch
    patch_positions  (N * hp * wp, 3) int64 one row per patch cell, canvas-major then
                                            row-major: (t, h, w) = source frame index, patch
                                            row and patch column in the source frame's grid
                                            (the frame resized to the selection's frame size);
                                            (-1, -1, -1) for empty cells
    gop_ids          (N,) int64            group of each canvas (a group starts at each anchor
                                            frame; the motion canvases after it belong to it)
    source_pts       (N,) float32          seconds of the group's first frame
    fps              float                 source frame rate
    n_groups         int                   number of groups

Worked example (patch 14, 2x2 merge, one 28 x 56 canvas = 2 x 4 cells): an anchor canvas of
frame 30 has rows ``(30, 0, 0), (30, 0, 1), ..., (30, 1, 3)``; a motion canvas whose first
token came from frame 41 at token (row 3, col 5) starts with ``(41, 6, 10), (41, 6, 11)`` and its
second cell row with ``(41, 7, 10), (41, 7, 11)``; unused cells are ``(-1, -1, -1)`` with black
pixels.

The patches are vidsel's (:func:`vidsel.codec.select_patches`: dense anchor frames plus the
most changing tokens of many frames, at an exact token budget), not lmms-video-utils' own
selection (uniform frames grouped into GOPs, one I-canvas plus P-canvases per group).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ..optional import require
from ..results import PatchSelection

__all__ = ["CodecVideoOutput", "codec_output"]


@dataclass(frozen=True, repr=False)
class CodecVideoOutput:
    """Packed codec patches of one video (see the module doc for the layout).

    Attributes:
        canvases: (N, 3, H, W) uint8 tensor.
        patch_positions: (N * H/p * W/p, 3) int64 tensor, (t, h, w) or -1.
        gop_ids: (N,) int64 tensor.
        source_pts: (N,) float32 tensor, seconds.
        fps: source frame rate.
        n_groups: number of groups.
    """

    canvases: Any
    patch_positions: Any
    gop_ids: Any
    source_pts: Any
    fps: float
    n_groups: int

    def as_dict(self) -> dict[str, Any]:
        """The fields by name (as ``lmms_video_utils.CodecVideoOutput.as_dict``)."""
        return {"canvases": self.canvases, "patch_positions": self.patch_positions,
                "gop_ids": self.gop_ids, "source_pts": self.source_pts, "fps": self.fps,
                "n_groups": self.n_groups}

    def __repr__(self) -> str:
        return (f"CodecVideoOutput(canvases={list(self.canvases.shape)}, "
                f"patch_positions={list(self.patch_positions.shape)}, fps={self.fps:g}, "
                f"n_groups={self.n_groups})")


def codec_output(sel: PatchSelection, fps: float) -> tuple[CodecVideoOutput, np.ndarray]:
    """Pack ``sel`` (:meth:`PatchSelection.canvases`, square canvases of the larger frame side)
    into a :class:`CodecVideoOutput`.

    Returns:
        (output, frames) with frames (N,) int64: the source frame of each canvas's first used
        cell (what the metadata's ``frames_indices`` reports).
    """
    torch = require("torch", "vidsel.qwen", extra="embed")
    cv = sel.canvases()
    if cv.images is None:  # pragma: no cover - canvases() refuses a selection without pixels
        raise InvalidArgumentError("codec selection has no pixels")
    n = len(cv)
    pos = cv.positions.reshape(n, -1, 3)  # (N, cells, 3)
    first = np.argmax(cv.valid.reshape(n, -1), axis=1)  # first used cell of each canvas
    frames = pos[np.arange(n), first, 0]  # (N,)
    # a group starts at each anchor canvas (an anchor frame always opens a canvas)
    anchors = set(int(a) for a in sel.anchor_frames)
    starts = np.array([int(f) in anchors for f in frames], bool)  # (N,)
    if n:
        starts[0] = True
    gop = np.cumsum(starts) - 1  # (N,)
    group_first = frames[np.flatnonzero(starts)][gop] if n else frames
    ts = dict(zip(sel.positions[:, 0].tolist(), sel.timestamps_s.tolist()))
    pts = np.array([ts[int(f)] for f in group_first], np.float32)
    out = CodecVideoOutput(
        canvases=torch.from_numpy(np.ascontiguousarray(cv.images.transpose(0, 3, 1, 2))),
        patch_positions=torch.from_numpy(cv.positions.reshape(-1, 3).astype(np.int64)),
        gop_ids=torch.from_numpy(gop.astype(np.int64)),
        source_pts=torch.from_numpy(pts),
        fps=float(fps),
        n_groups=int(starts.sum()),
    )
    return out, frames.astype(np.int64)
