"""ovis_model as a :class:`vidsel.eval.Answerer`: the ``ovis:DIR`` model spec of ``vidsel eval``.

:class:`OvisAnswerer` wraps an ovis_model model and its processor: an
:class:`~ovis_model.OvisModel` + :class:`~ovis_model.OvisProcessor`, or a
:class:`~ovis_model.LlavaOneVision2Model` + :class:`~ovis_model.LlavaOV2Processor`
(:meth:`OvisAnswerer.from_pretrained` picks them from the checkpoint's ``model_type``). It takes
both kinds of visual input natively:

- frames (``VisualInput.kind == "frames"``): ``processor(prompt, video=frames,
  timestamps_s=..., frame_indices=...)``; with the processor's default ``"timestamped"``
  layout every frame is preceded by its true time (``<12.5 seconds>``);
- codec patches (``"patches"``): ``processor(prompt, patches=selection)``, each source
  frame's run of patches preceded by its time.

Its :meth:`~OvisAnswerer.geometry` is the processor's patch geometry (Ovis2.5's smart resize,
``patch_size`` x ``hidden_stride``), so ``vidsel eval`` selects every method at the visual
tokens this model spends. Requests are batched with left padding (``max_batch`` per
``generate`` call); greedy decoding.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from vidsel.eval import Answerer, Generation, Request
from vidsel.results import PatchConfig

from .auto import load_model, load_processor
from .errors import InvalidArgumentError
from .llava_ov2 import LlavaOneVision2Model, LlavaOV2Processor
from .modeling import OvisModel
from .preprocessing import ImageProcessorConfig
from .processor import OvisProcessor, ProcessorOutput, video_geometry

#: the model / processor pairs the answerer runs
_PAIRS = ((OvisModel, OvisProcessor), (LlavaOneVision2Model, LlavaOV2Processor))

__all__ = ["OvisAnswerer", "OvisGeometry"]

logger = logging.getLogger(__name__)

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


@dataclass(frozen=True)
class OvisGeometry:
    """The patch geometry ovis_model's processor gives video frames of a ``height`` x
    ``width`` video (picklable: it runs in selection workers).

    Attributes:
        patch_size: vision patch side in pixels.
        hidden_stride: merge factor (``hidden_stride`` x ``hidden_stride`` patches make one
            visual token).
        image_config: the processor's resize limits (``video_min_pixels`` /
            ``video_max_pixels``).
        min_pixels, max_pixels: overrides of those limits (None: the config's).

    Example: the ``tiny`` preset (16 px, stride 2) with ``video_max_pixels=64 * 96`` maps a
    64 x 96 video to ``PatchConfig(16, 2, (64, 96))``: 2 x 3 = 6 tokens per frame.
    """

    patch_size: int
    hidden_stride: int
    image_config: ImageProcessorConfig
    min_pixels: int | None = None
    max_pixels: int | None = None

    def __call__(self, height: int, width: int, num_frames: int | None = None) -> PatchConfig:
        """The frame geometry (``num_frames`` is ignored: Ovis bounds each frame's pixels)."""
        return video_geometry(height, width, patch_size=self.patch_size,
                              hidden_stride=self.hidden_stride, image_config=self.image_config,
                              min_pixels=self.min_pixels, max_pixels=self.max_pixels)


def _parse_dtype(dtype: Any) -> torch.dtype | None:
    """None / ``"auto"`` (the checkpoint's dtype), a torch dtype or its name."""
    if dtype is None or (isinstance(dtype, str) and dtype.strip().lower() == "auto"):
        return None
    if isinstance(dtype, torch.dtype):
        if dtype in _DTYPES.values():
            return dtype
    elif isinstance(dtype, str):
        name = dtype.strip().lower().removeprefix("torch.")
        if name in _DTYPES:
            return _DTYPES[name]
    raise InvalidArgumentError(
        f"dtype={dtype!r} must be None / 'auto' (the checkpoint's) or one of "
        f"{sorted(_DTYPES)}")


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class OvisAnswerer(Answerer):
    """An ovis_model model answering :class:`vidsel.eval.Request` s.

    Args:
        model: the model (on its device, in eval mode).
        processor: its processor (tokenizer, vision config, resize limits).
        name: the model's name in records (default ``"ovis:<name_or_path>"`` / ``"ovis"``).
        max_batch: requests per ``generate`` call (left-padded into one batch).
        min_pixels, max_pixels: per-frame resize limits overriding the processor's video
            limits, for the geometry and the processing alike.

    Build from a checkpoint with :meth:`from_pretrained`; the ``ovis:DIR`` model spec of
    :func:`vidsel.eval.load_answerer` does that.
    """

    kinds = ("frames", "patches")

    def __init__(self, model: OvisModel | LlavaOneVision2Model,
                 processor: OvisProcessor | LlavaOV2Processor, *, name: str | None = None,
                 max_batch: int = 1, min_pixels: int | None = None,
                 max_pixels: int | None = None) -> None:
        pair = next(((m, p) for m, p in _PAIRS if isinstance(model, m)), None)
        if pair is None:
            raise InvalidArgumentError(
                f"model must be an ovis_model.OvisModel or LlavaOneVision2Model, got "
                f"{type(model).__name__}")
        if not isinstance(processor, pair[1]):
            raise InvalidArgumentError(
                f"processor of a {type(model).__name__} must be an ovis_model."
                f"{pair[1].__name__}, got {type(processor).__name__}")
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise InvalidArgumentError(f"max_batch={max_batch!r} must be an int >= 1")
        for key, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise InvalidArgumentError(f"{key}={value!r} must be None or an int >= 1")
        self.model: OvisModel | LlavaOneVision2Model | None = model
        self.processor = processor
        self.max_batch = max_batch
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels
        self.name = name or "ovis"
        self._options: dict[str, Any] = {}

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike[str], *, device: str | None = None,
                        dtype: Any = None, attention: str | None = None, max_batch: int = 1,
                        min_pixels: int | None = None, max_pixels: int | None = None,
                        allow_download: bool | None = None) -> OvisAnswerer:
        """Load a checkpoint folder (or a cached hub id) and its processor.

        Args:
            directory: an Ovis2.5 or LLaVA-OneVision-2 checkpoint (config.json, safetensors,
                tokenizer, preprocessor_config.json); the class follows its ``model_type``.
            device: where the model runs (default ``"cuda"`` when available, else ``"cpu"``).
            dtype: ``"bfloat16"``, ``"float32"``, a torch dtype... (default: the checkpoint's).
            attention: vision attention backend (:func:`ovis_model.available_attention_backends`;
                default ``"sdpa"``).
            max_batch, min_pixels, max_pixels: as the constructor.
            allow_download: as :meth:`ovis_model.OvisModel.from_pretrained`.

        Raises:
            ModelNotAvailableError: no such checkpoint (the message says how to provide it).
            InvalidArgumentError: an unknown dtype or attention backend.
        """
        dev = device or _default_device()
        directory = os.fspath(directory)
        model = load_model(directory, device=dev, dtype=_parse_dtype(dtype),
                           attn_impl=attention or "sdpa", allow_download=allow_download)
        processor = load_processor(directory, allow_download=allow_download)
        answerer = cls(model, processor, name=f"ovis:{directory}",
                       max_batch=max_batch, min_pixels=min_pixels, max_pixels=max_pixels)
        model_type = (model.config.model_type
                      if isinstance(model, OvisModel) else "llava_onevision2")
        answerer._options = {"model_type": model_type,
                             "dtype": str(model.dtype).removeprefix("torch."),
                             "attention": model.attn_impl}
        return answerer

    # Answerer --------------------------------------------------------------------------------
    def geometry(self) -> OvisGeometry:
        """The processor's video patch geometry as a picklable function of (height, width)."""
        vit = self.processor.vit_config
        return OvisGeometry(patch_size=vit.patch_size, hidden_stride=vit.hidden_stride,
                            image_config=self.processor.image_config,
                            min_pixels=self.min_pixels, max_pixels=self.max_pixels)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "backend": "ovis", **self._options}
        if self.min_pixels is not None:
            out["min_pixels"] = self.min_pixels
        if self.max_pixels is not None:
            out["max_pixels"] = self.max_pixels
        return out

    def process(self, request: Request) -> ProcessorOutput:
        """The model inputs of one request (batch 1): the prompt with the visual input and
        its time tags, as :class:`~ovis_model.ProcessorOutput`."""
        visual = request.visual
        if visual.kind == "patches":
            return self.processor(request.prompt, patches=visual.patches,
                                  min_pixels=self.min_pixels, max_pixels=self.max_pixels)
        if visual.frames is None:  # pragma: no cover - VisualInput checks this
            raise InvalidArgumentError(f"{request.item_id or visual.path}: no frames")
        return self.processor(request.prompt, video=visual.frames,
                              timestamps_s=[float(t) for t in visual.timestamps_s],
                              frame_indices=[int(i) for i in visual.frame_indices],
                              min_pixels=self.min_pixels, max_pixels=self.max_pixels)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        """Greedy answers, ``max_batch`` requests per ``model.generate`` call."""
        if self.model is None:
            raise InvalidArgumentError(f"{self.name} is closed")
        out: list[Generation] = []
        for start in range(0, len(requests), self.max_batch):
            chunk = list(requests[start:start + self.max_batch])
            inputs = [self.process(r) for r in chunk]
            texts = self._generate(inputs, max(r.max_new_tokens for r in chunk),
                                   [r.max_new_tokens for r in chunk])
            out += [Generation(text=text, visual_tokens=inp.budget.visual_tokens,
                               prompt_tokens=int(inp.input_ids.shape[1]))
                    for text, inp in zip(texts, inputs)]
        return out

    def close(self) -> None:
        """Drop the model (frees its memory once nothing else holds it)."""
        if self.model is not None:
            device = self.model.device
            self.model = None
            if device.type == "cuda":
                torch.cuda.empty_cache()

    def __repr__(self) -> str:
        return f"OvisAnswerer({self.name!r}, max_batch={self.max_batch})"

    # generation ------------------------------------------------------------------------------
    def _pad_id(self) -> int:
        tok = self.processor.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        return 0 if pad is None else int(pad)

    def _generate(self, inputs: list[ProcessorOutput], max_new_tokens: int,
                  limits: list[int]) -> list[str]:
        """Left-pad the prompts into one batch, generate, cut each row at its eos / limit."""
        model = self.model
        if model is None:  # pragma: no cover - generate() checks first
            raise InvalidArgumentError(f"{self.name} is closed")
        tok = self.processor.tokenizer
        pad = self._pad_id()
        batch = _collate(inputs, pad)
        with torch.inference_mode():
            ids = model.generate(**batch, max_new_tokens=max_new_tokens,
                                 eos_token_id=tok.eos_token_id, pad_token_id=pad,
                                 do_sample=False)  # (B, new_tokens)
        texts = []
        for row, limit in zip(ids.tolist(), limits):
            row = row[:limit]
            if tok.eos_token_id is not None and tok.eos_token_id in row:
                row = row[:row.index(tok.eos_token_id)]
            texts.append(self.processor.decode(row).strip())
        return texts


