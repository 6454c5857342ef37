"""A drop-in for qwen-vl-utils: ``from vidsel.qwen import process_vision_info``.

Same call, same outputs as ``qwen_vl_utils.process_vision_info`` (0.0.14): with no
``selector`` (or ``selector="uniform"``) the frames, the sample rates and the metadata equal,
bit for bit, what qwen-vl-utils returns with its decord backend (the one it picks when
torchcodec is not installed), except ``video_backend`` (``"vidsel"``) and files where decord
itself decodes wrongly; every frame is decoded exactly by :class:`vidsel.VideoReader`. With
qwen-vl-utils' torchcodec backend the frame rate (torchcodec's ``average_fps``, computed from
the content in its exact mode) can differ from the stream's declared rate vidsel and decord
report, and with it the frame indices, sample fps and metadata.
Each video element may also name a vidsel method to choose what the model sees::

    {"type": "video", "video": "clip.mp4", "nframes": 16,
     "selector": "mdp3",                      # any name of vidsel.available_methods()
     "embedder": "hf:/models/siglip",         # text selectors score frames against...
     "question": "When does the dog jump?",   # ...this (default: the conversation's user text)
     "params": {"lam": 0.2}}                  # selector parameters

- frame selectors return the chosen frames with their true metadata (source ``fps``, real
  ``frames_indices``), restricted to ``video_start`` / ``video_end`` when given;
- ``selector="codec"`` returns a :class:`CodecVideoOutput` (canvases + patch positions in
  lmms-video-utils' layout) instead of a frame tensor;
- an ``embedder`` spec is loaded once per process (:func:`vidsel.embed.shared_embedder`);
- ``{"type": "video_url", "video_url": {"url": ...}}`` (OpenAI / vLLM style, skipped by
  qwen-vl-utils) is read as the video;
- URLs are fetched only when allowed (``allow_download=True`` or ``VIDSEL_ALLOW_DOWNLOAD=1``):
  otherwise :class:`DownloadNotAllowedError`, a failed download :class:`DownloadFailedError`.

Public helpers mirror qwen-vl-utils': :func:`extract_vision_info`, :func:`fetch_image`,
:func:`fetch_video`, :func:`smart_resize`, :func:`smart_nframes`,
:func:`calculate_video_frame_range`. torch is required (``pip install 'vidsel[embed]'``).
"""

from ..errors import DownloadFailedError, DownloadNotAllowedError
from ..selection import VIDEO_BACKEND
from ._codec import CodecVideoOutput
from ._image import fetch_image
from ._process import extract_vision_info, process_vision_info
from ._rules import (
    FPS,
    FPS_MAX_FRAMES,
    FPS_MIN_FRAMES,
    FRAME_FACTOR,
    IMAGE_MAX_TOKEN_NUM,
    IMAGE_MIN_TOKEN_NUM,
    MAX_RATIO,
    SPATIAL_MERGE_SIZE,
    VIDEO_MAX_TOKEN_NUM,
    VIDEO_MIN_TOKEN_NUM,
    calculate_video_frame_range,
    ceil_by_factor,
    floor_by_factor,
    round_by_factor,
    smart_nframes,
    smart_resize,
)
from ._video import DEFAULT_SELECTOR, fetch_video

__all__ = [
    "DEFAULT_SELECTOR",
    "FPS",
    "FPS_MAX_FRAMES",
    "FPS_MIN_FRAMES",
    "FRAME_FACTOR",
    "IMAGE_MAX_TOKEN_NUM",
    "IMAGE_MIN_TOKEN_NUM",
    "MAX_RATIO",
    "SPATIAL_MERGE_SIZE",
    "VIDEO_BACKEND",
    "VIDEO_MAX_TOKEN_NUM",
    "VIDEO_MIN_TOKEN_NUM",
    "CodecVideoOutput",
    "DownloadFailedError",
    "DownloadNotAllowedError",
    "calculate_video_frame_range",
    "ceil_by_factor",
    "extract_vision_info",
    "fetch_image",
    "fetch_video",
    "floor_by_factor",
    "process_vision_info",
    "round_by_factor",
    "smart_nframes",
    "smart_resize",
]
