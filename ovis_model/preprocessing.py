"""Pixels -> packed patches: Ovis2.5 smart resize, SigLIP normalisation, merge-block packing.

Reproduces the official ``VisualTokenizer.preprocess`` (PIL bilinear resize, ``x * (1/255)`` in
float64 cast to float32, ``(x - mean) / std`` in float32, patches in ``(t, h/s, w/s, s, s)`` order,
rows laid out ``(C, p, p)``), and packs codec patches the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import InvalidArgumentError
from .positions import block_order_positions

__all__ = [
    "ImageProcessorConfig",
    "PackedVisual",
    "normalize",
    "pack_codec_patches",
    "pack_frames",
    "smart_resize",
]

PREPROCESSOR_NAME = "preprocessor_config.json"
#: PIL resample filter ids (nearest, lanczos, bilinear, bicubic, box, hamming)
_RESAMPLE = frozenset({0, 1, 2, 3, 4, 5})


@dataclass(frozen=True)
class ImageProcessorConfig:
    """Normalisation and resize limits (``preprocessor_config.json`` + Ovis's pixel limits).

    Attributes:
        resample: PIL resample filter id (2 = bilinear, SigLIP's default).
        min_pixels, max_pixels: smart-resize area limits for images (Ovis2.5 defaults).
        video_min_pixels, video_max_pixels: the same per video frame / codec source frame; the
            default keeps a 448 x 448 frame at 196 visual tokens.
    """

    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    rescale_factor: float = 1 / 255
    resample: int = 2
    do_resize: bool = True
    do_rescale: bool = True
    do_normalize: bool = True
    min_pixels: int = 448 * 448
    max_pixels: int = 1792 * 1792
    video_min_pixels: int = 448 * 448
    video_max_pixels: int = 448 * 448

    def __post_init__(self) -> None:
        def bad(name: str, want: str) -> InvalidArgumentError:
            return InvalidArgumentError(
                f"image processor config: {name}={getattr(self, name)!r} must be {want}")

        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            try:
                ok = len(value) == 3 and all(math.isfinite(float(v)) for v in value)
            except (TypeError, ValueError):
                ok = False
            if not ok or (name == "image_std" and any(float(v) <= 0 for v in value)):
                raise bad(name, "three finite numbers (std > 0), one per RGB channel")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        for name in ("min_pixels", "max_pixels", "video_min_pixels", "video_max_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(name, "an integer >= 1 (pixels)")
        for lo, hi in (("min_pixels", "max_pixels"), ("video_min_pixels", "video_max_pixels")):
            if getattr(self, lo) > getattr(self, hi):
                raise bad(lo, f"<= {hi}={getattr(self, hi)}")
        if self.resample not in _RESAMPLE:
            raise bad("resample", f"a PIL filter id {sorted(_RESAMPLE)}")
        rf = self.rescale_factor
        if isinstance(rf, bool) or not isinstance(rf, (int, float)) or not rf > 0:
            raise bad("rescale_factor", "a number > 0")
        for name in ("do_resize", "do_rescale", "do_normalize"):
            if not isinstance(getattr(self, name), bool):
                raise bad(name, "true or false")

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, defaults: dict[str, Any] | None = None,
                        **overrides: Any) -> ImageProcessorConfig:
        """Read ``preprocessor_config.json`` (absent: all defaults).

        Precedence: ``overrides`` > the file > ``defaults`` > the class defaults. Pixel limits
        come from ``min_pixels`` / ``max_pixels`` or transformers 5's ``size.shortest_edge`` /
        ``size.longest_edge``.

        Raises:
            InvalidArgumentError: not JSON, ``do_center_crop``, or a value of the wrong type
                or range (the message names the field).
        """
        path = Path(directory) / PREPROCESSOR_NAME
        data: dict[str, Any] = dict(defaults or {})
        if path.is_file():
            try:
                with open(path, encoding="utf-8") as fh:
                    raw = json.load(fh)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InvalidArgumentError(f"{path}: not a JSON file ({exc})") from exc
            if not isinstance(raw, dict):
                raise InvalidArgumentError(f"{path}: must hold a JSON object")
            size = raw.get("size") if isinstance(raw.get("size"), dict) else {}
            if isinstance(size, dict):
                if "shortest_edge" in size:
                    data["min_pixels"] = size["shortest_edge"]
                if "longest_edge" in size:
                    data["max_pixels"] = size["longest_edge"]
            for key in ("image_mean", "image_std", "rescale_factor", "resample", "do_resize",
                        "do_rescale", "do_normalize", "min_pixels", "max_pixels",
                        "video_min_pixels", "video_max_pixels"):
                if raw.get(key) is not None:
                    data[key] = raw[key]
            if raw.get("do_center_crop"):
                raise InvalidArgumentError(f"{path}: do_center_crop=true is not supported "
                                           "(Ovis2.5 resizes to native resolution)")
        data.update(overrides)
        try:
            return cls(**data)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{path}: {exc}") from None

    def save_pretrained(self, directory: str | Path) -> None:
        data = {
            "image_processor_type": "SiglipImageProcessor", "image_mean": list(self.image_mean),
            "image_std": list(self.image_std), "rescale_factor": self.rescale_factor,
            "resample": self.resample, "do_resize": self.do_resize,
            "do_rescale": self.do_rescale, "do_normalize": self.do_normalize,
            "min_pixels": self.min_pixels, "max_pixels": self.max_pixels,
            "video_min_pixels": self.video_min_pixels, "video_max_pixels": self.video_max_pixels,
        }
        with open(Path(directory) / PREPROCESSOR_NAME, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)


def smart_resize(height: int, width: int, factor: int, min_pixels: int,
                 max_pixels: int) -> tuple[int, int]:
    """Ovis2.5's resize target: both sides multiples of ``factor``, area in the limits.

    Uses Python's ``round`` (half to even), as the official code. Example: 90 x 120 with
    factor 32 and limits [1024, 16384] -> (96, 128).
    """
    if height < factor or width < factor:
        if height < width:
            width = round(factor / height * width)
            height = factor
        else:
            height = round(factor / width * height)
            width = factor
    elif max(height, width) / min(height, width) > 200:
        if height > width:
            height = 200 * width
        else:
            width = 200 * height
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def normalize(pixels: np.ndarray, cfg: ImageProcessorConfig) -> np.ndarray:
    """uint8 ``(..., 3)`` -> float32 ``(..., 3)`` rescaled and normalised like SigLIP."""
    x = pixels.astype(np.float32)
    if cfg.do_rescale:
        x = (pixels.astype(np.float64) * cfg.rescale_factor).astype(np.float32)
    if cfg.do_normalize:
        mean = np.asarray(cfg.image_mean, dtype=np.float32)
        std = np.asarray(cfg.image_std, dtype=np.float32)
        x = (x - mean) / std
    return x


def _resize(frame: np.ndarray, height: int, width: int, resample: int) -> np.ndarray:
    from PIL import Image

    if frame.shape[0] == height and frame.shape[1] == width:
        return frame
    img = Image.fromarray(frame)
    return np.asarray(img.resize((width, height), resample=Image.Resampling(resample)))


@dataclass
class PackedVisual:
    """One visual input (image, video or codec sample) as packed patches.

    Attributes:
        pixel_values: float32 ``(N, C*p*p)`` rows (C, p, p), merge-block order.
        positions: long ``(N, 3)`` (t, h, w); t = source frame index.
        frame_grids: long ``(N, 2)`` (H, W) patch grid of the patch's source frame.
        grid_thw: ``(t, h, w)`` for frames (t = number of frames); for codec samples
            ``(n_source_frames, H, W)`` of the source grid.
        runs: ``(source frame index, number of patches)`` per consecutive source frame, in order.
    """

    pixel_values: torch.Tensor
    positions: torch.Tensor
    frame_grids: torch.Tensor
    grid_thw: tuple[int, int, int]
    runs: list[tuple[int, int]]

    @property
    def num_patches(self) -> int:
        return int(self.pixel_values.shape[0])


def _runs(t: torch.Tensor) -> list[tuple[int, int]]:
    values, counts = torch.unique_consecutive(t, return_counts=True)
    return [(int(v), int(c)) for v, c in zip(values.tolist(), counts.tolist())]


def pack_frames(frames: Sequence[np.ndarray] | np.ndarray, *, patch_size: int,
                hidden_stride: int, min_pixels: int, max_pixels: int,
                cfg: ImageProcessorConfig,
                frame_ids: Sequence[int] | None = None) -> PackedVisual:
    """Resize, normalise and pack one image (1 frame) or the frames of one video.

    All frames are resized to the smart-resize target of the FIRST frame's size (as Ovis2.5).

    Args:
        frames: HWC uint8 RGB arrays (a list, or an ``(T, H, W, 3)`` array).
        frame_ids: t of each frame (source frame indices); default ``0..T-1``.
    """
    frames = [np.asarray(f) for f in frames]
    if not frames:
        raise InvalidArgumentError("frames is empty")
    for f in frames:
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8:
            raise InvalidArgumentError(
                f"frames must be HWC uint8 RGB arrays, got shape {f.shape} dtype {f.dtype}")
    h0, w0 = frames[0].shape[:2]
    factor = patch_size * hidden_stride
    if cfg.do_resize:
        height, width = smart_resize(h0, w0, factor, min_pixels, max_pixels)
    else:
        height, width = h0, w0
        if h0 % factor or w0 % factor:
            raise InvalidArgumentError(
                f"do_resize=false needs frames whose sides are multiples of {factor}, got "
                f"{h0}x{w0}")
    arr = np.stack([normalize(_resize(f, height, width, cfg.resample), cfg) for f in frames])
    t = arr.shape[0]
    gh, gw, p, s = height // patch_size, width // patch_size, patch_size, hidden_stride
    c = arr.shape[3]
    # (T, H, W, C) -> (T, gh/s, s, p, gw/s, s, p, C) -> (T, gh/s, gw/s, s, s, C, p, p)
    x = arr.reshape(t, gh // s, s, p, gw // s, s, p, c).transpose(0, 1, 4, 2, 5, 7, 3, 6)
    pixel_values = torch.from_numpy(np.ascontiguousarray(x).reshape(t * gh * gw, c * p * p))
    positions = block_order_positions(t, gh, gw, s, frame_ids=frame_ids)
    grids = torch.tensor([[gh, gw]], dtype=torch.long).expand(positions.shape[0], 2).clone()
    return PackedVisual(pixel_values=pixel_values, positions=positions, frame_grids=grids,
                        grid_thw=(t, gh, gw), runs=_runs(positions[:, 0]))


def pack_codec_patches(pixels: np.ndarray, positions: np.ndarray, *, patch_size: int,
                       hidden_stride: int, cfg: ImageProcessorConfig,
                       grid_hw: tuple[int, int]) -> PackedVisual:
    """Pack codec-selected patches (arbitrary subsets of many frames).

    Patches are regrouped by source frame (ascending) and, inside a frame, into complete
    ``hidden_stride x hidden_stride`` merge blocks so one visual token never mixes frames.

    Args:
        pixels: uint8 ``(N, p, p, 3)`` patch pixels.
        positions: int ``(N, 3)`` (source frame index, patch row, patch column).
        grid_hw: (rows, cols) patch grid of the full source frames (frame size // patch
            size), multiples of ``hidden_stride``. Required: it cannot be inferred from the
            selected positions (a motion-only selection need not touch the frame border).

    Raises:
        InvalidArgumentError: wrong patch size, or patches that do not form complete merge blocks.
    """
    pixels = np.asarray(pixels)
    pos = torch.as_tensor(np.asarray(positions), dtype=torch.long)
    n = pixels.shape[0]
    if pixels.ndim != 4 or pixels.shape[1:] != (patch_size, patch_size, 3):
        raise InvalidArgumentError(
            f"codec pixels must be (N, {patch_size}, {patch_size}, 3) uint8 for this model's "
            f"patch_size={patch_size}, got {pixels.shape}; call the codec selector with "
            f"patch_size={patch_size}")
    if pos.shape != (n, 3):
        raise InvalidArgumentError(f"codec positions must be ({n}, 3), got {tuple(pos.shape)}")
    if bool((pos < 0).any()):
        raise InvalidArgumentError("codec positions hold negative entries (padding cells); "
                                   "drop them before packing")
    s = hidden_stride
    unit = s * s
    if n % unit:
        raise InvalidArgumentError(
            f"{n} codec patches are not a whole number of {s}x{s} merge blocks")
    blocks = torch.stack([pos[:, 0], pos[:, 1] // s, pos[:, 2] // s], 1)  # (N, 3)
    inner = (pos[:, 1] % s) * s + pos[:, 2] % s  # (N,) position inside the block
    big = int(pos.max()) + 1 if n else 1
    key = ((blocks[:, 0] * big + blocks[:, 1]) * big + blocks[:, 2]) * unit + inner
    order = torch.argsort(key)
    sorted_key = key[order]
    if n and bool((sorted_key[1:] == sorted_key[:-1]).any()):
        raise InvalidArgumentError("codec positions contain duplicate patches")
    # every block must hold exactly the inner offsets 0..unit-1, consecutively
    block_key = torch.div(sorted_key, unit, rounding_mode="floor").view(-1, unit)
    inner_sorted = (sorted_key % unit).view(-1, unit)
    if not bool((block_key == block_key[:, :1]).all()) or not bool(
            (inner_sorted == torch.arange(unit)).all()):
        raise InvalidArgumentError(
            f"codec patches must come in complete {s}x{s} blocks aligned to even rows/columns")
    pos = pos[order]
    x = normalize(pixels[order.numpy()], cfg)  # (N, p, p, C)
    pixel_values = torch.from_numpy(
        np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(n, -1))  # (N, C*p*p)
    try:
        gh, gw = (int(v) for v in grid_hw)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"grid_hw={grid_hw!r} must be (rows, cols) of the frame's patch grid") from None
    if gh <= 0 or gw <= 0 or gh % s or gw % s:
        raise InvalidArgumentError(
            f"grid_hw={grid_hw!r} must be positive multiples of hidden_stride={s}")
    grid_hw = (gh, gw)
    if n and (int(pos[:, 1].max()) >= grid_hw[0] or int(pos[:, 2].max()) >= grid_hw[1]):
        raise InvalidArgumentError(f"codec positions exceed grid_hw={grid_hw}")
    grids = torch.tensor([list(grid_hw)], dtype=torch.long).expand(n, 2).clone()
    runs = _runs(pos[:, 0])
    return PackedVisual(pixel_values=pixel_values, positions=pos, frame_grids=grids,
                        grid_thw=(len(runs), int(grid_hw[0]), int(grid_hw[1])), runs=runs)
