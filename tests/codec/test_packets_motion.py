"""Packet index and motion-vector extraction on generated videos."""

from __future__ import annotations

import numpy as np
import pytest

from vidsel.codec import MotionFields, PacketIndex, motion_vectors, packet_index
from vidsel.errors import InvalidArgumentError, UnsupportedCodecError
from vidsel.io import VideoReader
from vidsel.synth import box_position


def test_packet_index_matches_reader(videos):
    info = videos["box"]
    idx = packet_index(info.path)
    assert isinstance(idx, PacketIndex)
    assert idx.num_frames == info.num_frames
    assert idx.pict_type_source == "bitstream"
    counts = idx.type_counts()
    assert counts["I"] == 3 and counts["B"] > 0  # gop 30 over 90 frames, B-frames on
    assert idx.gop_starts.tolist() == [0, 30, 60]
    assert np.all(np.diff(idx.timestamps_s) > 0)
    # I-frames cost the most bits
    assert idx.size[idx.pict_type == "I"].min() > np.median(idx.size[idx.pict_type != "I"])
    assert set(np.unique(idx.gop_index).tolist()) == {0, 1, 2}
    with VideoReader(info.path) as r:
        np.testing.assert_allclose(idx.timestamps_s, r.metadata.timestamps_s)
        assert idx.gop_starts.tolist() == r.metadata.keyframe_indices.tolist()
    assert "PacketIndex(" in repr(idx) and "int64[90]" in repr(idx)
    assert idx.to_dict()["num_frames"] == 90


@pytest.mark.parametrize("name", ["box", "mpeg4"])
def test_packet_index_one_pass_equals_two(videos, name):
    """Picture types peeked during the table's own demux pass equal the second pass's (the
    reader's table handed in: types parsed from a demux pass of their own)."""
    one = packet_index(videos[name].path)
    with VideoReader(videos[name].path) as r:
        two = packet_index(videos[name].path, table=r.packet_table)
    assert one.pict_type_source == two.pict_type_source == "bitstream"
    assert one.pict_type.tolist() == two.pict_type.tolist()
    assert one.is_reference.tolist() == two.is_reference.tolist()
    assert one.pts_reliable == two.pts_reliable


def test_second_ue_equals_the_bit_reader():
    """The whole-word Exp-Golomb read gives the bit-by-bit reader's value, or fails where it
    does (too many leading zeros; data ending inside a code, where the bit reader runs off
    the end)."""
    from vidsel.io._bitstream import MalformedBits, second_ue

    def by_bits(data: bytes) -> int:
        """The two codes read bit by bit (the reader the library used before)."""
        pos = 0

        def bit() -> int:
            nonlocal pos
            b = (data[pos >> 3] >> (7 - (pos & 7))) & 1  # IndexError past the end
            pos += 1
            return b

        def ue() -> int:
            zeros = 0
            while bit() == 0:
                zeros += 1
                if zeros > 31:
                    raise MalformedBits("bad exp-golomb code")
            value = 1
            for _ in range(zeros):
                value = (value << 1) | bit()
            return value - 1

        ue()
        return ue()

    def outcome(f, data):
        try:
            return f(data)
        except MalformedBits as e:
            return "short" if "ends inside" in str(e) else "malformed"
        except IndexError:
            return "short"

    rng = np.random.default_rng(0)
    cases = [b"", b"\x80", b"\xc0", b"\x00" * 5, b"\x00" * 11, b"\x40\x80", b"\x88\x00"]
    for _ in range(20000):
        n = int(rng.integers(0, 12))
        cases.append(bytes(int(v) for v in rng.choice([0, 0, 1, 2, 64, 255], n)))
    for data in cases:
        assert outcome(second_ue, data) == outcome(by_bits, data), data.hex()


@pytest.mark.parametrize("name", ["hevc", "vp9", "mpeg4"])
def test_packet_index_other_codecs(videos, name):
    idx = packet_index(videos[name].path)
    assert idx.num_frames == videos[name].num_frames
    assert idx.pict_type[0] == "I"
    expected = "bitstream" if name == "mpeg4" else "inferred"
    assert idx.pict_type_source == expected


