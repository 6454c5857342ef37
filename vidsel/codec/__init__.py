"""Codec-aware input: packet index, motion vectors and patch selection at a fixed token budget.

Public API::

    packet_index(path)            -> PacketIndex     per-frame bit cost, picture types, GOPs
    motion_vectors(path)          -> MotionFields    per-frame motion on a 16 px block grid
    select_patches(path, ...)     -> PatchSelection  anchors + motion patches, exact budget
    uniform_patches(path, ...)    -> PatchSelection  the uniform baseline, same accounting
    compare(path, budgets=...)    -> Comparison      uniform vs codec per budget, fidelity proxy
"""

from ._compare import Comparison, ComparisonRow, compare
from ._motion import MV_CODECS, MotionFields, motion_vectors
from ._packets import PacketIndex, packet_index
from ._result import PRESETS, Canvases, PatchConfig, PatchSelection
from ._select import ANCHOR_POLICIES, METHODS, select_patches, uniform_patches

__all__ = [
    "ANCHOR_POLICIES",
    "METHODS",
    "MV_CODECS",
    "PRESETS",
    "Canvases",
    "Comparison",
    "ComparisonRow",
    "MotionFields",
    "PacketIndex",
    "PatchConfig",
    "PatchSelection",
    "compare",
    "motion_vectors",
    "packet_index",
    "select_patches",
    "uniform_patches",
]
