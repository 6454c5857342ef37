"""``process_vision_info``: every image and video of Qwen-VL conversations, in order."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidArgumentError
from ..optional import require
from ._image import fetch_image
from ._video import fetch_video

__all__ = ["extract_vision_info", "process_vision_info", "vision_items"]

logger = logging.getLogger(__name__)

#: Element types holding a picture or a video (``video_url``: OpenAI / vLLM style, which
#: qwen-vl-utils skips; vidsel reads it as the video rather than lose it silently).
_VISION_TYPES = ("image", "image_url", "video", "video_url")


def _conversations(conversations: Any) -> list[Sequence[Mapping[str, Any]]]:
    """One conversation (a list of messages) or a batch of them, as a list of conversations."""
    if not isinstance(conversations, Sequence) or isinstance(conversations, (str, bytes)):
        raise InvalidArgumentError(
            f"conversations must be a list of messages or a list of such lists, got "
            f"{type(conversations).__name__}")
    if not conversations:
        return []
    if isinstance(conversations[0], Mapping):
        return [conversations]
    return list(conversations)


def _is_vision(ele: Any) -> bool:
    return isinstance(ele, Mapping) and (
        "image" in ele or "image_url" in ele or "video" in ele or "video_url" in ele
        or ele.get("type", "text") in _VISION_TYPES)


def _user_text(conversation: Sequence[Mapping[str, Any]]) -> str | None:
    """The text parts of the user turns, joined by newlines (None when there are none)."""
    parts: list[str] = []
    for message in conversation:
        if not isinstance(message, Mapping) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(e["text"]) for e in content
                         if isinstance(e, Mapping) and e.get("type", "text") == "text"
                         and isinstance(e.get("text"), str))
    text = "\n".join(p.strip() for p in parts if p.strip())
    return text or None


def vision_items(conversations: Any) -> list[tuple[Mapping[str, Any], str | None]]:
    """(element, question) for every image / video element, in order; the question is the
    user text of the conversation holding the element."""
    items: list[tuple[Mapping[str, Any], str | None]] = []
    for conversation in _conversations(conversations):
        if not isinstance(conversation, Sequence) or isinstance(conversation, (str, bytes)):
            raise InvalidArgumentError(
                f"a conversation must be a list of messages, got {type(conversation).__name__}")
        question = _user_text(conversation)
        for message in conversation:
            if not isinstance(message, Mapping) or "content" not in message:
                raise InvalidArgumentError(
                    f"message {message!r} must be a dict with 'role' and 'content'")
            if isinstance(message["content"], list):
                items.extend((ele, question) for ele in message["content"] if _is_vision(ele))
    return items


def extract_vision_info(conversations: Any) -> list[Mapping[str, Any]]:
    """Every image / video content element of one conversation or a batch, in order (as
    qwen-vl-utils' ``extract_vision_info``, plus the ``video_url`` elements it skips)."""
    return [ele for ele, _ in vision_items(conversations)]


def process_vision_info(
    conversations: Any,
    return_video_kwargs: bool = False,
    return_video_metadata: bool = False,
    image_patch_size: int = 14,
    *,
    allow_download: bool | None = None,
) -> tuple[Any, ...]:
    """Images and videos of Qwen-VL conversations, ready for a Qwen-VL processor: the drop-in
    for ``qwen_vl_utils.process_vision_info``.

    Args:
        conversations: one conversation (list of ``{"role", "content"}`` messages) or a batch.
            Videos come as ``{"type": "video", "video": ...}`` or, OpenAI / vLLM style,
            ``{"type": "video_url", "video_url": {"url": ...}}``; an ``embedder`` spec is
            loaded once per process (:func:`vidsel.embed.shared_embedder`).
        return_video_kwargs: also return the processor keywords (``do_sample_frames=False``,
            plus ``fps`` — the sample rate of each video — unless ``return_video_metadata``).
        return_video_metadata: each video comes as ``(tensor, metadata)``; pass the metadata to
            the processor (``video_metadata=``) so Qwen3-VL gets the true frame times.
        image_patch_size: 14 for Qwen2-VL / Qwen2.5-VL, 16 for Qwen3-VL.
        allow_download: fetch http(s) images and videos (None: only when
            ``VIDSEL_ALLOW_DOWNLOAD=1``).

    Returns:
        ``(images, videos)`` or ``(images, videos, video_kwargs)``: images a list of PIL RGB
        images or None; videos a list of (T, 3, H, W) float32 tensors (T even), of
        ``(tensor, metadata)`` pairs, or of :class:`CodecVideoOutput` for ``selector="codec"``,
        or None.

    Raises:
        InvalidArgumentError: malformed conversations or element keys; see
            :func:`fetch_video` / :func:`fetch_image` for the rest.
    """
    require("torch", "vidsel.qwen", extra="embed")
    if isinstance(image_patch_size, bool) or not isinstance(image_patch_size, int) \
            or image_patch_size <= 0:
        raise InvalidArgumentError(f"image_patch_size={image_patch_size!r} must be an int >= 1 "
                                   f"(14 for Qwen2/2.5-VL, 16 for Qwen3-VL)")
    images: list[Any] = []
    videos: list[Any] = []
    sample_fps: list[float] = []
    for ele, question in vision_items(conversations):
        if "image" in ele or "image_url" in ele:
            images.append(fetch_image(ele, image_patch_size=image_patch_size,
                                      allow_download=allow_download))
        elif "video" in ele or "video_url" in ele:
            video, fps = fetch_video(ele, image_patch_size=image_patch_size,
                                     return_video_sample_fps=True,
                                     return_video_metadata=return_video_metadata,
                                     question=question, allow_download=allow_download)
            videos.append(video)
            sample_fps.append(fps)
        else:
            raise InvalidArgumentError(
                f"content element {dict(ele)!r} has type {ele.get('type')!r} but no 'image', "
                f"'image_url', 'video' or 'video_url' key")
    video_kwargs: dict[str, Any] = {"do_sample_frames": False}
    if not return_video_metadata:  # Qwen2.5-VL takes the sample rate instead of metadata
        video_kwargs["fps"] = sample_fps
    out_images = images or None
    out_videos = videos or None
    if return_video_kwargs:
        return out_images, out_videos, video_kwargs
    return out_images, out_videos
