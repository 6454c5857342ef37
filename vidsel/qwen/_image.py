"""Images of a conversation, as qwen-vl-utils' ``fetch_image`` returns them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PIL import Image

from ..errors import InvalidArgumentError
from ._rules import IMAGE_MAX_TOKEN_NUM, IMAGE_MIN_TOKEN_NUM, SPATIAL_MERGE_SIZE, smart_resize
from ._sources import open_image, to_rgb

__all__ = ["fetch_image"]


def fetch_image(ele: Mapping[str, Any], image_patch_size: int = 14, *,
                allow_download: bool | None = None) -> Image.Image:
    """The RGB image of a content element, resized like qwen-vl-utils does.

    Args:
        ele: ``{"image": src}`` or ``{"image_url": src}`` with ``src`` a PIL image, a local
            path, ``file://`` path, ``data:image/...;base64,`` URI or http(s) URL; optional
            ``resized_height`` + ``resized_width``, or ``min_pixels`` / ``max_pixels``.
        image_patch_size: the vision encoder's patch side (14 for Qwen2/2.5-VL, 16 for
            Qwen3-VL); sides become multiples of twice this.
        allow_download: fetch http(s) URLs (None: only when ``VIDSEL_ALLOW_DOWNLOAD=1``).

    Returns:
        A PIL RGB image (resized with PIL's default resampling, as qwen-vl-utils does).

    Raises:
        InvalidArgumentError: no image key, an unsupported source, bad sizes.
        VideoNotFoundError: a local file is missing.
        DownloadNotAllowedError: a URL while downloads are not allowed.
    """
    if not isinstance(ele, Mapping):
        raise InvalidArgumentError(f"content element {ele!r} must be a dict")
    if "image" in ele:
        source = ele["image"]
    elif "image_url" in ele:
        source = ele["image_url"]
    else:
        raise InvalidArgumentError(
            f"content element {dict(ele)!r} has neither 'image' nor 'image_url'")
    if isinstance(source, Mapping) and "url" in source:  # OpenAI style {"url": ...}
        source = source["url"]
    factor = int(image_patch_size * SPATIAL_MERGE_SIZE)
    image = to_rgb(open_image(source, allow_download=allow_download))
    if "resized_height" in ele and "resized_width" in ele:
        height, width = smart_resize(ele["resized_height"], ele["resized_width"], factor=factor)
    else:
        w, h = image.size
        height, width = smart_resize(
            h, w, factor=factor,
            min_pixels=ele.get("min_pixels", IMAGE_MIN_TOKEN_NUM * factor ** 2),
            max_pixels=ele.get("max_pixels", IMAGE_MAX_TOKEN_NUM * factor ** 2))
    return image.resize((width, height))
