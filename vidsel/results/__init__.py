"""Every result type of vidsel in one place, with one vocabulary.

- time arrays are ``timestamps_s`` (seconds, one per row: the row's source frame's presentation
  time), files are ``path``, timing dicts are ``timings_s``;
- every result has ``to_dict()`` / ``from_dict()`` that round-trip through JSON (pixels left
  out), built on one converter (:func:`json_safe`: arrays to lists, NaN to None);
- the two selection results, :class:`Selection` (frames) and :class:`PatchSelection` (codec
  patches), share the :class:`VisualSelection` protocol.

Frame-ingest results (:class:`VideoMetadata`, :class:`FrameBatch`, :class:`PacketTable`,
:class:`PacketIndex`) are defined in :mod:`vidsel.io` and re-exported here.
"""

from .._json import float_array, int_array, json_safe
from ..io import FrameBatch, PacketIndex, PacketTable, VideoMetadata
from ._compare import Comparison, ComparisonRow
from ._geometry import PRESETS, PatchConfig
from ._motion import MotionFields
from ._patches import Canvases, PatchSelection
from ._protocol import SelectionKind, VisualSelection
from ._selection import Selection

__all__ = [
    "PRESETS",
    "Canvases",
    "Comparison",
    "ComparisonRow",
    "FrameBatch",
    "MotionFields",
    "PacketIndex",
    "PacketTable",
    "PatchConfig",
    "PatchSelection",
    "Selection",
    "SelectionKind",
    "VideoMetadata",
    "VisualSelection",
    "float_array",
    "int_array",
    "json_safe",
]
