"""Findings of a new user (selection): each test failed before its fix."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from vidsel import VideoReader
from vidsel.embed import load_embedder
from vidsel.errors import InvalidArgumentError, ModelNotAvailableError
from vidsel.methods import get_method, run_method
from vidsel.select import get_selector
from vidsel.selection import FrameSelector, select_frames

BAD_PARAMS = [
    ("mdp3", {"lam": 0}, "lam"),
    ("mdp3", {"mode": "bogus"}, "mode"),
    ("mdp3", {"lam": float("nan")}, "lam"),
    ("mdp3", {"segment_size": 2.5}, "segment_size"),
    ("mdp3", {"alphas": ()}, "alphas"),
    ("mdp3-reference", {"condition_size": -1}, "condition_size"),
    ("dpp", {"lam": 1e-9}, "lam"),
    ("bolt", {"power": 0}, "power"),
    ("aks", {"t1": float("inf")}, "t1"),
    ("aks", {"max_depth": 1.5}, "max_depth"),
]


@pytest.fixture(scope="module")
def siglip(tiny_siglip_dir):
    return load_embedder(f"hf:{tiny_siglip_dir}")


# --- 1. parameter values are refused before any decoding or model loading -----------------------

@pytest.mark.parametrize(("method", "params", "name"), BAD_PARAMS)
def test_bad_param_values_are_refused_before_decoding(tmp_path, method, params, name) -> None:
    missing = tmp_path / "does-not-exist.mp4"  # opening it would raise VideoNotFoundError
    no_model = f"hf:{tmp_path / 'no-model'}"  # loading it would raise ModelNotAvailableError
    with pytest.raises(InvalidArgumentError, match=name):
        select_frames(missing, "dog", k=3, method=method, embedder=no_model, params=params)
    with pytest.raises(InvalidArgumentError, match=name):
        get_method(method).check_options({"params": params})
    with pytest.raises(InvalidArgumentError, match=name):
        run_method(method, missing, question="dog", budget=3, embedder=no_model, params=params)
    with pytest.raises(InvalidArgumentError, match=name):
        FrameSelector(3, method=method, embedder=no_model, params=params)
    with pytest.raises(InvalidArgumentError, match=f"selector {method!r}"):
        get_selector(method).check_params(params)


def test_good_param_values_still_pass_the_early_check() -> None:
    get_selector("mdp3").check_params({"lam": 0.5, "mode": "reference", "segment_size": -1,
                                       "condition_size": 0, "alphas": (1.0, 2.0)})
    get_selector("aks").check_params({"t1": 0.5, "t2": -1.0, "max_depth": 0})
    get_selector("bolt").check_params({"power": np.float32(2.5)})


# --- 2. an empty / incomplete model folder says what a model folder holds -----------------------

def test_empty_model_folder_says_what_is_missing(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotAvailableError) as info:
        load_embedder(f"hf:{empty}")
    msg = str(info.value)
    assert "no config.json" in msg and "weights" in msg and "empty" in msg
    assert "must contain config.json" in msg and "model.safetensors" in msg
    assert "model_type" not in msg


def test_model_folder_without_weights_says_so(tmp_path, tiny_siglip_dir) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((Path(tiny_siglip_dir) / "config.json").read_text())
    with pytest.raises(ModelNotAvailableError, match="has no weights"):
        load_embedder(f"hf:{partial}")


# --- 3. an fps too high for the video states the limit --------------------------------------------

def test_fps_indices_too_high_states_the_allowed_range(make_synth) -> None:
    video = make_synth(num_frames=30, fps=30, width=64, height=48).path  # 1 s
    with VideoReader(video) as reader:
        with pytest.raises(InvalidArgumentError) as info:
            reader.fps_indices(2e7)
        msg = str(info.value)
        assert "at most 10000000" in msg and "0 < fps <= 1e+07" in msg, msg
        assert len(reader.fps_indices(60.0)) == 30  # within range: unchanged


# --- 4. the default candidate pool on a short clip is no warning -----------------------------------

def test_default_pool_on_a_short_clip_logs_info_not_warning(make_synth, siglip, caplog) -> None:
    video = make_synth(num_frames=40, fps=20, width=64, height=48).path
    with caplog.at_level(logging.INFO, logger="vidsel"):
        sel = select_frames(video, "dog", k=3, embedder=siglip, embed_size=32)
    assert sel.num_candidates == 40
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert any("default 128 candidates" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vidsel"):  # asked for explicitly: a warning
        select_frames(video, "dog", k=3, embedder=siglip, embed_size=32, candidates=100)
    assert [r for r in caplog.records if r.levelno == logging.WARNING
            and "100 frames requested" in r.getMessage()]


# --- 5. FrameSelector on PIL images / read-only arrays: no torch "not writable" warning -----------

_NO_WARNING_SCRIPT = """
import sys, warnings
import numpy as np
from PIL import Image
from vidsel.embed import load_embedder
from vidsel.selection import FrameSelector

warnings.simplefilter("error")  # torch warns once per process: a fresh one sees it for sure
siglip = load_embedder("hf:" + sys.argv[1], device="cpu")
rng = np.random.default_rng(0)
arrays = [rng.integers(0, 255, (40, 48, 3), dtype=np.uint8) for _ in range(6)]
pil = [Image.fromarray(a) for a in arrays]
readonly = [a.copy() for a in arrays]
for a in readonly:
    a.flags.writeable = False
convs = [{"from": "human", "value": "<image>\\n" * 6 + "where does the dog go"}]
selector = FrameSelector(3, embedder=siglip)
_, kept = selector(convs, pil)
_, kept_ro = selector(convs, readonly)
stacked = np.stack(arrays)
stacked.flags.writeable = False
siglip.embed_images(stacked)
print(len(kept), len(kept_ro))
"""


def test_frame_selector_raises_no_warning(tiny_siglip_dir: Path) -> None:
    """In a fresh process with warnings as errors (torch's "not writable" warning is issued
    once per process, so an in-process test could pass because another test saw it first)."""
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _NO_WARNING_SCRIPT, str(tiny_siglip_dir)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["3", "3"]
