"""Fixtures of the command-line tests: small generated clips, a folder of good and bad files,
and a tiny random CLIP (so the text-relevance path runs offline)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CLIP_KW = dict(scene="moving_box", num_frames=40, width=160, height=120)
#: Good clips in the batch folders (different content each).
N_GOOD = 5


@pytest.fixture(scope="session")
def clip(make_synth: Callable[..., Any]) -> str:
    return str(make_synth(".mp4", **CLIP_KW).path)


@pytest.fixture(scope="session")
def good_dir(tmp_path_factory: pytest.TempPathFactory, make_synth: Callable[..., Any]) -> Path:
    """N_GOOD small clips, nothing else."""
    d = tmp_path_factory.mktemp("good")
    for i in range(N_GOOD):
        info = make_synth(".mp4", **{**CLIP_KW, "seed": i + 1})
        shutil.copy(info.path, d / f"clip{i}.mp4")
    return d


@pytest.fixture(scope="session")
def mixed_dir(tmp_path_factory: pytest.TempPathFactory, make_synth: Callable[..., Any]) -> Path:
    """Good clips plus corrupt, empty, non-video, renamed, hidden files and a symlink loop.

    Expected (io's verdict by content, vidsel.io.probe_kind): ok = a.mp4, sub/b.mkv,
    sub/renamed.bin; failed = sub/corrupt.mp4 (a damaged video); skipped = empty.mp4,
    garbage.mp4 (random bytes named .mp4), notes.txt, still.png, .hidden/*, data.npy.
    """
    d = tmp_path_factory.mktemp("mixed")
    (d / "sub").mkdir()
    (d / ".hidden").mkdir()
    a = make_synth(".mp4", **CLIP_KW).path
    b = make_synth(".mkv", **{**CLIP_KW, "scene": "scene_cut"}).path
    shutil.copy(a, d / "a.mp4")
    shutil.copy(b, d / "sub" / "b.mkv")
    shutil.copy(make_synth(".mp4", **{**CLIP_KW, "seed": 7}).path, d / "sub" / "renamed.bin")
    shutil.copy(a, d / ".hidden" / "hidden.mp4")
    data = Path(a).read_bytes()
    (d / "sub" / "corrupt.mp4").write_bytes(data[: len(data) // 3])
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.mp4").write_bytes(b"\x00not a video\x01" * 64)
    (d / "notes.txt").write_text("not a video\n")
    (d / "data.npy").write_bytes(os.urandom(512))
    from PIL import Image

    Image.new("RGB", (32, 24), (200, 10, 10)).save(d / "still.png")
    if sys.platform != "win32":
        os.symlink("..", d / "sub" / "loop")  # a symlink loop must not hang discovery
    return d


