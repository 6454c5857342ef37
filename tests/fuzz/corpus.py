"""The fuzz corpus: small seed videos of several codecs / containers, and seeded mutations.

Seeds are generated with vidsel's own encoder (:func:`vidsel.synth.make_video`, PyAV's bundled
encoders) so the corpus needs no downloaded files. A mutant is fully determined by
``(seed name, mutation kind, number)``: the same arguments always give the same bytes.

Mutation kinds (:data:`KINDS`):

- ``bitflip``: 1-24 random bit flips (half of the time only past the first tenth of the file,
  so that headers usually survive and the damage reaches the decoders);
- ``truncate``: the file cut at 5-98 % of its length;
- ``zero``: a block of 16 B - 8 KiB zeroed;
- ``shuffle``: 2-6 chunks of a region swapped (188 B TS packets, 512 B or random sizes);
- ``box``: container structure damaged: an MP4/MOV box's size or type or table entries, an
  EBML element of MKV/WebM, AVI chunks, TS/PS headers, FLV tag headers;
- ``pts``: timestamps damaged: PES PTS fields (TS/MPG), FLV tag times, MKV block / cluster
  times, MP4 ``stts`` / ``ctts`` / ``elst`` entries.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FIXTURE_SEEDS",
    "KINDS",
    "SEEDS",
    "Mutant",
    "Seed",
    "fixture_seeds",
    "make_mutant",
    "make_mutants",
    "make_seeds",
    "mutant_name",
    "mutate",
    "parse_name",
]

KINDS: tuple[str, ...] = ("bitflip", "truncate", "zero", "shuffle", "box", "pts")


@dataclass(frozen=True)
class Seed:
    """One seed video: ``parts`` encoded with make_video and concatenated byte-wise (several
    parts of different sizes give a stream whose frame size changes mid-stream)."""

    name: str
    suffix: str
    parts: tuple[dict[str, Any], ...] = ()
    source: str = ""  # or an existing file, copied as is (real clips)


def _p(codec: str, w: int = 96, h: int = 64, n: int = 24, **kw: Any) -> dict[str, Any]:
    return {"codec": codec, "width": w, "height": h, "num_frames": n, "gop": 8, "fps": 25, **kw}


#: The seed corpus (the container follows the suffix).
SEEDS: tuple[Seed, ...] = (
    Seed("h264_mp4", ".mp4", (_p("libx264", scene="scene_cut"),)),
    Seed("h264_mkv", ".mkv", (_p("libx264", scene="pan"),)),
    Seed("h264_ts", ".ts", (_p("libx264"),)),
    Seed("h264_mov", ".mov", (_p("libx264", bframes=0),)),
    Seed("h264_flv", ".flv", (_p("libx264", bframes=0),)),
    Seed("hevc_mp4", ".mp4", (_p("libx265"),)),
    Seed("hevc_mkv", ".mkv", (_p("libx265", scene="scene_cut"),)),
    Seed("mpeg4_avi", ".avi", (_p("mpeg4"),)),
    Seed("mpeg4_mp4", ".mp4", (_p("mpeg4", scene="pan"),)),
    Seed("mpeg2_ts", ".ts", (_p("mpeg2video"),)),
    Seed("mpeg2_mpg", ".mpg", (_p("mpeg2video", scene="scene_cut"),)),
    Seed("mpeg1_mpg", ".mpg", (_p("mpeg1video"),)),
    Seed("vp9_webm", ".webm", (_p("libvpx-vp9"),)),
    Seed("vp9_pan_webm", ".webm", (_p("libvpx-vp9", 160, 96, n=30, scene="pan", gop=30),)),
    Seed("h264_bframes_mp4", ".mp4", (_p("libx264", 320, 240, n=30, bframes=3, gop=30),)),
    Seed("vp8_webm", ".webm", (_p("libvpx", scene="scene_cut"),)),
    Seed("flv1_flv", ".flv", (_p("flv", bframes=0),)),
    # the frame size changes mid-stream: two streams of different sizes concatenated, the
    # second one's timestamps continuing the first's ("start"), or restarting (a splice)
    Seed("mpeg1_resize_mpg", ".mpg", (_p("mpeg1video", n=16),
                                      _p("mpeg1video", 112, 80, n=16, start=30))),
    Seed("mpeg2_resize_ts", ".ts", (_p("mpeg2video", n=16),
                                    _p("mpeg2video", 64, 96, n=16, start=18))),
    Seed("h264_splice_ts", ".ts", (_p("libx264", n=16), _p("libx264", 80, 48, n=16, seed=1))),
)


#: Real clips (paths under ../shared/fixtures) usable as extra seeds: small ones, since every
#: mutant is decoded many times. The first four are the CI test's.
FIXTURE_SEEDS: tuple[str, ...] = (
    "clips/moviepy__clip1024.flv",
    "edge/androidxmedia__bt601.mov",
    "clips/androidxmedia__roadtrip-vp92-10bit.webm",
    "edge/androidxmedia__sample_h264_iframes_only.ts",
    "edge/androidxmedia__sample.mp4",
    "edge/androidxmedia__sample.avi",
    "clips/mmaction2__test.avi",
    "clips/decord__flipping_a_pancake.mkv",
)


def fixture_seeds(root: Path, rels: tuple[str, ...] = FIXTURE_SEEDS) -> tuple[Seed, ...]:
    """Seeds of the real clips ``rels`` found under ``root`` (../shared/fixtures)."""
    out: list[Seed] = []
    for rel in rels:
        src = root / rel
        if src.is_file():
            name = "real_" + src.stem.split("__")[-1].replace("-", "_").replace(".", "_")
            if any(s.name == name for s in out):
                name += "_" + src.suffix[1:]
            out.append(Seed(name, src.suffix, source=str(src)))
    return tuple(out)


def _encode(path: Path, kw: dict[str, Any]) -> None:
    """make_video, or with ``start``: the same frames with timestamps from ``start`` on."""
    from vidsel.io import write_video
    from vidsel.synth import make_video, render_frame

    start = kw.pop("start", 0)
    if not start:
        make_video(path, **kw)
        return
    n, w, h = kw["num_frames"], kw["width"], kw["height"]
    frames = (render_frame(kw.get("scene", "moving_box"), i, num_frames=n, width=w, height=h,
                           box=max(8, h // 5)) for i in range(n))
    write_video(path, frames, fps=kw["fps"], codec=kw["codec"], gop=kw["gop"],
                pts=range(start, start + n))


def make_seeds(folder: Path, seeds: tuple[Seed, ...] = SEEDS) -> dict[str, Path]:
    """Encode every seed into ``folder`` (skipping files already there); name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for seed in seeds:
        path = folder / f"{seed.name}{seed.suffix}"
        if not path.is_file() and seed.source:
            shutil.copyfile(seed.source, path)
        elif not path.is_file():
            tmp = folder / f".{seed.name}.part"
            with open(tmp, "wb") as f:
                for i, kw in enumerate(seed.parts):
                    part = folder / f".{seed.name}_{i}{seed.suffix}"
                    _encode(part, dict(kw))
                    f.write(part.read_bytes())
                    part.unlink()
            tmp.rename(path)
        out[seed.name] = path
    return out


