"""Session-memoised generated videos and the shared-fixture locator for the codec tests.

``../shared`` itself comes from the suite-wide ``shared`` / ``fixtures_dir`` fixtures
(tests/conftest.py), which fail instead of skipping when CI sets VIDSEL_REQUIRE_SHARED=1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from vidsel.synth import SynthInfo, make_video

W, H, N = 320, 240, 90


@pytest.fixture(scope="session")
def fixture_file(fixtures_dir: Path) -> Callable[[str], Path]:
    """``fixture_file(rel)``: the file ``rel`` under ../shared/fixtures; skips the test when it
    is absent (fails under VIDSEL_REQUIRE_SHARED=1)."""

    def get(rel: str) -> Path:
        path = fixtures_dir / rel
        if not path.is_file():
            skip_or_fail(f"shared fixture {rel} is not available")
        return path

    return get


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthInfo]:
    """Small generated clips with known content (generated once per session)."""
    d = tmp_path_factory.mktemp("codec_videos")
    specs = {
        "box": dict(scene="moving_box", codec="libx264"),
        # b-pyramid: reference B-frames that must be decoded for exact P-frame pixels
        "pyramid": dict(scene="moving_box", codec="libx264", bframes=3),
        "cut": dict(scene="scene_cut", codec="libx264"),
        "pan": dict(scene="pan", codec="libx264", pan_px=3),
        "multi": dict(scene="multi_scene", codec="libx264", n_scenes=3, num_frames=120),
        "mpeg4": dict(scene="moving_box", codec="mpeg4"),
        "hevc": dict(scene="moving_box", codec="libx265"),
        "vp9": dict(scene="moving_box", codec="libvpx-vp9"),
    }
    out = {}
    for name, kw in specs.items():
        suffix = {"mpeg4": ".avi", "vp9": ".webm"}.get(name, ".mp4")
        args: dict = dict(num_frames=N, width=W, height=H)
        args.update(kw)
        out[name] = make_video(d / f"{name}{suffix}", **args)
    return out
