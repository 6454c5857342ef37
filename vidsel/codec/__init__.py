"""Codec-aware input: packet index, motion vectors and patch selection at a fixed token budget.

Public API::

    packet_index(path)            -> PacketIndex     per-frame bit cost, picture types, GOPs
    motion_vectors(path)          -> MotionFields    per-frame motion on a 16 px block grid
    select_patches(path, ...)     -> PatchSelection  anchors + motion patches, exact budget
                                                     (question=, embedder=: query-aware)
    uniform_patches(path, ...)    -> PatchSelection  the uniform baseline, same accounting
    compare(path, budgets=...)    -> Comparison      uniform vs codec per budget, fidelity proxy

``packet_index`` / ``PacketIndex`` live in :mod:`vidsel.io` and the result types in
:mod:`vidsel.results`; both are re-exported here. Video-level methods (``"codec"``,
``"uniform"``, ...) are found through :mod:`vidsel.methods`; ``METHODS`` here is a deprecated
alias.
"""

import warnings
from collections.abc import Callable, Iterator

from ..deprecation import REMOVED_IN
from ..io import Borders, PacketIndex, detect_borders, packet_index
from ..results import (
    PRESETS,
    Canvases,
    Comparison,
    ComparisonRow,
    MotionFields,
    PatchConfig,
    PatchSelection,
)
from ._compare import compare
from ._lmms import LMMS_SCORE_MODES, LmmsCodecOutput, lmms_codec_video, lmms_method
from ._lmms import register as register_lmms_method
from ._motion import MV_CODECS, motion_vectors
from ._relevance import Relevance, check_relevance_share, query_anchor_methods
from ._select import ANCHOR_POLICIES, check_patch_choices, select_patches, uniform_patches

__all__ = [
    "ANCHOR_POLICIES",
    "LMMS_SCORE_MODES",
    "MV_CODECS",
    "PRESETS",
    "Borders",
    "Canvases",
    "Comparison",
    "ComparisonRow",
    "LmmsCodecOutput",
    "MotionFields",
    "PacketIndex",
    "PatchConfig",
    "PatchSelection",
    "Relevance",
    "check_patch_choices",
    "check_relevance_share",
    "compare",
    "detect_borders",
    "lmms_codec_video",
    "lmms_method",
    "motion_vectors",
    "packet_index",
    "query_anchor_methods",
    "register_lmms_method",
    "select_patches",
    "uniform_patches",
]


class _DeprecatedMethods(dict[str, Callable[..., PatchSelection]]):
    """``METHODS``: the former codec method table; every lookup warns (use vidsel.methods)."""

    def _warn(self) -> None:
        warnings.warn(f"vidsel.codec.METHODS is deprecated and will be removed in vidsel "
                      f"{REMOVED_IN}; use vidsel.methods (get_method / run_method)",
                      DeprecationWarning, stacklevel=3)

    def __getitem__(self, key: str) -> Callable[..., PatchSelection]:
        self._warn()
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[str]:
        self._warn()
        return super().__iter__()

    def __contains__(self, key: object) -> bool:
        self._warn()
        return super().__contains__(key)


#: Deprecated: the video-level method registry is :mod:`vidsel.methods`.
METHODS = _DeprecatedMethods(codec=select_patches, uniform=uniform_patches)
