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

__all__ = [
    "CorruptVideoError",
    "DecodeError",
    "FrameBatch",
    "FrameSelector",
    "FrameIndexError",
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
