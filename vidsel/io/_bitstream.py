"""Tiny bitstream peeks: picture type and reference flag of a packet, without decoding.

Used to skip *disposable* pictures (never used as a reference) that a request does not need:
sending them to the decoder is pure waste, and leaving them out changes no other picture.
Exact for H.264 (``nal_ref_idc``) and MPEG-1/2/4 part 2 (B pictures are never references).
Other codecs return None and nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import DecodeError, InvalidArgumentError

__all__ = ["PACKED_LOG", "PackedBitstream", "Peek", "peek_parser", "second_ue", "try_peek"]

#: (picture type "I" / "P" / "B" / "S", is_reference) or None when the packet holds no picture.
Peek = tuple[str, bool] | None

_H264 = {"h264", "libx264"}
_MPEG12 = {"mpeg1video", "mpeg2video"}


class PackedBitstream(DecodeError):
    """An MPEG-4 packet holds two pictures (DivX packed B-frames); an internal signal."""


class MalformedBits(InvalidArgumentError):
    """A packet header cannot be parsed (the peek gives up; the caller decodes instead)."""


def second_ue(data: bytes) -> int:
    """The second unsigned Exp-Golomb value of ``data`` (MSB first, emulation bytes removed
    beforehand), the first one skipped: an H.264 slice header's ``slice_type`` after
    ``first_mb_in_slice``. Whole-word arithmetic (``int.bit_length`` counts the leading
    zeros), the same values as reading bit by bit (tested against a bit reader).

    Raises:
        MalformedBits: a code with more than 31 leading zeros, or ``data`` ending inside one.
    """
    left = 8 * len(data)
    x = int.from_bytes(data, "big")
    value = 0
    for _ in range(2):
        rem = x & ((1 << left) - 1)
        zeros = left - rem.bit_length()
        if zeros > 31:
            raise MalformedBits("bad exp-golomb code")
        width = 2 * zeros + 1
        if width > left:
            raise MalformedBits("the data ends inside an exp-golomb code")
        left -= width
        value = (rem >> left) - 1
    return value


def _unescape(data: bytes) -> bytes:
    """Drop H.264 emulation-prevention bytes (00 00 03 -> 00 00)."""
    return data.replace(b"\x00\x00\x03", b"\x00\x00") if b"\x00\x00\x03" in data else data


_H264_SLICE = {0: "P", 1: "B", 2: "I", 3: "S", 4: "S"}


def h264_slice(nal: bytes) -> Peek:
    """(type, is_reference) from one NAL unit's first bytes, or None if not a coded slice."""
    if not nal:
        return None
    nal_type = nal[0] & 0x1F
    if nal_type not in (1, 5):
        return None
    ref = bool(nal[0] & 0x60)
    kind = _H264_SLICE.get(second_ue(_unescape(bytes(nal[1:12]))) % 5, "P")
    return kind, ref


def h264_avcc(data: bytes | memoryview, length_size: int) -> Peek:
    """Length-prefixed (MP4 / MKV) H.264: the first coded slice's type and reference flag."""
    pos, n = 0, len(data)
    while pos + length_size <= n:
        size = int.from_bytes(data[pos:pos + length_size], "big")
        pos += length_size
        if size <= 0:
            return None
        hit = h264_slice(bytes(data[pos:pos + min(size, 16)]))
        if hit is not None:
            return hit
        pos += size
    return None


def h264_annexb(data: bytes | memoryview) -> Peek:
    """Start-code (TS / raw) H.264: the first coded slice's type and reference flag."""
    raw = bytes(data)
    i = raw.find(b"\x00\x00\x01")
    while i >= 0:
        hit = h264_slice(raw[i + 3:i + 19])
        if hit is not None:
            return hit
        i = raw.find(b"\x00\x00\x01", i + 3)
    return None


_MPEG4_VOP = {0: "I", 1: "P", 2: "B", 3: "S"}
_MPEG12_PIC = {1: "I", 2: "P", 3: "B", 4: "I"}


def mpeg4(data: bytes | memoryview) -> Peek:
    raw = bytes(data)
    i = raw.find(b"\x00\x00\x01\xb6")
    if i < 0 or i + 4 >= len(raw):
        return None
    if raw.find(b"\x00\x00\x01\xb6", i + 4) >= 0:
        raise PackedBitstream()
    kind = _MPEG4_VOP[raw[i + 4] >> 6]
    return kind, kind != "B"


def mpeg12(data: bytes | memoryview) -> Peek:
    raw = bytes(data)
    i = raw.find(b"\x00\x00\x01\x00")
    if i < 0 or i + 5 >= len(raw):
        return None
    code = (raw[i + 5] >> 3) & 0x7
    kind = _MPEG12_PIC.get(code)
    if kind is None:
        return None
    return kind, kind != "B"


#: Logged (with the path) where an MPEG-4 packet holds two pictures.
PACKED_LOG = "%s: packed-bitstream MPEG-4: frames are counted in output order"


def try_peek(parse: Callable[[bytes | memoryview], Peek], data: bytes | memoryview) -> Peek:
    """``parse(data)``, None where the header cannot be read (:class:`PackedBitstream`
    propagates: the stream's frames must then be counted in output order)."""
    try:
        return parse(data)
    except (ValueError, IndexError):
        return None


def peek_parser(codec: str, extradata: bytes | None) -> Callable[[bytes | memoryview], Peek] | None:
    """The packet peek function for a codec, or None when the codec is not supported."""
    if codec in _H264:
        if extradata and len(extradata) > 4 and extradata[0] == 1:
            length_size = (extradata[4] & 0x3) + 1
            return lambda d: h264_avcc(d, length_size)
        return h264_annexb
    if codec == "mpeg4":
        return mpeg4
    if codec in _MPEG12:
        return mpeg12
    return None
