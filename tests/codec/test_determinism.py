"""Same request -> same pixels on damaged files (issue 10, fuzz findings F3 / F8).

Before the fix, ``select_patches`` on these fuzz mutants gave a different result almost every
call: the decode-ahead thread read VP8 pictures the decoder was still writing to (pixel-
difference pass), and slice threads concealed damaged H.264 differently from run to run
(motion-vector pass) — with no error reported by FFmpeg either time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.fuzz.corpus import SEEDS, fixture_seeds, make_mutant, make_seeds, parse_name
from vidsel.codec import select_patches

RUNS = 6


def _digest(path: Path) -> str:
    s = select_patches(path, budget_frames=2, patch_size=14, merge=2, frame_size=56)
    assert s.pixels is not None
    return hashlib.sha1(s.positions.tobytes() + s.pixels.tobytes()).hexdigest()


def _mutant(folder: Path, seeds: dict[str, Path], name: str) -> Path:
    seed, kind, number = parse_name(name)
    return make_mutant(seeds[seed], seed, kind, number, folder).path


def test_pixel_diff_pass_is_deterministic_on_damaged_vp8(tmp_path: Path) -> None:
    seeds = make_seeds(tmp_path / "seeds", tuple(s for s in SEEDS if s.name == "vp8_webm"))
    path = _mutant(tmp_path, seeds, "vp8_webm__bitflip_00017")
    assert len({_digest(path) for _ in range(RUNS)}) == 1


@pytest.mark.fixtures
def test_motion_vector_pass_is_deterministic_on_damaged_h264(fixtures_dir: Path,
                                                             tmp_path: Path) -> None:
    real = [s for s in fixture_seeds(fixtures_dir) if s.name == "real_flipping_a_pancake"]
    if not real:
        skip_or_fail("clips/decord__flipping_a_pancake.mkv is not in ../shared/fixtures")
    seeds = make_seeds(tmp_path / "seeds", tuple(real))
    path = _mutant(tmp_path, seeds, "real_flipping_a_pancake__shuffle_01775")
    assert len({_digest(path) for _ in range(RUNS)}) == 1


def test_pixel_difference_pass_is_single_threaded_by_default(tmp_path: Path) -> None:
    """An HEVC mkv with a damaged box: FFmpeg's frame threads conceal the damage differently
    from run to run without reporting it (5 of 24 runs differed with threads=0), so the
    pixel-difference pass decodes with one thread unless the caller asks for more."""
    import inspect

    from vidsel.errors import InvalidArgumentError

    assert inspect.signature(select_patches).parameters["threads"].default == 1
    seeds = make_seeds(tmp_path / "seeds", tuple(s for s in SEEDS if s.name == "hevc_mkv"))
    path = _mutant(tmp_path, seeds, "hevc_mkv__box_00208")
    assert len({_digest(path) for _ in range(8)}) == 1
    with pytest.raises(InvalidArgumentError, match="threads"):
        select_patches(path, budget_frames=2, threads=-1)