def test_motion_vectors_point_along_motion(videos):
    info = videos["box"]
    mf = motion_vectors(info.path)
    assert isinstance(mf, MotionFields)
    assert mf.grid == (15, 20) and mf.block == 16
    assert set(mf.pict_type.tolist()) <= {"I", "P"}  # I+P decode by default
    y0, _ = box_position(0, info.num_frames, info.width, info.height, info.box_size)
    rows = slice(y0 // 16 + 1, (y0 + info.box_size) // 16 - 1)
    p_frames = np.flatnonzero(mf.pict_type == "P")
    mag = mf.magnitude()
    for t in p_frames[1:]:
        f = int(mf.indices[t])
        _, x = box_position(f, info.num_frames, info.width, info.height, info.box_size)
        cols = slice(x // 16 + 1, (x + info.box_size) // 16)
        box_flow = mf.flow[t, rows, cols]
        moving = np.hypot(box_flow[..., 0], box_flow[..., 1]) > 1
        if moving.any():
            assert np.median(box_flow[moving][:, 0]) > 1.0  # rightwards
            assert abs(np.median(box_flow[moving][:, 1])) < 1.0
        # the static background barely moves
        assert np.median(mag[t]) < 0.5
    assert mf.intra_share[mf.pict_type == "I"].min() == 1.0


def test_pan_vectors_follow_the_camera(videos):
    mf = motion_vectors(videos["pan"].path)
    p = mf.pict_type == "P"
    mean = mf.mean_flow()[p][1:]
    # the background moves left (content shifts by -pan_px per frame)
    assert np.median(mean[:, 0]) < -1.0


def test_cut_shows_as_intra(videos):
    info = videos["cut"]
    mf = motion_vectors(info.path, frames="ip")
    cut = info.cut_frames[0]
    # the first P-frame at or after the cut predicts from the old scene: mostly intra
    t = int(np.flatnonzero((mf.indices >= cut) & (mf.pict_type == "P"))[0])
    others = np.delete(mf.intra_share, [t, *np.flatnonzero(mf.pict_type == "I")])
    assert mf.intra_share[t] > max(0.3, 5 * float(np.median(others)))


def test_motion_vectors_errors(videos):
    with pytest.raises(UnsupportedCodecError, match="hevc"):
        motion_vectors(videos["hevc"].path)
    with pytest.raises(InvalidArgumentError, match="frames="):
        motion_vectors(videos["box"].path, frames="bogus")  # type: ignore[arg-type]


def _bitflipped(tmp_path, make_synth) -> str:
    """A counter-scene MKV with bytes flipped in its middle (as tests/reader/test_bad_input)."""
    from pathlib import Path

    info = make_synth(".mkv", scene="counter", num_frames=90, gop=15, bframes=2)
    data = bytearray(Path(info.path).read_bytes())
    rng = np.random.default_rng(3)
    for pos in rng.integers(int(len(data) * 0.3), int(len(data) * 0.6), 400):
        data[pos] ^= 0xFF
    out = tmp_path / "bitflip.mkv"
    out.write_bytes(bytes(data))
    return str(out)


def test_sequential_pass_never_shifts_after_damage(tmp_path, make_synth):
    """Counting frames (pts unreliable) stops at the first damaged packet: the frames after it
    are missing, never yielded under a shifted index (the reader's rule)."""
    from vidsel.io import decode_stream
    from vidsel.synth import decode_counter

    path = _bitflipped(tmp_path, make_synth)
    by_pts = packet_index(path)
    assert by_pts.pts_reliable
    # reference: the same file mapped by timestamps (damaged pictures are concealed, not lost)
    ref = {sf.index: sf.rgb(sf.coded_size) for sf in decode_stream(by_pts)}
    index = by_pts.sequential()
    got = {sf.index: sf.rgb(sf.coded_size) for sf in decode_stream(index)}
    idx = list(got)
    assert 10 <= len(idx) < index.num_frames  # the damage starts ~30% into the file
    assert idx == list(range(len(idx)))  # a clean prefix, nothing after the first damage
    # every picture is the one its index says; pictures of the damaged GOP (from frame 15)
    # are concealed differently from run to run under frame threading, so compare the first
    for i in range(15):
        np.testing.assert_array_equal(got[i], ref[i], err_msg=f"frame {i}")
    assert [decode_counter(got[i]) for i in range(10)] == list(range(10))
    with VideoReader(path) as r:  # the reader stops at the same place
        r._backend._sequential = True
        assert r.decode(np.arange(index.num_frames), on_missing="skip").indices.tolist() == idx
    mf = motion_vectors(path, frames="all", index=index)
    assert mf.indices.tolist() == idx
