"""Damaged files found by mutation fuzzing: only VidselErrors, honest metadata and timestamps,
and the same request gives the same pixels whatever was read before.

Every file here is a generated video damaged deterministically (a seeded bit flip, a chunk
swap, one edited timestamp field), so each case is reproducible without shared fixtures.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest

from vidsel import DecodeError, VideoReader, VidselError, packet_table
from vidsel.synth import decode_counter

SMALL = dict(scene="counter", num_frames=60, width=160, height=120, gop=12)


def _digest(frames: np.ndarray) -> list[str]:
    return [hashlib.md5(f.tobytes()).hexdigest() for f in frames]


def _flip(data: bytes, seed: int) -> bytes:
    """20 single-bit flips after the first 2 % of the file (headers mostly survive)."""
    d = bytearray(data)
    rng = np.random.default_rng(seed)
    for pos in rng.integers(int(len(d) * 0.02), len(d), 20):
        d[pos] ^= 1 << int(rng.integers(8))
    return bytes(d)


def _swap_chunks(data: bytes, seed: int) -> bytes:
    """Cut the file in 8 chunks and swap two of them (never the first)."""
    n, k = len(data), 8
    chunks = [data[i * n // k:(i + 1) * n // k] for i in range(k)]
    i, j = np.random.default_rng(seed).choice(np.arange(1, k), 2, replace=False)
    chunks[i], chunks[j] = chunks[j], chunks[i]
    return b"".join(chunks)


def _zero(data: bytes, seed: int) -> bytes:
    """Zero 512 bytes at a seeded place after the first 5 % of the file."""
    d = bytearray(data)
    at = int(np.random.default_rng(seed).integers(int(len(d) * 0.05), len(d) - 512))
    d[at:at + 512] = bytes(512)
    return bytes(d)


MUTATIONS = {"flip": _flip, "swap": _swap_chunks, "zero": _zero}


def _mutant(tmp_path: Path, make_synth, suffix: str, codec: str, how: str, seed: int) -> str:
    info = make_synth(suffix, codec=codec, bframes=2 if codec != "flv" else 0, **SMALL)
    data = Path(info.path).read_bytes()
    out = tmp_path / f"{how}{seed}{suffix}"
    out.write_bytes(MUTATIONS[how](data, seed))
    return str(out)


def _frames_by_index(batch) -> dict[int, str]:
    return dict(zip(batch.indices.tolist(), _digest(batch.frames)))


# -- determinism -------------------------------------------------------------------------------

DETERMINISM_CASES = [(".mkv", "libx264", "flip", 1), (".flv", "libx264", "flip", 2),
                     (".mov", "libx264", "flip", 7), (".ts", "libx264", "flip", 35),
                     (".mkv", "libx264", "flip", 65), (".ts", "libx264", "flip", 99),
                     (".flv", "libx264", "swap", 26), (".ts", "libx264", "swap", 27),
                     (".flv", "flv", "flip", 0), (".flv", "flv", "zero", 11),  # FLV1 / Sorenson
                     (".avi", "mpeg4", "swap", 29)]


@pytest.mark.parametrize(("suffix", "codec", "how", "seed"), DETERMINISM_CASES,
                         ids=[f"{c[2]}{c[3]}{c[0]}" for c in DETERMINISM_CASES])
def test_same_index_same_pixels_on_damaged_files(tmp_path, make_synth, suffix, codec, how,
                                                 seed):
    """get_frames, sample_uniform, iter_frames, a single-frame request and fresh readers all
    return the same pixels for the same index (error concealment depends only on the frame's
    seek point, never on what the reader decoded before)."""
    path = _mutant(tmp_path, make_synth, suffix, codec, how, seed)
    try:
        r = VideoReader(path)
    except VidselError:
        pytest.skip("this damage makes the file unreadable in this FFmpeg build")
    with r:
        idx = r.uniform_indices(6)
        first = _frames_by_index(r.decode(idx, on_missing="skip"))
        again = _frames_by_index(r.sample_uniform(6) if len(first) == len(idx)
                                 else r.decode(idx, on_missing="skip"))
        streamed: dict[int, str] = {}
        for b in r.iter_frames(batch_size=16, on_missing="skip"):
            streamed.update(_frames_by_index(b))
    assert again == first
    assert {i: streamed[i] for i in first if i in streamed} == {
        i: first[i] for i in first if i in streamed}
    for i in list(first)[:3]:
        with VideoReader(path) as fresh:
            single = _frames_by_index(fresh.decode([i], on_missing="skip"))
        assert single == {i: first[i]}, f"frame {i}: single request differs from batch"
    with VideoReader(path) as fresh:
        assert _frames_by_index(fresh.decode(idx, on_missing="skip")) == first


def test_unseekable_damaged_file_raises_only_vidsel_errors(tmp_path, make_synth):
    """A damaged AVI whose demuxer refuses seek(0) (FFmpeg's EPERM) is reopened instead."""
    path = _mutant(tmp_path, make_synth, ".avi", "mpeg4", "swap", 29)
    try:
        with VideoReader(path) as r:
            r.decode(np.arange(len(r)), on_missing="skip")
            r.sample_uniform(6, mode="keyframe")
    except VidselError:
        pass


# -- timestamps ---------------------------------------------------------------------------------

def _flv_video_tags(data: bytes) -> list[int]:
    """Offsets of the video tags (type 9) of an FLV file."""
    pos, tags = 13, []
    while pos + 11 <= len(data):
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        if data[pos] == 9:
            tags.append(pos)
        pos += 11 + size + 4
    return tags


def test_one_corrupt_flv_timestamp_does_not_poison_metadata(tmp_path, make_synth):
    info = make_synth(".flv", codec="libx264", bframes=0, **SMALL)
    data = bytearray(Path(info.path).read_bytes())
    tag = _flv_video_tags(bytes(data))[31]  # 30 frames in (the first tag is the decoder config)
    bogus = 4_210_900  # ms: 70 minutes
    data[tag + 4:tag + 7] = (bogus & 0xFFFFFF).to_bytes(3, "big")
    data[tag + 7] = bogus >> 24
    path = tmp_path / "outlier.flv"
    path.write_bytes(bytes(data))
    with VideoReader(path) as r:
        md = r.metadata
        assert md.num_frames == 60
        assert md.duration_s == pytest.approx(2.0, abs=0.1)
        assert md.fps == pytest.approx(30, rel=0.05)
        assert np.all(np.diff(md.timestamps_s) > 0)
        b = r.decode(np.arange(60), on_missing="skip")
    assert not b.missing
    assert [decode_counter(f) for f in b.frames] == list(range(60))  # no shifted index


def _video_pes(data: bytes) -> list[int]:
    """Offsets of the video PES headers (00 00 01 E0) that start an MPEG-TS packet."""
    found = []
    for pos in range(0, len(data) - 188 + 1, 188):
        if data[pos] != 0x47 or not data[pos + 1] & 0x40:  # sync byte, payload unit start
            continue
        payload = pos + 4
        if data[pos + 3] & 0x20:  # adaptation field
            payload += 1 + data[pos + 4]
        if data[payload:payload + 4] == b"\x00\x00\x01\xe0":
            found.append(payload)
    return found


def _drop_ts_timestamps(data: bytes, which: int) -> bytes:
    """Clear the PTS/DTS flags of the ``which``-th video PES header of an MPEG-TS file."""
    d = bytearray(data)
    d[_video_pes(data)[which] + 7] = 0  # PTS_DTS_flags = 00; the header length is kept
    return bytes(d)


def _shift_ts_pts(data: bytes, which: list[int], ticks: int) -> bytes:
    """Add ``ticks`` (90 kHz, modulo 2**33) to the PTS of the given video PES headers."""
    d = bytearray(data)
    pes = _video_pes(data)
    for w in which:
        at = pes[w] + 9
        b = d[at:at + 5]
        pts = ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1
        pts = (pts + ticks) % (1 << 33)
        d[at:at + 5] = bytes([(b[0] & 0xF0) | ((pts >> 29) & 0xE) | 1, (pts >> 22) & 0xFF,
                              ((pts >> 14) & 0xFE) | 1, (pts >> 7) & 0xFF,
                              ((pts << 1) & 0xFE) | 1])
    return bytes(d)


def test_frame_without_timestamp_gets_its_own(tmp_path, make_synth):
    """A TS packet that lost its PTS: each returned frame's timestamp is that frame's, and
    index_at agrees with it."""
    info = make_synth(".ts", codec="libx264", bframes=2, **SMALL)
    path = tmp_path / "nopts.ts"
    path.write_bytes(_drop_ts_timestamps(Path(info.path).read_bytes(), 14))
    with VideoReader(path) as r:
        ts = r.metadata.timestamps_s
        assert np.allclose(np.diff(ts), 1 / 30, atol=1e-3)  # one frame per 1/30 s, no hole
        b = r.decode(np.arange(len(r)), on_missing="skip")
        for i, t, f in zip(b.indices, b.timestamps_s, b.frames):
            assert decode_counter(f) == i
            assert r.index_at(t)[0] == i
            assert t == pytest.approx(ts[0] + i / 30, abs=1e-3)


def test_wild_timestamps_with_a_lost_one_do_not_hang(tmp_path, make_synth):
    """Six frames whose PTS jumps by hours (too many to be outliers) and one without a PTS:
    filling the lost timestamp must not try the millions of holes the jump leaves."""
    info = make_synth(".ts", codec="libx264", bframes=0, **SMALL)
    data = _shift_ts_pts(Path(info.path).read_bytes(), list(range(30, 36)), 1 << 32)
    path = tmp_path / "wild.ts"
    path.write_bytes(_drop_ts_timestamps(data, 20))
    table = packet_table(path)  # finishes at once
    assert not table.pts_reliable and len(table) == 60
    with VideoReader(path) as r:
        b = r.decode(np.arange(20), on_missing="skip")
    assert [decode_counter(f) for f in b.frames] == b.indices.tolist()


# -- truncation, lifecycle ----------------------------------------------------------------------

def faststart_copy(source: str | Path, fast: Path) -> Path:
    """``source`` remuxed to an MP4 with its moov at the front (so a cut keeps the index)."""
    with av.open(str(source)) as src, av.open(str(fast), "w",
                                              options={"movflags": "faststart"}) as dst:
        s_in = src.streams.video[0]
        s_out = dst.add_stream_from_template(s_in)
        for pkt in src.demux(s_in):
            if pkt.dts is not None:
                pkt.stream = s_out
                dst.mux(pkt)
    return fast


def test_cleanly_cut_mp4_reports_truncated(tmp_path, make_synth):
    """moov at the front, mdat cut: the demuxer ends quietly, yet the file is truncated."""
    info = make_synth(".mp4", codec="libx264", **SMALL)
    fast = faststart_copy(info.path, tmp_path / "faststart.mp4")
    whole = packet_table(fast)
    assert not whole.truncated and len(whole) == 60
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fast.read_bytes()[:int(fast.stat().st_size * 0.6)])
    table = packet_table(cut)
    assert table.truncated and 0 < len(table) < 60
    with VideoReader(cut) as r:
        assert r.metadata.truncated


