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
from typing import Any, Literal, Protocol

import numpy as np
import torch

from vidsel.errors import InvalidArgumentError, ModelNotAvailableError

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
from .positions import segments_from_positions
from .preprocessing import (
    ImageProcessorConfig,
    PackedVisual,
    pack_codec_patches,
    pack_frames,
)

__all__ = [
    "ByteTokenizer",
    "HFTokenizer",
    "OvisProcessor",
    "ProcessorOutput",
    "TextTokenizer",
    "TokenBudget",
    "format_time_tag",
]

logger = logging.getLogger(__name__)

VideoLayout = Literal["timestamped", "ovis"]
_LAYOUTS = ("timestamped", "ovis")
THINK_OFF = "<think>\n\n</think>\n\n"


def format_time_tag(seconds: float) -> str:
    """The text tag put before each frame: ``<12.5 seconds>``."""
    return f"<{seconds:.1f} seconds>"


class TextTokenizer(Protocol):
    """What the processor needs from a text tokenizer."""

    eos_token_id: int | None
    pad_token_id: int | None

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...


class ByteTokenizer:
    """UTF-8 bytes (ids 0-255) + ChatML special tokens: a real, tiny tokenizer for tests.

    Vocabulary size 261; fits the ``tiny`` preset's 1024-entry LLM vocabulary.
    """

    SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")

    def __init__(self) -> None:
        self.special_ids = {tok: 256 + i for i, tok in enumerate(self.SPECIALS)}
        self.id_to_special = {v: k for k, v in self.special_ids.items()}
        self._split = re.compile("(" + "|".join(re.escape(s) for s in self.SPECIALS) + ")")
        self.eos_token_id: int | None = self.special_ids["<|im_end|>"]
        self.pad_token_id: int | None = self.special_ids["<|endoftext|>"]

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.SPECIALS)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for part in self._split.split(text):
            if part in self.special_ids:
                ids.append(self.special_ids[part])
            elif part:
                ids.extend(part.encode("utf-8"))
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        out = bytearray()
        for i in ids:
            i = int(i)
            if i < 256:
                out.append(i)
            elif i in self.id_to_special and not skip_special_tokens:
                out.extend(self.id_to_special[i].encode())
        return out.decode("utf-8", errors="replace")


