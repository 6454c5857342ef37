"""vidsel: choose which pixels of a long video a vision-language model sees.

Public faces:

- :class:`VideoReader` — exact frames by index or time, fast sparse sampling (``vidsel.io``).
- :func:`run_method` — every way of choosing what a model sees (uniform, top-k, DPP, MDP3,
  BOLT, AKS, codec patches, your own) with one call shape (``vidsel.methods``).
- ``vidsel.results`` — every result type, one vocabulary (``timestamps_s``, ``path``,
  ``timings_s``), JSON round trips.
- ``vidsel.codec`` — codec signals and motion-rich patch selection at a fixed token budget.
- ``vidsel.select`` — array-level selectors (uniform, top-k, DPP, MDP3, BOLT, AKS).
- :func:`select_frames` / :class:`Selection` — text-relevant keyframe selection end to end.

See docs/architecture.md for the layers and each module's job.
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
from .methods import available_methods, get_method, register_method, run_method
from .results import PatchConfig, PatchSelection, Selection, VisualSelection
from .selection import FrameSelector, select_frames

#: Subpackages loaded on first attribute access (``vidsel.codec``...): the CLI and the test
#: video generator are not needed by library users.
_SUBMODULES = ("cli", "codec", "embed", "eval", "integrations", "io", "methods", "qwen",
               "registry", "render", "results", "runs", "select", "selection", "synth")


def __getattr__(name: str) -> object:
    """``vidsel.cli``, ``vidsel.synth``... without importing them until first use."""
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
    "PatchConfig",
    "PatchSelection",
    "Selection",
    "UnsupportedCodecError",
    "VideoMetadata",
    "VideoNotFoundError",
    "VideoReader",
    "VidselError",
    "VisualSelection",
    "__version__",
    "available_methods",
    "get_method",
    "packet_table",
    "register_method",
    "run_method",
    "select_frames",
]