# -- mutations ---------------------------------------------------------------------------------

#: Structural markers per container family (searched in the bytes; the damage lands on or
#: right after one of them).
_MARKERS: dict[str, tuple[bytes, ...]] = {
    "iso": (b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"stts", b"ctts", b"stss",
            b"stsz", b"stsc", b"stco", b"co64", b"elst", b"mdhd", b"tkhd", b"mvhd", b"avcC",
            b"hvcC", b"esds", b"mdat", b"hdlr", b"edts"),
    "ebml": (b"\x1a\x45\xdf\xa3", b"\x18\x53\x80\x67", b"\x16\x54\xae\x6b", b"\x1f\x43\xb6\x75",
             b"\x1c\x53\xbb\x6b", b"\xae", b"\xa3", b"\xe7", b"\x86", b"\x63\xa2", b"\xb0",
             b"\xba", b"\x2a\xd7\xb1"),
    "avi": (b"RIFF", b"LIST", b"avih", b"strh", b"strf", b"movi", b"idx1", b"00dc", b"00db"),
    "mpeg": (b"\x00\x00\x01\xba", b"\x00\x00\x01\xbb", b"\x00\x00\x01\xe0", b"\x00\x00\x01\xb3",
             b"\x00\x00\x01\xb5", b"\x00\x00\x01\xb8", b"\x00\x00\x01\x00", b"\x00\x00\x01\x01",
             b"\x00\x00\x00\x01", b"\x47\x40\x00", b"\x47\x50\x00", b"\x47\x41\x00"),
    "flv": (b"FLV", b"\x09\x00", b"\x12\x00"),
}
_FAMILY = {".mp4": "iso", ".mov": "iso", ".mkv": "ebml", ".webm": "ebml", ".avi": "avi",
           ".ts": "mpeg", ".mpg": "mpeg", ".flv": "flv"}


