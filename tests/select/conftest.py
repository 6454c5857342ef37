"""Fixtures of the selection tests: the golden MDP3 cases, random embeddings, tiny models.

Offline mode and the ``../shared`` folder (``shared`` / ``fixtures_dir``) come from
``tests/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def golden_mdp3_cases(shared: Path) -> list[dict]:
    """The golden MDP3 cases (skips when ../shared or the file is absent)."""
    import json

    path = shared / "golden" / "mdp3" / "cases.json"
    if not path.is_file():
        pytest.skip(f"golden MDP3 cases not found at {path}")
    return list(json.loads(path.read_text())["cases"])


def unit_rows(rng: np.random.Generator, n: int, d: int, *, smooth: float = 0.0) -> np.ndarray:
    """(n, d) float64 L2-normalised random rows; ``smooth`` > 0 makes a random walk (video-like)."""
    x = rng.standard_normal((n, d))
    if smooth:
        x = np.cumsum(x * smooth, axis=0) + rng.standard_normal((1, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --- tiny random models, built offline once per session (the transformers ones live in
# tests/conftest.py, shared with the CLI tests) ------------------------------------------------

TINY_OPEN_CLIP = "vidsel-tiny-clip"


@pytest.fixture(scope="session")
def tiny_open_clip_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Registers the open_clip config ``vidsel-tiny-clip`` and saves random weights for it."""
    import json

    import open_clip
    import torch
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("tiny_open_clip")
    cfg = {"embed_dim": 16,
           "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16,
                          "patch_size": 8},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2,
                        "layers": 2}}
    (d / f"{TINY_OPEN_CLIP}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(d / f"{TINY_OPEN_CLIP}.json")
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_OPEN_CLIP, pretrained=None)
    ckpt = d / "open_clip_model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt))
    return ckpt
