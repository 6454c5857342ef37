"""vidsel's exception tree.

Every exception raised on purpose by vidsel derives from :class:`VidselError` *and* from the
builtin a caller would naturally catch, so ``except FileNotFoundError`` and
``except vidsel.VidselError`` both work. Messages name the file and, where it matters, the
stream, frame and codec.
"""

from __future__ import annotations

__all__ = [
    "CorruptVideoError",
    "DecodeError",
    "DownloadFailedError",
    "DownloadNotAllowedError",
    "FrameIndexError",
    "InvalidArgumentError",
    "MissingDependencyError",
    "ModelNotAvailableError",
    "NoVideoStreamError",
    "NotAVideoError",
    "UnsupportedCodecError",
    "UnsupportedRequestError",
    "VideoNotFoundError",
    "VidselError",
]


class VidselError(Exception):
    """Base class of every error vidsel raises on purpose."""


class VideoNotFoundError(VidselError, FileNotFoundError):
    """The video path does not exist or is not a regular file."""


class NotAVideoError(VidselError, ValueError):
    """The file exists but no container format could be recognised (or it is empty)."""


class NoVideoStreamError(NotAVideoError):
    """The container opened but holds no (decodable) video stream, e.g. audio-only files."""


class UnsupportedCodecError(VidselError, ValueError):
    """The stream's codec has no decoder in this build (or the backend cannot handle it)."""


class DecodeError(VidselError, RuntimeError):
    """Decoding failed for a reason other than damaged data (e.g. a backend bug)."""


class CorruptVideoError(DecodeError):
    """The data is truncated or damaged: some or all requested frames cannot be decoded.

    Attributes:
        path: the video file.
        missing: frame indices that were requested but could not be decoded (may be empty
            when the whole file is unreadable).
    """

    def __init__(self, message: str, *, path: str | None = None,
                 missing: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.missing = missing


class FrameIndexError(VidselError, IndexError):
    """A requested frame index or timestamp lies outside the video."""


class InvalidArgumentError(VidselError, ValueError):
    """A public function got an argument value outside its allowed range or choices."""


class MissingDependencyError(VidselError, ImportError):
    """An optional dependency needed for the requested feature is not installed."""


class ModelNotAvailableError(VidselError, OSError):
    """Model weights could not be found locally and cannot be downloaded (e.g. offline)."""


class DownloadNotAllowedError(VidselError, PermissionError):
    """A source is a URL and downloads are not allowed (``allow_download=True`` or
    ``VIDSEL_ALLOW_DOWNLOAD=1`` allows them)."""


class DownloadFailedError(VidselError, OSError):
    """An allowed download failed (network error, HTTP error, malformed URL)."""


class UnsupportedRequestError(VidselError, NotImplementedError):
    """An integration was asked for something it does not do (e.g. lmms-eval's
    ``loglikelihood`` requests of the ``vidsel`` model, which answers ``generate_until``)."""
