"""Frame ingest, and vidsel's only door to FFmpeg.

Exact frames by index or time (:class:`VideoReader`), packet-level metadata without decoding
(:func:`packet_table`, :func:`packet_index`), one streaming decode pass for analyses
(:func:`decode_stream`, :func:`decode_pass`), the one RGB converter (:class:`FrameConverter`)
the one answer to "is this a video?" (:func:`probe_kind`, :func:`is_video`), and encoding
frames into a video file (:func:`write_video`).
"""

from ._borders import Borders, CropSpec, detect_borders, resolve_crop
from ._compat import decoder_version
from ._convert import (
    DEFAULT_INTERPOLATION,
    INTERPOLATIONS,
    Crop,
    FrameConverter,
    check_crop,
    check_interpolation,
    output_size,
)
from ._display import apply_display_op, display_transform, swaps_axes
from ._encode import write_video
from ._frames import MV_DTYPE, ConvertAhead, LateCrop, StreamFrame
from ._packets import index_for, packet_index
from ._parallel import DECODE_WORKERS_ENV, usable_cpus
from ._probe import (
    VIDEO_KINDS,
    VideoKind,
    check_stream,
    is_video,
    open_container,
    packet_table,
    probe_kind,
)
from ._reader import BACKENDS, VideoReader, available_backends, register_backend
from ._spool import bytes_as_file
from ._stream import TimestampsUnreliable, decode_ahead, decode_pass, decode_stream
from ._types import FRAME_SETS, FrameBatch, FrameSet, PacketIndex, PacketTable, VideoMetadata

__all__ = [
    "BACKENDS",
    "DECODE_WORKERS_ENV",
    "DEFAULT_INTERPOLATION",
    "FRAME_SETS",
    "INTERPOLATIONS",
    "MV_DTYPE",
    "VIDEO_KINDS",
    "Borders",
    "ConvertAhead",
    "Crop",
    "CropSpec",
    "FrameBatch",
    "FrameConverter",
    "FrameSet",
    "LateCrop",
    "PacketIndex",
    "PacketTable",
    "StreamFrame",
    "TimestampsUnreliable",
    "VideoKind",
    "VideoMetadata",
    "VideoReader",
    "apply_display_op",
    "available_backends",
    "bytes_as_file",
    "check_crop",
    "check_interpolation",
    "check_stream",
    "decode_ahead",
    "decode_pass",
    "decode_stream",
    "decoder_version",
    "detect_borders",
    "display_transform",
    "index_for",
    "is_video",
    "open_container",
    "output_size",
    "packet_index",
    "packet_table",
    "probe_kind",
    "register_backend",
    "resolve_crop",
    "swaps_axes",
    "usable_cpus",
    "write_video",
]