def _find_all(data: bytes, marker: bytes, limit: int = 64) -> list[int]:
    out, start = [], 0
    while len(out) < limit:
        i = data.find(marker, start)
        if i < 0:
            break
        out.append(i)
        start = i + 1
    return out


def _positions(data: bytes, family: str, rng: random.Random) -> list[int]:
    markers = list(_MARKERS[family])
    rng.shuffle(markers)
    for m in markers:
        hits = _find_all(data, m)
        if hits:
            return [h + len(m) for h in hits] if family != "iso" else hits
    return []


def _flv_tags(data: bytes) -> list[int]:
    """Offsets of the FLV tag headers (type, size24, time24, time_ext, stream24)."""
    out, pos = [], 13
    while pos + 11 <= len(data) and len(out) < 4096:
        size = int.from_bytes(data[pos + 1:pos + 4], "big")
        out.append(pos)
        pos += 11 + size + 4
    return out


def _box(data: bytearray, family: str, rng: random.Random) -> None:
    pos = _positions(bytes(data), family, rng)
    if not pos:
        _bitflip(data, rng)
        return
    at = rng.choice(pos)
    how = rng.choice(("size", "type", "payload", "payload"))
    if family == "iso":
        if how == "size" and at >= 4:
            value = rng.choice((0, 1, 7, 0xFFFFFFFF, rng.randrange(1 << 32),
                                int.from_bytes(data[at - 4:at], "big") + rng.randint(-64, 64)))
            data[at - 4:at] = struct.pack(">I", value & 0xFFFFFFFF)
        elif how == "type":
            data[at:at + 4] = bytes(rng.randrange(256) for _ in range(4))
        else:
            off = at + 4 + rng.randrange(4, 48)
            for _ in range(rng.randint(1, 4)):
                if off + 4 <= len(data):
                    data[off:off + 4] = struct.pack(">I", rng.choice(
                        (0, 1, 0xFFFFFFFF, rng.randrange(1 << 32), rng.randrange(1 << 12))))
                off += 4
    else:
        span = rng.randint(1, 8)
        for k in range(span):
            if at + k < len(data):
                data[at + k] = rng.randrange(256) if how != "size" else rng.choice((0, 0xFF))


def _pts(data: bytearray, family: str, rng: random.Random) -> None:
    raw = bytes(data)
    if family == "flv":
        tags = _flv_tags(raw)[1:]
        if tags:
            for at in rng.sample(tags, min(len(tags), rng.randint(1, 3))):
                t = rng.choice((0, 0xFFFFFF, rng.randrange(1 << 24),
                                int.from_bytes(raw[at + 4:at + 7], "big") + rng.randint(-500, 500)))
                data[at + 4:at + 7] = (t & 0xFFFFFF).to_bytes(3, "big")
                if rng.random() < 0.3:
                    data[at + 7] = rng.randrange(256)
            return
    elif family == "mpeg":
        hits = _find_all(raw, b"\x00\x00\x01\xe0", 256)
        if hits:
            for at in rng.sample(hits, min(len(hits), rng.randint(1, 3))):
                # PES: start code(4) len(2) flags(2) hdr_len(1) PTS(5)
                off = at + 9 + rng.randrange(5)
                if off < len(data):
                    data[off] = rng.randrange(256)
            return
    elif family == "ebml":
        hits = _find_all(raw, b"\xa3", 256) + _find_all(raw, b"\xe7", 64)
        if hits:
            for at in rng.sample(hits, min(len(hits), rng.randint(1, 3))):
                off = at + 3 + rng.randrange(3)  # vint size (1-2 B), track (1 B), time16
                if off < len(data):
                    data[off] = rng.randrange(256)
            return
    elif family == "iso":
        hits = [h for m in (b"stts", b"ctts", b"elst", b"mdhd") for h in _find_all(raw, m, 4)]
        if hits:
            at = rng.choice(hits)
            off = at + 12 + 4 * rng.randrange(1, 6)
            if off + 4 <= len(data):
                data[off:off + 4] = struct.pack(">I", rng.choice(
                    (0, 1, 0x7FFFFFFF, rng.randrange(1 << 32), rng.randrange(1 << 10))))
            return
    _box(data, family, rng)


