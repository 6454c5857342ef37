"""Black borders (letterbox / pillarbox) of a video, found like FFmpeg's ``cropdetect``.

A line (row or column) of the displayed picture is *content* in a frame when its mean luma
exceeds ``limit`` (cropdetect's default, 24 of 255) or it is not flat; the bars are the lines
from each edge inward that are content in none of the measured frames. Taking the union over
frames (cropdetect keeps the widest box seen, too) makes the box robust to fades: a frame
fading in from black has no content line and changes nothing. Frames that show only a small
bright region (a title card, a logo on black) do not shrink it either: a frame counts only if
its own content box covers at least :data:`MIN_FRAME_SHARE` of the picture.

The measured frames are keyframes spread over the video (decoded alone, ``skip_frame`` NONKEY
through :class:`~vidsel.io.VideoReader`'s keyframe mode: ~5-15 ms each); when fewer than two
of them show a picture (a single keyframe on a fade-in from black), a few exact frames of the
first seconds are added.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._validate import check_positive_int
from ..errors import InvalidArgumentError
from ._convert import Crop, check_crop
from ._reader import VideoReader
from ._types import PacketTable

__all__ = ["BORDER_LIMIT", "Borders", "CropSpec", "detect_borders", "resolve_crop"]

logger = logging.getLogger(__name__)

#: A line whose mean luma (0-255) is at most this is dark enough to be a bar (cropdetect's
#: default limit, 24).
BORDER_LIMIT = 24.0
#: ... and at most this standard deviation (grey levels) flat enough: bars are flat.
BORDER_FLAT = 10.0
#: A frame's content box must cover this share of the picture for the frame to count.
MIN_FRAME_SHARE = 0.25
#: The active picture must keep at least this share of each side (else: no crop).
MIN_SIDE_SHARE = 0.25
#: A bar ends in a hard edge: within EDGE_REACH of the side's length inside it, some line
#: of some measured frame is EDGE_JUMP x ``limit`` bright (a vignette ramps up slowly).
EDGE_REACH = 0.02
EDGE_JUMP = 2.0
#: Keyframes measured at most.
MAX_FRAMES = 8
#: Seconds from the start of the extra frames read when the keyframes show no picture.
EXTRA_SECONDS = (0.5, 1.0, 2.0)

#: A ``crop`` argument: ``"auto"`` (detect), ``"none"``, or (top, bottom, left, right).
CropSpec = str | Sequence[int]


@dataclass(frozen=True)
class Borders:
    """Black bars of a video, in pixels of the displayed picture (as
    ``VideoReader.get_frames(..., size=None)`` returns it).

    Attributes:
        top, bottom, left, right: bar thickness on each side (even numbers, so that crops of
            4:2:0 pictures stay on chroma samples); all 0 when the picture has no bars or
            nothing could be measured.
        height, width: the displayed picture's size.
        frames: the frames measured.
        measured: at least one measured frame showed a picture (else the bars are unknown
            and reported as 0).
    """

    top: int
    bottom: int
    left: int
    right: int
    height: int
    width: int
    frames: tuple[int, ...] = ()
    measured: bool = True

    @property
    def crop(self) -> Crop:
        """(top, bottom, left, right): the ``crop`` argument that removes the bars."""
        return (self.top, self.bottom, self.left, self.right)

    @property
    def box(self) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1): the active picture is ``frame[y0:y1, x0:x1]``."""
        return (self.top, self.height - self.bottom, self.left, self.width - self.right)

    @property
    def active_hw(self) -> tuple[int, int]:
        """(height, width) of the active picture."""
        return (self.height - self.top - self.bottom, self.width - self.left - self.right)

    def __bool__(self) -> bool:
        """True when there is a bar on some side."""
        return any(self.crop)


#: Rows of a frame turned into luma at a time (small temporaries, reused while hot).
BAND_ROWS = 64


def _luma(frames: np.ndarray) -> np.ndarray:
    """(N, H, W) float32 BT.601 luma of (N, H, W, 3) uint8 RGB."""
    return frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # type: ignore[no-any-return]


