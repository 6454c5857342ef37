"""Encoded video held in memory, as a file the reader can open: :func:`bytes_as_file`."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

__all__ = ["bytes_as_file"]


@contextlib.contextmanager
def bytes_as_file(data: bytes | bytearray | memoryview, *, prefix: str = "vidsel-",
                  suffix: str = "") -> Iterator[str]:
    """Write ``data`` to a private temporary file and yield its path; the file is removed on
    exit, also when the body raises (the reader takes paths, not file-like objects).

    Args:
        data: the encoded bytes (any container FFmpeg reads).
        prefix: start of the file name (``vidsel-vllm-``...).
        suffix: the file's extension, e.g. ``.mp4`` (FFmpeg probes the content, not the name).

    Example:
        >>> with bytes_as_file(data, suffix=".mp4") as path:            # doctest: +SKIP
        ...     frames = VideoReader(path).get_frames([0])
    """
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