class HFTokenizer:
    """Adapter around a transformers tokenizer (e.g. the checkpoint's Qwen tokenizer)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.eos_token_id: int | None = tokenizer.convert_tokens_to_ids("<|im_end|>")
        if self.eos_token_id is None or self.eos_token_id == tokenizer.unk_token_id:
            self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id: int | None = tokenizer.pad_token_id

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> HFTokenizer:
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(str(directory), trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(f"{directory}: no usable tokenizer ({exc})") from exc
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens))


@dataclass(frozen=True)
class TokenBudget:
    """LLM token accounting of one prompt.

    Attributes:
        visual_tokens: visual atoms (``-300``), i.e. patches / hidden_stride^2 - the number
            vidsel's frame / codec budgets are stated in.
        indicator_tokens: begin / end markers.
        time_tag_tokens: text tokens spent on ``<t seconds>`` tags.
        text_tokens: every other text token (chat template + question).
        tokens_per_frame: visual tokens of one full frame at the processed resolution (0 if no
            video); ``frame_equivalents`` = visual_tokens / tokens_per_frame.
        source_frames: distinct source frames that contributed patches.
    """

    visual_tokens: int
    indicator_tokens: int
    time_tag_tokens: int
    text_tokens: int
    tokens_per_frame: int = 0
    source_frames: int = 0

    @property
    def total(self) -> int:
        return self.visual_tokens + self.indicator_tokens + self.time_tag_tokens + self.text_tokens

    @property
    def frame_equivalents(self) -> float:
        return self.visual_tokens / self.tokens_per_frame if self.tokens_per_frame else 0.0


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
        frame_times_s: time of each visual run in prompt order (None for images).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pixel_values: torch.Tensor | None
    grid_thws: torch.Tensor | None
    positions: torch.Tensor | None
    frame_grids: torch.Tensor | None
    cu_seqlens: torch.Tensor | None
    budget: TokenBudget
    frame_times_s: list[float | None] = field(default_factory=list)

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
    """Turns text + images / video frames / codec samples into :class:`ProcessorOutput`.

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
                        **kwargs: Any) -> OvisProcessor:
        """Processor for a checkpoint directory (its tokenizer unless one is given)."""
        from .checkpoint import resolve_checkpoint_dir

        path = resolve_checkpoint_dir(directory)
        cfg = OvisConfig.from_json_file(path / "config.json")
        tok = tokenizer if tokenizer is not None else HFTokenizer.from_pretrained(path)
        return cls(tok, cfg.vit_config, image_config=ImageProcessorConfig.from_pretrained(path),
                   **kwargs)

    @property
    def merge_unit(self) -> int:
        return int(self.vit_config.hidden_stride ** 2)

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
        """A codec sample from ``vidsel.codec.select_patches``.

        Reads ``.pixels`` (N, p, p, 3) uint8 (or ``.patches``), ``.positions`` (N, 3)
        (source frame, row, col), ``.timestamps`` (N,) seconds, the full frame's patch grid
        (``.grid_hw`` = (rows, cols), else derived from ``.frame_size`` (H, W) and
        ``.patch_size``) and optional ``.num_tokens``. Returns the packed patches and the time
        of each source-frame run.

        Raises:
            InvalidArgumentError: the sample gives no patch grid (it is never guessed from the
                selected positions), or its ``num_tokens`` differs from the visual tokens its
                patches pack into.
        """
        pixels = _first_attr(sample, ("pixels", "patches", "patch_pixels"))
        positions = np.asarray(sample.positions)
        times = np.asarray(_first_attr(sample, ("timestamps", "timestamps_s")), dtype=np.float64)
        packed = pack_codec_patches(np.asarray(pixels), positions,
                                    patch_size=self.vit_config.patch_size,
                                    hidden_stride=self.vit_config.hidden_stride,
                                    cfg=self.image_config, grid_hw=_codec_grid(sample))
        frame_time: dict[int, float] = {}
        for f, ts in zip(positions[:, 0].tolist(), times.tolist()):
            frame_time.setdefault(int(f), float(ts))
        run_times = [frame_time[f] for f, _ in packed.runs]
        expected = getattr(sample, "num_tokens", None)
        atoms = packed.num_patches // self.merge_unit
        if expected is not None and int(expected) != atoms:
            raise InvalidArgumentError(
                f"codec sample reports num_tokens={expected} but its {packed.num_patches} "
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
                 frame_indices: Sequence[int] | None = None, codec: Any = None,
                 system: str | None = None, enable_thinking: bool = False,
                 video_layout: VideoLayout | None = None,
                 min_pixels: int | None = None, max_pixels: int | None = None
                 ) -> ProcessorOutput:
        """Build model inputs.

        Args:
            text: the user turn; without ``<image>`` / ``<video>`` placeholders they are put
                first, one line each (as the official chat template does).
            images: HWC uint8 RGB images.
            video: frames (T, H, W, 3) uint8 of one video (e.g. a vidsel selection).
            timestamps_s: time of each frame (needed by the "timestamped" layout).
            frame_indices: source frame index of each frame (t of its patches).
            codec: a codec sample (see :meth:`pack_codec`) instead of ``video``.
            min_pixels, max_pixels: override the resize limits of images / frames.
        """
        layout = video_layout or self.video_layout
        if layout not in _LAYOUTS:
            raise InvalidArgumentError(
                f"video_layout={layout!r} is unknown; allowed: {list(_LAYOUTS)}")
        if video is not None and codec is not None:
            raise InvalidArgumentError("give either video frames or a codec sample, not both")
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
        elif codec is not None:
            packed_video, codec_times = self.pack_codec(codec)
            run_times = list(codec_times)
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


def _as_array(image: Any) -> np.ndarray:
    if hasattr(image, "convert"):  # PIL image
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    return arr


def _codec_grid(sample: Any) -> tuple[int, int]:
    """(rows, cols) of the full frame patch grid of a codec sample: ``.grid_hw``, else
    ``.frame_size // .patch_size``."""
    grid = getattr(sample, "grid_hw", None)
    if grid is not None:
        return tuple(int(v) for v in grid)  # type: ignore[return-value]
    frame_size = getattr(sample, "frame_size", None)
    patch = getattr(sample, "patch_size", None)
    if frame_size is None or patch is None:
        raise InvalidArgumentError(
            f"codec sample {type(sample).__name__} gives no patch grid: it needs .grid_hw "
            "(rows, cols of the full frame's patch grid) or .frame_size (H, W) and .patch_size "
            "to derive it; the grid is not guessed from the selected positions (a motion-only "
            "selection need not reach the frame border)")
    try:
        hw = ([int(frame_size)] * 2 if isinstance(frame_size, (int, np.integer))
              else [int(v) for v in frame_size])
        p = int(patch)
    except (TypeError, ValueError):
        hw, p = [], 0
    if len(hw) != 2 or p <= 0 or min(hw) <= 0 or hw[0] % p or hw[1] % p:
        raise InvalidArgumentError(
            f"codec sample frame_size={frame_size!r} must be (H, W) multiples of "
            f"patch_size={patch!r}")
    return hw[0] // p, hw[1] // p


def _first_attr(obj: Any, names: Sequence[str]) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    raise InvalidArgumentError(
        f"{type(obj).__name__} has none of the attributes {list(names)}")
