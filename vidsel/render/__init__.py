"""Pictures from arrays: contact sheets, heat maps, PNG bytes and matplotlib figures.

Rendering never opens a video: results pass the pixels they hold (or decoded) and their labels.
"""

from ._patches import (
    ANCHOR_COLOUR,
    MOTION_COLOUR,
    comparison_plot,
    patch_selection_heatmap,
    patch_selection_sheet,
)
from ._plot import relevance_plot
from ._sheet import DEFAULT_THUMB, MAX_TILES, contact_sheet, tile_positions, to_png

__all__ = [
    "ANCHOR_COLOUR",
    "DEFAULT_THUMB",
    "MAX_TILES",
    "MOTION_COLOUR",
    "comparison_plot",
    "contact_sheet",
    "patch_selection_heatmap",
    "patch_selection_sheet",
    "relevance_plot",
    "tile_positions",
    "to_png",
]