def _collate(inputs: list[ProcessorOutput], pad_id: int) -> dict[str, Any]:
    """One batch from batch-1 processor outputs: ``input_ids`` / ``attention_mask`` left-padded
    to (B, L_max); the visual tensors of all requests concatenated in row order (the atoms of
    row 0 come first in row-major order, as :meth:`OvisModel.merge_multimodal` expects), with
    ``cu_seqlens`` offset so no attention segment spans two requests.

    Example: two requests with 12 and 8 patches, cu_seqlens [0, 6, 12] and [0, 8] ->
    [0, 6, 12, 20].
    """
    if len(inputs) == 1:
        return inputs[0].model_inputs()
    length = max(int(i.input_ids.shape[1]) for i in inputs)
    ids = torch.full((len(inputs), length), pad_id, dtype=torch.long)  # (B, L)
    mask = torch.zeros((len(inputs), length), dtype=torch.long)  # (B, L)
    for row, inp in enumerate(inputs):
        n = int(inp.input_ids.shape[1])
        ids[row, length - n:] = inp.input_ids[0]
        mask[row, length - n:] = inp.attention_mask[0]
    visual = [i for i in inputs if i.pixel_values is not None]
    if not visual:
        return {"input_ids": ids, "attention_mask": mask}
    cu_parts = [torch.zeros(1, dtype=torch.int32)]
    offset = 0
    for inp in visual:
        cu, pixels = inp.cu_seqlens, inp.pixel_values
        if cu is None or pixels is None:  # pragma: no cover - the processor sets both
            raise InvalidArgumentError("processor output without cu_seqlens")
        cu_parts.append(cu[1:].to(torch.int32) + offset)
        offset += int(pixels.shape[0])
    return {"input_ids": ids, "attention_mask": mask,
            "pixel_values": torch.cat([i.pixel_values for i in visual]),  # type: ignore[misc]
            "grid_thws": torch.cat([i.grid_thws for i in visual]),  # type: ignore[misc]
            "positions": torch.cat([i.positions for i in visual]),  # type: ignore[misc]
            "frame_grids": torch.cat([i.frame_grids for i in visual]),  # type: ignore[misc]
            "cu_seqlens": torch.cat(cu_parts)}
