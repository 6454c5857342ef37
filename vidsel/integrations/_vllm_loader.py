"""The logic of vidsel's vLLM video loader, without vLLM: video bytes in, ``(frames, metadata)``
out, in the shape vLLM's ``VideoLoader.load_bytes`` returns.

:mod:`vidsel.integrations.vllm` only wraps :func:`load_video_bytes` in a subclass of vLLM's
``VideoLoader`` and registers it; everything here runs (and is tested) without vllm.

How many frames: vLLM's rule (``VideoBackend.compute_frames_index_to_sample``):
``n = total``, then ``min(n, num_frames)`` when ``num_frames > 0``, then
``min(n, floor(duration * fps))`` when ``fps > 0``, at least 1.

Which frames (``method``), all query-free -- the loader runs before the prompt is read, so it
never sees the question:

- ``"uniform"`` (default): vidsel's ``uniform`` method, ``round(linspace(0, total - 1, n))``
  (vLLM's own loaders truncate instead of rounding, so an index may differ by one), decoded
  exactly;
- ``"keyframes"``: the stream's keyframes (I-frames, from the demuxed packets' flags), spread
  uniformly over them when there are more than ``n``; when there are fewer, all of them come
  back (fewer than ``n`` frames, logged at INFO), decoded exactly;
- ``"codec"``: vidsel's ``codec`` method at a budget of ``n`` frame-equivalents
  (:data:`vidsel.methods.DEFAULT_GEOMETRY`), turned into frames: the ``n`` source frames
  carrying the most selected tokens (ties: the earlier frame), in time order, decoded whole.

Question-aware methods (``mdp3``, ``topk``, ``dpp``, ``bolt``, ``aks``...) are refused: select
on the client and send the frames with :func:`vidsel.selection.to_vllm`.

Odd counts follow ``even`` (:data:`vidsel.selection.EVEN_POLICIES`, default ``"error"``);
under ``"drop"`` an odd ``n`` is first lowered by one, so a uniform spread still reaches the
last frame.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, cast

import numpy as np

from .._validate import check_choice
from ..errors import CorruptVideoError, InvalidArgumentError, NotAVideoError, VidselError
from ..io import VideoReader, bytes_as_file
from ..methods import METHODS, get_method, run_method
from ..results import PatchSelection
from ..select import uniform as spread
from ..selection import DEFAULT_EVEN, EVEN_POLICIES, EvenPolicy, even_positions, vllm_metadata

__all__ = [
    "DEFAULT_METHOD",
    "LOADER_METHODS",
    "LOADER_OPTIONS",
    "VLLM_DECODING_OPTIONS",
    "check_loader_method",
    "choose_frames",
    "frame_budget",
    "load_video_bytes",
    "load_video_file",
]

logger = logging.getLogger(__name__)

#: The methods the loader runs (query-free).
LOADER_METHODS: tuple[str, ...] = ("uniform", "keyframes", "codec")
#: The method used when ``media_io_kwargs`` name none.
DEFAULT_METHOD = "uniform"
#: The ``media_io_kwargs`` keys the loader takes besides vLLM's ``num_frames`` and ``fps``.
LOADER_OPTIONS: tuple[str, ...] = ("method", "even", "size")
#: vLLM 0.33's own decoding options (``VideoBackend.load_bytes``: ``max_duration``,
#: ``frame_recovery``, ``backend``, and the codec options of
#: ``vllm.multimodal.video_decoders``), which vLLM may put in ``media_io_kwargs["video"]``
#: itself (an EPD encode-only instance adds ``backend="torchcodec", device="cuda"``) or a
#: server sets for every loader. Accepted and ignored: vidsel decodes with its own exact
#: reader on the CPU (said once per process at INFO).
VLLM_DECODING_OPTIONS: tuple[str, ...] = (
    "backend", "device", "frame_recovery", "max_duration",  # VideoBackend.load_bytes
    "num_ffmpeg_threads", "seek_mode",  # torchcodec
    "hw_decoders", "max_width", "max_height",  # pynvvideocodec
    "pool_size", "timeout_sec",  # deepstream
)

_said_ignored = False  # the INFO about ignored decoding options, once per process

Size = int | tuple[int, int] | None


def frame_budget(total: int, duration: float, num_frames: Any = -1, fps: Any = -1) -> int:
    """Frames to return for a video of ``total`` frames lasting ``duration`` seconds, by vLLM's
    rule: ``min(total, num_frames if > 0, floor(duration * fps) if fps > 0)``, at least 1.

    Raises:
        InvalidArgumentError: ``num_frames`` is not an integer, ``fps`` not a number.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)):
        raise InvalidArgumentError(f"num_frames={num_frames!r} must be an integer (-1: all "
                                   f"frames)")
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(fps)):
        raise InvalidArgumentError(f"fps={fps!r} must be a number (-1: the source rate)")
    n = int(total)
    if num_frames > 0:
        n = min(n, int(num_frames))
    if fps > 0:
        n = min(n, math.floor(duration * float(fps)))
    return max(1, n)


