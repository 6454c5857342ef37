"""Fixtures for ovis_model tests: golden folder, tiny random models, a tiny synthetic video.

Offline mode and the ``../shared`` folder (``shared``) come from ``tests/conftest.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def golden_dir(shared: Path) -> Path:
    golden = shared / "golden" / "ovis2_5_tiny"
    if not (golden / "model" / "config.json").is_file():
        pytest.skip(f"golden folder {golden} is absent")
    return golden


@pytest.fixture(scope="session")
def golden_model(golden_dir: Path):
    import torch

    from ovis_model import OvisModel

    return OvisModel.from_pretrained(golden_dir / "model", dtype=torch.float32, attn_impl="sdpa")




@dataclass
class FakeCodecSample:
    """The fields ``OvisProcessor.pack_patches`` reads from a ``vidsel.results.PatchSelection``
    (hand-built, to pin exact layouts): the full frame is a ``grid_hw`` grid of patches."""

    positions: np.ndarray
    timestamps_s: np.ndarray
    pixels: np.ndarray
    num_tokens: int | None
    grid_hw: tuple[int, int] = (4, 6)


def _codec_sample(p: int = 16) -> FakeCodecSample:
    # frame 40: two 2x2 blocks; frame 8: one block; given out of order on purpose
    blocks = [(40, 2, 0), (8, 0, 2), (40, 0, 0)]
    pos, ts = [], []
    for f, r, c in blocks:
        for dr, dc in ((1, 1), (0, 0), (0, 1), (1, 0)):
            pos.append((f, r + dr, c + dc))
            ts.append(f / 8.0)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, size=(len(pos), p, p, 3), dtype=np.uint8)
    return FakeCodecSample(np.array(pos), np.array(ts), pixels, num_tokens=3, grid_hw=(4, 6))


@pytest.fixture(scope="session")
def make_codec_sample():
    """Factory of hand-built codec samples (frames 8 and 40, three 2x2 blocks)."""
    return _codec_sample