def _line_moments(frame: np.ndarray) -> tuple[np.ndarray, ...]:
    """(mean, mean of squares) of the luma of each row (H,) and each column (W,) of one
    (H, W, 3) uint8 RGB frame, converted BAND_ROWS rows at a time."""
    h, w = frame.shape[:2]
    rs, rq = np.empty(h, np.float64), np.empty(h, np.float64)
    cs, cq = np.zeros(w, np.float64), np.zeros(w, np.float64)
    for y0 in range(0, h, BAND_ROWS):
        y = _luma(frame[y0:y0 + BAND_ROWS])
        yy = y * y
        rs[y0:y0 + len(y)], rq[y0:y0 + len(y)] = y.sum(axis=1), yy.sum(axis=1)
        cs += y.sum(axis=0)
        cq += yy.sum(axis=0)
    return rs / w, rq / w, cs / h, cq / h


def _content(mean: np.ndarray, sq: np.ndarray, limit: float) -> np.ndarray:
    """(L,) bool: the lines with the given luma ``mean`` and mean square that are content."""
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    return (mean > limit) | (std > BORDER_FLAT)  # type: ignore[no-any-return]


def _span(lines: np.ndarray) -> tuple[int, int] | None:
    """(bar before, bar after) of a (L,) content mask; None when no line is content."""
    on = np.flatnonzero(lines)
    if not len(on):
        return None
    return int(on[0]), int(len(lines) - 1 - on[-1])


def borders_of(frames: np.ndarray, *, limit: float = BORDER_LIMIT,
               indices: Sequence[int] = ()) -> Borders:
    """The bars of a set of (N, H, W, 3) uint8 RGB frames (see the module doc)."""
    h, w = frames.shape[1:3]
    rows = np.zeros(h, bool)
    cols = np.zeros(w, bool)
    prof_r = np.zeros(h, np.float32)  # brightest mean of each line over the counted frames
    prof_c = np.zeros(w, np.float32)
    counted = 0
    for frame in frames:
        r_mean, r_sq, c_mean, c_sq = _line_moments(frame)
        lr, lc = _content(r_mean, r_sq, limit), _content(c_mean, c_sq, limit)
        sr, sc = _span(lr), _span(lc)
        if sr is None or sc is None:
            continue  # no picture (black, or a fade from black)
        share = (h - sr[0] - sr[1]) * (w - sc[0] - sc[1]) / float(h * w)
        if share < MIN_FRAME_SHARE:
            continue  # a title card or a logo on black: says nothing about the bars
        rows |= lr
        cols |= lc
        np.maximum(prof_r, r_mean, out=prof_r, casting="unsafe")
        np.maximum(prof_c, c_mean, out=prof_c, casting="unsafe")
        counted += 1
    sr, sc = _span(rows), _span(cols)
    if not counted or sr is None or sc is None:
        return Borders(0, 0, 0, 0, h, w, tuple(int(i) for i in indices), measured=False)

    def hard(prof: np.ndarray, bar: int, inward: int) -> int:
        """``bar`` if the picture starts with a hard edge there (a bar), else 0 (a dark
        vignette or a dark scene fades in gradually: not a bar)."""
        if bar == 0:
            return 0
        n = len(prof)
        reach = max(2, round(EDGE_REACH * n))
        edge = bar if inward > 0 else n - 1 - bar
        inner = prof[edge:edge + reach] if inward > 0 else prof[max(0, edge - reach + 1):edge + 1]
        return bar if float(inner.max()) >= EDGE_JUMP * limit else 0

    def even(v: int) -> int:  # crop a little more rather than keep a line of the bar
        return v + (v & 1)

    t, b = even(hard(prof_r, sr[0], 1)), even(hard(prof_r, sr[1], -1))
    lft, r = even(hard(prof_c, sc[0], 1)), even(hard(prof_c, sc[1], -1))
    if h - t - b < MIN_SIDE_SHARE * h or w - lft - r < MIN_SIDE_SHARE * w:
        logger.info("implausible borders %s of a %dx%d picture: not cropping",
                    (t, b, lft, r), w, h)
        t = b = lft = r = 0
    return Borders(t, b, lft, r, h, w, tuple(int(i) for i in indices))