def test_read_after_close_names_the_file(make_synth):
    info = make_synth(".mp4", codec="libx264", **SMALL)
    r = VideoReader(info.path)
    r.close()
    r.close()  # idempotent
    assert r.closed and r.metadata.num_frames == 60  # metadata stays readable
    for call in (lambda: r.get_frames([0]), lambda: r.sample_uniform(2),
                 lambda: r.decode([1], mode="keyframe"), lambda: next(r.iter_frames())):
        with pytest.raises(DecodeError, match=r"\.mp4: this VideoReader is closed"):
            call()


def test_stream_appearing_mid_file_is_damaged_data(tmp_path, fixtures_dir):
    """Four 512-byte blocks of an FLV swapped: the demuxer meets a tag of a stream it did not
    announce and PyAV raises IndexError while demuxing; the readable part is returned."""
    data = (fixtures_dir / "clips" / "moviepy__clip1024.flv").read_bytes()
    block = lambda i: data[i * 512:(i + 1) * 512]  # noqa: E731
    out = bytearray(data)
    for to, frm in ((66, 180), (139, 66), (147, 139), (180, 147)):
        out[to * 512:(to + 1) * 512] = block(frm)
    path = tmp_path / "new_stream.flv"
    path.write_bytes(bytes(out))
    with VideoReader(path) as r:
        assert r.metadata.truncated and 0 < r.metadata.num_frames < 174
        b = r.decode(r.uniform_indices(8), on_missing="skip")
        assert len(b) + len(b.missing) == 8
    from vidsel.io import packet_index

    assert packet_index(path).truncated


