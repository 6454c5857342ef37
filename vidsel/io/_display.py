"""Display matrices: how FFmpeg's autorotate turns decoded pictures into what is displayed."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError

__all__ = ["apply_display_op", "display_transform", "frame_display_transform", "swaps_axes"]


def display_transform(matrix: bytes | None) -> tuple[int, bool, str]:
    """Interpret an FFmpeg display matrix the way ``ffmpeg``'s autorotate does.

    Returns:
        (rotation, mirrored, op): counter-clockwise display rotation in degrees (0/90/180/270),
        whether a flip is involved, and the operation name applied to pixels: one of ``""``,
        ``"clock"``, ``"cclock"``, ``"clock_flip"``, ``"cclock_flip"``, ``"hflip"``, ``"vflip"``,
        ``"rot180"``.
    """
    if not matrix or len(matrix) < 36:
        return 0, False, ""
    m = struct.unpack("<9i", matrix[:36])
    # av_display_rotation_get: angle of the matrix, in degrees, counter-clockwise.
    sx = math.hypot(m[0], m[3])
    sy = math.hypot(m[1], m[4])
    if sx == 0 or sy == 0:
        return 0, False, ""
    angle = -math.degrees(math.atan2(m[1] / sy, m[0] / sx))
    theta = (-round(angle)) % 360  # ffmpeg's get_rotation: clockwise angle to apply
    det = m[0] * m[4] - m[1] * m[3]
    if abs(theta - 90) < 1:
        op = "cclock_flip" if m[3] > 0 else "clock"
    elif abs(theta - 180) < 1:
        h, v = m[0] < 0, m[4] < 0
        op = "rot180" if (h and v) else ("hflip" if h else ("vflip" if v else ""))
    elif abs(theta - 270) < 1:
        op = "clock_flip" if m[3] < 0 else "cclock"
    else:
        op = "vflip" if m[4] < 0 else ""
    rotation = {0: 0, 90: 270, 180: 180, 270: 90}.get(int(theta) % 360, 0)
    mirrored = det < 0
    return rotation, mirrored, op


def frame_display_transform(frame: Any) -> tuple[int, bool, str]:
    """(rotation, mirrored, op) from a decoded frame's display-matrix side data
    (see :func:`display_transform`; identity without a matrix)."""
    matrix = None
    try:
        sd = frame.side_data.get("DISPLAYMATRIX")
    except (AttributeError, KeyError, TypeError):  # no side data, or a container cleared by
        sd = None  # vidsel.io._sidedata (which clears none with a matrix)
    if sd is not None:
        matrix = bytes(sd)
    return display_transform(matrix)


def apply_display_op(frames: np.ndarray, op: str) -> np.ndarray:
    """Apply a display operation from :func:`display_transform` to (..., H, W, C) arrays."""
    if not op:
        return frames
    h_ax, w_ax = frames.ndim - 3, frames.ndim - 2
    if op == "clock":
        out = np.rot90(frames, k=-1, axes=(h_ax, w_ax))
    elif op == "cclock":
        out = np.rot90(frames, k=1, axes=(h_ax, w_ax))
    elif op == "cclock_flip":  # transpose
        out = np.swapaxes(frames, h_ax, w_ax)
    elif op == "clock_flip":  # anti-transpose
        out = np.flip(np.swapaxes(frames, h_ax, w_ax), axis=(h_ax, w_ax))
    elif op == "rot180":
        out = np.flip(frames, axis=(h_ax, w_ax))
    elif op == "hflip":
        out = np.flip(frames, axis=w_ax)
    elif op == "vflip":
        out = np.flip(frames, axis=h_ax)
    else:
        raise InvalidArgumentError(f"unknown display operation {op!r}")
    return np.ascontiguousarray(out)


def swaps_axes(op: str) -> bool:
    """Whether the display operation exchanges width and height."""
    return op in ("clock", "cclock", "clock_flip", "cclock_flip")
