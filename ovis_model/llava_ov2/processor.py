"""``LlavaOV2Processor``: the released LLaVA-OneVision-2 prompt and packing, natively.

Prompt (Qwen ChatML, as the released processor renders it)::

    <|im_start|>system
    You are a helpful assistant.<|im_end|>
    <|im_start|>user
    {visual blocks}{text}<|im_end|>
    <|im_start|>assistant

Visual blocks (``P`` = ``<|image_pad|>``, one per visual token; the ids come from the config):

* image: ``<|vision_start|>`` P x (h*w/m^2) ``<|vision_end|>``; one attention segment.
* uniform frames: per frame ``<12.5 seconds><|vision_start|>`` P x M ``<|vision_end|>``, no
  separator; each frame its own attention segment (the released processor's per-frame grid rows);
  patch ``t`` = the frame's source index.
* patch selections (vidsel codec): regrouped by source frame (ascending time, whole merge
  blocks), per run ``<t seconds><|vision_start|>`` P x M_run ``<|vision_end|>\\n`` (a newline
  after every run, as the released codec prompt); ``t`` = source frame index. Attention: the
  released model sees codec canvases in windows of ``frame_windows_size`` (4) canvases of the
  frame's size, so the packed patches are cut into windows of at most
  ``frame_windows_size * H * W`` patches (``H x W`` = the frame's patch grid), never inside a
  visual token.

Pixels: resized (Qwen2-VL smart resize to multiples of ``patch * merge`` = 28 within the pixel
limits), ``x / 255``, normalised with the checkpoint's mean / std (CLIP's by default), packed in
merge-block order, as ``Qwen2VLImageProcessor`` lays them out.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from vidsel.results import PatchConfig

from ..budget import TokenBudget, format_time_tag
from ..checkpoint import resolve_checkpoint_dir
from ..constants import IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER
from ..errors import InvalidArgumentError
from ..preprocessing import ImageProcessorConfig, PackedVisual
from ..processor import OvisProcessor, ProcessorOutput, video_geometry
from ..tokenizers import HFTokenizer, TextTokenizer
from .config import LlavaOV2Config

__all__ = ["DEFAULT_SYSTEM", "LlavaOV2Processor", "ov2_image_config", "template_defaults"]

logger = logging.getLogger(__name__)

#: the system turn of the released chat template (Qwen2-VL's default)
DEFAULT_SYSTEM = "You are a helpful assistant."
#: Qwen2-VL / CLIP normalisation, the released preprocessor's values
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_BICUBIC = 3
_SYSTEM_UNSET: Any = object()


#: what :func:`ov2_image_config` assumes where ``preprocessor_config.json`` says nothing
OV2_IMAGE_DEFAULTS: dict[str, Any] = {
    "image_mean": CLIP_MEAN, "image_std": CLIP_STD, "resample": _BICUBIC,
    "min_pixels": 256 * 28 * 28, "max_pixels": 1605632,
    "video_min_pixels": 4 * 28 * 28, "video_max_pixels": 392 * 392,
}


def ov2_image_config(directory: str | Path | None = None, **overrides: Any) -> ImageProcessorConfig:
    """Resize limits and normalisation of a LLaVA-OneVision-2 checkpoint.

    Read from ``preprocessor_config.json`` (:meth:`ImageProcessorConfig.from_pretrained`);
    what it lacks takes the released defaults (:data:`OV2_IMAGE_DEFAULTS`): CLIP mean / std,
    bicubic, images within [256 * 28 * 28, 1605632] pixels, video frames and codec source frames
    within [4 * 28 * 28, 392 * 392] (196 visual tokens for a 392 x 392 frame). ``overrides``
    win over both.
    """
    if directory is None:
        return ImageProcessorConfig(**{**OV2_IMAGE_DEFAULTS, **overrides})
    return ImageProcessorConfig.from_pretrained(directory, defaults=OV2_IMAGE_DEFAULTS,
                                                **overrides)


def _chat_templates(directory: Path) -> list[str]:
    """The chat templates a checkpoint ships (``chat_template.jinja`` / ``chat_template.json`` /
    ``tokenizer_config.json``)."""
    texts: list[str] = []
    for name in ("chat_template.jinja", "chat_template.json", "tokenizer_config.json"):
        path = directory / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if name.endswith(".json"):
            try:
                value = json.loads(text).get("chat_template")
            except (json.JSONDecodeError, AttributeError):
                value = None
            if not isinstance(value, str):
                continue
            text = value
        texts.append(text)
    return texts


def template_defaults(directory: Path) -> tuple[str | None, bool]:
    """(default system turn, empty think block) of the checkpoint's chat template: the first
    of ``chat_template.jinja``, ``chat_template.json``, ``tokenizer_config.json`` that holds
    one (the processor's before the tokenizer's, as transformers reads them).

    The system turn is the released ``"You are a helpful assistant."`` unless that template has
    none; a Qwen3-style template (one that reads ``enable_thinking``) opens the assistant turn
    with an empty ``<think>\\n\\n</think>\\n\\n`` when thinking is off, so the prompt does
    too. No template at all: the released prompt.
    """
    texts = _chat_templates(directory)
    if not texts:
        return DEFAULT_SYSTEM, False
    first = texts[0]
    return (DEFAULT_SYSTEM if DEFAULT_SYSTEM in first else None), "enable_thinking" in first


def _grid_rows(block: _Block) -> list[list[int]]:
    """Grid rows of a block as the released processor writes them: an image ``[1, h, w]``,
    one ``[1, h, w]`` per frame (so :func:`~ovis_model.llava_ov2.window_cu_seqlens` gives its
    per-frame segments), and for a patch selection ``[n_source_frames, H, W]`` of the source
    grid (informative: its segments come from ``cu_seqlens``)."""
    t, h, w = block.packed.grid_thw
    if block.kind == "frames":
        return [[1, h, w]] * len(block.packed.runs)
    return [[t, h, w]]


def _check_times(times: Sequence[float]) -> list[float]:
    """Frame times as floats; NaN, infinite or negative times are refused (they would be
    printed into the prompt's ``<t seconds>`` tags)."""
    out = []
    for t in times:
        try:
            value = float(t)
        except (TypeError, ValueError):
            value = float("nan")
        if not math.isfinite(value) or value < 0:
            raise InvalidArgumentError(
                f"timestamps_s holds {t!r}; times must be finite seconds >= 0")
        out.append(value)
    return out


@dataclass
class _Block:
    kind: Literal["image", "frames", "patches"]
    packed: PackedVisual
    times: list[float | None]


class LlavaOV2Processor:
    """Turns text + images / video frames / a patch selection into model inputs
    (:class:`~ovis_model.ProcessorOutput`) for :class:`~ovis_model.LlavaOneVision2Model`.

    Args:
        tokenizer: the checkpoint's tokenizer (:class:`~ovis_model.HFTokenizer`), or any
            :class:`~ovis_model.TextTokenizer` (tests build a tiny one); it encodes the text
            and the chat markers (``<|im_start|>``...). Visual ids come from ``config``.
        config: the model config (patch size, merge, special token ids, window size).
        image_config: normalisation and pixel limits (default :func:`ov2_image_config`).
        system: the system turn (default ``"You are a helpful assistant."``; None: no system
            turn).
        think_block: open the assistant turn with an empty ``<think>\n\n</think>\n\n`` (a
            Qwen3-style chat template with thinking off); default False, as the released
            prompt.
    """

    def __init__(self, tokenizer: TextTokenizer, config: LlavaOV2Config, *,
                 image_config: ImageProcessorConfig | None = None,
                 system: str | None = DEFAULT_SYSTEM, think_block: bool = False) -> None:
        if not isinstance(config, LlavaOV2Config):
            raise InvalidArgumentError(
                f"config must be a LlavaOV2Config, got {type(config).__name__}")
        self.tokenizer = tokenizer
        self.config = config
        self.image_config = image_config or ov2_image_config()
        self.system = system
        self.think_block = bool(think_block)
        # the packing of Ovis's processor (same merge-block order, positions and checks)
        self._packer = OvisProcessor(tokenizer, config.vision, image_config=self.image_config)

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | Path, *,
                        tokenizer: TextTokenizer | None = None,
                        allow_download: bool | None = None,
                        system: str | None = _SYSTEM_UNSET,
                        **image_overrides: Any) -> LlavaOV2Processor:
        """The processor of a checkpoint folder or cached hub id: its tokenizer (unless one is
        given), ``preprocessor_config.json`` and the chat template's system turn;
        ``image_overrides`` replace fields of :func:`ov2_image_config`; the system turn and the
        think block follow the shipped chat template (:func:`template_defaults`)."""
        path = resolve_checkpoint_dir(path_or_hub_id, allow_download=allow_download)
        config = LlavaOV2Config.from_json_file(path / "config.json")
        tok = tokenizer if tokenizer is not None else HFTokenizer.from_pretrained(path)
        template_system, think = template_defaults(path)
        sys_turn = template_system if system is _SYSTEM_UNSET else system
        return cls(tok, config, image_config=ov2_image_config(path, **image_overrides),
                   system=sys_turn, think_block=think)

    @property
    def vit_config(self) -> Any:
        return self.config.vision

    @property
    def merge_unit(self) -> int:
        return self.config.merge_unit

    def patch_geometry(self, height: int, width: int, *, min_pixels: int | None = None,
                       max_pixels: int | None = None) -> PatchConfig:
        """Patch size, merge and the frame size video frames are resized to (multiples of
        ``patch_size * spatial_merge_size``) for a ``height`` x ``width`` video, as
        ``vidsel.methods.run_method(..., geometry=)`` wants. Example: a 360 x 640 video ->
        ``PatchConfig(14, 2, (280, 504))`` (180 tokens per frame) with the default limits."""
        return video_geometry(height, width, patch_size=self.config.vision.patch_size,
                              hidden_stride=self.config.spatial_merge_size,
                              image_config=self.image_config, min_pixels=min_pixels,
                              max_pixels=max_pixels)

    # prompt ----------------------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text)) if text else []

    def _visual_ids(self, n_tokens: int) -> list[int]:
        cfg = self.config
        return [cfg.vision_start_token_id] + [cfg.image_token_id] * n_tokens + [
            cfg.vision_end_token_id]

    def _block_ids(self, block: _Block) -> tuple[list[int], int]:
        """(ids, time-tag tokens) of one visual block."""
        unit = self.merge_unit
        if block.kind == "image":
            return self._visual_ids(block.packed.num_patches // unit), 0
        ids: list[int] = []
        tag_tokens = 0
        newline = self._encode("\n") if block.kind == "patches" else []
        for (_, n), ts in zip(block.packed.runs, block.times, strict=True):
            if n % unit:
                raise InvalidArgumentError(
                    f"a source frame holds {n} patches, not a multiple of {unit}")
            if ts is not None:
                tag = self._encode(format_time_tag(ts))
                tag_tokens += len(tag)
                ids += tag
            ids += self._visual_ids(n // unit) + newline
        return ids, tag_tokens

    def __call__(self, text: str, *, images: Sequence[np.ndarray] = (),
                 video: Sequence[np.ndarray] | np.ndarray | None = None,
                 timestamps_s: Sequence[float] | None = None,
                 frame_indices: Sequence[int] | None = None, patches: Any = None,
                 system: str | None = _SYSTEM_UNSET, min_pixels: int | None = None,
                 max_pixels: int | None = None, **unused: Any) -> ProcessorOutput:
        """Build the inputs of one prompt (batch 1).

        Args:
            text: the user turn. ``<image>`` / ``<video>`` in it mark where the visual blocks
                go; without them the blocks come first (images, then the video), as the
                released chat template renders a message whose visuals precede the text.
            images: HWC uint8 RGB images.
            video: frames ``(T, H, W, 3)`` uint8 of one video.
            timestamps_s: the time of each frame (its ``<t seconds>`` tag; required with
                ``video``).
            frame_indices: source frame index of each frame (``t`` of its patches; default
                ``0..T-1``).
            patches: a patch selection (:class:`vidsel.results.PatchSelection`) instead of
                ``video``.
            system: the system turn for this prompt (default: the processor's).
            min_pixels, max_pixels: override the resize limits of images / frames.
            **unused: options of Ovis's processor that do not apply here
                (``enable_thinking``, ``video_layout``) must be left unset.
        """
        bad = {k: v for k, v in unused.items() if v is not None and v is not False}
        if bad:
            raise InvalidArgumentError(
                f"LlavaOV2Processor does not take {sorted(bad)} (Ovis-only options)")
        if video is not None and patches is not None:
            raise InvalidArgumentError("give either video frames or patches, not both")
        blocks_images = [_Block("image", self._packer.pack_image(
            im, min_pixels=min_pixels, max_pixels=max_pixels), [None]) for im in images]
        video_block: _Block | None = None
        if video is not None:
            frames = list(video)
            if timestamps_s is None or len(timestamps_s) != len(frames):
                raise InvalidArgumentError(
                    f"video frames need timestamps_s with one time per frame ({len(frames)}), "
                    f"got {None if timestamps_s is None else len(timestamps_s)}")
            if frame_indices is not None and len(frame_indices) != len(frames):
                raise InvalidArgumentError(
                    f"frame_indices has {len(frame_indices)} entries for {len(frames)} frames")
            times = _check_times(timestamps_s)
            packed = self._packer.pack_video(frames, frame_indices=frame_indices,
                                             min_pixels=min_pixels, max_pixels=max_pixels)
            if len(packed.runs) != len(frames):
                raise InvalidArgumentError(
                    f"frame_indices={list(frame_indices or [])} repeats a source frame next to "
                    "itself; each frame needs its own index (its patches' t)")
            video_block = _Block("frames", packed, list(times))
        elif patches is not None:
            packed, times = self._packer.pack_patches(patches)
            video_block = _Block("patches", packed, list(times))

        # user turn: text pieces and visual blocks in prompt order
        pieces: list[str | _Block] = []
        pattern = f"({re.escape(IMAGE_PLACEHOLDER)}|{re.escape(VIDEO_PLACEHOLDER)})"
        img_iter = iter(blocks_images)
        marked = IMAGE_PLACEHOLDER in text or VIDEO_PLACEHOLDER in text
        if not marked:
            pieces += blocks_images
            if video_block is not None:
                pieces.append(video_block)
            pieces.append(text)
        else:
            n_video = 0
            for part in re.split(pattern, text):
                if part == IMAGE_PLACEHOLDER:
                    block = next(img_iter, None)
                    if block is None:
                        raise InvalidArgumentError("more <image> placeholders than images")
                    pieces.append(block)
                elif part == VIDEO_PLACEHOLDER:
                    n_video += 1
                    if video_block is None or n_video > 1:
                        raise InvalidArgumentError(
                            "<video> placeholder without a (single) video")
                    pieces.append(video_block)
                elif part:
                    pieces.append(part)
            if next(img_iter, None) is not None:
                raise InvalidArgumentError("more images than <image> placeholders")
            if video_block is not None and n_video == 0:
                raise InvalidArgumentError("a video was given but the text has no <video>")

        sys_turn = self.system if system is _SYSTEM_UNSET else system
        head = ""
        if sys_turn is not None:
            head = f"<|im_start|>system\n{sys_turn}<|im_end|>\n"
        ids = self._encode(head + "<|im_start|>user\n")
        tag_tokens = 0
        blocks: list[_Block] = []
        for piece in pieces:
            if isinstance(piece, str):
                ids += self._encode(piece)
            else:
                block_ids, tags = self._block_ids(piece)
                ids += block_ids
                tag_tokens += tags
                blocks.append(piece)
        tail = "<|im_end|>\n<|im_start|>assistant\n"
        if self.think_block:
            tail += "<think>\n\n</think>\n\n"
        ids += self._encode(tail)
        return self._finish(ids, blocks, tag_tokens)

    def _finish(self, ids: list[int], blocks: list[_Block], tag_tokens: int) -> ProcessorOutput:
        cfg = self.config
        input_ids = torch.tensor([ids], dtype=torch.long)
        mask = torch.ones_like(input_ids)
        n_visual = sum(1 for i in ids if i == cfg.image_token_id)
        n_marks = sum(1 for i in ids if i in (cfg.vision_start_token_id, cfg.vision_end_token_id))
        tokens_per_frame = 0
        source_frames = 0
        times: list[float | None] = []
        for block in blocks:
            if block.kind == "image":
                times.append(None)
                continue
            grid = block.packed.frame_grids[0].tolist()
            tokens_per_frame = grid[0] * grid[1] // self.merge_unit
            source_frames += len(block.packed.runs)
            times += block.times
        budget = TokenBudget(visual_tokens=n_visual, indicator_tokens=n_marks,
                             time_tag_tokens=tag_tokens,
                             text_tokens=len(ids) - n_visual - n_marks - tag_tokens,
                             tokens_per_frame=tokens_per_frame, source_frames=source_frames)
        if not blocks:
            return ProcessorOutput(input_ids, mask, None, None, None, None, None, budget, times)
        cu_parts = [torch.zeros(1, dtype=torch.long)]
        offset = 0
        for block in blocks:
            sizes = self._segment_sizes(block)
            cu_parts.append(torch.cumsum(torch.tensor(sizes, dtype=torch.long), 0) + offset)
            offset += block.packed.num_patches
        cu = torch.cat(cu_parts).to(torch.int32)
        return ProcessorOutput(
            input_ids, mask,
            torch.cat([b.packed.pixel_values for b in blocks]),
            torch.tensor([row for b in blocks for row in _grid_rows(b)], dtype=torch.long),
            torch.cat([b.packed.positions for b in blocks]),
            torch.cat([b.packed.frame_grids for b in blocks]), cu, budget, times)

    def _segment_sizes(self, block: _Block) -> list[int]:
        """Attention segment lengths of one block (see the module docstring)."""
        packed = block.packed
        if block.kind == "image":
            return [packed.num_patches]
        if block.kind == "frames":
            return [n for _, n in packed.runs]
        grid = packed.frame_grids[0].tolist()
        window = self.config.frame_windows_size * grid[0] * grid[1]
        unit = self.merge_unit
        window -= window % unit
        sizes: list[int] = []
        left = packed.num_patches
        while left > 0:
            sizes.append(min(window, left))
            left -= sizes[-1]
        return sizes

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of generated ids (special tokens skipped)."""
        return self._packer.decode(ids)
