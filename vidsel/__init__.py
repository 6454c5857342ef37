"""vidsel: choose which pixels of a long video a vision-language model sees.

Public faces:

- :class:`VideoReader` — exact frames by index or time, fast sparse sampling (``vidsel.io``).
- ``vidsel.codec`` — codec signals and motion-rich patch selection at a fixed token budget.
- ``vidsel.select`` — array-level selectors (uniform, top-k, DPP, MDP3, BOLT, AKS).
- :func:`select_frames` / :class:`Selection` — text-relevant keyframe selection end to end.
"""

from ._version import __version__
from .errors import (
    CorruptVideoError,
    DecodeError,
    FrameIndexError,
    InvalidArgumentError,
    MissingDependencyError,
    ModelNotAvailableError,
    NotAVideoError,
    NoVideoStreamError,
    UnsupportedCodecError,
    VideoNotFoundError,
    VidselError,
)
from .io import FrameBatch, PacketTable, VideoMetadata, VideoReader, packet_table
from .selection import FrameSelector, Selection, select_frames

_SUBMODULES = ("cli", "codec", "embed", "io", "select", "synth")


def __getattr__(name: str) -> object:
    """``vidsel.codec``, ``vidsel.select``... without importing them until first use."""
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'vidsel' has no attribute {name!r}")


__all__ = [
    "CorruptVideoError",
    "DecodeError",
    "FrameBatch",
    "FrameIndexError",
    "FrameSelector",
    "InvalidArgumentError",
    "MissingDependencyError",
    "ModelNotAvailableError",
    "NoVideoStreamError",
    "NotAVideoError",
    "PacketTable",
    "Selection",
    "UnsupportedCodecError",
    "VideoMetadata",
    "VideoNotFoundError",
    "VideoReader",
    "VidselError",
    "__version__",
    "packet_table",
    "select_frames",
]
