"""The public :class:`VideoReader` and its registry of decode backends."""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import numpy as np

from .._validate import check_choice, check_positive_float, check_positive_int
from ..errors import CorruptVideoError, DecodeError, FrameIndexError, InvalidArgumentError
from ..registry import Registry
from ._convert import DEFAULT_INTERPOLATION, Size, check_crop, check_interpolation, output_size
from ._decord import DecordBackend
from ._probe import check_built_for, check_path, check_stream
from ._pyav import PyAVBackend
from ._types import FrameBatch, PacketTable, VideoMetadata

__all__ = ["VideoReader", "available_backends", "register_backend"]

logger = logging.getLogger(__name__)

Mode = Literal["exact", "keyframe"]
OnMissing = Literal["raise", "skip"]

#: Decode backends by name: ``factory(path, *, stream, threads, interpolation)`` (plus
#: ``workers`` where the factory takes it).
BACKENDS: Registry[Callable[..., Any]] = Registry("backend")


def register_backend(name: str, factory: Callable[..., Any], *, overwrite: bool = False
                     ) -> None:
    """Register a decode backend ``factory(path, *, stream, threads, interpolation)``; a
    factory that also takes a ``workers`` keyword (or ``**kwargs``) is given the reader's.

    The object it returns must offer the attributes and methods of
    :class:`vidsel.io._pyav.PyAVBackend` (``table``, ``decode_exact``, ``decode_keyframes``...).

    Raises:
        InvalidArgumentError: ``name`` is already registered and ``overwrite`` is False.
    """
    BACKENDS.register(name, factory, overwrite=overwrite)


def available_backends() -> tuple[str, ...]:
    """Names of the registered backends, sorted (whether or not their optional package is
    installed)."""
    return BACKENDS.names()


def _takes(factory: Callable[..., Any], option: str) -> bool:
    """Whether a backend factory accepts the keyword ``option`` (``workers``, ``crop``: older
    third-party ones do not). Cached: reading a signature costs more than some opens."""
    try:
        return _takes_cached(factory, option)
    except TypeError:  # an unhashable callable object
        return _signature_takes(factory, option)


def _signature_takes(factory: Callable[..., Any], option: str) -> bool:
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return any(p.name == option or p.kind is p.VAR_KEYWORD for p in params)


_takes_cached = functools.lru_cache(maxsize=256)(_signature_takes)


register_backend("pyav", PyAVBackend)
register_backend("decord", DecordBackend)


