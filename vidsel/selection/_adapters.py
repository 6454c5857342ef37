"""A :class:`~vidsel.results.Selection` handed to other libraries.

- transformers video processors (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA-OneVision):
  :func:`to_qwen` decodes the selected frames (padded to the temporal patch size) with a
  ``transformers.video_utils.VideoMetadata`` holding the real indices and source fps; pass
  ``videos=[frames], video_metadata=[metadata], do_sample_frames=False``.
  :func:`qwen_video_metadata` gives the metadata as a dict. The processors themselves take no
  ``sample_indices_fn`` (transformers 5: a ``TypeError`` from a video processor, ignored with a
  warning by a full processor).
- transformers' ``sample_indices_fn`` hook of ``transformers.video_utils.load_video``:
  :func:`sample_indices_fn`; when that decoder counts frames differently the selection is
  mapped through its timestamps (:func:`indices_for`), never silently merging frames.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._validate import check_positive_int
from ..errors import InvalidArgumentError
from ..optional import require
from ..results import Selection

__all__ = [
    "indices_for",
    "padded_indices",
    "qwen_video_metadata",
    "sample_indices_fn",
    "to_qwen",
]

logger = logging.getLogger(__name__)


def padded_indices(sel: Selection, multiple: int = 2) -> np.ndarray:
    """The selection's indices with the last one repeated until the count is a multiple of
    ``multiple`` (Qwen-VL merges frames in temporal pairs and pads the same way itself)."""
    multiple = check_positive_int("multiple", multiple)
    if not len(sel):
        return sel.indices.copy()
    pad = -len(sel) % multiple
    return np.concatenate([sel.indices, np.repeat(sel.indices[-1:], pad)])


def qwen_video_metadata(sel: Selection, *, pad_to_multiple: int = 1) -> dict[str, Any]:
    """Qwen-VL-style video metadata: real frame indices and the source fps.

    The keys are those of ``transformers.video_utils.VideoMetadata`` (``total_num_frames``,
    ``fps``, ``duration``, ``frames_indices``, ``video_backend``): Qwen3-VL's processor turns
    ``frames_indices / fps`` into the ``<t seconds>`` markers, so passing this (with
    ``do_sample_frames=False``) gives the model real timestamps instead of fake ones.

    Args:
        sel: the selection.
        pad_to_multiple: repeat the last frame until the count divides by this (2 for
            Qwen-VL's temporal patches when you also pad the frames, see :func:`to_qwen`).
    """
    idx = padded_indices(sel, pad_to_multiple)
    total = sel.num_frames
    return {
        "total_num_frames": int(total) if total is not None else int(idx[-1]) + 1,
        "fps": sel.source_fps,
        "duration": (float(total) / sel.source_fps) if total else None,
        "frames_indices": [int(i) for i in idx.tolist()],
        "video_backend": "vidsel",
    }


def to_qwen(sel: Selection, *, size: int | tuple[int, int] | None = None,
            temporal_patch_size: int = 2) -> tuple[np.ndarray, Any]:
    """Frames and metadata for a transformers video processor (Qwen-VL, LLaVA-OneVision).

    Use as ``processor(text=..., videos=[frames], video_metadata=[metadata],
    do_sample_frames=False)``: ``do_sample_frames=False`` keeps every selected frame (Qwen3-VL's
    processor samples by default), and the metadata gives Qwen3-VL its ``<t seconds>`` markers
    (``frames_indices / fps``, one per temporal pair: the mean of the pair's two times) and
    Qwen2.5-VL its ``second_per_grid_ts`` (one spacing for the whole video:
    ``temporal_patch_size * total_num_frames / (len(frames) * fps)``, exact only for a uniform
    selection).
    LLaVA-OneVision merges no frames: use ``temporal_patch_size=1``.

    Args:
        sel: the selection (decoded through its ``path``).
        size: None (native), short side, or (height, width) of the decoded frames.
        temporal_patch_size: frames are padded to a multiple of this.

    Returns:
        ``(frames, metadata)``: frames (k', H, W, 3) uint8 with ``k'`` padded to a multiple of
        ``temporal_patch_size`` by repeating the last frame, and a
        ``transformers.video_utils.VideoMetadata`` with the matching real indices and source fps.

    Raises:
        MissingDependencyError: transformers is not installed.
    """
    VideoMetadata = require("transformers.video_utils", "to_qwen", extra="embed").VideoMetadata
    tps = check_positive_int("temporal_patch_size", temporal_patch_size)
    frames = sel.load_frames(size)
    pad = -len(frames) % tps
    if pad and len(frames):
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
    md = qwen_video_metadata(sel, pad_to_multiple=tps)
    h, w = (int(frames.shape[1]), int(frames.shape[2])) if len(frames) else (None, None)
    return frames, VideoMetadata(width=w, height=h, **md)


def indices_for(sel: Selection, total_num_frames: int | None = None,
                fps: float | None = None) -> np.ndarray:
    """The selection's frame indices in the frame numbering of another decoder.

    When that decoder counts the same number of frames as vidsel did (or either count is
    unknown: None, or 0 as PyAV reports for containers without a frame count such as MKV,
    WebM and MPEG-TS), these are ``sel.indices``. Otherwise each selected frame is mapped through its
    timestamp: ``round((t - t0) * fps)`` clipped to ``[0, total_num_frames - 1]``, with ``t0``
    the stream's start time (so the first frame of the stream maps to 0) and ``fps`` the
    decoder's rate (default: ``sel.source_fps``).

    Args:
        sel: the selection.
        total_num_frames: frames the other decoder reports (None or 0: unknown).
        fps: its frame rate.

    Returns:
        (k,) int64 ascending, unique indices.

    Raises:
        InvalidArgumentError: the mapping would merge selected frames (the other decoder has
            fewer frames than the selection needs, e.g. a lower frame rate): the message names
            the video and the colliding frames instead of silently returning fewer frames.
    """
    indices = sel.indices.copy()
    own_total = sel.num_frames
    if not total_num_frames or own_total is None or \
            int(total_num_frames) == int(own_total) or not len(sel):
        return indices
    total = check_positive_int("total_num_frames", int(total_num_frames))
    rate = float(fps) if fps else sel.source_fps
    if not (math.isfinite(rate) and rate > 0):
        raise InvalidArgumentError(f"fps={fps!r} must be a positive number")
    # stream start time: the first selected frame sits at indices[0] / source_fps
    t0 = float(sel.timestamps_s[0]) - float(indices[0]) / sel.source_fps
    mapped = np.clip(np.round((sel.timestamps_s - t0) * rate), 0, total - 1).astype(np.int64)
    dup = np.flatnonzero(np.diff(mapped) <= 0)
    if dup.size:
        j = int(dup[0])
        path = sel.path or "<no video path>"
        raise InvalidArgumentError(
            f"{path}: the decoder reports {total} frames at {rate:g} fps where vidsel "
            f"counted {own_total}; mapping the {len(sel)} selected frames by timestamp "
            f"merges frames {int(indices[j])} and {int(indices[j + 1])} (both -> "
            f"{int(mapped[j + 1])}), so {len(sel) - np.unique(mapped).size} selected "
            f"frame(s) would be lost; decode with vidsel (load_frames / to_qwen) or select "
            f"fewer frames")
    logger.warning("%s: decoder reports %s frames, vidsel counted %s: mapped the selection "
                   "by timestamp", sel.path, total, own_total)
    return mapped


def sample_indices_fn(sel: Selection) -> Callable[..., np.ndarray]:
    """A transformers ``sample_indices_fn(metadata, **kwargs) -> indices`` returning this
    selection, for ``transformers.video_utils.load_video(path, backend="pyav",
    sample_indices_fn=sample_indices_fn(sel))``; hand the ``(frames, metadata)`` it returns to a
    processor as ``videos=[frames], video_metadata=[metadata], do_sample_frames=False``. (Video
    processors take no ``sample_indices_fn`` keyword in transformers 5.)

    When the decoder in use counts a different number of frames than vidsel did, the
    selection is mapped through its timestamps (see :func:`indices_for`) and a warning logged;
    a mapping that would merge selected frames raises
    :class:`~vidsel.errors.InvalidArgumentError`.
    """

    def fn(metadata: Any = None, **kwargs: Any) -> np.ndarray:
        total = getattr(metadata, "total_num_frames", None) if metadata is not None else None
        fps = getattr(metadata, "fps", None) if metadata is not None else None
        return indices_for(sel, total, fps)

    return fn