def _bitflip(data: bytearray, rng: random.Random) -> None:
    lo = len(data) // 10 if rng.random() < 0.5 else 0
    for _ in range(rng.randint(1, 24)):
        i = rng.randrange(lo, len(data))
        data[i] ^= 1 << rng.randrange(8)


def _zero(data: bytearray, rng: random.Random) -> None:
    size = min(len(data) // 2, rng.choice((16, 188, 512, 2048, 8192, rng.randint(16, 8192))))
    at = rng.randrange(0, len(data) - size)
    data[at:at + size] = bytes(size)


def _shuffle(data: bytearray, rng: random.Random) -> None:
    chunk = rng.choice((188, 512, rng.randint(64, 4096)))
    count = len(data) // chunk
    if count < 3:
        _bitflip(data, rng)
        return
    picks = rng.sample(range(count), min(count, rng.randint(2, 6)))
    blocks = [bytes(data[i * chunk:(i + 1) * chunk]) for i in picks]
    rng.shuffle(blocks)
    for i, b in zip(picks, blocks):
        data[i * chunk:(i + 1) * chunk] = b


def mutate(data: bytes, suffix: str, kind: str, seed: int) -> bytes:
    """``data`` damaged by one mutation of ``kind`` (deterministic in ``seed``)."""
    rng = random.Random(seed)
    buf = bytearray(data)
    family = _FAMILY.get(suffix, "mpeg")
    if kind == "truncate":
        return bytes(buf[:max(1, int(len(buf) * rng.uniform(0.05, 0.98)))])
    if kind == "bitflip":
        _bitflip(buf, rng)
    elif kind == "zero":
        _zero(buf, rng)
    elif kind == "shuffle":
        _shuffle(buf, rng)
    elif kind == "box":
        _box(buf, family, rng)
    elif kind == "pts":
        _pts(buf, family, rng)
    else:
        raise ValueError(f"unknown mutation kind {kind!r}")
    return bytes(buf)


@dataclass(frozen=True)
class Mutant:
    """One mutated file of the corpus."""

    name: str
    seed: str
    kind: str
    number: int
    path: Path
    sha1: str = field(default="", compare=False)


def mutant_name(seed: str, kind: str, number: int, suffix: str) -> str:
    """File name of a mutant; :func:`parse_name` reads it back."""
    return f"{seed}__{kind}_{number:05d}{suffix}"


def parse_name(name: str) -> tuple[str, str, int]:
    """(seed, kind, number) of a mutant's file name (suffix optional)."""
    stem = name.split("/")[-1].split(".")[0]
    seed, _, rest = stem.rpartition("__")
    kind, _, number = rest.rpartition("_")
    if not seed or kind not in KINDS or not number.isdigit():
        raise ValueError(f"{name!r} is not a mutant name (seed__kind_number.suffix)")
    return seed, kind, int(number)


def make_mutant(src: Path, seed: str, kind: str, number: int, folder: Path,
                data: bytes | None = None) -> Mutant:
    """Write mutant ``number`` of ``kind`` of the seed file ``src`` into ``folder``."""
    data = src.read_bytes() if data is None else data
    folder.mkdir(parents=True, exist_ok=True)
    rng_seed = int.from_bytes(hashlib.sha1(f"{seed}/{kind}/{number}".encode()).digest()[:8],
                              "big")
    out = mutate(data, src.suffix, kind, rng_seed)
    name = mutant_name(seed, kind, number, src.suffix)
    path = folder / name
    path.write_bytes(out)
    return Mutant(name, seed, kind, number, path, hashlib.sha1(out).hexdigest()[:12])


def make_mutants(seeds: dict[str, Path], count: int, folder: Path, *,
                 base_seed: int = 0) -> Iterator[Mutant]:
    """``count`` mutants spread round-robin over seeds and kinds, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(seeds)
    cache: dict[str, bytes] = {}
    for k in range(count):
        seed = names[k % len(names)]
        kind = KINDS[(k // len(names)) % len(KINDS)]
        if seed not in cache:
            cache[seed] = seeds[seed].read_bytes()
        yield make_mutant(seeds[seed], seed, kind, base_seed + k, folder, cache[seed])