def detect_borders(path: str | os.PathLike[str], *, stream: int | None = None,
                   limit: float = BORDER_LIMIT, max_frames: int = MAX_FRAMES,
                   table: PacketTable | None = None) -> Borders:
    """Find the black bars (letterbox / pillarbox) of a video, like FFmpeg's cropdetect.

    Args:
        path: the video file.
        stream: video stream (index among the video streams).
        limit: a line whose mean luma (0-255) is at most ``limit`` and that is flat is a bar
            line in that frame (cropdetect's default, 24).
        max_frames: keyframes measured (spread over the video).
        table: the stream's :class:`~vidsel.io.PacketTable` or
            :class:`~vidsel.io.PacketIndex` if already built (saves a demux pass).

    Returns:
        :class:`Borders` in displayed pixels, each side rounded up to an even number (a
        ``crop`` for :func:`vidsel.codec.select_patches` and :class:`vidsel.io.FrameConverter`).

    Example:
        >>> b = detect_borders("movie.mp4")                       # doctest: +SKIP
        >>> b.crop, b.active_hw
        ((60, 60, 0, 0), (240, 640))
    """
    n = check_positive_int("max_frames", max_frames)
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 <= limit < 255:
        raise InvalidArgumentError(f"limit={limit!r} must be a number in [0, 255)")
    with VideoReader(path, stream=stream, table=table) as reader:
        md = reader.metadata
        keys = md.keyframe_indices if len(md.keyframe_indices) else np.zeros(1, np.int64)
        pick = keys[np.unique(np.round(np.linspace(0, len(keys) - 1, min(n, len(keys))))
                              .astype(np.int64))]
        batch = reader.decode(pick, mode="keyframe", on_missing="skip")
        frames, used = batch.frames, batch.indices
        found = borders_of(frames, limit=float(limit), indices=used.tolist())
        if not found.measured and md.num_frames > len(used):
            # a fade-in from black on few keyframes: look at the first seconds too
            ts = md.timestamps_s - md.timestamps_s[0]
            extra = np.unique(np.minimum(np.searchsorted(ts, EXTRA_SECONDS), md.num_frames - 1))
            extra = np.setdiff1d(extra, used)
            if len(extra):
                more = reader.decode(extra, on_missing="skip")
                frames = np.concatenate([frames, more.frames])
                used = np.concatenate([used, more.indices])
                found = borders_of(frames, limit=float(limit), indices=np.sort(used).tolist())
    logger.debug("%s: borders %s from frames %s", path, found.crop, found.frames)
    return found


def resolve_crop(crop: object, path: str | os.PathLike[str], *, stream: int | None = None,
                 display_hw: tuple[int, int] | None = None,
                 table: PacketTable | None = None) -> Crop:
    """A ``crop`` argument as (top, bottom, left, right) displayed pixels.

    Args:
        crop: ``"auto"`` (:func:`detect_borders`), ``"none"`` (no crop) or four ints.
        path, stream: the video (read only for ``"auto"``; ``table`` as for
            :func:`detect_borders`).
        display_hw: the displayed (height, width), to check an explicit crop against.

    Raises:
        InvalidArgumentError: another value, or a crop that leaves nothing of the picture.
    """
    if isinstance(crop, str):
        if crop == "none":
            return (0, 0, 0, 0)
        if crop == "auto":
            return detect_borders(path, stream=stream, table=table).crop
        raise InvalidArgumentError(
            f"crop={crop!r} is not allowed; choose 'auto', 'none' or (top, bottom, left, "
            f"right)")
    box = check_crop(crop)
    if box is None:
        raise InvalidArgumentError(
            "crop=None is not allowed; choose 'auto', 'none' or (top, bottom, left, right)")
    if display_hw is not None:
        h, w = display_hw
        if box[0] + box[1] >= h or box[2] + box[3] >= w:
            raise InvalidArgumentError(
                f"crop={crop!r} leaves nothing of the {w}x{h} picture")
    return box
