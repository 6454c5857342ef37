"""Prompt builder and processor: Qwen ChatML + visual placeholders + time tags -> model inputs.

Prompt (thinking off, the default)::

    <|im_start|>user
    <video>
    What happens?<|im_end|>
    <|im_start|>assistant
    <think>

    </think>

``<image>`` expands to ``-301, -300 x M, -302`` (M = patches / hidden_stride^2). ``<video>`` expands
in one of two layouts:

* ``"timestamped"`` (default): per source frame (or per run of codec patches from one source
  frame) the text tag ``<12.5 seconds>`` then ``-303, -300 x M_frame, -304``;
* ``"ovis"``: the official Ovis2.5 layout, one ``-303 ... -304`` pair around all frames, no time.

The vision encoder sees the same patches in both layouts; only the LLM prompt differs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from vidsel.deprecation import renamed_fields, warn_renamed
from vidsel.results import PatchConfig

from .budget import TokenBudget, format_time_tag
from .checkpoint import resolve_checkpoint_dir
from .config import OvisConfig, VisionConfig
from .constants import (
    IMAGE_BEGIN_ID,
    IMAGE_END_ID,
    IMAGE_PLACEHOLDER,
    IMAGE_PLACEHOLDER_ID,
    VIDEO_BEGIN_ID,
    VIDEO_END_ID,
    VIDEO_PLACEHOLDER,
    VIDEO_PLACEHOLDER_ID,
    VISUAL_ATOM_ID,
)
from .errors import InvalidArgumentError
from .positions import segments_from_positions
from .preprocessing import (
    ImageProcessorConfig,
    PackedVisual,
    pack_codec_patches,
    pack_frames,
    smart_resize,
)
from .tokenizers import ByteTokenizer, HFTokenizer, TextTokenizer

# ByteTokenizer, HFTokenizer, TextTokenizer (tokenizers.py) and TokenBudget, format_time_tag
# (budget.py) are re-exported: they lived here before.
__all__ = [
    "ByteTokenizer",
    "HFTokenizer",
    "OvisProcessor",
    "ProcessorOutput",
    "TextTokenizer",
    "TokenBudget",
    "format_time_tag",
    "video_geometry",
]

logger = logging.getLogger(__name__)

VideoLayout = Literal["timestamped", "ovis"]
_LAYOUTS = ("timestamped", "ovis")
THINK_OFF = "<think>\n\n</think>\n\n"
#: what :meth:`OvisProcessor.pack_patches` reads (vidsel.results.PatchSelection's names)
_PATCH_FIELDS = ("pixels", "positions", "timestamps_s", "grid_hw", "num_tokens")
#: spellings of those fields before vidsel 0.2 (not read; named in the error message)
_OLD_PATCH_FIELDS = {"timestamps": "timestamps_s", "patches": "pixels",
                     "frame_size": "grid_hw"}


@renamed_fields({"frame_times_s": "timestamps_s"})
@dataclass
class ProcessorOutput:
    """Model inputs for one prompt (batch 1).

    Attributes:
        input_ids: long ``(1, L)`` with expanded placeholders.
        attention_mask: long ``(1, L)``.
        pixel_values: float32 ``(N, C*p*p)`` or None.
        grid_thws: long ``(n_items, 3)`` or None.
        positions: long ``(N, 3)``; frame_grids: long ``(N, 2)``; cu_seqlens: int32 ``(S + 1,)``.
        budget: token accounting.
        timestamps_s: time of each visual run in prompt order (None for images;
            ``frame_times_s`` before 0.2, deprecated).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pixel_values: torch.Tensor | None
    grid_thws: torch.Tensor | None
    positions: torch.Tensor | None
    frame_grids: torch.Tensor | None
    cu_seqlens: torch.Tensor | None
    budget: TokenBudget
    timestamps_s: list[float | None] = field(default_factory=list)

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments for :meth:`OvisModel.forward` / :meth:`OvisModel.generate`."""
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "pixel_values": self.pixel_values, "grid_thws": self.grid_thws,
                "positions": self.positions, "frame_grids": self.frame_grids,
                "cu_seqlens": self.cu_seqlens}

    def __repr__(self) -> str:
        pv = None if self.pixel_values is None else tuple(self.pixel_values.shape)
        return (f"ProcessorOutput(input_ids={tuple(self.input_ids.shape)}, pixel_values={pv}, "
                f"budget={self.budget})")


@dataclass
class _Item:
    kind: Literal["image", "video"]
    packed: PackedVisual
    run_times: list[float | None]  # one per run (video) / [None] (image)


class OvisProcessor:
    """Turns text + images / video frames / patch selections into :class:`ProcessorOutput`.

    Args:
        tokenizer: a :class:`TextTokenizer` (``HFTokenizer`` for real checkpoints,
            ``ByteTokenizer`` for tiny test models).
        vit_config: the model's vision config (patch size, hidden stride, segment mode).
        image_config: normalisation and resize limits.
        video_layout: default layout of ``<video>`` (see the module docstring).
    """

    def __init__(self, tokenizer: TextTokenizer, vit_config: VisionConfig, *,
                 image_config: ImageProcessorConfig | None = None,
                 video_layout: VideoLayout = "timestamped") -> None:
        if video_layout not in _LAYOUTS:
            raise InvalidArgumentError(
                f"video_layout={video_layout!r} is unknown; allowed: {list(_LAYOUTS)}")
        self.tokenizer = tokenizer
        self.vit_config = vit_config
        self.image_config = image_config or ImageProcessorConfig()
        self.video_layout: VideoLayout = video_layout

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, tokenizer: TextTokenizer | None = None,
                        allow_download: bool | None = None, **kwargs: Any) -> OvisProcessor:
        """Processor for a checkpoint directory or hub id (its tokenizer unless one is given);
        ``allow_download`` as :meth:`OvisModel.from_pretrained`."""
        path = resolve_checkpoint_dir(directory, allow_download=allow_download)
        cfg = OvisConfig.from_json_file(path / "config.json")
        tok = tokenizer if tokenizer is not None else HFTokenizer.from_pretrained(path)
        return cls(tok, cfg.vit_config, image_config=ImageProcessorConfig.from_pretrained(path),
                   **kwargs)

    @property
    def merge_unit(self) -> int:
        return int(self.vit_config.hidden_stride ** 2)

    def patch_geometry(self, height: int, width: int, *, min_pixels: int | None = None,
                       max_pixels: int | None = None) -> PatchConfig:
        """The model's patch geometry for a ``height`` x ``width`` video: patch size, merge
        (``hidden_stride``) and the frame size :meth:`pack_video` resizes its frames to (a
        multiple of ``patch_size * hidden_stride``), as ``run_method(..., geometry=)`` wants.

        Example: the ``tiny`` preset (16 px, stride 2) with a 64 x 96 video and
        ``video_max_pixels=64 * 96`` -> ``PatchConfig(16, 2, (64, 96))``, 6 tokens per frame.
        """
        ic = self.image_config
        return video_geometry(height, width, patch_size=self.vit_config.patch_size,
                              hidden_stride=self.vit_config.hidden_stride, image_config=ic,
                              min_pixels=min_pixels, max_pixels=max_pixels)

    # visuals ---------------------------------------------------------------------------------
    def pack_image(self, image: np.ndarray, *, min_pixels: int | None = None,
                   max_pixels: int | None = None) -> PackedVisual:
        """One HWC uint8 RGB image at native resolution (Ovis2.5 smart resize)."""
        ic = self.image_config
        return pack_frames([_as_array(image)], patch_size=self.vit_config.patch_size,
                           hidden_stride=self.vit_config.hidden_stride,
                           min_pixels=ic.min_pixels if min_pixels is None else min_pixels,
                           max_pixels=ic.max_pixels if max_pixels is None else max_pixels,
                           cfg=ic)

    def pack_video(self, frames: Sequence[np.ndarray] | np.ndarray, *,
                   frame_indices: Sequence[int] | None = None,
                   min_pixels: int | None = None, max_pixels: int | None = None) -> PackedVisual:
        """Video frames (T, H, W, 3) uint8; t of each frame = its source frame index."""
        ic = self.image_config
        return pack_frames(list(_as_array(f) for f in frames),
                           patch_size=self.vit_config.patch_size,
                           hidden_stride=self.vit_config.hidden_stride,
                           min_pixels=ic.video_min_pixels if min_pixels is None else min_pixels,
                           max_pixels=ic.video_max_pixels if max_pixels is None else max_pixels,
                           cfg=ic, frame_ids=frame_indices)

    def pack_codec(self, sample: Any) -> tuple[PackedVisual, list[float]]:
        """Deprecated alias of :meth:`pack_patches` (removed in vidsel 0.3)."""
        warn_renamed("OvisProcessor", "pack_codec", "pack_patches")
        return self.pack_patches(sample)

    def pack_patches(self, sample: Any) -> tuple[PackedVisual, list[float]]:
        """A patch selection (:class:`vidsel.results.PatchSelection`, e.g. from
        ``vidsel.methods.run_method("codec", ...)``), or any object with the same fields.

        Reads ``.pixels`` (N, p, p, 3) uint8, ``.positions`` (N, 3) (source frame, row, col),
        ``.timestamps_s`` (N,) seconds, ``.grid_hw`` (rows, cols of the full frame's patch grid)
        and ``.num_tokens`` (None to skip the check). Returns the packed patches and the time of
        each source-frame run.

        Raises:
            InvalidArgumentError: a field is missing (the grid is never guessed from the
                selected positions: a motion-only selection need not reach the frame border),
                the selection holds no pixels, or its ``num_tokens`` differs from the visual
                tokens its patches pack into.
        """
        missing = [name for name in _PATCH_FIELDS if not hasattr(sample, name)]
        if missing:
            old = [f".{o} (now .{n})" for o, n in _OLD_PATCH_FIELDS.items()
                   if n in missing and hasattr(sample, o)]
            hint = (f"; it has the names before vidsel 0.2, which are not read: "
                    f"{', '.join(old)}") if old else ""
            raise InvalidArgumentError(
                f"patch selection {type(sample).__name__} has no "
                f"{', '.join('.' + m for m in missing)}; expected a "
                f"vidsel.results.PatchSelection or an object with .pixels (N, p, p, 3) uint8, "
                f".positions (N, 3) (source frame, row, col), .timestamps_s (N,) seconds, "
                f".grid_hw (rows, cols of the full frame's patch grid) and .num_tokens{hint}")
        if sample.pixels is None:
            raise InvalidArgumentError(
                f"patch selection {type(sample).__name__} holds no pixels; select the patches "
                "with pixels='decode' (or 'reader')")
        positions = np.asarray(sample.positions)
        times = np.asarray(sample.timestamps_s, dtype=np.float64)
        packed = pack_codec_patches(np.asarray(sample.pixels), positions,
                                    patch_size=self.vit_config.patch_size,
                                    hidden_stride=self.vit_config.hidden_stride,
                                    cfg=self.image_config, grid_hw=_patch_grid(sample.grid_hw))
        frame_time: dict[int, float] = {}
        for f, ts in zip(positions[:, 0].tolist(), times.tolist()):
            frame_time.setdefault(int(f), float(ts))
        run_times = [frame_time[f] for f, _ in packed.runs]
        expected = sample.num_tokens
        atoms = packed.num_patches // self.merge_unit
        if expected is not None and int(expected) != atoms:
            raise InvalidArgumentError(
                f"patch selection reports num_tokens={expected} but its {packed.num_patches} "
                f"patches pack into {atoms} visual tokens of {self.merge_unit} patches "
                f"(hidden_stride={self.vit_config.hidden_stride}); select the patches with "
                f"merge={self.vit_config.hidden_stride}")
        return packed, run_times

    # prompt ----------------------------------------------------------------------------------
    def chat_text(self, user: str, *, system: str | None = None, enable_thinking: bool = False,
                  add_generation_prompt: bool = True) -> str:
        """Qwen ChatML text (placeholders kept as ``<image>`` / ``<video>``)."""
        text = ""
        if system is not None:
            text += f"<|im_start|>system\n{system}<|im_end|>\n"
        text += f"<|im_start|>user\n{user}<|im_end|>\n"
        if add_generation_prompt:
            text += "<|im_start|>assistant\n"
            if not enable_thinking:
                text += THINK_OFF
        return text

    def tokenize_with_placeholders(self, text: str) -> list[int]:
        """Token ids with ``<image>`` -> -200 and ``<video>`` -> -201."""
        ids: list[int] = []
        pattern = f"({re.escape(IMAGE_PLACEHOLDER)}|{re.escape(VIDEO_PLACEHOLDER)})"
        for part in re.split(pattern, text):
            if part == IMAGE_PLACEHOLDER:
                ids.append(IMAGE_PLACEHOLDER_ID)
            elif part == VIDEO_PLACEHOLDER:
                ids.append(VIDEO_PLACEHOLDER_ID)
            elif part:
                ids.extend(self.tokenizer.encode(part))
        return ids

    def expand_placeholders(self, raw_ids: Sequence[int], images: Sequence[PackedVisual] = (),
                            video: PackedVisual | None = None,
                            run_times: Sequence[float | None] | None = None,
                            video_layout: VideoLayout | None = None) -> list[int]:
        """Replace -200 / -201 by indicator + atom runs (official ``_merge_inputs`` for images
        and the "ovis" video layout; time-tagged runs for "timestamped")."""
        layout = video_layout or self.video_layout
        out: list[int] = []
        img_iter = iter(images)
        n_video = 0
        for tok in raw_ids:
            if tok == IMAGE_PLACEHOLDER_ID:
                packed = next(img_iter, None)
                if packed is None:
                    raise InvalidArgumentError("more <image> placeholders than images")
                out += [IMAGE_BEGIN_ID] + [VISUAL_ATOM_ID] * (packed.num_patches //
                                                              self.merge_unit) + [IMAGE_END_ID]
            elif tok == VIDEO_PLACEHOLDER_ID:
                n_video += 1
                if video is None or n_video > 1:
                    raise InvalidArgumentError("<video> placeholder without a (single) video")
                out += self._video_ids(video, run_times, layout)
            else:
                out.append(int(tok))
        if next(img_iter, None) is not None:
            raise InvalidArgumentError("more images than <image> placeholders")
        if video is not None and n_video == 0:
            raise InvalidArgumentError("a video was given but the text has no <video>")
        return out

    def _video_ids(self, video: PackedVisual, run_times: Sequence[float | None] | None,
                   layout: VideoLayout) -> list[int]:
        unit = self.merge_unit
        if layout == "ovis":
            return [VIDEO_BEGIN_ID] + [VISUAL_ATOM_ID] * (video.num_patches // unit) + [
                VIDEO_END_ID]
        if run_times is None or len(run_times) != len(video.runs):
            raise InvalidArgumentError(
                f"the timestamped layout needs one time per source frame ({len(video.runs)}), "
                f"got {None if run_times is None else len(run_times)}")
        out: list[int] = []
        for (_, n), ts in zip(video.runs, run_times):
            if n % unit:
                raise InvalidArgumentError(
                    f"a source frame holds {n} patches, not a multiple of {unit}")
            if ts is not None:
                out += self.tokenizer.encode(format_time_tag(ts))
            out += [VIDEO_BEGIN_ID] + [VISUAL_ATOM_ID] * (n // unit) + [VIDEO_END_ID]
        return out

    def __call__(self, text: str, *, images: Sequence[np.ndarray] = (),
                 video: Sequence[np.ndarray] | np.ndarray | None = None,
                 timestamps_s: Sequence[float] | None = None,
                 frame_indices: Sequence[int] | None = None, patches: Any = None,
                 system: str | None = None, enable_thinking: bool = False,
                 video_layout: VideoLayout | None = None,
                 min_pixels: int | None = None, max_pixels: int | None = None,
                 codec: Any = None) -> ProcessorOutput:
        """Build model inputs.

        Args:
            text: the user turn; without ``<image>`` / ``<video>`` placeholders they are put
                first, one line each (as the official chat template does).
            images: HWC uint8 RGB images.
            video: frames (T, H, W, 3) uint8 of one video (e.g. a vidsel selection).
            timestamps_s: time of each frame (needed by the "timestamped" layout).
            frame_indices: source frame index of each frame (t of its patches).
            patches: a patch selection (see :meth:`pack_patches`) instead of ``video``.
            min_pixels, max_pixels: override the resize limits of images / frames.
            codec: deprecated name of ``patches``.
        """
        if codec is not None:
            if patches is not None:
                raise InvalidArgumentError("give patches= only (codec= is its deprecated name)")
            warn_renamed("OvisProcessor.__call__", "codec", "patches")
            patches = codec
        layout = video_layout or self.video_layout
        if layout not in _LAYOUTS:
            raise InvalidArgumentError(
                f"video_layout={layout!r} is unknown; allowed: {list(_LAYOUTS)}")
        if video is not None and patches is not None:
            raise InvalidArgumentError("give either video frames or patches, not both")
        packed_images = [self.pack_image(im, min_pixels=min_pixels, max_pixels=max_pixels)
                         for im in images]
        packed_video: PackedVisual | None = None
        run_times: list[float | None] | None = None
        if video is not None:
            frames = list(video)
            if frame_indices is not None and len(frame_indices) != len(frames):
                raise InvalidArgumentError(
                    f"frame_indices has {len(frame_indices)} entries for {len(frames)} frames")
            packed_video = self.pack_video(frames, frame_indices=frame_indices,
                                           min_pixels=min_pixels, max_pixels=max_pixels)
            if timestamps_s is not None:
                if len(timestamps_s) != len(frames):
                    raise InvalidArgumentError(
                        f"timestamps_s has {len(timestamps_s)} entries for {len(frames)} frames")
                run_times = [float(t) for t in timestamps_s]
        elif patches is not None:
            packed_video, patch_times = self.pack_patches(patches)
            run_times = list(patch_times)
        if packed_video is not None and layout == "timestamped" and run_times is None:
            raise InvalidArgumentError("the timestamped video layout needs timestamps_s")

        user = text
        if IMAGE_PLACEHOLDER not in text and VIDEO_PLACEHOLDER not in text:
            lines = [IMAGE_PLACEHOLDER] * len(packed_images)
            if packed_video is not None:
                lines.append(VIDEO_PLACEHOLDER)
            user = "\n".join([*lines, text])
        prompt = self.chat_text(user, system=system, enable_thinking=enable_thinking)
        raw = self.tokenize_with_placeholders(prompt)
        ids = self.expand_placeholders(raw, packed_images, packed_video, run_times, layout)

        # visuals in prompt order: images and the video as their placeholders appear
        order: list[_Item] = []
        img_iter = iter(packed_images)
        for tok in raw:
            if tok == IMAGE_PLACEHOLDER_ID:
                order.append(_Item("image", next(img_iter), [None]))
            elif tok == VIDEO_PLACEHOLDER_ID and packed_video is not None:
                order.append(_Item("video", packed_video, list(run_times or [])))
        return self._finish(ids, order, layout)

    def _finish(self, ids: list[int], items: list[_Item], layout: VideoLayout) -> ProcessorOutput:
        input_ids = torch.tensor([ids], dtype=torch.long)
        mask = torch.ones_like(input_ids)
        n_atoms = sum(1 for i in ids if i == VISUAL_ATOM_ID)
        n_ind = sum(1 for i in ids if i in (IMAGE_BEGIN_ID, IMAGE_END_ID, VIDEO_BEGIN_ID,
                                            VIDEO_END_ID))
        tag_tokens = 0
        tokens_per_frame = 0
        source_frames = 0
        frame_times: list[float | None] = []
        for item in items:
            if item.kind == "video":
                _, gh, gw = item.packed.grid_thw
                tokens_per_frame = gh * gw // self.merge_unit
                source_frames += len(item.packed.runs)
                frame_times += item.run_times
                if layout == "timestamped":
                    tag_tokens += sum(len(self.tokenizer.encode(format_time_tag(t)))
                                      for t in item.run_times if t is not None)
            else:
                frame_times.append(None)
        text_tokens = len(ids) - n_atoms - n_ind - tag_tokens
        budget = TokenBudget(visual_tokens=n_atoms, indicator_tokens=n_ind,
                             time_tag_tokens=tag_tokens, text_tokens=text_tokens,
                             tokens_per_frame=tokens_per_frame, source_frames=source_frames)
        if not items:
            return ProcessorOutput(input_ids, mask, None, None, None, None, None, budget,
                                   frame_times)
        pixel_values = torch.cat([it.packed.pixel_values for it in items])
        positions = torch.cat([it.packed.positions for it in items])
        frame_grids = torch.cat([it.packed.frame_grids for it in items])
        item_ids = torch.cat([torch.full((it.packed.num_patches,), k, dtype=torch.long)
                              for k, it in enumerate(items)])
        cu = segments_from_positions(positions, item_ids, self.vit_config.segment_mode,
                                     self.vit_config.frames_per_segment)
        grid_thws = torch.tensor([list(it.packed.grid_thw) for it in items], dtype=torch.long)
        return ProcessorOutput(input_ids, mask, pixel_values, grid_thws, positions, frame_grids,
                               cu, budget, frame_times)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        if isinstance(ids, torch.Tensor):
            ids = ids.reshape(-1).tolist()
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)


def video_geometry(height: int, width: int, *, patch_size: int, hidden_stride: int,
                   image_config: ImageProcessorConfig, min_pixels: int | None = None,
                   max_pixels: int | None = None) -> PatchConfig:
    """Patch geometry of video frames of ``height`` x ``width`` pixels: Ovis2.5's smart resize
    to multiples of ``patch_size * hidden_stride`` within the video pixel limits of
    ``image_config`` (or ``min_pixels`` / ``max_pixels``)."""
    factor = patch_size * hidden_stride
    lo = image_config.video_min_pixels if min_pixels is None else min_pixels
    hi = image_config.video_max_pixels if max_pixels is None else max_pixels
    if image_config.do_resize:
        h, w = smart_resize(int(height), int(width), factor, lo, hi)
    elif height % factor or width % factor:
        raise InvalidArgumentError(
            f"do_resize=false needs frames whose sides are multiples of {factor}, got "
            f"{height}x{width}")
    else:
        h, w = int(height), int(width)
    return PatchConfig(patch_size=patch_size, merge=hidden_stride, frame_size=(h, w))


def _as_array(image: Any) -> np.ndarray:
    if hasattr(image, "convert"):  # PIL image
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    return arr


def _patch_grid(grid: Any) -> tuple[int, int]:
    """A patch selection's ``.grid_hw`` as ``(rows, cols)`` of positive ints."""
    try:
        rows, cols = (int(v) for v in grid)
    except (TypeError, ValueError):
        rows = cols = 0
    if rows <= 0 or cols <= 0:
        raise InvalidArgumentError(
            f"patch selection grid_hw={grid!r} must be (rows, cols) of the full frame's patch grid")
    return rows, cols