#: Bit flips (offset, xor mask) that make a frame-threaded VP9 pass race (fuzz mutant
#: real_roadtrip_vp92_10bit__bitflip_01019).
ROADTRIP_FLIPS = ((12358, 16), (24882, 32), (34098, 8), (36575, 4), (37111, 2), (43544, 2),
                  (51132, 128), (69973, 8), (77214, 4), (77929, 128), (94711, 128),
                  (96344, 32), (103077, 32), (104531, 4), (113318, 8), (114973, 4),
                  (117654, 2), (119558, 1))


def test_decode_pass_is_deterministic_on_damaged_data(tmp_path, fixtures_dir):
    """Frame threads race on concealed pictures; a damaged pass is redone single-threaded, so
    the same pass gives the same pixels every time (with decode-ahead, as select_patches)."""
    from vidsel.io import decode_pass, packet_index

    data = bytearray((fixtures_dir / "clips" / "androidxmedia__roadtrip-vp92-10bit.webm")
                     .read_bytes())
    for at, mask in ROADTRIP_FLIPS:
        data[at] ^= mask
    path = tmp_path / "roadtrip_flipped.webm"
    path.write_bytes(bytes(data))
    index = packet_index(path)

    def digest(_table, frames) -> str:
        return hashlib.sha1(b"".join(f.rgb((32, 48)).tobytes() for f in frames)).hexdigest()

    runs = {decode_pass(index, digest, prefetch=6) for _ in range(6)}
    assert runs == {decode_pass(index, digest, threads=1)}