def check_loader_method(method: Any) -> str:
    """``method`` if the loader can run it.

    Raises:
        InvalidArgumentError: a question-aware vidsel method (the loader never sees the
            question: select on the client with :func:`vidsel.selection.to_vllm`), or an
            unknown name (the message lists :data:`LOADER_METHODS`).
    """
    if method in LOADER_METHODS:
        return str(method)
    if isinstance(method, str) and method in METHODS and get_method(method).needs_question:
        raise InvalidArgumentError(
            f"method={method!r} scores frames against the question, but vLLM's video loader "
            f"runs before the prompt is read and never sees the question; select on the client "
            f"(sel = vidsel.methods.run_method({method!r}, path, question=..., budget=...)) "
            f"and send the frames with vidsel.selection.to_vllm(sel); the loader runs "
            f"{', '.join(map(repr, LOADER_METHODS))}")
    raise InvalidArgumentError(
        f"method={method!r} is not a method of vidsel's vLLM video loader; choose one of "
        f"{', '.join(map(repr, LOADER_METHODS))}")


def _keyframes(reader: VideoReader, n: int, what: str) -> np.ndarray:
    """(k,) int64 keyframe indices, at most ``n``, spread uniformly over the keyframes."""
    keys = np.asarray(reader.metadata.keyframe_indices, dtype=np.int64)
    if not len(keys):
        raise InvalidArgumentError(f"{what}: no packet of the video stream is flagged as "
                                   f"a keyframe; use method='uniform'")
    if len(keys) > n:
        return keys[spread(len(keys), n)]
    if len(keys) < n:
        logger.info("%s: %d keyframes, fewer than the %d frames asked: returning all of them",
                    what, len(keys), n)
    return keys


def _codec_frames(reader: VideoReader, n: int) -> np.ndarray:
    """(k,) int64, k <= n: the frames carrying the most tokens of a ``codec`` selection at
    ``n`` frame-equivalents, in time order (ties: the earlier frame)."""
    sel = cast(PatchSelection, run_method("codec", reader, budget=n, pixels="none"))
    per_frame = sel.tokens_per_source_frame()  # {frame: tokens}
    ranked = sorted(per_frame, key=lambda f: (-per_frame[f], f))[:n]
    return np.asarray(sorted(ranked), dtype=np.int64)


def choose_frames(reader: VideoReader, method: str, n: int, *,
                  what: str | None = None) -> np.ndarray:
    """(k,) int64 ascending frame indices the query-free ``method`` picks, ``k <= n`` (fewer
    only for ``keyframes`` / ``codec`` when the video offers fewer); ``what`` names the video
    in messages (default: its path)."""
    method = check_loader_method(method)
    if method == "keyframes":
        return _keyframes(reader, n, what or reader.path)
    if method == "codec":
        return _codec_frames(reader, n)
    return np.asarray(run_method("uniform", reader, budget=n).source_frames, dtype=np.int64)


def _size(size: Any) -> Size:
    """``size`` from JSON (``media_io_kwargs``): None, an int, or ``[height, width]``."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return int(size)
    if isinstance(size, (list, tuple)) and len(size) == 2 and \
            all(isinstance(s, int) and not isinstance(s, bool) for s in size):
        return int(size[0]), int(size[1])
    raise InvalidArgumentError(f"size={size!r} must be None, a short side (int) or "
                               f"[height, width]")


def load_video_file(path: str | os.PathLike[str], *, num_frames: Any = -1, fps: Any = -1,
                    method: str = DEFAULT_METHOD, even: EvenPolicy | None = DEFAULT_EVEN,
                    size: Any = None, what: str | None = None
                    ) -> tuple[np.ndarray, dict[str, Any]]:
    """What the loader returns for a video file.

    Args:
        path: the video file.
        num_frames, fps: vLLM's limits (see :func:`frame_budget`; <= 0: no limit).
        method: one of :data:`LOADER_METHODS`.
        even: the even-frame policy (:func:`vidsel.selection.to_vllm`).
        size: None (native), short side, or ``[height, width]`` of the frames.
        what: names the video in messages (default: ``path``).

    Returns:
        ``(frames, metadata)``: frames (T, H, W, 3) uint8, exact decodes of
        ``metadata["frames_indices"]``, and vLLM's metadata dict
        (:func:`vidsel.selection.vllm_metadata`: true indices, source fps,
        ``do_sample_frames=False``).

    Raises:
        InvalidArgumentError: a bad option (a question-aware method, an odd count under
            ``even="error"``...).
        VidselError subclasses from reading the video.
    """
    method = check_loader_method(method)
    check_choice("even", even, EVEN_POLICIES)
    size = _size(size)
    with VideoReader(path) as reader:
        what = what or reader.path
        md = reader.metadata
        n = frame_budget(md.num_frames, md.duration_s, num_frames, fps)
        if even == "error" and method != "keyframes":
            even_positions(n, "error", what=what)  # fail before any decoding
        elif even == "drop" and n % 2 and n > 1:
            n -= 1
        indices = choose_frames(reader, method, n, what=what)
        pos = even_positions(len(indices), even, what=f"{what} ({method})")
        indices = indices[pos]
        frames = reader.get_frames(indices, size=size)  # (T, H, W, 3) uint8
        meta = vllm_metadata(indices, fps=md.fps, total_num_frames=md.num_frames,
                             duration=md.duration_s)
    logger.debug("%s: %s, %d of %d frames (num_frames=%s, fps=%s)", what, method, len(indices),
                 md.num_frames, num_frames, fps)
    return frames, meta


def _renamed(exc: VidselError, tmp: str, label: str) -> VidselError:
    """``exc`` with the temporary file's name replaced by ``label`` in its message."""
    message = str(exc).replace(tmp, label)
    try:
        if isinstance(exc, CorruptVideoError):
            return type(exc)(message, missing=exc.missing)
        return type(exc)(message)
    except TypeError:  # a subclass with another constructor: keep it as it is
        return exc