class VideoReader:
    """Exact, fast frame access to one video stream.

    Frame ``i`` always means the i-th frame in presentation order, exactly what a full
    sequential decode yields; rotation metadata is applied; frames are uint8 RGB.

    Args:
        path: the video file.
        backend: ``"pyav"`` (default) or ``"decord"`` (optional extra), or any registered name.
        stream: video stream to read, counting video streams only (None: the default stream).
        threads: decoder threads (0: let FFmpeg choose; with parallel stretches, the usable
            CPUs are shared out among the decoders running at once).
        workers: exact-mode stretches (a keyframe to the last frame wanted before the next
            one) decoded in parallel, each by its own demuxer and decoder in a thread; None
            (default): one per usable CPU, at most 16; 1: one after the other. The frames are
            the same whatever the number.
        interpolation: swscale interpolation for resizing (one of
            :data:`vidsel.io.INTERPOLATIONS`: ``"BILINEAR"``, ``"AREA"``, ``"BICUBIC"``...).
        crop: (top, bottom, left, right) displayed pixels cut off every picture before any
            resize (black bars, see :func:`vidsel.io.detect_borders`); frames then have the
            size of what is left (or ``size`` of it). None: the whole picture. PyAV backend
            only. Metadata keeps the source's size.
        table: the stream's :class:`PacketTable` (or :class:`~vidsel.io.PacketIndex`) when the
            caller has built it for this file already: the demux pass that indexes the
            packets is then not repeated (backends that take it; a table of another stream is
            not used).

    Raises:
        InvalidArgumentError: ``path`` is not a str / os.PathLike, or another argument is out
            of range (an unknown ``backend`` or ``interpolation``, a ``stream`` that is not an
            int >= 0).
        VideoNotFoundError: the file does not exist.
        NotAVideoError: the file is empty or not a video container.
        NoVideoStreamError: no video stream (e.g. an audio-only file) or no such stream.
        UnsupportedCodecError: no decoder for the stream's codec.
        CorruptVideoError: the header is damaged or no frame at all can be decoded.

    Example:
        >>> with VideoReader("clip.mp4") as r:                          # doctest: +SKIP
        ...     frames = r.get_frames([0, 10, 10, 5], size=224)  # (4, 224, W, 3), order kept
        ...     batch = r.sample_uniform(8)                      # FrameBatch with timestamps
    """

    def __init__(self, path: str | os.PathLike[str], *, backend: str = "pyav",
                 stream: int | None = None, threads: int = 0,
                 interpolation: str = DEFAULT_INTERPOLATION, workers: int | None = None,
                 crop: tuple[int, int, int, int] | None = None,
                 table: PacketTable | None = None) -> None:
        factory = BACKENDS.get(backend)
        crop = check_crop(crop)
        threads = check_positive_int("threads", threads, allow_zero=True)
        if workers is not None:
            workers = check_positive_int("workers", workers)
        interpolation = check_interpolation(interpolation)
        check_stream(stream)
        self.path = check_path(path)
        self._interpolation = interpolation
        self._closed = False
        extra: dict[str, Any] = {"workers": workers} if _takes(factory, "workers") else {}
        self._crop = crop if crop is not None and any(crop) else None
        if self._crop is not None:  # pictures are cut to the crop before any resize
            if not _takes(factory, "crop"):
                raise InvalidArgumentError(
                    f"crop={crop!r}: backend {backend!r} cannot crop; use backend='pyav'")
            extra["crop"] = self._crop
        if table is not None:
            if not isinstance(table, PacketTable):
                raise InvalidArgumentError(
                    f"table= must be a PacketTable, got {type(table).__name__}")
            check_built_for(table, self.path, "table")
            if _takes(factory, "table"):
                extra["table"] = table
        self._backend = factory(self.path, stream=stream, threads=threads,
                                interpolation=interpolation, **extra)
        self.backend = backend
        self._metadata = self._build_metadata()
        if self._crop is not None:
            t, b, lft, r = self._crop
            md = self._metadata
            if t + b >= md.display_height or lft + r >= md.display_width:
                self._backend.close()
                raise InvalidArgumentError(
                    f"crop={crop!r} leaves nothing of the {md.display_width}x"
                    f"{md.display_height} picture")

    # -- metadata ------------------------------------------------------------------------------
    def _build_metadata(self) -> VideoMetadata:
        b = self._backend
        table: PacketTable = b.table
        ts = table.timestamps_s
        n = len(ts)
        diffs = np.diff(ts)
        if n > 1 and ts[-1] > ts[0]:
            fps = (n - 1) / float(ts[-1] - ts[0])
            last_dur = float(np.median(diffs))
        else:
            rate = b._stream.average_rate or b._stream.guessed_rate
            fps = float(rate) if rate else 0.0
            last_dur = 1.0 / fps if fps else 0.0
        vfr = bool(n > 2 and np.ptp(diffs) > 0.01 * float(np.median(diffs)))
        h, w = b.display_size
        sar = float(getattr(b, "display_sample_aspect_ratio", 1) or 1)
        if table.truncated:
            logger.warning("%s: the file is truncated; %d frames are readable (header: %d)",
                           self.path, n, b.header_num_frames)
        return VideoMetadata(
            path=self.path, backend=self.backend, stream_index=table.stream_index,
            codec=table.codec, pix_fmt=b.pix_fmt, width=w, height=h,
            coded_width=b.coded_width, coded_height=b.coded_height, rotation=b.rotation,
            mirrored=b.mirrored, num_frames=n, fps=fps,
            duration_s=float(ts[-1] - ts[0]) + last_dur, start_time_s=float(ts[0]),
            keyframe_indices=table.keyframe_indices, timestamps_s=ts.copy(),
            header_num_frames=b.header_num_frames, truncated=table.truncated,
            variable_frame_rate=vfr, sample_aspect_ratio=sar)

    @property
    def metadata(self) -> VideoMetadata:
        """:class:`VideoMetadata` of the stream (computed once, from packets)."""
        return self._metadata

    @property
    def interpolation(self) -> str:
        """The swscale interpolation used when resizing (read-only)."""
        return self._interpolation

    @property
    def packet_table(self) -> PacketTable:
        """The per-frame :class:`PacketTable` (sizes, keyframe flags, decode order)."""
        return self._backend.table  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return self._metadata.num_frames

    # -- validation ----------------------------------------------------------------------------
    def _indices(self, indices: Sequence[int] | np.ndarray | int) -> np.ndarray:
        try:
            arr = np.asarray(indices)
        except (TypeError, ValueError):  # ragged nested lists
            raise InvalidArgumentError(
                f"indices={indices!r} must be integers (a 1-D sequence or array)") from None
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1:
            raise InvalidArgumentError(f"indices must be 1-D, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
                arr = arr.astype(np.int64)
            else:
                raise InvalidArgumentError(f"indices must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        n = self._metadata.num_frames
        bad = arr[(arr < -n) | (arr >= n)]
        if bad.size:
            raise FrameIndexError(
                f"{self.path}: frame index {int(bad[0])} out of range for a video of {n} frames "
                f"(valid: 0..{n - 1}, or negative from the end)")
        return np.where(arr < 0, arr + n, arr)

    # -- decoding ------------------------------------------------------------------------------
    def decode(self, indices: Sequence[int] | np.ndarray | int, *, size: Size = None,
               mode: Mode = "exact", on_missing: OnMissing = "raise") -> FrameBatch:
        """Decode frames by presentation index.

        Args:
            indices: frame indices in any order, duplicates allowed, negative from the end.
            size: None (the stored pixels, unscaled: ``metadata.width`` x ``height``), the
                short side (int; the other side follows the DISPLAY aspect, so non-square
                pixels, ``metadata.sample_aspect_ratio != 1``, come back square) or
                (height, width) of the output, taken as is.
            mode: ``"exact"`` returns exactly the frames asked for. ``"keyframe"`` snaps each
                request to the nearest keyframe and decodes keyframes only (6-16x cheaper in
                ``benchmarks/decode.py``; requests sharing a keyframe get it each); the
                batch's ``indices``/``timestamps_s`` report what was really returned. Where
                the timestamps are unreliable the keyframes are decoded exactly (no cheaper).
            on_missing: frames that cannot be decoded (damaged data) raise
                :class:`CorruptVideoError` (``"raise"``, default; its ``missing`` lists them) or
                are left out of the batch and listed in ``batch.missing`` (``"skip"``).

        Returns:
            :class:`FrameBatch` with frames (N, H, W, 3) uint8 in the requested order.
        """
        check_choice("mode", mode, ("exact", "keyframe"))
        check_choice("on_missing", on_missing, ("raise", "skip"))
        self._check_open()
        req = self._indices(indices)
        md = self._metadata
        # An int size keeps the display aspect (non-square pixels are stretched to it); a
        # (h, w) pair is taken as is; None returns the stored pixels unscaled.
        out_hw = ((md.height, md.width) if size is None
                  else output_size(size, md.display_height, md.display_width))
        if self._crop is not None:  # the picture left after the crop (rows, columns)
            t, b, lft, r = self._crop
            ah, aw = md.height - t - b, md.width - lft - r
            out_hw = ((ah, aw) if size is None else output_size(
                size, round(ah * md.display_height / md.height),
                round(aw * md.display_width / md.width)))
        if mode == "keyframe":
            keys = md.keyframe_indices if len(md.keyframe_indices) else np.zeros(1, np.int64)
            pos = np.searchsorted(keys, req)
            lo = keys[np.clip(pos - 1, 0, len(keys) - 1)]
            hi = keys[np.clip(pos, 0, len(keys) - 1)]
            actual = np.where(np.abs(req - lo) <= np.abs(hi - req), lo, hi).astype(np.int64)
        else:
            actual = req
        unique = np.unique(actual)
        # each picture is copied into its slot as it is converted: one allocation for the
        # batch (large enough for huge pages), the decoder's RGB buffer released at once
        out = np.empty((len(unique), out_hw[0], out_hw[1], 3), np.uint8)
        have = np.zeros(len(unique), bool)
        slot_of = {int(f): k for k, f in enumerate(unique.tolist())}
        shape = out.shape[1:]

        def sink(i: int, arr: np.ndarray) -> None:
            k = slot_of.get(i)
            if k is None or arr.shape != shape:
                raise DecodeError(f"{self.path}: internal error: the decoder handed frame {i} "
                                  f"of shape {arr.shape}, not one of {shape} asked for")
            out[k] = arr
            have[k] = True

        if mode == "keyframe" and self.packet_table.pts_reliable:  # else no pts to seek by
            missing = self._backend.decode_keyframes(unique, out_hw, sink)
        else:
            missing = self._backend.decode_exact(unique, out_hw, sink)
        missing = sorted(set(int(m) for m in missing) | set(unique[~have].tolist()))
        if missing and on_missing == "raise":
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise CorruptVideoError(
                f"{self.path}: {len(missing)} frame(s) of video stream {md.stream_index} "
                f"({md.codec}) could not be decoded (damaged data): {shown}",
                path=self.path, missing=tuple(missing))
        slots = np.searchsorted(unique, actual)
        keep = np.isin(actual, np.asarray(missing, np.int64), invert=True)
        kept = actual[keep]
        if len(kept) == len(unique) and np.array_equal(kept, unique):
            frames = out  # sorted unique requests, all decoded: the batch itself
        else:
            frames = out[slots[keep]]
        return FrameBatch(frames=frames, indices=kept,
                          timestamps_s=md.timestamps_s[kept] if len(kept) else np.zeros(0),
                          missing=tuple(missing), requested=req[keep])

    def get_frames(self, indices: Sequence[int] | np.ndarray | int, *, size: Size = None,
                   mode: Mode = "exact") -> np.ndarray:
        """Frames by index as a (N, H, W, 3) uint8 RGB array, in the order asked.

        See :meth:`decode` for the arguments; damaged frames raise :class:`CorruptVideoError`.
        """
        return self.decode(indices, size=size, mode=mode).frames

    def index_at(self, seconds: Sequence[float] | np.ndarray | float) -> np.ndarray:
        """Index of the frame displayed at each time (stream timeline, seconds).

        A frame is displayed from its timestamp until the next frame's. Times before the first
        frame or after the end of the last frame raise :class:`FrameIndexError`.
        """
        try:
            t = np.atleast_1d(np.asarray(seconds, dtype=np.float64))
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"seconds={seconds!r} must be numbers (a float or a 1-D sequence of floats)"
            ) from None
        if t.ndim != 1:
            raise InvalidArgumentError(f"seconds must be 1-D, got shape {t.shape}")
        md = self._metadata
        if not np.all(np.isfinite(t)):
            raise InvalidArgumentError(f"seconds must be finite, got {t[~np.isfinite(t)][:3]}")
        eps = 1e-6
        end = md.start_time_s + md.duration_s
        bad = t[(t < md.start_time_s - eps) | (t >= end + eps)]
        if bad.size:
            raise FrameIndexError(
                f"{self.path}: time {float(bad[0]):.6g} s is outside the video "
                f"[{md.start_time_s:.6g}, {end:.6g}) s")
        idx = np.searchsorted(md.timestamps_s, t + eps, side="right") - 1
        return np.clip(idx, 0, md.num_frames - 1).astype(np.int64)

    def get_frames_at(self, seconds: Sequence[float] | np.ndarray | float, *,
                      size: Size = None) -> FrameBatch:
        """The frames displayed at the given times, with their exact timestamps."""
        return self.decode(self.index_at(seconds), size=size)

    def uniform_indices(self, n: int) -> np.ndarray:
        """``n`` indices spread evenly from the first to the last frame (at most one per frame)."""
        n = check_positive_int("n", n)
        total = self._metadata.num_frames
        if n > total:
            logger.warning("%s: %d frames requested from a %d-frame video; returning all",
                           self.path, n, total)
            n = total
        return np.unique(np.round(np.linspace(0, total - 1, n)).astype(np.int64))

    def sample_uniform(self, n: int, *, size: Size = None, mode: Mode = "exact") -> FrameBatch:
        """Decode ``n`` frames spread evenly over the video (first and last included)."""
        return self.decode(self.uniform_indices(n), size=size, mode=mode)

    def fps_indices(self, fps: float) -> np.ndarray:
        """Indices of the frames displayed at times ``start + k / fps`` (unique, sorted)."""
        fps = check_positive_float("fps", fps)
        md = self._metadata
        limit = 10_000_000  # sample times; checked before the grid is allocated
        if md.duration_s * fps > limit:
            raise InvalidArgumentError(
                f"fps={fps!r} asks for {int(np.ceil(md.duration_s * fps))} sample times over "
                f"this {md.duration_s:.4g} s video; at most {limit} are allowed: use "
                f"0 < fps <= {limit / md.duration_s:.6g} (the video itself has {md.fps:.4g} "
                f"fps, and a higher fps only repeats frames; fps=None / 'all' gives every frame)")
        grid = md.start_time_s + np.arange(0.0, md.duration_s, 1.0 / fps)
        return np.unique(self.index_at(grid[grid < md.start_time_s + md.duration_s]))

    def iter_frames(self, *, fps: float | None = None, size: Size = None,
                    batch_size: int = 32, on_missing: OnMissing = "raise") -> Iterator[FrameBatch]:
        """Stream frames in order, ``batch_size`` at a time (memory stays bounded).

        Args:
            fps: sample the frames displayed at ``start + k / fps``; None yields every frame.
            size: output size (see :meth:`decode`).
            batch_size: frames per yielded :class:`FrameBatch`.
            on_missing: see :meth:`decode`.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        idx = (np.arange(self._metadata.num_frames, dtype=np.int64) if fps is None
               else self.fps_indices(fps))
        for start in range(0, len(idx), batch_size):
            yield self.decode(idx[start:start + batch_size], size=size, on_missing=on_missing)

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Release the decoder and the file (idempotent). Metadata stays readable; decoding
        afterwards raises :class:`~vidsel.DecodeError`."""
        if not self._closed:
            self._closed = True
            self._backend.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise DecodeError(f"{self.path}: this VideoReader is closed; open a new one to read "
                              "frames from the file")

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        md = self._metadata
        return (f"VideoReader({self.path!r}, backend={self.backend!r}, {md.codec} "
                f"{md.width}x{md.height}, {md.num_frames} frames)")