def _requests_agree(path: Path) -> None:
    """Frames {0, n/2, n-1}: one batch on a fresh reader, the same batch again on a reader
    that read them before, and each frame alone on a fresh reader give the same frames and
    the same missing list."""
    with VideoReader(path) as r:
        n = r.metadata.num_frames
        req = sorted({0, n // 2, n - 1})
        batch = r.decode(req, on_missing="skip")
        again = r.decode(req, on_missing="skip")
    singles = {}
    for i in req:
        with VideoReader(path) as r:
            one = r.decode([i], on_missing="skip")
        singles[i] = _digest(one.frames)[0] if len(one) else None
    want = _frames_by_index(batch)
    assert sorted(map(int, batch.missing)) == [i for i in req if i not in want]
    assert _frames_by_index(again) == want and list(again.missing) == list(batch.missing)
    assert {i: d for i, d in singles.items() if d is not None} == want


def test_damaged_reference_gives_the_same_pixels_alone_or_in_a_batch(tmp_path, fixtures_dir):
    """A zeroed block in a P-frame that the B-frame before it (frame 15) references: the
    fast stretch for frame 15 alone (disposable pictures left out) stops before the damaged
    P-frame is output, so its damage must still be seen (the decoder is drained) and frame 15
    decoded canonically, as in a batch that runs past it (fuzz mutant real_sample__zero_05581)."""
    data = bytearray((fixtures_dir / "edge" / "androidxmedia__sample.mp4").read_bytes())
    data[74443:76260] = bytes(76260 - 74443)
    path = tmp_path / "zeroed_reference.mp4"
    path.write_bytes(bytes(data))
    _requests_agree(path)


def test_seek_to_the_start_landing_late_is_not_trusted(tmp_path):
    """MPEG-2 TS with 188-byte packets shuffled: the lowest timestamp (frame 0's keyframe) sits
    after frame 16's, so once the demuxer has indexed the file, a seek to the start lands
    there and frame 16 was lost on a reused reader only (fuzz mutant
    mpeg2_resize_ts__shuffle_05097); a late start now reopens the file."""
    from tests.fuzz.corpus import SEEDS, make_mutant, make_seeds

    seed = next(s for s in SEEDS if s.name == "mpeg2_resize_ts")
    src = make_seeds(tmp_path / "seeds", (seed,))[seed.name]
    path = make_mutant(src, seed.name, "shuffle", 5097, tmp_path).path
    _requests_agree(path)
    with VideoReader(path) as r:  # the stretch from the start, after the file was indexed
        r.decode([r.metadata.num_frames - 1], on_missing="skip")
        assert len(r.decode(list(range(r.metadata.num_frames)), on_missing="skip")) > 0
