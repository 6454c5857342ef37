"""Pictures from arrays: contact sheets, heat maps, PNG bytes and matplotlib figures.

Rendering never opens a video: results pass the pixels they hold (or decoded) and their labels.
"""

from ._eval import eval_plot
from ._patches import (
    ANCHOR_COLOUR,
    MOTION_COLOUR,
    comparison_plot,
    patch_selection_heatmap,
    patch_selection_plot,
    patch_selection_sheet,
)
from ._plot import FIGURE_DPI, figure_png, relevance_plot, save_figure
from ._sheet import DEFAULT_THUMB, MAX_TILES, contact_sheet, shown_title, tile_positions, to_png

__all__ = [
    "ANCHOR_COLOUR",
    "DEFAULT_THUMB",
    "FIGURE_DPI",
    "MAX_TILES",
    "MOTION_COLOUR",
    "comparison_plot",
    "contact_sheet",
    "eval_plot",
    "figure_png",
    "patch_selection_heatmap",
    "patch_selection_plot",
    "patch_selection_sheet",
    "relevance_plot",
    "save_figure",
    "shown_title",
    "tile_positions",
    "to_png",
]