def _drop_decoding_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without vLLM's own decoding options (:data:`VLLM_DECODING_OPTIONS`), which
    are ignored (INFO, once per process); any other key besides :data:`LOADER_OPTIONS` is
    refused.

    Raises:
        InvalidArgumentError: an unknown key (a typo...): the message lists the valid ones.
    """
    global _said_ignored
    unknown = sorted(set(options) - set(LOADER_OPTIONS) - set(VLLM_DECODING_OPTIONS))
    if unknown:
        raise InvalidArgumentError(
            f"vidsel's vLLM video loader does not take {', '.join(map(repr, unknown))}; it takes "
            f"num_frames, fps and {', '.join(map(repr, LOADER_OPTIONS))} (media_io_kwargs "
            f"'video'), and ignores vLLM's decoding options "
            f"{', '.join(map(repr, VLLM_DECODING_OPTIONS))}")
    ignored = {k: v for k, v in options.items() if k in VLLM_DECODING_OPTIONS}
    if ignored and not _said_ignored:
        _said_ignored = True
        logger.info("vidsel's vLLM video loader ignores vLLM's decoding options %s: vidsel "
                    "decodes with its own exact reader on the CPU (frames come back as a "
                    "numpy array); said once per process",
                    ", ".join(f"{k}={v!r}" for k, v in sorted(ignored.items())))
    return {k: v for k, v in options.items() if k in LOADER_OPTIONS}


def load_video_bytes(data: bytes | bytearray | memoryview, num_frames: Any = -1,
                     fps: Any = -1, **options: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """vLLM's ``VideoLoader.load_bytes`` contract: encoded video bytes -> ``(frames,
    metadata)`` (see :func:`load_video_file`).

    vidsel's reader takes a file path, not a file-like object, so the bytes go to a temporary
    file (:func:`vidsel.io.bytes_as_file`), always removed afterwards. Errors name the data
    (``video data (N bytes)``), not that file; the reader's warnings (a truncated file, damaged
    frames) name the temporary file (``/tmp/vidsel-vllm-...``).

    Args:
        data: the encoded video (any container FFmpeg reads).
        num_frames, fps: vLLM's limits.
        **options: ``method``, ``even``, ``size`` (``media_io_kwargs``); vLLM's own decoding
            options (:data:`VLLM_DECODING_OPTIONS`: ``backend``, ``device``, ``max_duration``,
            ``frame_recovery``...) are ignored (INFO, once per process); others are refused.

    Raises:
        InvalidArgumentError: ``data`` is not bytes, or an unknown or bad option.
        NotAVideoError: empty data, or not a video container.
        CorruptVideoError: the data is truncated or damaged so that frames cannot be decoded.
    """
    options = _drop_decoding_options(options)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidArgumentError(f"data must be bytes (an encoded video), got "
                                   f"{type(data).__name__}")
    label = f"video data ({len(data)} bytes)"
    if not len(data):
        raise NotAVideoError(f"{label}: empty, not a video")
    check_loader_method(options.get("method", DEFAULT_METHOD))  # before writing anything
    with bytes_as_file(data, prefix="vidsel-vllm-") as tmp:
        try:
            return load_video_file(tmp, num_frames=num_frames, fps=fps, what=label, **options)
        except VidselError as exc:
            renamed = _renamed(exc, tmp, label)
            if renamed is exc:
                raise
            raise renamed from exc
