"""Bad input gets a clear error naming the file, and damaged data never hangs or duplicates."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from vidsel import (
    CorruptVideoError,
    NotAVideoError,
    VideoNotFoundError,
    VideoReader,
    VidselError,
    packet_table,
)
from vidsel.synth import decode_counter


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(VideoNotFoundError, match="nope.mp4: no such file"):
        VideoReader(path)
    with pytest.raises(FileNotFoundError):  # the builtin a caller would catch
        packet_table(path)


def test_directory_is_not_a_video(tmp_path):
    with pytest.raises(VideoNotFoundError, match="not a regular file"):
        VideoReader(tmp_path)


def test_empty_and_text_files(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(NotAVideoError, match="empty.mp4: the file is empty"):
        VideoReader(empty)
    text = tmp_path / "notes.txt"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(NotAVideoError, match="notes.txt: not a video"):
        VideoReader(text)
    with pytest.raises(ValueError):  # NotAVideoError is also a ValueError
        VideoReader(text)


@pytest.mark.parametrize("name", ["notes.txt", "notes.mp4", "notes.mkv", "notes"])
def test_content_not_the_name_decides_not_a_video(tmp_path, name):
    """The same text is NotAVideoError whatever it is called (0.1 said CorruptVideoError for
    the .mp4 name)."""
    text = tmp_path / name
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(NotAVideoError, match=f"{name}: not a video"):
        VideoReader(text)


def test_header_only_mp4(tmp_path, make_synth):
    info = make_synth(scene="moving_box", num_frames=30)
    data = Path(info.path).read_bytes()
    cut = tmp_path / "first_kb.mp4"
    cut.write_bytes(data[:600])  # ftyp + a torn moov
    with pytest.raises(VidselError, match="first_kb.mp4"):
        VideoReader(cut)


def _damaged(tmp_path, make_synth, how: str) -> tuple[str, int]:
    info = make_synth(".mkv", scene="counter", num_frames=90, gop=15, bframes=2)
    data = bytearray(Path(info.path).read_bytes())
    out = tmp_path / f"{how}.mkv"
    if how == "truncated":
        data = data[: int(len(data) * 0.6)]
    elif how == "bitflip":
        rng = np.random.default_rng(3)
        lo, hi = int(len(data) * 0.3), int(len(data) * 0.6)
        for pos in rng.integers(lo, hi, 400):
            data[pos] ^= 0xFF
    out.write_bytes(bytes(data))
    return str(out), info.num_frames


def test_truncated_mkv_reads_the_readable_part(tmp_path, make_synth):
    path, total = _damaged(tmp_path, make_synth, "truncated")
    with VideoReader(path) as r:
        n = r.metadata.num_frames
        assert 0 < n < total
        b = r.decode(np.arange(n), on_missing="skip")
    # each frame returned is the one its index says (no shifted or duplicated frames)
    for i, f in zip(b.indices, b.frames):
        assert decode_counter(f) == i
    assert len(b) + len(b.missing) == n


def test_bit_flipped_stream_no_hang_no_duplicates(tmp_path, make_synth):
    path, total = _damaged(tmp_path, make_synth, "bitflip")  # seeded: the header survives
    with VideoReader(path) as r:
        n = r.metadata.num_frames
        b = r.decode(np.arange(n), on_missing="skip")
        assert len(b) + len(b.missing) == n
        assert len(set(b.indices.tolist())) == len(b)
        if b.missing:
            with pytest.raises(CorruptVideoError, match=r"frame\(s\) .* could not be decoded"):
                r.get_frames(np.arange(n))
        # The damage cost whole packets, so indices refer to the frames the damaged file still
        # holds; after the damaged region the pictures are intact, consecutive and end with the
        # source's last frame: nothing shifted, nothing repeated.
        tail = [decode_counter(f) for f in b.frames[-10:]]
        assert tail == list(range(total - 10, total))
        assert list(b.indices[-10:]) == list(range(n - 10, n))


@pytest.mark.skipif(os.name != "posix", reason="permission bits")
def test_unreadable_permissions(tmp_path, make_synth):
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    info = make_synth(scene="moving_box", num_frames=10)
    p = tmp_path / "locked.mp4"
    p.write_bytes(Path(info.path).read_bytes())
    p.chmod(0)
    with pytest.raises(VideoNotFoundError, match="permission"):
        VideoReader(p)


def test_sequential_decoding_never_shifts_after_damage(tmp_path, make_synth):
    """Files decoded by counting (no usable timestamps) stop counting at the first damaged
    packet: later frames are reported missing, never returned under a wrong index."""
    path, _total = _damaged(tmp_path, make_synth, "bitflip")
    with VideoReader(path) as r:
        r._backend._sequential = True  # as for packed-bitstream AVI files
        n = r.metadata.num_frames
        b = r.decode(np.arange(n), on_missing="skip")
    assert b.missing, "the damage must be noticed"
    assert list(b.indices) == list(range(len(b)))  # a clean prefix, nothing after the damage
    assert list(b.missing) == list(range(len(b), n))
    assert len(b) >= 10  # the damage starts ~30% into the file
    assert [decode_counter(f) for f in b.frames[:10]] == list(range(10))
