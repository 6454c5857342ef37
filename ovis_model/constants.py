"""Placeholder ids and other fixed numbers shared by the processor and the model.

The ids are negative so they can never collide with a text token id; they follow the official
Ovis2.5 code (``modeling_ovis2_5.py``).
"""

from __future__ import annotations

__all__ = [
    "IMAGE_BEGIN_ID",
    "IMAGE_END_ID",
    "IMAGE_PLACEHOLDER",
    "IMAGE_PLACEHOLDER_ID",
    "INDICATOR_IDS",
    "VIDEO_BEGIN_ID",
    "VIDEO_END_ID",
    "VIDEO_PLACEHOLDER",
    "VIDEO_PLACEHOLDER_ID",
    "VISUAL_ATOM_ID",
]

IMAGE_PLACEHOLDER = "<image>"
IMAGE_PLACEHOLDER_ID = -200
VIDEO_PLACEHOLDER = "<video>"
VIDEO_PLACEHOLDER_ID = -201

VISUAL_ATOM_ID = -300
IMAGE_BEGIN_ID = -301
IMAGE_END_ID = -302
VIDEO_BEGIN_ID = -303
VIDEO_END_ID = -304
#: Indicator ids in the order of the last ``len(INDICATOR_IDS)`` rows of the visual embedding table.
INDICATOR_IDS: tuple[int, ...] = (IMAGE_BEGIN_ID, IMAGE_END_ID, VIDEO_BEGIN_ID, VIDEO_END_ID)
