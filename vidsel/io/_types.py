"""Result types of the frame-ingest layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

__all__ = ["FrameBatch", "PacketTable", "VideoMetadata"]


def _shape(a: np.ndarray | None) -> str:
    return "None" if a is None else f"{a.dtype}{list(a.shape)}"


@dataclass(frozen=True, repr=False)
class PacketTable:
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
        seconds: (n,) float64 presentation timestamps in seconds (``pts * time_base``).
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
    seconds: np.ndarray
    size: np.ndarray
    is_keyframe: np.ndarray
    decode_order: np.ndarray
    truncated: bool = False
    pts_reliable: bool = True

    def __post_init__(self) -> None:
        n = len(self.pts)
        for name in ("seconds", "size", "is_keyframe", "decode_order"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"PacketTable.{name} has {len(getattr(self, name))} rows, "
                                 f"expected {n}")

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def keyframe_indices(self) -> np.ndarray:
        """(k,) int64 presentation indices of keyframes."""
        return np.flatnonzero(self.is_keyframe).astype(np.int64)

    def __repr__(self) -> str:
        return (f"PacketTable(path={self.path!r}, codec={self.codec!r}, frames={len(self)}, "
                f"keyframes={int(self.is_keyframe.sum())}, truncated={self.truncated})")


@dataclass(frozen=True, repr=False)
class VideoMetadata:
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
    keyframe_indices: np.ndarray = field(compare=False)
    timestamps_s: np.ndarray = field(compare=False)
    header_num_frames: int = 0
    truncated: bool = False
    variable_frame_rate: bool = False

    def __post_init__(self) -> None:
        if len(self.timestamps_s) != self.num_frames:
            raise ValueError(f"timestamps_s has {len(self.timestamps_s)} entries for "
                             f"{self.num_frames} frames")
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError(f"rotation must be 0, 90, 180 or 270, got {self.rotation}")

    def to_dict(self) -> dict[str, object]:
        """JSON-safe summary (per-frame arrays are left out; keyframes are kept)."""
        return {
            "path": self.path, "backend": self.backend, "stream_index": self.stream_index,
            "codec": self.codec, "pix_fmt": self.pix_fmt, "width": self.width,
            "height": self.height, "coded_width": self.coded_width,
            "coded_height": self.coded_height, "rotation": self.rotation,
            "mirrored": self.mirrored, "num_frames": self.num_frames, "fps": self.fps,
            "duration_s": self.duration_s, "start_time_s": self.start_time_s,
            "keyframe_indices": [int(k) for k in self.keyframe_indices],
            "header_num_frames": self.header_num_frames, "truncated": self.truncated,
            "variable_frame_rate": self.variable_frame_rate,
        }

    def __repr__(self) -> str:
        return (f"VideoMetadata(path={self.path!r}, codec={self.codec!r}, "
                f"{self.width}x{self.height}, rotation={self.rotation}, "
                f"frames={self.num_frames}, fps={self.fps:.3f}, duration_s={self.duration_s:.3f}, "
                f"keyframes={len(self.keyframe_indices)})")


@dataclass(frozen=True, repr=False)
class FrameBatch:
    """Decoded frames with the indices and timestamps they really are.

    Attributes:
        frames: (N, H, W, 3) uint8 RGB, in the order requested.
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
        n = len(self.indices)
        if self.frames.ndim != 4 or self.frames.shape[0] != n or self.frames.shape[-1] != 3:
            raise ValueError(f"frames must be (N, H, W, 3) with N={n}, got {self.frames.shape}")
        if len(self.timestamps_s) != n:
            raise ValueError("timestamps_s and indices differ in length")

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return (f"FrameBatch(frames={_shape(self.frames)}, indices={_shape(self.indices)}, "
                f"missing={len(self.missing)})")
