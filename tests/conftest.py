"""Suite-wide test set-up: offline mode, the shared fixtures folder, generated videos, markers."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Tests never touch the network: a missing model must fail fast, not retry downloads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The project's ``../shared`` folder (or ``$VIDSEL_SHARED``), None when absent."""
    env = os.environ.get("VIDSEL_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    return path if path.is_dir() else None


def require_shared() -> bool:
    """CI sets VIDSEL_REQUIRE_SHARED=1: then a missing ../shared fails instead of skipping, so
    golden-parity and real-clip tests cannot silently drop out of a green run."""
    return os.environ.get("VIDSEL_REQUIRE_SHARED", "") not in ("", "0")


def skip_or_fail(reason: str) -> None:
    if require_shared():
        pytest.fail(f"{reason} (VIDSEL_REQUIRE_SHARED is set)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path of ``../shared``; skips the test when the folder is absent (a fresh clone)."""
    path = shared_dir()
    if path is None:
        skip_or_fail("../shared (real fixture clips, golden files) is not available")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def fixtures_dir(shared: Path) -> Path:
    path = shared / "fixtures"
    if not path.is_dir():
        skip_or_fail("../shared/fixtures is not available")
    return path


@pytest.fixture(scope="session")
def make_synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """Memoised :func:`vidsel.synth.make_video`: same arguments -> same file, once per session."""
    from vidsel.synth import make_video

    root = tmp_path_factory.mktemp("synth")
    cache: dict[tuple[Any, ...], Any] = {}

    def make(suffix: str = ".mp4", **kwargs: Any) -> Any:
        key = (suffix, *sorted(kwargs.items()))
        if key not in cache:
            name = f"v{len(cache):03d}{suffix}"
            cache[key] = make_video(root / name, **kwargs)
        return cache[key]

    return make


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)
