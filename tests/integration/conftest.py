"""Fixtures of the end-to-end tests. The tiny random Ovis model, its processor, the small video
(``tiny_model``, ``tiny_processor``, ``tiny_video``) and the embedders (``tiny_siglip_dir``,
``tiny_clip_dir``) come from ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def box_video(tiny_video: Path) -> Path:
    """24 frames at 8 fps, 96 x 64, a box moving over a still background (``tiny_video``)."""
    return tiny_video
