"""Frame ingest: exact frames by index or time, fast sparse sampling, packet-level metadata."""

from ._convert import output_size
from ._probe import packet_table
from ._reader import VideoReader, available_backends, register_backend
from ._types import FrameBatch, PacketTable, VideoMetadata

__all__ = [
    "FrameBatch",
    "PacketTable",
    "VideoMetadata",
    "VideoReader",
    "available_backends",
    "output_size",
    "packet_table",
    "register_backend",
]
