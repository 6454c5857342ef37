"""Result types of the frame-ingest layer."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np

from .._fields import FieldsEq, coerce_arrays
from .._json import float_array, float_or_nan, int_array, json_safe, reads_dict
from ..deprecation import renamed_fields
from ..errors import InvalidArgumentError

__all__ = ["FrameBatch", "PacketIndex", "PacketTable", "PictSource", "VideoMetadata"]

PictSource = Literal["bitstream", "inferred"]
FrameSet = Literal["reference", "ip", "all"]
FRAME_SETS: tuple[str, ...] = ("reference", "ip", "all")
_T = TypeVar("_T", bound="PacketTable")


def _shape(a: np.ndarray | None) -> str:
    return "None" if a is None else f"{a.dtype}{list(a.shape)}"


@renamed_fields({"seconds": "timestamps_s"})
@dataclass(frozen=True, repr=False, eq=False)
class PacketTable(FieldsEq):
    """Per-frame facts read from demuxed packets, without decoding, in PRESENTATION order.

    Entry ``i`` describes frame ``i`` (the i-th frame a full sequential decode outputs). Packets
    that produce no picture (edit-list discards, VP8/VP9 hidden alt-ref frames, empty packets)
    are left out.

    Attributes:
        path: the video file.
        stream_index: index of the video stream in the container.
        codec: decoder name (e.g. ``"h264"``).
        time_base: the stream's time base (seconds per pts tick).
        pts: (n,) int64 presentation timestamps in ``time_base`` ticks.
        timestamps_s: (n,) float64 presentation timestamps in seconds (``pts * time_base``);
            ``seconds`` is its deprecated name.
        size: (n,) int64 packet size in bytes (the frame's bit cost).
        is_keyframe: (n,) bool, the packet is flagged as a keyframe (a random-access point).
        decode_order: (n,) int64 position of the frame's packet in demux (decode) order.
        truncated: demuxing stopped on an error before the end of the file.
        pts_reliable: presentation timestamps are unique and present, so a decoded frame can be
            mapped to its index by its pts (False e.g. for packed-bitstream AVI files, which are
            then decoded sequentially).
    """

    path: str
    stream_index: int
    codec: str
    time_base: Fraction
    pts: np.ndarray
    timestamps_s: np.ndarray
    size: np.ndarray
    is_keyframe: np.ndarray
    decode_order: np.ndarray
    truncated: bool = False
    pts_reliable: bool = True

    #: Per-frame array fields (checked for length; lists in :meth:`to_dict`).
    _ARRAYS: ClassVar[tuple[str, ...]] = ("pts", "timestamps_s", "size", "is_keyframe",
                                          "decode_order")
    #: dtype a list given for an array field is converted to (int64 when not listed).
    _DTYPES: ClassVar[dict[str, Any]] = {"timestamps_s": np.float64, "is_keyframe": bool,
                                         "pict_type": "<U1", "is_reference": bool}

    def __post_init__(self) -> None:
        coerce_arrays(self, {name: self._DTYPES.get(name, np.int64) for name in self._ARRAYS})
        n = len(self.pts)
        for name in self._ARRAYS:
            if len(getattr(self, name)) != n:
                raise InvalidArgumentError(
                    f"{type(self).__name__}.{name} has {len(getattr(self, name))} rows, "
                    f"expected {n}")

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def num_frames(self) -> int:
        """Frames in the stream (rows of the table)."""
        return len(self.pts)

    @property
    def keyframe_indices(self) -> np.ndarray:
        """(k,) int64 presentation indices of keyframes."""
        return np.flatnonzero(self.is_keyframe).astype(np.int64)

    @property
    def duration_s(self) -> float:
        """Time from the first to the last frame plus one median frame duration (0 for a
        single frame)."""
        ts = self.timestamps_s
        if len(ts) < 2:
            return 0.0
        return float(ts[-1] - ts[0] + np.median(np.diff(ts)))

    def sequential(self: _T) -> _T:
        """The same table flagged ``pts_reliable=False``: decode passes then count frames in
        output order instead of mapping them by timestamp."""
        return dataclasses.replace(self, pts_reliable=False)

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with every field (per-frame arrays as lists); :meth:`from_dict`
        inverts it."""
        d: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            d[f.name] = json_safe(getattr(self, f.name))
        return d

    @classmethod
    @reads_dict
    def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
        """Rebuild from :meth:`to_dict` output (``seconds`` is accepted for ``timestamps_s``).

        Raises:
            InvalidArgumentError: ``data`` is malformed (not a mapping, a key missing, a value
                of the wrong type).
        """
        d = dict(data)
        if "timestamps_s" not in d and "seconds" in d:
            d["timestamps_s"] = d.pop("seconds")
        names = {f.name for f in dataclasses.fields(cls)}
        kw: dict[str, Any] = {}
        for name in names & set(d):
            kw[name] = cls._from_json(name, d[name])
        return cls(**kw)

    @classmethod
    def _from_json(cls, name: str, value: Any) -> Any:
        if name == "time_base":
            return Fraction(value)
        if name == "timestamps_s":
            return float_array(value)
        if name == "is_keyframe":
            return np.asarray(value, bool)
        if name in cls._ARRAYS:
            return int_array(value)
        if name in ("path", "codec", "pict_type_source"):
            if not isinstance(value, str):
                raise InvalidArgumentError(f"{name} must be a string, got {value!r}")
            return value
        if name in ("truncated", "pts_reliable"):
            return bool(value)
        if name == "elapsed_s":
            return float_or_nan(value)
        return int(value)  # stream_index

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(path={self.path!r}, codec={self.codec!r}, "
                f"frames={len(self)}, keyframes={int(self.is_keyframe.sum())}, "
                f"truncated={self.truncated})")


@renamed_fields({"seconds": "timestamps_s"})
@dataclass(frozen=True, repr=False, kw_only=True, eq=False)
class PacketIndex(PacketTable):
    """A :class:`PacketTable` with picture types, reference flags and GOPs (what the codec
    pipeline plans with), built by :func:`vidsel.io.packet_index`.

    Attributes (besides those of :class:`PacketTable`):
        pict_type: (F,) ``<U1`` picture type per frame: ``"I"``, ``"P"``, ``"B"`` (``"S"`` for
            MPEG-4 sprite / SP / SI pictures).
        is_reference: (F,) bool, the picture may be used as a reference (exact for H.264 and
            MPEG-1/2/4; for inferred types, every non-``B`` frame).
        pict_type_source: ``"bitstream"`` (parsed from the packets) or ``"inferred"``
            (keyframes are ``I``, frames decoded after a later-presented frame ``B``, others
            ``P``).
        gop_index: (F,) int64 GOP each frame is decoded in (count of keyframes before it in
            decode order, minus one; frames before the first keyframe get 0).
        elapsed_s: wall time spent building the index.
    """

    pict_type: np.ndarray
    is_reference: np.ndarray
    pict_type_source: PictSource
    gop_index: np.ndarray
    elapsed_s: float = field(default=0.0, compare=False)

    _ARRAYS: ClassVar[tuple[str, ...]] = (*PacketTable._ARRAYS, "pict_type", "is_reference",
                                          "gop_index")

    def __post_init__(self) -> None:
        if len(self.pts) == 0:
            raise InvalidArgumentError("PacketIndex needs at least one frame")
        super().__post_init__()
        if self.pict_type_source not in ("bitstream", "inferred"):
            raise InvalidArgumentError(
                f"pict_type_source={self.pict_type_source!r} must be 'bitstream' or 'inferred'")

    @property
    def gop_starts(self) -> np.ndarray:
        """(G,) int64 presentation index of each keyframe (the GOP boundaries)."""
        return self.keyframe_indices

    def type_counts(self) -> dict[str, int]:
        """Number of frames per picture type, e.g. ``{"I": 2, "P": 34, "B": 79}``."""
        kinds, counts = np.unique(self.pict_type, return_counts=True)
        return {str(k): int(c) for k, c in zip(kinds, counts)}

    def skip_mode(self, frames: FrameSet = "all") -> str:
        """FFmpeg ``skip_frame`` value that decodes ``frames`` of this stream.

        ``"all"`` decodes everything (``"DEFAULT"``; also whenever timestamps are unreliable:
        counting frames needs every one). ``"ip"`` drops every B-frame (``"BIDIR"``, cheapest;
        pictures after a skipped reference B-frame may be damaged, motion vectors are not).
        ``"reference"`` drops what no other picture needs: B-frames when none of them is a
        reference, else only non-reference pictures (``"NONREF"``; pixels stay exact).
        """
        if frames not in FRAME_SETS:
            raise InvalidArgumentError(f"frames={frames!r} must be one of {FRAME_SETS}")
        if frames == "all" or not self.pts_reliable:
            return "DEFAULT"
        if frames == "ip":
            return "BIDIR"
        b = self.pict_type == "B"
        if not b.any():
            return "DEFAULT"
        if self.pict_type_source == "bitstream" and not np.any(self.is_reference & b):
            return "BIDIR"
        return "NONREF"

    def to_dict(self) -> dict[str, Any]:
        """Every field (see :meth:`PacketTable.to_dict`) plus the derived ``num_frames``,
        ``type_counts`` and ``gop_starts`` (ignored by :meth:`from_dict`)."""
        d = super().to_dict()
        d["num_frames"] = self.num_frames
        d["type_counts"] = self.type_counts()
        d["gop_starts"] = self.gop_starts.tolist()
        return d

    @classmethod
    def _from_json(cls, name: str, value: Any) -> Any:
        if name == "pict_type":
            return np.asarray(value, "<U1")
        if name == "is_reference":
            return np.asarray(value, bool)
        return super()._from_json(name, value)

    def __repr__(self) -> str:
        return (f"PacketIndex(path={self.path!r}, codec={self.codec!r}, frames={self.num_frames}, "
                f"gops={len(self.gop_starts)}, types={self.type_counts()} "
                f"({self.pict_type_source}), size={_shape(self.size)})")


@dataclass(frozen=True, repr=False, eq=False)
class VideoMetadata(FieldsEq):
    """What vidsel knows about a video stream, computed from demuxed packets.

    Frame counts and timestamps come from the packets actually present in the file, never from
    the container header (which is wrong for fragmented MP4, WebM without duration, VFR, edit
    lists and truncated files).

    Attributes:
        path: the video file.
        backend: the decode backend in use.
        stream_index: index of the video stream in the container.
        codec: decoder name.
        pix_fmt: decoded pixel format (e.g. ``yuv420p``, ``yuv420p10le``).
        width, height: size as displayed, i.e. after rotation metadata is applied.
        coded_width, coded_height: size of the decoded pictures before rotation.
        rotation: counter-clockwise display rotation in degrees (0, 90, 180 or 270) that vidsel
            applies to every frame; FFmpeg's display-matrix convention.
        mirrored: the display matrix also flips the picture (applied as well).
        num_frames: exact number of frames in presentation order.
        fps: average frame rate: ``(num_frames - 1) / (last - first timestamp)``.
        duration_s: time from the first frame's timestamp to the end of the last frame.
        start_time_s: presentation timestamp of frame 0 in seconds (non-zero for some files).
        keyframe_indices: (k,) int64 presentation indices of keyframes.
        timestamps_s: (n,) float64 presentation timestamp of every frame, in seconds, on the
            stream's timeline (frame 0 is at ``start_time_s``).
        header_num_frames: the frame count the container header claims (0 if none), for
            diagnostics only.
        truncated: the file ended early or demuxing hit damaged data.
        variable_frame_rate: frame durations vary by more than 1 %.
        sample_aspect_ratio: width of one stored pixel over its height as displayed (1.0 for
            square pixels; e.g. 16/11 = 1.4545 for a 704x576 PAL stream shown at 16:9), along
            ``width`` (rotation applied).
        display_width, display_height: the size the picture is meant to be seen at: ``width``
            stretched by ``sample_aspect_ratio`` (equal to ``width``/``height`` for square
            pixels). An int ``size`` resizes to this aspect; ``size=None`` returns the stored
            ``width`` x ``height`` pixels unscaled.
    """

    path: str
    backend: str
    stream_index: int
    codec: str
    pix_fmt: str
    width: int
    height: int
    coded_width: int
    coded_height: int
    rotation: int
    mirrored: bool
    num_frames: int
    fps: float
    duration_s: float
    start_time_s: float
    keyframe_indices: np.ndarray
    timestamps_s: np.ndarray
    header_num_frames: int = 0
    truncated: bool = False
    variable_frame_rate: bool = False
    sample_aspect_ratio: float = 1.0
    display_width: int = 0
    display_height: int = 0

    _INTS: ClassVar[tuple[str, ...]] = ("stream_index", "width", "height", "coded_width",
                                        "coded_height", "rotation", "num_frames",
                                        "header_num_frames", "display_width", "display_height")
    _FLOATS: ClassVar[tuple[str, ...]] = ("fps", "duration_s", "start_time_s",
                                          "sample_aspect_ratio")
    _STRS: ClassVar[tuple[str, ...]] = ("path", "backend", "codec", "pix_fmt")
    _BOOLS: ClassVar[tuple[str, ...]] = ("mirrored", "truncated", "variable_frame_rate")

    def __post_init__(self) -> None:
        coerce_arrays(self, {"keyframe_indices": np.int64, "timestamps_s": np.float64})
        if len(self.timestamps_s) != self.num_frames:
            raise InvalidArgumentError(f"timestamps_s has {len(self.timestamps_s)} entries for "
                                       f"{self.num_frames} frames")
        if self.rotation not in (0, 90, 180, 270):
            raise InvalidArgumentError(f"rotation must be 0, 90, 180 or 270, got {self.rotation}")
        if not self.sample_aspect_ratio > 0:
            raise InvalidArgumentError(
                f"sample_aspect_ratio must be > 0, got {self.sample_aspect_ratio}")
        if not self.display_width or not self.display_height:  # square pixels unless told
            object.__setattr__(self, "display_width",
                               max(1, round(self.width * self.sample_aspect_ratio)))
            object.__setattr__(self, "display_height", self.height)

    def summary(self) -> dict[str, Any]:
        """Compact JSON-safe dict: every field except the per-frame ``timestamps_s``
        (keyframes are kept). Not invertible: :meth:`to_dict` is."""
        d = self.to_dict()
        del d["timestamps_s"]
        return d

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field, the per-frame ``timestamps_s`` included;
        :meth:`from_dict` inverts it. :meth:`summary` leaves the per-frame array out."""
        return {f.name: json_safe(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    @reads_dict
    def from_dict(cls, data: Mapping[str, Any]) -> VideoMetadata:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidArgumentError: ``data`` is malformed, or is a :meth:`summary` (no
                ``timestamps_s``).
        """
        if "timestamps_s" not in data:
            raise InvalidArgumentError(
                "VideoMetadata.from_dict needs the full to_dict() (with timestamps_s), not its "
                "summary()")
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name not in data and f.default is not dataclasses.MISSING:
                continue
            v = data[f.name]
            if f.name in cls._INTS:
                kw[f.name] = int(v)
            elif f.name in cls._FLOATS:
                kw[f.name] = float_or_nan(v)
            elif f.name in cls._BOOLS:
                kw[f.name] = bool(v)
            elif f.name in cls._STRS:
                kw[f.name] = str(v)
        kw["keyframe_indices"] = int_array(data["keyframe_indices"])
        kw["timestamps_s"] = float_array(data["timestamps_s"])
        return cls(**kw)

    def __repr__(self) -> str:
        return (f"VideoMetadata(path={self.path!r}, codec={self.codec!r}, "
                f"{self.width}x{self.height}, rotation={self.rotation}, "
                f"frames={self.num_frames}, fps={self.fps:.3f}, duration_s={self.duration_s:.3f}, "
                f"keyframes={len(self.keyframe_indices)})")


@dataclass(frozen=True, repr=False, eq=False)
class FrameBatch(FieldsEq):
    """Decoded frames with the indices and timestamps they really are.

    Attributes:
        frames: (N, H, W, 3) uint8 RGB, in the order requested. (N, 0, 0, 3) after
            :meth:`from_dict` without ``frames`` (pixels are not serialised).
        indices: (N,) int64 presentation index of each returned frame. In ``keyframe`` mode these
            are the keyframes actually returned, which can differ from the indices asked for.
        timestamps_s: (N,) float64 presentation timestamp of each returned frame in seconds.
        missing: indices that could not be decoded (only with ``on_missing="skip"``): the
            requested indices in exact mode, the keyframes tried in keyframe mode.
        requested: (N,) int64 indices as requested (equal to ``indices`` in exact mode).
    """

    frames: np.ndarray
    indices: np.ndarray
    timestamps_s: np.ndarray
    missing: tuple[int, ...] = ()
    requested: np.ndarray | None = None

    def __post_init__(self) -> None:
        coerce_arrays(self, {"frames": np.uint8, "indices": np.int64,
                             "timestamps_s": np.float64}, optional={"requested": np.int64})
        object.__setattr__(self, "missing", tuple(int(m) for m in self.missing))
        n = len(self.indices)
        if self.frames.ndim != 4 or self.frames.shape[0] != n or self.frames.shape[-1] != 3:
            raise InvalidArgumentError(
                f"frames must be (N, H, W, 3) with N={n}, got {self.frames.shape}")
        if len(self.timestamps_s) != n:
            raise InvalidArgumentError("timestamps_s and indices differ in length")
        if self.requested is not None and len(self.requested) != n:
            raise InvalidArgumentError("requested and indices differ in length")

    def __len__(self) -> int:
        return len(self.indices)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict without the pixels: ``indices``, ``timestamps_s``, ``missing``,
        ``requested`` and ``frame_shape`` ((H, W, 3) of one frame). :meth:`from_dict` inverts
        it (give it the frames back, or it makes an empty-pixel batch)."""
        return json_safe({  # type: ignore[no-any-return]
            "indices": self.indices, "timestamps_s": self.timestamps_s,
            "missing": list(self.missing), "requested": self.requested,
            "frame_shape": list(self.frames.shape[1:])})

    @classmethod
    @reads_dict
    def from_dict(cls, data: Mapping[str, Any], *, frames: np.ndarray | None = None
                  ) -> FrameBatch:
        """Inverse of :meth:`to_dict`.

        Args:
            data: a :meth:`to_dict` result.
            frames: the (N, H, W, 3) uint8 pixels to put back; None gives an empty-pixel array
                of shape (N, 0, 0, 3) (``frame_shape`` in ``data`` says what the pixels were).

        Raises:
            InvalidArgumentError: ``data`` is malformed or ``frames`` does not fit it.
        """
        indices = int_array(data["indices"])
        rows = len(indices)  # type: ignore[arg-type]
        if frames is None:
            frames = np.zeros((rows, 0, 0, 3), np.uint8)
        requested = data.get("requested")
        return cls(frames=frames, indices=indices,  # type: ignore[arg-type]
                   timestamps_s=float_array(data["timestamps_s"]),  # type: ignore[arg-type]
                   missing=tuple(int(m) for m in data.get("missing") or ()),
                   requested=None if requested is None else int_array(requested))

    def __repr__(self) -> str:
        return (f"FrameBatch(frames={_shape(self.frames)}, indices={_shape(self.indices)}, "
                f"missing={len(self.missing)})")
