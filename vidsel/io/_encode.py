"""Encode RGB frames into a video file with FFmpeg's encoders (synthetic test and demo videos).

io is vidsel's only door to FFmpeg, for writing as for reading: :mod:`vidsel.synth` renders
frames with numpy and hands them to :func:`write_video`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import av
import numpy as np

from .._validate import check_choice, check_positive_int
from ..errors import DecodeError, InvalidArgumentError, UnsupportedCodecError

__all__ = ["write_video"]

logger = logging.getLogger(__name__)


def _encoder_options(codec: str, stream: Any, *, gop: int, bframes: int, crf: int,
                     preset: str) -> dict[str, str]:
    """Per-encoder options for a fixed GOP, a B-frame count and a quality."""
    if codec == "libx264":
        return {"crf": str(crf), "preset": preset, "bf": str(bframes), "g": str(gop),
                "keyint_min": str(gop), "sc_threshold": "0",
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"}
    if codec == "libx265":
        return {"crf": str(crf), "preset": preset,
                "x265-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}"
                               ":log-level=error"}
    if codec in ("mpeg4", "mpeg2video", "mpeg1video"):
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = bframes
        return {"qscale": "4", "flags": "+qscale"}
    if codec in ("libvpx-vp9", "libvpx"):
        return {"crf": str(crf), "b": "0", "deadline": "realtime", "cpu-used": "8",
                "g": str(gop), "lag-in-frames": "0"}
    if codec in ("libaom-av1", "libsvtav1", "libdav1d"):
        return {"crf": str(crf), "g": str(gop)}
    return {}


def write_video(path: str | os.PathLike[str], frames: Iterable[np.ndarray], *, fps: int = 30,
                codec: str = "libx264", gop: int = 30, bframes: int = 2, crf: int = 23,
                pix_fmt: str | None = None, preset: str = "ultrafast", rotation: int = 0,
                pts: Sequence[int] | None = None, time_base: Fraction | None = None,
                options: Mapping[str, str] | None = None) -> int:
    """Encode ``frames`` into the video file ``path``; returns the number of frames written.

    Args:
        path: output file; the container is chosen from the suffix (.mp4, .mkv, .webm, .avi,
            .mov...). Its folder must exist.
        frames: (H, W, 3) uint8 RGB arrays, all of the size of the first (even sides for 4:2:0
            pixel formats).
        fps: nominal frame rate.
        codec: FFmpeg encoder name: ``libx264``, ``libx265``, ``mpeg4``, ``libvpx-vp9``,
            ``mpeg2video``...
        gop: keyframe interval in frames (scene-cut keyframes are switched off).
        bframes: maximum consecutive B-frames (x264 / x265 / MPEG-1/2/4).
        crf: quality for x264 / x265 / VP9 / AV1 (MPEG-1/2/4 use a fixed quantiser).
        pix_fmt: encoder pixel format (default ``yuv420p``; e.g. ``yuv420p10le`` for 10-bit).
        preset: x264 / x265 speed preset.
        rotation: display-rotation metadata (0, 90, 180, 270; honoured by mp4 / mov).
        pts: presentation timestamp of each frame in ``time_base`` ticks (default
            0, 1, 2...: constant frame rate); e.g. uneven steps give a variable frame rate.
        time_base: seconds per tick (default ``1 / fps``).
        options: extra encoder options, added to (and overriding) the defaults above.

    Raises:
        InvalidArgumentError: no frames, a frame that is not (H, W, 3) uint8 of the first
            frame's size, fewer ``pts`` than frames, or an option out of range.
        UnsupportedCodecError: this FFmpeg build has no encoder ``codec``.
        DecodeError: FFmpeg failed to encode or write the file.
    """
    fps = check_positive_int("fps", fps)
    gop = check_positive_int("gop", gop)
    bframes = check_positive_int("bframes", bframes, allow_zero=True)
    check_choice("rotation", rotation, (0, 90, 180, 270))
    tb = time_base if time_base is not None else Fraction(1, fps)
    out = os.fspath(path)
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise InvalidArgumentError(f"{out}: write_video needs at least one frame")
    height, width = _check_frame(out, 0, first, None)
    try:
        container = av.open(out, mode="w")
    except av.error.FFmpegError as e:
        raise DecodeError(f"{out}: cannot be written: {e}") from e
    count = 0
    try:
        try:
            stream: Any = container.add_stream(codec, rate=fps)
        except (av.error.FFmpegError, ValueError) as e:  # UnknownCodecError is a ValueError
            raise UnsupportedCodecError(
                f"{out}: this FFmpeg build has no encoder {codec!r} ({e})") from e
        stream.width = width
        stream.height = height
        stream.pix_fmt = pix_fmt or "yuv420p"
        stream.time_base = tb
        stream.codec_context.time_base = tb
        opts = _encoder_options(codec, stream, gop=gop, bframes=bframes, crf=crf, preset=preset)
        stream.options = {**opts, **dict(options or {})}
        if rotation:
            if hasattr(stream, "set_display_rotation"):  # a display matrix in the stream
                stream.set_display_rotation(rotation)
            else:  # older FFmpeg: the muxer turns "rotate" metadata into a display matrix
                stream.metadata["rotate"] = str(rotation)
        img: np.ndarray | None = first
        while img is not None:
            _check_frame(out, count, img, (height, width))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if pts is not None and count >= len(pts):
                raise InvalidArgumentError(
                    f"{out}: pts has {len(pts)} entries, fewer than the frames given")
            frame.pts = int(pts[count]) if pts is not None else count
            frame.time_base = tb
            for packet in stream.encode(frame):
                container.mux(packet)
            count += 1
            img = next(it, None)
        for packet in stream.encode():
            container.mux(packet)
    except av.error.FFmpegError as e:
        raise DecodeError(f"{out}: encoding with {codec!r} failed: {e}") from e
    finally:
        container.close()
    logger.debug("wrote %s (%d frames, %s)", out, count, codec)
    return count


def _check_frame(path: str, i: int, img: Any, size: tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) of frame ``i`` after checking it is (H, W, 3) uint8 (of ``size`` if given)."""
    if (not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3
            or img.dtype != np.uint8):
        shape = getattr(img, "shape", None)
        raise InvalidArgumentError(
            f"{path}: frame {i} must be an (H, W, 3) uint8 RGB array, got "
            f"{type(img).__name__} {getattr(img, 'dtype', '')}{list(shape or [])}")
    hw = (int(img.shape[0]), int(img.shape[1]))
    if size is not None and hw != size:
        raise InvalidArgumentError(
            f"{path}: frame {i} is {hw[0]}x{hw[1]} (HxW), the first frame {size[0]}x{size[1]}")
    return hw

