"""Videos of a conversation, as qwen-vl-utils' ``fetch_video`` returns them, decoded exactly by
:class:`vidsel.VideoReader` and chosen by any vidsel method (``selector``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._validate import check_positive_float
from ..errors import InvalidArgumentError
from ..io import VideoReader, open_container
from ..methods import get_method
from ..optional import require
from ..results import PatchConfig, PatchSelection
from ..select import get_selector
from ..selection import VIDEO_BACKEND, even_positions
from ._codec import codec_output
from ._image import fetch_image
from ._rules import (
    FRAME_FACTOR,
    SPATIAL_MERGE_SIZE,
    calculate_video_frame_range,
    ceil_by_factor,
    resize_frames,
    smart_nframes,
    video_size,
)
from ._select import element_embedder, qwen_uniform, select_indices
from ._sources import local_video

__all__ = ["DEFAULT_SELECTOR", "fetch_video", "source_fps", "video_source"]

logger = logging.getLogger(__name__)

#: The method used when a video element names no ``selector``: qwen-vl-utils' own sampling.
DEFAULT_SELECTOR = "uniform"
#: Frames decoded (at native size) per chunk before resizing; bounds memory.
_DECODE_CHUNK = 32
#: Drift (frames, over the whole video) under which the stream's declared average rate is
#: reported as fps instead of the decoded timestamps' rate.
_FPS_TOLERANCE_FRAMES = 0.5


def source_fps(reader: VideoReader) -> float:
    """The frame rate frame indices are converted to seconds with.

    The stream's declared average rate (what decord reports, so the number is bit-identical
    to qwen-vl-utils' decord backend; torchcodec's exact-mode ``average_fps`` is computed from
    the content and can differ) when it agrees with the rate of the decoded timestamps
    (``metadata.fps``) to within half a frame over the whole video (``index / fps`` then
    names the same frame with either rate); the timestamps' rate otherwise (edit lists,
    hidden frames: there the declared rate is wrong).
    """
    md = reader.metadata
    declared = 0.0
    with open_container(reader.path) as container:
        rate = container.streams[md.stream_index].average_rate
        if rate:
            declared = float(rate)
    if declared > 0 and md.fps > 0 and \
            abs(declared - md.fps) / md.fps * md.num_frames <= _FPS_TOLERANCE_FRAMES:
        return declared
    if declared > 0:
        logger.info("%s: declared rate %.6g fps, decoded timestamps give %.6g fps; using the "
                    "timestamps", reader.path, declared, md.fps)
    return float(md.fps)


def _selector(ele: Mapping[str, Any]) -> str:
    name = ele.get("selector") or DEFAULT_SELECTOR
    if not isinstance(name, str):
        raise InvalidArgumentError(f"selector={name!r} must be a method name (str)")
    get_method(name)  # unknown names: the error lists the choices
    return name


def _check_uniform_params(params: Any) -> None:
    """``uniform`` takes no parameters: refuse any instead of ignoring them."""
    if params is None:
        return
    if not isinstance(params, Mapping):
        raise InvalidArgumentError(f"params={params!r} must be a mapping of selector parameters")
    get_selector(DEFAULT_SELECTOR).check_params(dict(params))


def _decode_resized(reader: VideoReader, idx: np.ndarray, ele: Mapping[str, Any],
                    image_patch_size: int) -> Any:
    """(T, 3, h, w) float32 tensor of frames ``idx`` at the size qwen-vl-utils picks."""
    torch = require("torch", "vidsel.qwen", extra="embed")
    md = reader.metadata
    size = video_size(ele, md.height, md.width, len(idx), image_patch_size)
    parts = [resize_frames(reader.get_frames(idx[s:s + _DECODE_CHUNK]), size)
             for s in range(0, len(idx), _DECODE_CHUNK)]
    return torch.cat(parts)


def _from_file(ele: Mapping[str, Any], path: str, image_patch_size: int,
               question: str | None) -> tuple[Any, dict[str, Any], float]:
    selector = _selector(ele)
    with VideoReader(path) as reader:
        fps = source_fps(reader)
        start, end, count = calculate_video_frame_range(ele, reader.metadata.num_frames, fps)
        nframes = smart_nframes(ele, total_frames=count, video_fps=fps)
        method = get_method(selector)
        if method.kind == "patches":
            return _patches(reader, ele, selector, (start, end), nframes, fps, image_patch_size,
                            question)
        if selector == DEFAULT_SELECTOR:
            _check_uniform_params(ele.get("params"))
            idx = qwen_uniform(start, end, nframes)
        else:
            idx = select_indices(reader, selector, start, end, nframes,
                                 question=ele.get("question", question),
                                 embedder=ele.get("embedder"), params=ele.get("params"))
            if len(idx) < nframes:
                logger.info("%s: selector %r returned %d of %d frames", path, selector,
                            len(idx), nframes)
            # Qwen-VL pairs frames in time: an odd count repeats the last frame
            idx = idx[even_positions(len(idx), "pad", what=f"{path} ({selector})")]
        video = _decode_resized(reader, idx, ele, image_patch_size)
    metadata = {"fps": fps, "frames_indices": [int(i) for i in idx],
                "total_num_frames": count, "video_backend": VIDEO_BACKEND}
    sample_fps = len(idx) / max(count, 1e-6) * fps
    logger.debug("%s: %s -> %d frames %s", path, selector, len(idx), tuple(video.shape))
    return video, metadata, sample_fps


def _patches(reader: VideoReader, ele: Mapping[str, Any], selector: str,
             window: tuple[int, int], nframes: int, fps: float, image_patch_size: int,
             question: str | None) -> tuple[Any, dict[str, Any], float]:
    """A patch method (``codec``) at ``nframes`` frame-equivalents of the Qwen frame size."""
    md = reader.metadata
    if window != (0, md.num_frames - 1):
        raise InvalidArgumentError(
            f"selector={selector!r} chooses patches from the whole video and cannot be "
            f"restricted to video_start / video_end yet; drop the window or use a frame "
            f"selector (uniform, mdp3, ...)")
    params = ele.get("params") or {}
    if not isinstance(params, Mapping):
        raise InvalidArgumentError(f"params={params!r} must be a mapping of {selector} options")
    size = video_size(ele, md.height, md.width, nframes, image_patch_size)
    geometry = PatchConfig.make(patch_size=image_patch_size, merge=SPATIAL_MERGE_SIZE,
                                frame_size=size)
    method = get_method(selector)
    options = dict(params)
    spec = ele.get("embedder")
    if method.needs_embedder and spec is None:
        raise InvalidArgumentError(
            f"selector={selector!r} steers the patches by the question and needs an embedder: "
            f"add 'embedder': 'hf:/path/to/siglip' (or an Embedder) to the video element")
    if spec is not None:
        # the question steers the codec patches (query-aware); a spec string is loaded once
        # per process, as for the frame selectors
        options["embedder"] = element_embedder(spec)
    sel = method(reader, question=ele.get("question", question), budget=nframes,
                 geometry=geometry, **options)
    if not isinstance(sel, PatchSelection):  # pragma: no cover - kind checked by the registry
        raise InvalidArgumentError(f"selector={selector!r} did not return patches")
    out, frames = codec_output(sel, fps)
    metadata = {"fps": fps, "frames_indices": [int(i) for i in frames],
                "total_num_frames": md.num_frames, "video_backend": VIDEO_BACKEND}
    return out, metadata, len(frames) / max(md.num_frames, 1e-6) * fps


def _from_frames(ele: Mapping[str, Any], frames: Sequence[Any], image_patch_size: int,
                 allow_download: bool | None) -> tuple[Any, dict[str, Any], float]:
    """A video given as a list of images, exactly as qwen-vl-utils handles it."""
    selector = _selector(ele)
    if selector != DEFAULT_SELECTOR:
        raise InvalidArgumentError(
            f"selector={selector!r}: this video is a list of {len(frames)} images, used as "
            f"given; selectors choose among the frames of a video file (pass its path), or "
            f"select the images yourself")
    if not len(frames):
        raise InvalidArgumentError("video=[]: a list of frames needs at least one image")
    # the rate the images were sampled at, and the source's (default: the same); checked
    # before any image is read
    sample_fps = check_positive_float("sample_fps", ele.get("sample_fps", 2.0))
    raw_fps = check_positive_float("raw_fps", ele.get("raw_fps", sample_fps))
    factor = image_patch_size * SPATIAL_MERGE_SIZE
    info = {k: v for k, v in ele.items() if k not in ("type", "video")}
    # qwen-vl-utils hands each frame to fetch_image with image_patch_size=factor (so frames
    # are first sized in multiples of 2 * factor, with the image pixel limits); kept for parity
    images = [fetch_image({"image": f, **info}, factor, allow_download=allow_download)
              for f in frames]
    nframes = ceil_by_factor(len(images), FRAME_FACTOR)
    if len(images) < nframes:
        logger.info("video of %d images: repeating the last one to make the count even",
                    len(images))
        images.extend([images[-1]] * (nframes - len(images)))
    sizes = {im.size for im in images}
    if len(sizes) > 1:
        raise InvalidArgumentError(
            f"the {len(frames)} images of this video have different sizes {sorted(sizes)}; "
            f"give images of one size or resized_height / resized_width")
    stack = np.stack([np.asarray(im) for im in images])  # (T, h, w, 3) uint8
    metadata = {"fps": raw_fps, "frames_indices": list(range(len(images))),
                "total_num_frames": (nframes / sample_fps) * raw_fps}
    size = video_size(ele, stack.shape[1], stack.shape[2], len(images), image_patch_size)
    return resize_frames(stack, size), metadata, sample_fps


def video_source(ele: Any) -> Any:
    """The video of a content element: ``ele["video"]`` (a path, URL or list of images), else
    the OpenAI / vLLM-style ``ele["video_url"]``, a URL string or ``{"url": ...}`` (as
    lmms-video-utils reads it; qwen-vl-utils skips such elements).

    Raises:
        InvalidArgumentError: ``ele`` is not a dict, has neither key, or a ``video_url`` dict
            has no ``"url"``.
    """
    if not isinstance(ele, Mapping) or ("video" not in ele and "video_url" not in ele):
        raise InvalidArgumentError(
            f"content element {ele!r} must be a dict with a 'video' (or 'video_url') key")
    if "video" in ele:
        return ele["video"]
    url = ele["video_url"]
    if isinstance(url, Mapping):
        if "url" not in url:
            raise InvalidArgumentError(
                f"video_url={dict(url)!r} must be a URL string or a dict with a 'url' key")
        url = url["url"]
    if not isinstance(url, (str, os.PathLike)):
        raise InvalidArgumentError(
            f"video_url={url!r} must be a file path, a file:// or http(s) URL")
    return url


def fetch_video(ele: Mapping[str, Any], image_patch_size: int = 14,
                return_video_sample_fps: bool = False, return_video_metadata: bool = False, *,
                question: str | None = None, allow_download: bool | None = None) -> Any:
    """The frames (or codec patches) of one video element.

    Args:
        ele: ``{"video": path_or_frames, ...}`` (or ``{"video_url": url_or_{"url": ...}}``,
            OpenAI / vLLM style) with qwen-vl-utils' keys (``fps`` |
            ``nframes``, ``min_frames``, ``max_frames``, ``video_start``, ``video_end``,
            ``min_pixels``, ``max_pixels``, ``total_pixels``, ``resized_height`` +
            ``resized_width``) and vidsel's (``selector``, ``question``, ``embedder``,
            ``params``).
        image_patch_size: 14 (Qwen2/2.5-VL) or 16 (Qwen3-VL); frame sides become multiples of
            twice this.
        return_video_sample_fps: also return the sampling rate (frames per second of video).
        return_video_metadata: return ``(video, metadata)``; metadata holds ``fps`` (source),
            ``frames_indices`` (source frames, after padding), ``total_num_frames`` (frames in
            the window) and ``video_backend`` (``"vidsel"``).
        question: the question used when the element has none (text selectors).
        allow_download: fetch http(s) sources (None: only when ``VIDSEL_ALLOW_DOWNLOAD=1``).

    Returns:
        ``video`` — a (T, 3, H, W) float32 tensor (values 0..255, T even), or for a patch
        selector (``codec``) a :class:`CodecVideoOutput` — or ``(video, metadata)``; followed
        by the sample fps when ``return_video_sample_fps``.

    Raises:
        InvalidArgumentError: bad keys or values (the message names them).
        VideoNotFoundError, NotAVideoError, CorruptVideoError...: the file cannot be read.
        DownloadNotAllowedError: a URL while downloads are not allowed.
        DownloadFailedError: an allowed download failed.
    """
    source = video_source(ele)
    if isinstance(source, (list, tuple)):
        video, metadata, sample_fps = _from_frames(ele, source, image_patch_size,
                                                   allow_download)
    elif isinstance(source, (str, os.PathLike)):
        # a downloaded file lives until its frames are decoded, then is removed
        with local_video(os.fspath(source), allow_download=allow_download) as path:
            video, metadata, sample_fps = _from_file(ele, path, image_patch_size, question)
    else:
        raise InvalidArgumentError(
            f"video={source!r} must be a file path, a file:// or http(s) URL, or a list of "
            f"images")
    final = (video, metadata) if return_video_metadata else video
    return (final, sample_fps) if return_video_sample_fps else final
