"""Reference mode: lmms-video-utils' codec tokenisation, reproduced exactly, faster.

:func:`lmms_codec_video` returns what ``lmms_video_utils.fetch_codec_video(path, ...)``
(lmms-video-utils 0.1.0, LMMs-Lab's re-implementation of LLaVA-OneVision-2's codec frontend)
returns for the same arguments, as numpy arrays: ``target_canvas / images_per_group * group_size``
frames sampled uniformly (``linspace(0, n - 1, k).round()``), resized to a canvas of about
``max_pixels`` pixels at the video's aspect ratio (torch bilinear, reproduced bit for bit by
:mod:`._lmms_ops`), split into ``target_canvas / images_per_group`` uniform groups, each packed
into one I-canvas (its first frame) and P-canvases of the blocks with the largest
frame-difference energy (``score_mode="framediff"``, ``gop_mode="uniform"``: its defaults), or
the largest motion-compensated residual (``score_mode="mvwarp"``, :mod:`._lmms_motion`).

Why it is faster: lmms-video-utils converts *every* frame of the video to full-size RGB and
keeps them all in memory before sampling; here only the sampled frames are converted (one
decode pass through :func:`vidsel.io.decode_stream`, the other pictures decoded but never
converted), and each group is scored and packed as soon as its frames are in.

Output layout (:class:`LmmsCodecOutput`, the fields of lmms-video-utils' ``CodecVideoOutput``)::

    canvases         (N, 3, H, W) uint8   N = n_groups_with_frames * images_per_group
    patch_positions  (N * H/p * W/p, 3)   int64 (t, h, w) per patch cell, canvas-major then
                                          row-major over the canvas's patch grid; t = source
                                          frame index, -1 for empty cells
    gop_ids          (N,) int64           group of each canvas
    source_pts       (N,) float32         seconds of the group's first frame
    fps              float                the stream's average rate
    n_groups         int                  groups formed (a group of one frame has no canvas)

``mvwarp`` is exact given the same decoder output, but lmms-video-utils' own metadata pass is
not repeatable: its FFmpeg frame threads sometimes drop or mismatch the motion side data of a
few frames (4-6 of 120-150 in one test), so two of its own calls can differ. vidsel takes the
vectors from a single-threaded pass (what lmms-video-utils gets when its threads do not race)
and the packet sizes from a frame-threaded one (as lmms-video-utils attributes them), so its
output is repeatable and equal to lmms-video-utils' runs without a race.

Not reproduced: ``score_mode="mvwarp_edge"``, ``bitcost_score_mode="multiplicative"`` and
``gop_mode="bitcost"``, the torchcodec backend and CUDA tensors (``device="cuda"`` resizes on
the GPU with other roundings: compare with ``device="cpu"``), torch's single-thread resize
kernel (``torch.set_num_threads(1)``), and rotated videos with ``"framediff"`` (vidsel applies
the display matrix; lmms-video-utils returns coded pixels).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validate import check_choice, check_positive_float, check_positive_int
from ..errors import CorruptVideoError, InvalidArgumentError, UnsupportedRequestError
from ..io import VideoReader, decode_stream, open_container, packet_table, usable_cpus
from ..optional import require
from ..results import PatchConfig, PatchSelection
from ._lmms_motion import dense_field, mvwarp_scores, resize_field, scan_meta
from ._lmms_ops import BilinearResize, luma
from ._lmms_pack import canvas_grid, framediff_scores, pack_group, uniform_groups

__all__ = ["LMMS_SCORE_MODES", "LmmsCodecConfig", "LmmsCodecOutput", "lmms_codec_video",
           "lmms_method", "register"]

logger = logging.getLogger(__name__)

#: Threads resizing sampled frames (numpy releases the GIL).
_MAX_WORKERS = 4
#: Pictures decoded ahead of the resize on the decode thread.
_PREFETCH = 4
#: Scorers reproduced (lmms-video-utils also has "mvwarp_edge").
LMMS_SCORE_MODES = ("framediff", "mvwarp")
#: How packet sizes weigh mvwarp scores (lmms-video-utils also has "multiplicative").
LMMS_BITCOST_MODES = ("additive", "off")


@dataclass(frozen=True)
class LmmsCodecConfig:
    """lmms-video-utils' ``CodecConfig`` fields that the reference mode honours (same names,
    same defaults). See :func:`lmms_codec_video`."""

    target_canvas: int = 32
    group_size: int = 32
    images_per_group: int = 4
    patch: int = 14
    block: int = 2
    max_pixels: int = 150_000
    min_group_frames: int = 8
    max_group_frames: int = 64
    score_mode: str = "framediff"
    bitcost_score_weight: float = 0.5
    bitcost_score_mode: str = "additive"
    start_time: float | None = None
    end_time: float | None = None
    target_fps: float | None = None
    max_frames: int | None = None

    def __post_init__(self) -> None:
        for name in ("target_canvas", "group_size", "images_per_group", "patch", "block",
                     "max_pixels", "min_group_frames", "max_group_frames"):
            check_positive_int(name, getattr(self, name))
        if self.target_canvas % self.images_per_group:
            raise InvalidArgumentError(
                f"target_canvas={self.target_canvas} must be divisible by "
                f"images_per_group={self.images_per_group}")
        if self.group_size % self.images_per_group:
            raise InvalidArgumentError(
                f"group_size={self.group_size} must be divisible by "
                f"images_per_group={self.images_per_group}")
        if self.min_group_frames > self.max_group_frames:
            raise InvalidArgumentError(
                f"min_group_frames={self.min_group_frames} must be <= "
                f"max_group_frames={self.max_group_frames}")
        check_choice("score_mode", self.score_mode, LMMS_SCORE_MODES)
        check_choice("bitcost_score_mode", self.bitcost_score_mode, LMMS_BITCOST_MODES)
        check_positive_float("bitcost_score_weight", self.bitcost_score_weight, allow_zero=True)
        for name in ("start_time", "end_time", "target_fps"):
            if getattr(self, name) is not None:
                check_positive_float(name, getattr(self, name), allow_zero=True)
        if self.max_frames is not None:
            check_positive_int("max_frames", self.max_frames, allow_zero=True)
        if (self.start_time is not None and self.end_time is not None
                and self.start_time >= self.end_time):
            raise InvalidArgumentError(
                f"start_time={self.start_time} must be < end_time={self.end_time}")

    @property
    def n_groups(self) -> int:
        return self.target_canvas // self.images_per_group

    def num_sampled_frames(self, duration_s: float | None) -> int:
        """Frames to sample (lmms-video-utils' ``num_sampled_frames``): ``n_groups *
        group_size``, or ``duration * target_fps``; capped by ``max_frames``, rounded down to a
        multiple of ``group_size``, at least ``group_size``."""
        if self.target_fps:
            end = self.end_time if self.end_time is not None else duration_s
            if end is None:
                raise InvalidArgumentError("target_fps needs end_time or a known duration")
            n = round(max(0.0, float(end) - float(self.start_time or 0.0))
                      * float(self.target_fps))
        else:
            n = self.n_groups * self.group_size
        if self.max_frames is not None:
            n = min(n, self.max_frames)
        return max((n // self.group_size) * self.group_size, self.group_size)


@dataclass(frozen=True, repr=False)
class LmmsCodecOutput:
    """lmms-video-utils' ``CodecVideoOutput`` as numpy arrays (see the module doc), plus what
    a :class:`~vidsel.results.PatchSelection` view needs.

    Attributes:
        canvases: (N, 3, H, W) uint8.
        patch_positions: (N * H/patch * W/patch, 3) int64.
        gop_ids: (N,) int64.
        source_pts: (N,) float32 seconds.
        fps: the stream's average frame rate.
        n_groups: groups formed.
        path: the video file.
        config: the configuration used.
        sampled_frames: (S,) int64 source frames sampled.
        sampled_pts: (S,) float64 their timestamps, seconds.
        num_frames: frames in the video.
        cell_scores: (N * H/patch * W/patch,) float32 frame-difference energy of each P-canvas
            cell's block (NaN for I-canvas and empty cells).
        tie_ambiguous: P-canvases where equal non-zero block scores of one frame straddle the
            pick boundary (the one case where torch's unstable sort may pick otherwise).
        timings_s: seconds per stage (``index``, ``decode``, ``pack``, ``total``).
    """

    canvases: np.ndarray
    patch_positions: np.ndarray
    gop_ids: np.ndarray
    source_pts: np.ndarray
    fps: float
    n_groups: int
    path: str = ""
    config: LmmsCodecConfig = field(default_factory=LmmsCodecConfig)
    sampled_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sampled_pts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    num_frames: int = 0
    cell_scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    tie_ambiguous: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The six ``CodecVideoOutput`` fields by name (numpy arrays)."""
        return {"canvases": self.canvases, "patch_positions": self.patch_positions,
                "gop_ids": self.gop_ids, "source_pts": self.source_pts, "fps": self.fps,
                "n_groups": self.n_groups}

    def to_torch(self) -> dict[str, Any]:
        """The six fields with torch tensors, as ``lmms_video_utils.CodecVideoOutput.as_dict()``
        gives them (needs torch; ``vidsel.qwen.CodecVideoOutput(**out.to_torch())`` makes the
        dataclass)."""
        torch = require("torch", "LmmsCodecOutput.to_torch", extra="embed")
        d = self.as_dict()
        for k in ("canvases", "patch_positions", "gop_ids", "source_pts"):
            d[k] = torch.from_numpy(np.array(d[k]))
        return d

    def patch_selection(self) -> PatchSelection:
        """The used cells as a :class:`~vidsel.results.PatchSelection` (``method =
        "codec-lmms"``): token-major rows (each ``block x block`` block's patches consecutive),
        frame size = the canvas size, I-canvas patches flagged ``is_anchor``."""
        cfg = self.config
        n, _, h, w = self.canvases.shape
        p, b = cfg.patch, cfg.block
        gh, gw = h // p, w // p
        # (N, gh, gw, 3) -> token-major (N, gh/b, gw/b, b, b, 3)
        pos = self.patch_positions.reshape(n, gh // b, b, gw // b, b, 3).transpose(0, 1, 3, 2, 4, 5)
        sc = self.cell_scores.reshape(n, gh // b, b, gw // b, b).transpose(0, 1, 3, 2, 4)
        px = self.canvases.transpose(0, 2, 3, 1).reshape(n, gh // b, b, p, gw // b, b, p, 3)
        px = px.transpose(0, 1, 4, 2, 5, 3, 6, 7)  # (N, gh/b, gw/b, b, b, p, p, 3)
        anchor = np.zeros((n, gh // b, gw // b, b, b), bool)
        anchor[:: cfg.images_per_group] = True
        keep = pos[..., 0].reshape(-1) >= 0
        positions = pos.reshape(-1, 3)[keep]
        ts_of = dict(zip(self.sampled_frames.tolist(), self.sampled_pts.tolist()))
        ts = np.array([ts_of[int(f)] for f in positions[:, 0]], np.float64)
        anchors = np.unique(positions[anchor.reshape(-1)[keep], 0])
        return PatchSelection(
            path=self.path, method="codec-lmms",
            config=PatchConfig(patch_size=p, merge=b, frame_size=(h, w)),
            positions=positions, timestamps_s=ts, is_anchor=anchor.reshape(-1)[keep],
            scores=sc.reshape(-1)[keep], pixels=px.reshape(-1, p, p, 3)[keep],
            anchor_frames=anchors, candidate_frames=self.sampled_frames,
            cut_frames=np.zeros(0, np.int64), budget_tokens=n * (gh // b) * (gw // b),
            num_frames=self.num_frames,
            duration_s=float(self.sampled_pts[-1] - self.sampled_pts[0]) if len(
                self.sampled_pts) else 0.0,
            signal="pixel_diff", fallback=False, timings_s=dict(self.timings_s),
            params={"reference": "lmms-video-utils 0.1.0", "score_mode": cfg.score_mode,
                    "target_canvas": cfg.target_canvas, "max_pixels": cfg.max_pixels})

    def __repr__(self) -> str:
        return (f"LmmsCodecOutput(canvases={list(self.canvases.shape)}, "
                f"patch_positions={list(self.patch_positions.shape)}, fps={self.fps:g}, "
                f"n_groups={self.n_groups})")


def lmms_codec_video(path: str | os.PathLike[str], *, target_canvas: int = 32,
                     group_size: int = 32, images_per_group: int = 4, patch: int = 14,
                     block: int = 2, max_pixels: int = 150_000, min_group_frames: int = 8,
                     max_group_frames: int = 64, score_mode: str = "framediff",
                     bitcost_score_weight: float = 0.5, bitcost_score_mode: str = "additive",
                     start_time: float | None = None, end_time: float | None = None,
                     target_fps: float | None = None, max_frames: int | None = None
                     ) -> LmmsCodecOutput:
    """lmms-video-utils' ``fetch_codec_video(path, **same_arguments)``, reproduced exactly.

    Args:
        path: the video file (its first video stream is used, as lmms-video-utils does).
        target_canvas: canvases wanted; a multiple of ``images_per_group``.
        group_size: sampled frames per group (``target_canvas / images_per_group`` groups).
        images_per_group: canvases per group: one I-canvas + ``images_per_group - 1`` P.
        patch, block: patch side in pixels; patches per block side (2 = 2 x 2 blocks, one
            merged LLM token each).
        max_pixels: canvas area budget (the canvas keeps the video's aspect ratio).
        min_group_frames, max_group_frames: group length bounds (uniform groups are clamped
            to ``max_group_frames``).
        score_mode: ``"framediff"`` (luma difference of consecutive sampled frames, the
            default) or ``"mvwarp"`` (residual after warping the previous sampled frame by the
            frame's codec motion vectors, weighted by packet size).
        bitcost_score_weight, bitcost_score_mode: the packet-size weight of ``"mvwarp"``
            scores: ``"additive"`` (``score * (1 + weight * normalised size)``) or ``"off"``.
        start_time, end_time: sample only from this time range (seconds, frame = round(t*fps)).
        target_fps: sample ``duration * target_fps`` frames instead.
        max_frames: cap on sampled frames.

    Returns:
        :class:`LmmsCodecOutput` (``.as_dict()``, ``.to_torch()``, ``.patch_selection()``).

    Raises:
        InvalidArgumentError: an argument lmms-video-utils would refuse, or a time range that
            holds no frame.
        UnsupportedRequestError: the video is too short to form one canvas group.
        VidselError subclasses from reading the video (missing, not a video, damaged).
    """
    cfg = LmmsCodecConfig(
        target_canvas=target_canvas, group_size=group_size, images_per_group=images_per_group,
        patch=patch, block=block, max_pixels=max_pixels, min_group_frames=min_group_frames,
        max_group_frames=max_group_frames, score_mode=score_mode,
        bitcost_score_weight=bitcost_score_weight, bitcost_score_mode=bitcost_score_mode,
        start_time=start_time,
        end_time=end_time, target_fps=target_fps, max_frames=max_frames)
    return _run(os.fspath(path) if isinstance(path, (str, os.PathLike)) else path, cfg)


def _run(path: Any, cfg: LmmsCodecConfig) -> LmmsCodecOutput:
    if not isinstance(path, str):
        raise InvalidArgumentError(f"path={path!r} must be a video file path")
    t0 = time.perf_counter()
    table = packet_table(path, stream=0)
    fps, duration = _stream_rate(path, table.stream_index)
    total = len(table)
    pts = table.timestamps_s  # (F,) s
    idx = _sample(cfg, total, fps, float(pts[-1]) + (1.0 / fps if fps > 0 else 0.0),
                  cfg.num_sampled_frames(duration), path)  # (S,) int64
    groups = uniform_groups(len(idx), cfg.n_groups, cfg.max_group_frames)
    t_index = time.perf_counter()
    if cfg.score_mode == "mvwarp":
        out = _scan_and_pack(table, cfg, idx, groups)
    else:
        out = _decode_and_pack(table, cfg, idx, groups)
    t_pack = time.perf_counter()
    acc, t_decode = out
    canvases, positions, scores = acc.canvases, acc.positions, acc.scores
    ambiguous = acc.ambiguous
    if not len(canvases):
        raise UnsupportedRequestError(f"{path}: no canvases produced; video too short "
                                      f"({total} frames)")
    if ambiguous:
        logger.info("%s: %d P-canvases have equal non-zero block scores straddling the pick "
                    "boundary; torch's unstable sort may order those ties otherwise", path,
                    ambiguous)
    return LmmsCodecOutput(
        canvases=np.ascontiguousarray(np.stack(canvases).transpose(0, 3, 1, 2)),
        patch_positions=np.concatenate(positions).astype(np.int64),
        gop_ids=np.asarray(acc.gop_ids, np.int64),
        source_pts=np.asarray([pts[idx[s]] for s in acc.src], np.float32),
        fps=float(fps), n_groups=len(groups), path=path, config=cfg, sampled_frames=idx,
        sampled_pts=pts[idx], num_frames=total, cell_scores=np.concatenate(scores),
        tie_ambiguous=ambiguous,
        timings_s={"index": t_index - t0, "decode": t_decode,
                   "pack": t_pack - t_index - t_decode, "total": t_pack - t0})


def _stream_rate(path: str, stream_index: int) -> tuple[float, float | None]:
    """(average rate or 30, container duration in seconds or None), as lmms-video-utils
    reads them."""
    with open_container(path) as container:
        stream = container.streams[stream_index]
        rate = stream.average_rate or stream.base_rate
        fps = float(rate) if rate else 30.0
        if container.duration is not None:
            return fps, float(container.duration) / 1_000_000.0
        if stream.duration is not None and stream.time_base is not None:
            return fps, float(stream.duration * stream.time_base)
    return fps, None


def _sample(cfg: LmmsCodecConfig, total: int, fps: float, duration: float, n: int,
            path: str) -> np.ndarray:
    """(S,) int64 frames lmms-video-utils' ``decode_uniform`` picks."""
    if cfg.start_time is not None and cfg.start_time >= duration:
        raise InvalidArgumentError(
            f"{path}: start_time={cfg.start_time} past the end of the video "
            f"(duration={duration:.3f}s)")
    s = max(0, round(cfg.start_time * fps)) if cfg.start_time is not None else 0
    e = min(total, round(cfg.end_time * fps)) if cfg.end_time is not None else total
    if e <= s:
        raise InvalidArgumentError(f"{path}: start_time={cfg.start_time}, "
                                   f"end_time={cfg.end_time} select no frame at {fps:g} fps")
    if n >= e - s:
        return np.arange(s, e, dtype=np.int64)
    return np.linspace(s, e - 1, n).round().astype(np.int64)  # type: ignore[no-any-return]


def _decode_and_pack(table: Any, cfg: LmmsCodecConfig, idx: np.ndarray,
                     groups: list[tuple[int, int]]) -> tuple[_Acc, float]:
    """One decode pass converting only the sampled frames; each group packed when complete."""
    acc = _Acc()
    used = idx[: groups[-1][1]] if groups else idx[:0]
    keep = np.zeros(len(table), bool)
    keep[used] = True
    resize: BilinearResize | None = None
    grid = (0, 0)
    pending: list[Future[tuple[np.ndarray, np.ndarray]]] = []
    g = 0
    t_decode = 0.0
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="vidsel-lmms") as pool:
        # decoding runs ahead on a worker thread (FFmpeg releases the GIL), the resizes on the
        # pool (numpy releases it too), the packing here
        for sf in decode_stream(table, keep=keep, threads=0, prefetch=_PREFETCH):
            if resize is None:
                h, w = sf.converter.display_size(sf.coded_size)
                grid = canvas_grid(cfg.max_pixels, cfg.patch * cfg.block, h, w)
                bp = cfg.patch * cfg.block
                resize = BilinearResize((h, w), (grid[0] * bp, grid[1] * bp))
            pending.append(pool.submit(_prepare, resize, sf.rgb(resize.in_hw)))
            s, e = groups[g]
            if len(pending) < e - s:
                continue
            done = [f.result() for f in pending]  # (frame (H, W, 3) uint8, luma (H, W))
            pending = []
            t_decode += time.perf_counter() - t
            if e - s >= 2:
                frames = np.stack([d[0] for d in done])
                sc = framediff_scores(np.stack([d[1] for d in done]), cfg.patch * cfg.block)
                packed = pack_group(frames, sc, used[s:e], grid, cfg.block, cfg.patch,
                                    cfg.images_per_group)
                _collect(acc, packed, g, s)
            g += 1
            t = time.perf_counter()
            if g == len(groups):
                break
    if g < len(groups):
        raise CorruptVideoError(f"{table.path}: sampled frames missing after decoding "
                                f"(group {g} of {len(groups)} incomplete)", path=table.path)
    return acc, t_decode


@dataclass
class _Acc:
    """Canvases packed so far."""

    canvases: list[np.ndarray] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    gop_ids: list[int] = field(default_factory=list)
    src: list[int] = field(default_factory=list)
    ambiguous: int = 0


def _collect(acc: _Acc, packed: Any, g: int, s: int) -> None:
    acc.canvases.extend(packed.canvases)
    acc.positions.extend(packed.positions)
    acc.scores.extend(packed.scores)
    acc.gop_ids.extend([g] * len(packed.canvases))
    acc.src.extend([s] * len(packed.canvases))
    acc.ambiguous += packed.tie_ambiguous


def _scan_and_pack(table: Any, cfg: LmmsCodecConfig, idx: np.ndarray,
                   groups: list[tuple[int, int]]) -> tuple[_Acc, float]:
    """``score_mode="mvwarp"``: one metadata pass (pictures, vectors, packet sizes), then the
    groups."""
    t = time.perf_counter()
    used = idx[: groups[-1][1]] if groups else idx[:0]
    meta = scan_meta(table, used)
    h, w = meta.rgb.shape[1:3]
    grid = canvas_grid(cfg.max_pixels, cfg.patch * cfg.block, h, w)
    bp = cfg.patch * cfg.block
    out_hw = (grid[0] * bp, grid[1] * bp)
    resize = BilinearResize((h, w), out_hw)
    t_decode = time.perf_counter() - t
    acc = _Acc()
    bitcost = None if cfg.bitcost_score_mode == "off" else meta.packet_size

    def field(i: int) -> np.ndarray:
        return resize_field(dense_field(meta.motion[i], h, w), out_hw)

    with ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="vidsel-lmms") as pool:
        for g, (s, e) in enumerate(groups):
            if e - s < 2:
                continue
            frames = np.stack(list(pool.map(resize, meta.rgb[s:e])))  # (n, H, W, 3)
            fields = np.stack(list(pool.map(field, range(s, e))))  # (n, H, W, 2)
            sc = mvwarp_scores(frames, fields, None if bitcost is None else bitcost[s:e], bp,
                               cfg.bitcost_score_weight, mapper=pool.map)
            _collect(acc, pack_group(frames, sc, used[s:e], grid, cfg.block, cfg.patch,
                                     cfg.images_per_group), g, s)
    return acc, t_decode


def _prepare(resize: BilinearResize, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(resized (H, W, 3) uint8, its (H, W) float32 luma) of one sampled frame."""
    small = resize(rgb)
    return small, luma(small)


def _workers() -> int:
    """Resize threads: the cores this process may use, at most :data:`_MAX_WORKERS`."""
    return max(1, min(_MAX_WORKERS, usable_cpus()))


def lmms_method(path: str | VideoReader, *, question: str | None, budget: int,
                geometry: PatchConfig, max_pixels: int = 150_000, group_size: int = 32,
                images_per_group: int = 4, score_mode: str = "framediff",
                start_time: float | None = None, end_time: float | None = None
                ) -> PatchSelection:
    """Method-registry entry ``codec-lmms``: lmms-video-utils' canvases at ``budget`` canvases
    (``target_canvas = budget``, a multiple of ``images_per_group``), ``geometry``'s patch size
    and merge as ``patch`` / ``block``. The question is not used."""
    if isinstance(path, VideoReader):
        path = path.path
    if budget % images_per_group:
        raise InvalidArgumentError(
            f"budget={budget} must be a multiple of images_per_group={images_per_group} for "
            f"method 'codec-lmms' (one budget unit = one canvas)")
    return lmms_codec_video(path, target_canvas=budget, group_size=group_size,
                            images_per_group=images_per_group, patch=geometry.patch_size,
                            block=geometry.merge, max_pixels=max_pixels,
                            score_mode=score_mode, start_time=start_time,
                            end_time=end_time).patch_selection()


def register(register_method: Callable[..., Any]) -> None:
    """Register the ``codec-lmms`` method with ``register_method``
    (:func:`vidsel.methods.register_method`, passed in so that this module never imports the
    registry, which imports :mod:`vidsel.codec`); registering again replaces the entry."""
    register_method("codec-lmms", lmms_method, kind="patches", takes_reader=True,
                    overwrite=True,
                    description="lmms-video-utils' codec canvases (LLaVA-OneVision-2 "
                                "frontend) reproduced exactly: uniform groups, one I-canvas "
                                "+ frame-difference (or mvwarp) P-canvases per group")
