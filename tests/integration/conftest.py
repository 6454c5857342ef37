"""Fixtures of the end-to-end tests: a tiny random Ovis model, its processor, a small video.

The embedders (``tiny_siglip_dir``, ``tiny_clip_dir``) come from ``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model():
    import torch

    from ovis_model import OvisModel, preset

    return OvisModel.from_config(preset("tiny"), dtype=torch.float32, seed=0)


@pytest.fixture(scope="session")
def tiny_processor(tiny_model):
    """The tiny preset's processor with small video frames (at most 64 x 96 px: 6 tokens)."""
    from ovis_model import ByteTokenizer, ImageProcessorConfig, OvisProcessor

    cfg = ImageProcessorConfig(video_min_pixels=32 * 32, video_max_pixels=64 * 96)
    return OvisProcessor(ByteTokenizer(), tiny_model.config.vit_config, image_config=cfg)


@pytest.fixture(scope="session")
def box_video(tmp_path_factory) -> Path:
    """24 frames at 8 fps, 96 x 64, a box moving over a still background."""
    from vidsel.synth import make_video

    path = tmp_path_factory.mktemp("integration") / "box.mp4"
    make_video(path, scene="moving_box", num_frames=24, fps=8, width=96, height=64, gop=8)
    return path
