"""Reader bugs a new user found: keyframe mode on MPEG-PS/TS, and an MP4 cut inside its mdat.

1. ``mode="keyframe"`` returned no frames on healthy MPEG-PS files: the demuxer's seek lands one
   packet after the keyframe, and keyframe mode then skipped to the next keyframe (exact mode
   already seeks earlier when a seek lands late).
2. An MP4 cut in the middle of its mdat (moov at the front) counted the packet cut by the end of
   the file as a frame: ``num_frames`` was one more than could be decoded, so the last frame
   raised and ``sample_uniform`` (which always includes it) failed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from tests.reader.test_damaged_files import SMALL, faststart_copy
from vidsel import VideoReader, packet_table
from vidsel.synth import decode_counter

# -- 1. keyframe mode where seeks land late ------------------------------------------------------

def _keyframes_agree(path: str | Path, *, counter: bool) -> None:
    with VideoReader(path) as r:
        keys = r.metadata.keyframe_indices
        assert len(keys) > 1
        fast = r.decode(keys, mode="keyframe", on_missing="skip")
        exact = r.decode(keys, on_missing="skip")
    assert fast.missing == () or len(fast.missing) == 0
    assert fast.indices.tolist() == keys.tolist() == exact.indices.tolist()
    for a, b in zip(fast.frames, exact.frames):
        np.testing.assert_array_equal(a, b)
    if counter:
        assert [decode_counter(f) for f in fast.frames] == keys.tolist()


def test_keyframe_mode_on_mpeg_ps_fixture(fixtures_dir):
    path = fixtures_dir / "edge" / "torchcodec__sine_stereo_mp2.mpg"
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    _keyframes_agree(path, counter=False)


@pytest.mark.parametrize("suffix, codec, bframes", [
    (".mpg", "mpeg2video", 2),   # MPEG-PS: every seek lands one packet late
    (".mpg", "mpeg1video", 0),
    (".ts", "mpeg2video", 0),    # MPEG-TS: the same
    (".mpg", "libx264", 0),      # H.264 in MPEG-PS: timestamps unreliable, no pts to seek by
])
def test_keyframe_mode_on_generated_mpeg_ps_ts(make_synth, suffix, codec, bframes):
    info = make_synth(suffix, codec=codec, bframes=bframes, **SMALL)
    _keyframes_agree(info.path, counter=True)


# -- 2. an MP4 cut inside its mdat ---------------------------------------------------------------

@pytest.fixture(scope="module")
def faststart_mp4(make_synth, tmp_path_factory) -> Path:
    """A generated MP4 with its moov at the front (as in test_damaged_files.py)."""
    info = make_synth(".mp4", codec="libx264", **SMALL)
    return faststart_copy(info.path, tmp_path_factory.mktemp("cut") / "faststart.mp4")


def _cut(src: Path, out: Path, fraction: float) -> Path:
    data = src.read_bytes()
    out.write_bytes(data[:int(len(data) * fraction)])
    return out


def _check_cut_file(path: Path, *, counter: bool) -> None:
    table = packet_table(path)
    assert table.truncated
    with VideoReader(path) as r:
        md = r.metadata
        assert md.truncated and md.num_frames == len(table)
        # every counted frame decodes: the packet cut by the end of the file is not counted
        last = r.decode([md.num_frames - 1])
        assert last.indices.tolist() == [md.num_frames - 1]
        s = r.sample_uniform(8)
        assert len(s.frames) == 8 and s.indices[-1] == md.num_frames - 1
        if counter:
            # each frame is the one its timestamp names (a B-frame cut off leaves a gap)
            every = r.decode(np.arange(md.num_frames))
            shown = np.rint((every.timestamps_s - md.start_time_s) * 30).astype(int)
            assert [decode_counter(f) for f in every.frames] == shown.tolist()


@pytest.mark.parametrize("fraction", [0.3, 0.55, 0.8, 0.95])
def test_mp4_cut_inside_mdat_counts_only_whole_frames(faststart_mp4, tmp_path, fraction):
    cut = _cut(faststart_mp4, tmp_path / "cut.mp4", fraction)
    with av.open(str(cut)) as c:  # the premise: FFmpeg hands over the cut packet, flagged
        last = [p for p in c.demux(c.streams.video[0]) if p.size][-1]
    assert last.is_corrupt
    _check_cut_file(cut, counter=True)


def test_mp4_fixture_cut_inside_mdat(fixtures_dir, tmp_path):
    src = fixtures_dir / "clips" / "sam2__01_dog.mp4"
    if not src.is_file():
        pytest.skip(f"{src} is not available")
    _check_cut_file(_cut(src, tmp_path / "dog_cut.mp4", 0.55), counter=False)


def test_cli_uniform_select_on_cut_mp4(faststart_mp4, tmp_path):
    cut = _cut(faststart_mp4, tmp_path / "cut.mp4", 0.55)
    out = tmp_path / "frames"
    proc = subprocess.run(
        [sys.executable, "-m", "vidsel", "select", str(cut), "--method", "uniform",
         "--save-frames", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert any(out.iterdir())
