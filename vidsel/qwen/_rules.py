"""qwen-vl-utils' sizing rules, with vidsel's errors: frame budgets (:func:`smart_nframes`),
time windows (:func:`calculate_video_frame_range`), frame sizes (:func:`smart_resize`,
:func:`video_size`) and the bicubic resize torchvision applies (:func:`resize_frames`).

Every number matches qwen-vl-utils 0.0.14 (``qwen_vl_utils/vision_process.py``); where that
module asserts or raises ``ValueError``, these raise :class:`~vidsel.errors.InvalidArgumentError`
naming the key and the value.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._validate import check_finite_float, check_positive_float
from ..errors import InvalidArgumentError
from ..optional import require

__all__ = [
    "FPS",
    "FPS_MAX_FRAMES",
    "FPS_MIN_FRAMES",
    "FRAME_FACTOR",
    "IMAGE_MAX_TOKEN_NUM",
    "IMAGE_MIN_TOKEN_NUM",
    "MAX_RATIO",
    "SPATIAL_MERGE_SIZE",
    "VIDEO_MAX_TOKEN_NUM",
    "VIDEO_MIN_TOKEN_NUM",
    "calculate_video_frame_range",
    "ceil_by_factor",
    "floor_by_factor",
    "model_seq_len",
    "resize_frames",
    "round_by_factor",
    "smart_nframes",
    "smart_resize",
    "video_size",
]

logger = logging.getLogger(__name__)

#: Longest side over shortest side an image or frame may have.
MAX_RATIO = 200
#: Patches merged per side into one token (2 x 2).
SPATIAL_MERGE_SIZE = 2
IMAGE_MIN_TOKEN_NUM = 4
IMAGE_MAX_TOKEN_NUM = 16384
VIDEO_MIN_TOKEN_NUM = 128
VIDEO_MAX_TOKEN_NUM = 768
#: Default sampling rate of a video (frames per second).
FPS = 2.0
#: Frame counts are multiples of this (Qwen-VL merges frames in temporal pairs).
FRAME_FACTOR = 2
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
#: The context qwen-vl-utils sizes videos for when ``MODEL_SEQ_LEN`` is not set.
DEFAULT_MODEL_SEQ_LEN = 128000


def model_seq_len() -> int:
    """``MODEL_SEQ_LEN`` from the environment (default 128000), read at call time; qwen-vl-utils
    reads the same variable (at import) to bound ``total_pixels``."""
    raw = os.environ.get("MODEL_SEQ_LEN", str(DEFAULT_MODEL_SEQ_LEN))
    try:
        return int(float(raw))
    except ValueError:
        raise InvalidArgumentError(
            f"MODEL_SEQ_LEN={raw!r} (environment) must be a number of tokens") from None


def round_by_factor(number: float, factor: int) -> int:
    """The multiple of ``factor`` closest to ``number``."""
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    """The smallest multiple of ``factor`` >= ``number``."""
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    """The largest multiple of ``factor`` <= ``number``."""
    return math.floor(number / factor) * factor


def smart_resize(height: int, width: int, factor: int, min_pixels: int | None = None,
                 max_pixels: int | None = None) -> tuple[int, int]:
    """(height, width) closest to the input with both sides multiples of ``factor``, the
    pixel count within [``min_pixels``, ``max_pixels``] and the aspect ratio kept.

    Defaults: ``min_pixels = 4 * factor**2``, ``max_pixels = 16384 * factor**2`` (images).

    Raises:
        InvalidArgumentError: a side is not positive, ``max_pixels < min_pixels``, or the
            aspect ratio exceeds 200 (qwen-vl-utils asserts / raises ValueError there).
    """
    height = check_positive_float("height", height)  # type: ignore[assignment]
    width = check_positive_float("width", width)  # type: ignore[assignment]
    max_pixels = max_pixels if max_pixels is not None else IMAGE_MAX_TOKEN_NUM * factor ** 2
    min_pixels = min_pixels if min_pixels is not None else IMAGE_MIN_TOKEN_NUM * factor ** 2
    check_positive_float("max_pixels", max_pixels)
    check_positive_float("min_pixels", min_pixels, allow_zero=True)
    if max_pixels < min_pixels:
        raise InvalidArgumentError(
            f"max_pixels={max_pixels!r} must be >= min_pixels={min_pixels!r}")
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_RATIO:
        raise InvalidArgumentError(
            f"a {width:g}x{height:g} picture has aspect ratio {ratio:.4g}; at most {MAX_RATIO} "
            f"is allowed")
    h_bar = max(factor, round_by_factor(height, factor))
    w_bar = max(factor, round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = floor_by_factor(height / beta, factor)
        w_bar = floor_by_factor(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    if h_bar < factor or w_bar < factor:  # max_pixels below one factor x factor cell
        raise InvalidArgumentError(
            f"max_pixels={max_pixels!r} leaves no room for one {factor}x{factor} cell of a "
            f"{width:g}x{height:g} picture; raise max_pixels")
    return int(h_bar), int(w_bar)


def smart_nframes(ele: Mapping[str, Any], total_frames: int, video_fps: float) -> int:
    """Frames to sample from a video (or its window) of ``total_frames`` at ``video_fps``.

    ``ele["nframes"]`` (rounded to an even count) or, else, ``ele["fps"]`` (default 2) within
    ``[min_frames (4), max_frames (min(768, total_frames))]``, floored to an even count.

    Raises:
        InvalidArgumentError: both ``fps`` and ``nframes`` are given, a value is not a positive
            number, or the count falls outside ``[2, total_frames]``.
    """
    if "fps" in ele and "nframes" in ele:
        raise InvalidArgumentError(
            f"fps={ele['fps']!r} and nframes={ele['nframes']!r} were both given; give either "
            f"fps (with optional min_frames / max_frames) or nframes")
    if "nframes" in ele:
        nframes = round_by_factor(check_positive_float("nframes", ele["nframes"]), FRAME_FACTOR)
    else:
        fps = check_positive_float("fps", ele.get("fps", FPS))
        min_frames = ceil_by_factor(
            check_positive_float("min_frames", ele.get("min_frames", FPS_MIN_FRAMES)),
            FRAME_FACTOR)
        max_frames = floor_by_factor(
            check_positive_float("max_frames",
                                 ele.get("max_frames", min(FPS_MAX_FRAMES, total_frames))),
            FRAME_FACTOR)
        want = total_frames / video_fps * fps
        if want > total_frames:
            logger.warning("smart_nframes: fps=%g asks for %g frames of a %d-frame video",
                           fps, want, total_frames)
        want = min(min(max(want, min_frames), max_frames), total_frames)
        nframes = floor_by_factor(want, FRAME_FACTOR)
    if not FRAME_FACTOR <= nframes <= total_frames:
        raise InvalidArgumentError(
            f"the video has {total_frames} frames (in the requested window) and the options "
            f"{ {k: ele[k] for k in ('fps', 'nframes', 'min_frames', 'max_frames') if k in ele} } "
            f"ask for {nframes} (rounded to a multiple of {FRAME_FACTOR}: Qwen-VL takes frames "
            f"in pairs); the frame count must lie in [{FRAME_FACTOR}, {total_frames}]")
    return int(nframes)


def calculate_video_frame_range(ele: Mapping[str, Any], total_frames: int,
                                video_fps: float) -> tuple[int, int, int]:
    """(start_frame, end_frame, frame_count) of the window ``video_start``..``video_end``
    (seconds; frame ``i`` taken at ``i / video_fps``): the start rounded up, the end down.

    Raises:
        InvalidArgumentError: a bad fps or frame count, a non-number time, or a window holding
            fewer than two frames.
    """
    if not (math.isfinite(video_fps) and video_fps > 0):
        raise InvalidArgumentError(f"video fps={video_fps!r} must be a positive number")
    if total_frames <= 0:
        raise InvalidArgumentError(f"the video has {total_frames} frames; it needs at least 1")
    video_start = ele.get("video_start")
    video_end = ele.get("video_end")
    if video_start is None and video_end is None:
        return 0, total_frames - 1, total_frames
    max_duration = total_frames / video_fps
    start_frame, end_frame = 0, total_frames - 1
    start_s, end_s = 0.0, max_duration
    seconds = "a number of seconds"
    if video_start is not None:
        start = check_finite_float("video_start", video_start, what=seconds)
        start_s = max(0.0, min(start, max_duration))
        start_frame = math.ceil(start_s * video_fps)
    if video_end is not None:
        end = check_finite_float("video_end", video_end, what=seconds)
        end_s = max(0.0, min(end, max_duration))
        end_frame = min(math.floor(end_s * video_fps), total_frames - 1)
    if start_frame >= end_frame:
        raise InvalidArgumentError(
            f"video_start={video_start!r}, video_end={video_end!r} select frames "
            f"{start_frame}..{end_frame} of a {max_duration:.2f} s video ({total_frames} "
            f"frames at {video_fps:g} fps); the window must hold at least two frames")
    logger.debug("video window: frames %d..%d of %d (video_start=%s, video_end=%s, fps=%.3f)",
                 start_frame, end_frame, total_frames, video_start, video_end, video_fps)
    return start_frame, end_frame, end_frame - start_frame + 1


def video_size(ele: Mapping[str, Any], height: int, width: int, nframes: int,
               image_patch_size: int) -> tuple[int, int]:
    """(height, width) qwen-vl-utils resizes ``nframes`` video frames of ``height x width`` to.

    ``resized_height`` / ``resized_width`` when both are given (rounded to multiples of
    ``2 * image_patch_size``); else :func:`smart_resize` within ``min_pixels`` (default 128
    tokens) and ``max_pixels`` (at most 768 tokens per frame and ``total_pixels / nframes * 2``;
    ``total_pixels`` defaults to 90 % of ``MODEL_SEQ_LEN`` tokens).
    """
    factor = image_patch_size * SPATIAL_MERGE_SIZE
    frame_min = VIDEO_MIN_TOKEN_NUM * factor * factor
    frame_max = VIDEO_MAX_TOKEN_NUM * factor * factor
    min_pixels = check_positive_float("min_pixels", ele.get("min_pixels", frame_min),
                                      allow_zero=True)
    total_pixels = check_positive_float(
        "total_pixels", ele.get("total_pixels", model_seq_len() * factor * factor * 0.9))
    max_pixels = max(min(frame_max, total_pixels / nframes * FRAME_FACTOR), int(min_pixels * 1.05))
    wanted = check_positive_float("max_pixels", ele.get("max_pixels", max_pixels))
    if wanted > max_pixels:
        logger.warning("max_pixels=%s exceeds the limit %s for %d frames; using the limit",
                       wanted, max_pixels, nframes)
    max_pixels = min(wanted, max_pixels)
    if max_pixels < min_pixels:
        given = "min_pixels" if "min_pixels" in ele else (
            f"the default min_pixels ({VIDEO_MIN_TOKEN_NUM} tokens of {factor}x{factor})")
        raise InvalidArgumentError(
            f"max_pixels={ele.get('max_pixels', max_pixels)!r} (the most a frame may have "
            f"here: {max_pixels:g}) is below {given} = {min_pixels:g}; lower min_pixels or "
            f"raise max_pixels")
    if "resized_height" in ele and "resized_width" in ele:
        return smart_resize(ele["resized_height"], ele["resized_width"], factor=factor)
    # keep qwen-vl-utils' exact values: an int key stays an int
    return smart_resize(height, width, factor=factor,
                        min_pixels=ele.get("min_pixels", frame_min),  # type: ignore[arg-type]
                        max_pixels=max_pixels)  # type: ignore[arg-type]


def resize_frames(frames: np.ndarray, size: tuple[int, int], *, chunk: int = 32) -> Any:
    """(T, H, W, 3) uint8 frames -> (T, 3, h, w) float32 torch tensor, resized exactly as
    ``torchvision.transforms.functional.resize(x, size, BICUBIC, antialias=True).float()`` on a
    uint8 (T, 3, H, W) tensor: float32 bicubic with antialias (``align_corners=False``),
    clamped to [0, 255], rounded, cast to uint8, then to float. Frames already at ``size``
    are returned unchanged (as torchvision does). Resized ``chunk`` frames at a time
    (the result is the same; memory stays bounded).
    """
    torch = require("torch", "vidsel.qwen", extra="embed")
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W)
    if tuple(x.shape[-2:]) == tuple(size) or not len(x):
        return x.float()
    out = []
    for start in range(0, x.shape[0], chunk):
        part = x[start:start + chunk].to(torch.float32)
        part = torch.nn.functional.interpolate(part, size=list(size), mode="bicubic",
                                               align_corners=False, antialias=True)
        out.append(part.clamp_(0, 255).round_().to(torch.uint8).float())
    return torch.cat(out)
