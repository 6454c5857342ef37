"""Synthetic videos with known content, encoded through :func:`vidsel.io.write_video`.

Used by the README demo, the test-suite and the benchmarks, so that nothing depends on
downloaded footage. Every scene is deterministic (seeded) and its ground truth is known:

- ``"moving_box"``: a bright box moves left-to-right over a static textured background.
- ``"scene_cut"``: two different static-ish scenes with a hard cut at ``cut_at`` (fraction),
  each with a small moving box.
- ``"pan"``: the whole textured background translates by ``pan_px`` pixels per frame (a camera
  pan) while a box moves against it.
- ``"counter"``: every frame carries its own index encoded as a coloured bar code, so tests can
  tell exactly which frame a decoder returned (robust to compression).
- ``"multi_scene"``: ``n_scenes`` scenes of equal length, each with a distinct background colour
  family and a moving object; the cut frames are returned in :class:`SynthInfo`.

Example:
    >>> from vidsel.synth import make_video
    >>> info = make_video("/tmp/box.mp4", scene="moving_box", num_frames=60)
    >>> info.num_frames, info.cut_frames
    (60, ())
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from ._validate import check_choice, check_positive_int
from .io import write_video

__all__ = ["SCENES", "SynthInfo", "box_position", "counter_code", "make_video", "render_frame"]

logger = logging.getLogger(__name__)

Scene = Literal["moving_box", "scene_cut", "pan", "counter", "multi_scene"]
SCENES: tuple[str, ...] = ("moving_box", "scene_cut", "pan", "counter", "multi_scene")

#: Number of bits of the frame-index code drawn by the ``counter`` scene.
COUNTER_BITS = 12


@dataclass(frozen=True)
class SynthInfo:
    """Ground truth of a generated video.

    Attributes:
        path: where the file was written.
        num_frames: frames encoded (presentation order).
        fps: nominal frame rate (for VFR videos, the mean rate).
        width, height: coded size (before any rotation metadata).
        codec: encoder name used.
        cut_frames: indices of the first frame of each new scene (hard cuts).
        box_size: side of the moving box in pixels.
        timestamps_s: presentation time of every frame in seconds.
        rotation: rotation metadata written (degrees, counter-clockwise display rotation).
    """

    path: str
    num_frames: int
    fps: float
    width: int
    height: int
    codec: str
    cut_frames: tuple[int, ...] = ()
    box_size: int = 0
    timestamps_s: tuple[float, ...] = field(default=(), repr=False)
    rotation: int = 0


def _texture(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth random texture (H, W, 3) uint8: low-frequency noise so encoders keep it stable."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 200, size=(max(2, height // 16 + 2), max(2, width // 16 + 2), 3))
    ys = np.linspace(0, small.shape[0] - 1.001, height)
    xs = np.linspace(0, small.shape[1] - 1.001, width)
    y0 = ys.astype(int)
    x0 = xs.astype(int)
    fy = (ys - y0)[:, None, None]
    fx = (xs - x0)[None, :, None]
    a = small[y0][:, x0]
    b = small[y0][:, x0 + 1]
    c = small[y0 + 1][:, x0]
    d = small[y0 + 1][:, x0 + 1]
    img = (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy
    return img.astype(np.uint8)


def box_position(i: int, num_frames: int, width: int, height: int, box: int) -> tuple[int, int]:
    """Top-left (y, x) of the moving box in frame ``i``: left-to-right at mid height."""
    span = max(1, width - box)
    x = round(span * i / max(1, num_frames - 1))
    y = (height - box) // 2
    return y, x


def counter_code(i: int) -> np.ndarray:
    """The COUNTER_BITS-bit binary code of ``i`` (most significant first) as 0/1 uint8."""
    return np.array([(i >> (COUNTER_BITS - 1 - b)) & 1 for b in range(COUNTER_BITS)], np.uint8)


def render_frame(
    scene: str,
    i: int,
    *,
    num_frames: int,
    width: int,
    height: int,
    box: int,
    cut_frames: Sequence[int] = (),
    pan_px: int = 4,
    seed: int = 0,
    _cache: dict[tuple[int, int, int, int], np.ndarray] | None = None,
) -> np.ndarray:
    """Render frame ``i`` of ``scene`` as an (H, W, 3) uint8 RGB array."""
    cache = _cache if _cache is not None else {}
    scene_id = sum(1 for c in cut_frames if i >= c)

    def tex(sid: int, w: int = width) -> np.ndarray:
        key = (sid, height, w, seed)
        if key not in cache:
            cache[key] = _texture(height, w, seed * 1000 + sid)
        return cache[key]

    if scene == "pan":
        wide = tex(0, width + pan_px * num_frames + 1)
        off = pan_px * i
        img = wide[:, off:off + width].copy()
    elif scene in ("scene_cut", "multi_scene"):
        img = tex(scene_id).copy()
        if scene == "multi_scene":
            tint = np.array([(scene_id * 97) % 255, (scene_id * 57 + 80) % 255,
                             (scene_id * 151 + 40) % 255], np.float32)
            img = (0.5 * img + 0.5 * tint).astype(np.uint8)
    else:
        img = tex(0).copy()

    if scene == "counter":
        bits = counter_code(i)
        bw = width // COUNTER_BITS
        bar_h = max(8, height // 4)
        for b, bit in enumerate(bits):
            img[:bar_h, b * bw:(b + 1) * bw] = 255 if bit else 0
        return img

    y, x = box_position(i, num_frames, width, height, box)
    img[y:y + box, x:x + box] = (250, 240, 30)
    img[y + box // 4:y + 3 * box // 4, x + box // 4:x + 3 * box // 4] = (200, 30, 30)
    return img


def decode_counter(frame: np.ndarray) -> int:
    """Read back the frame index drawn by the ``counter`` scene (robust to compression)."""
    h, w = frame.shape[:2]
    bw = w // COUNTER_BITS
    bar_h = max(8, h // 4)
    value = 0
    for b in range(COUNTER_BITS):
        cell = frame[2:bar_h - 2, b * bw + 2:(b + 1) * bw - 2]
        value = (value << 1) | int(cell.mean() > 127)
    return value


def make_video(
    path: str | Path,
    *,
    scene: str = "moving_box",
    num_frames: int = 90,
    fps: int = 30,
    width: int = 320,
    height: int = 240,
    codec: str = "libx264",
    gop: int = 30,
    bframes: int = 2,
    crf: int = 23,
    pix_fmt: str | None = None,
    cut_at: float = 0.5,
    n_scenes: int = 4,
    pan_px: int = 4,
    box: int | None = None,
    rotation: int = 0,
    vfr: bool = False,
    preset: str = "ultrafast",
    seed: int = 0,
) -> SynthInfo:
    """Encode a synthetic video and return its ground truth.

    Args:
        path: output file; the container is chosen from the suffix (.mp4, .mkv, .webm, .avi, .mov).
        scene: one of :data:`SCENES`.
        num_frames: frames to encode.
        fps: frame rate (the mean rate when ``vfr``).
        width, height: frame size (even numbers for 4:2:0 codecs).
        codec: PyAV encoder name: ``libx264``, ``libx265``, ``mpeg4``, ``libvpx-vp9``, ``mpeg2video``...
        gop: keyframe interval in frames.
        bframes: maximum consecutive B-frames (x264 / x265 / mpeg4).
        crf: quality for x264 / x265 / vp9.
        pix_fmt: encoder pixel format (default ``yuv420p``; e.g. ``yuv420p10le`` for 10-bit).
        cut_at: position of the cut for ``scene_cut`` (fraction of the length).
        n_scenes: number of scenes for ``multi_scene``.
        pan_px: background shift per frame for ``pan``.
        box: side of the moving box (default: height // 5).
        rotation: display-rotation metadata to write (0, 90, 180, 270; mp4/mov only).
        vfr: alternate frame durations of 1 and 2 ticks (variable frame rate).
        preset: x264/x265 speed preset.
        seed: texture seed.
    """
    check_choice("scene", scene, SCENES)
    num_frames = check_positive_int("num_frames", num_frames)
    check_positive_int("fps", fps)
    check_choice("rotation", rotation, (0, 90, 180, 270))

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    box = box or max(8, height // 5)
    if scene == "scene_cut":
        cuts: tuple[int, ...] = (max(1, min(num_frames - 1, round(num_frames * cut_at))),)
    elif scene == "multi_scene":
        cuts = tuple(round(num_frames * s / n_scenes) for s in range(1, n_scenes))
    else:
        cuts = ()

    # With VFR, timestamps are in ticks of 1/(2*fps) s; durations alternate 1, 3 ticks (mean 2).
    tick = Fraction(1, 2 * fps) if vfr else Fraction(1, fps)
    pts_list: list[int] = []
    t = 0
    for i in range(num_frames):
        pts_list.append(t)
        t += (1 if i % 2 == 0 else 3) if vfr else 1

    cache: dict[tuple[int, int, int, int], np.ndarray] = {}
    frames = (render_frame(scene, i, num_frames=num_frames, width=width, height=height,
                           box=box, cut_frames=cuts, pan_px=pan_px, seed=seed, _cache=cache)
              for i in range(num_frames))
    write_video(path, frames, fps=fps, codec=codec, gop=gop, bframes=bframes, crf=crf,
                pix_fmt=pix_fmt, preset=preset, rotation=rotation, pts=pts_list,
                time_base=tick)
    ts = tuple(float(p * tick) for p in pts_list)
    logger.debug("wrote %s (%s, %d frames, %s)", path, scene, num_frames, codec)
    return SynthInfo(path=str(path), num_frames=num_frames, fps=float(fps), width=width,
                     height=height, codec=codec, cut_frames=cuts, box_size=box,
                     timestamps_s=ts, rotation=rotation)
