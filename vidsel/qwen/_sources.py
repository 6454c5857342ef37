"""Where pictures and videos come from: PIL images, local paths, ``file://`` and
``data:image/...;base64,`` URIs, and http(s) URLs, which are fetched only when downloads are
allowed (``allow_download=True`` or ``VIDSEL_ALLOW_DOWNLOAD=1``, vidsel's one rule for the
network)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import http.client
import logging
import os
import urllib.request
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..embed import ALLOW_DOWNLOAD_ENV, downloads_allowed
from ..errors import (
    DownloadFailedError,
    DownloadNotAllowedError,
    InvalidArgumentError,
    VideoNotFoundError,
)
from ..io import bytes_as_file

__all__ = ["download", "is_url", "local_video", "open_image", "to_rgb"]

logger = logging.getLogger(__name__)

#: Seconds to wait for an allowed download.
DOWNLOAD_TIMEOUT_S = 60.0


def is_url(source: str) -> bool:
    """``source`` is an http(s) URL."""
    return source.startswith(("http://", "https://"))


def _refuse(url: str, what: str) -> DownloadNotAllowedError:
    return DownloadNotAllowedError(
        f"{what} {url!r} is a URL and vidsel downloads nothing unless allowed: pass "
        f"allow_download=True or set {ALLOW_DOWNLOAD_ENV}=1 (or download the file and give "
        f"its path)")


def download(url: str, *, what: str, allow_download: bool | None) -> bytes:
    """The bytes at ``url``.

    Raises:
        DownloadNotAllowedError: downloads are not allowed (nothing is fetched).
        DownloadFailedError: the download failed (a malformed URL, no connection, an HTTP
            error status, a timeout, a broken response); the message names the URL.
    """
    if not downloads_allowed(allow_download):
        raise _refuse(url, what)
    logger.info("downloading %s %s", what, url)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            return bytes(resp.read())
    # URLError, HTTPError and timeouts are OSErrors; a malformed URL ("http://[abc/")
    # raises ValueError; a broken response http.client.HTTPException
    except (ValueError, OSError, http.client.HTTPException) as exc:
        raise DownloadFailedError(f"{what} {url!r}: download failed: {exc}") from exc


@contextlib.contextmanager
def local_video(source: str, *, allow_download: bool | None) -> Iterator[str]:
    """A local file for a video source, valid inside the ``with`` block: ``file://``
    stripped, a URL downloaded (when allowed) into a temporary file
    (:func:`vidsel.io.bytes_as_file`) that is removed on exit, also on errors.

    Raises:
        DownloadNotAllowedError, DownloadFailedError: see :func:`download`.
    """
    if source.startswith("file://"):
        yield source[len("file://"):]
    elif is_url(source):
        data = download(source, what="video", allow_download=allow_download)
        suffix = os.path.splitext(source.split("?", 1)[0])[1][:8]
        with bytes_as_file(data, prefix="vidsel-qwen-", suffix=suffix) as path:
            yield path
    else:
        yield source


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of ``image``; RGBA is composited over white (as qwen-vl-utils does)."""
    if image.mode == "RGBA":
        white = Image.new("RGB", image.size, (255, 255, 255))
        white.paste(image, mask=image.split()[3])
        return white
    return image.convert("RGB")


def _open_bytes(data: bytes, what: str) -> Image.Image:
    try:
        with BytesIO(data) as bio:
            return copy.deepcopy(Image.open(bio))
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidArgumentError(f"{what}: the data is not an image ({exc})") from exc


def open_image(source: Any, *, allow_download: bool | None) -> Image.Image:
    """A PIL image from a PIL image, a local path, ``file://`` path, ``data:image`` base64 URI
    or (when downloads are allowed) an http(s) URL.

    Raises:
        VideoNotFoundError: a local file does not exist (a FileNotFoundError too).
        InvalidArgumentError: an unsupported source or data that is not an image.
        DownloadNotAllowedError: a URL while downloads are not allowed.
    """
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str):
        raise InvalidArgumentError(
            f"image={source!r} must be a PIL image, a local path, a file:// path, a "
            f"data:image;base64 URI or an http(s) URL")
    if is_url(source):
        return _open_bytes(download(source, what="image", allow_download=allow_download),
                           f"image {source!r}")
    if source.startswith("data:image"):
        if "base64," not in source:
            raise InvalidArgumentError(
                f"image {source[:40]!r}...: only base64 data URIs are supported "
                f"('data:image/png;base64,...')")
        try:
            data = base64.b64decode(source.split("base64,", 1)[1], validate=False)
        except (binascii.Error, ValueError) as exc:
            raise InvalidArgumentError(f"image {source[:40]!r}...: bad base64 ({exc})") from exc
        return _open_bytes(data, f"image {source[:40]!r}...")
    path = source[len("file://"):] if source.startswith("file://") else source
    if not os.path.isfile(path):
        raise VideoNotFoundError(f"image {path!r}: no such file")
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidArgumentError(f"image {path!r}: not an image file ({exc})") from exc
