"""vLLM as an :class:`~vidsel.eval.Answerer`: the ``vllm:DIR_OR_ID`` model spec (extra ``vllm``).

Offline generation with ``vllm.LLM.generate``. Each request becomes one vLLM prompt dict:

- ``prompt``: the model's own chat template (``transformers.AutoProcessor`` of the same
  checkpoint, ``apply_chat_template(..., add_generation_prompt=True)``) around a
  ``{"type": "video"}`` (frames) or one ``{"type": "image"}`` per canvas (codec patches) and
  the request's text;
- ``multi_modal_data``: frames as ``{"video": [(frames, metadata)]}`` with frames
  (T, H, W, 3) uint8 and vLLM's Qwen-VL video metadata
  ``{"fps", "total_num_frames", "frames_indices", "duration", "video_backend": "vidsel",
  "do_sample_frames": False}`` -- the source fps and the selected frames' real indices, so
  Qwen3-VL's ``<t seconds>`` markers are the frames' true times and vLLM does not sample the
  frames again; codec patches as ``{"image": [canvas, ...]}``
  (:meth:`vidsel.results.PatchSelection.canvases`), each canvas introduced by a text line
  with the times of the frames it holds (the ``hf`` backend's layout, word for word);
- ``mm_processor_kwargs``: ``{"fps": T / total_num_frames * source_fps}`` for Qwen2.5-VL (its
  time step per temporal patch, as transformers derives it from ``VideoMetadata``), plus
  any given ``mm_processor_kwargs``.

Frames are padded to the temporal patch size (Qwen-VL: pairs) by repeating the last frame,
as the ``hf`` backend does, and ``Generation.notes`` says so. The geometry is the ``hf``
backend's :class:`~vidsel.eval._hf.HFGeometry` for the same checkpoint (vLLM runs the model's
transformers processor), so both backends select at the same visual tokens.

Greedy decoding: ``SamplingParams(temperature=0, max_tokens=request.max_new_tokens)``.
``Generation.visual_tokens`` counts the video / image pad tokens in the prompt vLLM actually
ran (``RequestOutput.prompt_token_ids``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, ModelNotAvailableError
from ..optional import require
from ..results import PatchConfig
from ..selection import vllm_metadata
from ._answerer import Answerer, FixedGeometry, GeometryFn
from ._hf import HF_FAMILIES, QWEN_FAMILIES, HFGeometry, canvas_content, model_source, video_frames
from ._hf import processor_geometry as hf_processor_geometry
from ._types import Generation, Request, VisualInput

__all__ = ["VLLMAnswerer", "processor_geometry", "video_metadata"]

logger = logging.getLogger(__name__)

def processor_geometry(processor: Any, config: Any) -> HFGeometry:
    """The geometry of a checkpoint's video preprocessing: the same
    :class:`~vidsel.eval._hf.HFGeometry` the ``hf`` backend gives that checkpoint (vLLM runs
    the model's own transformers processor), so ``hf:`` and ``vllm:`` select alike.

    - Qwen2-VL / Qwen2.5-VL / Qwen3-VL: transformers' smart resize with the video processor's
      patch size, merge and pixel limits (Qwen3-VL's limits bound the whole clip).
    - LLaVA-OneVision: every frame resized to the processor's size and SigLIP's patch grid
      pooled 2 x 2 (384 px: 27 x 27 patches -> 14 x 14 = 196 tokens, stated as 392 x 392
      with 14 px patches merged 2 x 2).

    Raises:
        InvalidArgumentError: another model family (pass ``geometry=`` explicitly).
    """
    family = str(getattr(config, "model_type", ""))
    if family in HF_FAMILIES:
        return hf_processor_geometry(processor, config)
    raise InvalidArgumentError(
        f"vllm answerer: no frame geometry known for model_type={family!r}; supported: "
        f"{', '.join(HF_FAMILIES)}; pass geometry= (a vidsel.results.PatchConfig or a "
        f"function (height, width) -> PatchConfig) for other models")


def video_metadata(visual: VisualInput, *, pad_to_multiple: int = 1) -> dict[str, Any]:
    """vLLM's video metadata of a frames input (:func:`vidsel.selection.vllm_metadata`): the
    source fps, the video's frame count and duration and the selected frames' source indices
    (the last repeated until the count divides by ``pad_to_multiple``),
    ``do_sample_frames=False``."""
    idx = [int(i) for i in visual.frame_indices]
    pad = -len(idx) % max(1, pad_to_multiple)
    idx += idx[-1:] * pad
    return vllm_metadata(idx, fps=visual.source_fps, total_num_frames=visual.num_frames,
                         duration=visual.duration_s)


def _token_id(processor: Any, kind: str) -> int | None:
    """The id of the processor's ``video`` / ``image`` pad token (None: no such token)."""
    tid = getattr(processor, f"{kind}_token_id", None)
    if isinstance(tid, int):
        return tid
    token = getattr(processor, f"{kind}_token", None)
    tok = getattr(processor, "tokenizer", None)
    if isinstance(token, str) and tok is not None:
        tid = tok.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != getattr(tok, "unk_token_id", None):
            return tid
    return None


class VLLMAnswerer(Answerer):
    """A vision-language model served by vLLM's offline engine.

    Args:
        llm: a ``vllm.LLM``.
        processor: the checkpoint's ``transformers.AutoProcessor`` (chat template, pad tokens,
            video processor limits).
        model_type: the checkpoint's ``config.model_type`` (``"qwen2_5_vl"``...).
        geometry: the model's geometry (a PatchConfig or a function; :meth:`from_pretrained`
            uses :func:`processor_geometry`).
        name: the model's name in records (default ``"vllm"``).
        max_batch: requests per ``LLM.generate`` call.
        temporal_patch_size: frames merged per temporal patch (Qwen-VL: 2); frame inputs are
            padded to a multiple of it by repeating the last frame (noted in
            ``Generation.notes``).
        mm_processor_kwargs: added to every request's ``mm_processor_kwargs``.
        options: engine options worth recording (:meth:`describe`).

    Build with :meth:`from_pretrained` (the ``vllm:DIR_OR_ID`` spec).
    """

    kinds = ("frames", "patches")

    def __init__(self, llm: Any, processor: Any, *, model_type: str,
                 geometry: PatchConfig | GeometryFn, name: str | None = None,
                 max_batch: int = 16, temporal_patch_size: int = 1,
                 mm_processor_kwargs: Mapping[str, Any] | None = None,
                 options: Mapping[str, Any] | None = None) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise InvalidArgumentError(f"max_batch={max_batch!r} must be an int >= 1")
        self._geometry: GeometryFn = (FixedGeometry(geometry) if isinstance(geometry, PatchConfig)
                                      else geometry)
        if not callable(self._geometry):
            raise InvalidArgumentError(f"geometry={geometry!r} must be a PatchConfig or a "
                                       f"function (height, width) -> PatchConfig")
        self.llm = llm
        self.processor = processor
        self.model_type = model_type
        self.name = name or "vllm"
        self.max_batch = max_batch
        self.temporal_patch_size = max(1, int(temporal_patch_size))
        self.mm_processor_kwargs = dict(mm_processor_kwargs or {})
        self.options = dict(options or {})
        self._video_id = _token_id(processor, "video")
        self._image_id = _token_id(processor, "image")

    @classmethod
    def from_pretrained(cls, target: str | os.PathLike[str], *, max_batch: int = 16,
                        max_model_len: int | None = None,
                        gpu_memory_utilization: float | None = None,
                        limit_mm_per_prompt: Mapping[str, int] | None = None,
                        dtype: str | None = None, allow_download: bool | None = None,
                        geometry: PatchConfig | GeometryFn | None = None,
                        mm_processor_kwargs: Mapping[str, Any] | None = None,
                        **engine_options: Any) -> VLLMAnswerer:
        """Start ``vllm.LLM(model=target, ...)`` and load the checkpoint's processor.

        Args:
            target: a model folder or a hub id (from the local Hugging Face cache unless
                downloads are allowed).
            max_batch: requests per ``LLM.generate`` call (vLLM schedules them together).
            max_model_len, gpu_memory_utilization, limit_mm_per_prompt, dtype: passed to
                ``vllm.LLM`` when given (else vLLM's defaults). Codec patches arrive as
                several images: vLLM's default allows many per prompt; a smaller
                ``limit_mm_per_prompt={"image": n}`` makes longer patch inputs fail.
            allow_download: fetch a hub id that is not cached (None: only when
                ``VIDSEL_ALLOW_DOWNLOAD=1``).
            geometry: override the frame geometry (a PatchConfig or a function).
            mm_processor_kwargs: added to every request's processor options.
            **engine_options: further ``vllm.LLM`` options (``tensor_parallel_size=2``,
                ``enforce_eager=True``, ``trust_remote_code=True``...).

        Raises:
            MissingDependencyError: vllm is not installed (``pip install 'vidsel[vllm]'``).
            ModelNotAvailableError: no local copy and downloads not allowed (fast, before
                vLLM starts).
            InvalidArgumentError: a model family whose frame geometry is unknown (pass
                ``geometry=``), or a processor without a chat template.
        """
        vllm = require("vllm", "the vllm answerer (vllm:MODEL)", extra="vllm")
        transformers = require("transformers", "the vllm answerer (vllm:MODEL)", extra="vllm")
        spec = os.fspath(target)
        _, model, hub = model_source(spec, allow_download, backend="vllm", extra="vllm")
        try:
            config = transformers.AutoConfig.from_pretrained(model, local_files_only=not hub)
            processor = transformers.AutoProcessor.from_pretrained(model,
                                                                   local_files_only=not hub)
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(f"vllm:{spec}: cannot load its config / processor "
                                         f"({exc})") from exc
        model_type = str(getattr(config, "model_type", ""))
        vision = getattr(config, "vision_config", None)
        tps = int(getattr(vision, "temporal_patch_size", 1) or 1) if model_type in QWEN_FAMILIES \
            else 1
        llm_options = {k: v for k, v in {
            "max_model_len": max_model_len, "gpu_memory_utilization": gpu_memory_utilization,
            "limit_mm_per_prompt": dict(limit_mm_per_prompt) if limit_mm_per_prompt else None,
            "dtype": dtype}.items() if v is not None}
        llm_options.update(engine_options)
        geometry_fn = geometry if geometry is not None else processor_geometry(processor, config)
        if getattr(processor, "chat_template", None) is None:
            raise InvalidArgumentError(
                f"vllm:{spec} has no chat template (chat_template.jinja or chat_template.json): "
                f"vidsel lays out prompts with the model's own template; use an instruct "
                f"checkpoint or add its template to the folder")
        logger.info("vllm: starting %s (%s) with %s", model, model_type, llm_options)
        llm = vllm.LLM(model=model, **llm_options)
        recorded = {k: v for k, v in {"dtype": dtype, "mm_processor_kwargs": (
            dict(mm_processor_kwargs) if mm_processor_kwargs else None)}.items()
            if v is not None}
        return cls(llm, processor, model_type=model_type, geometry=geometry_fn,
                   name=f"vllm:{spec}", max_batch=max_batch, temporal_patch_size=tps,
                   mm_processor_kwargs=mm_processor_kwargs, options=recorded)

    # Answerer --------------------------------------------------------------------------------
    def geometry(self) -> GeometryFn:
        return self._geometry

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": "vllm", **self.options}

    def close(self) -> None:
        """Drop the engine (vLLM frees its GPU memory once nothing holds it)."""
        self.llm = None

    def __repr__(self) -> str:
        return f"VLLMAnswerer({self.name!r}, {self.model_type}, max_batch={self.max_batch})"

    def vllm_prompt(self, request: Request) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The vLLM prompt dict of one request and the notes on how its input was adapted."""
        visual = request.visual
        notes: list[str] = []
        mm_kwargs = dict(self.mm_processor_kwargs)
        if visual.kind == "patches":
            content, images = canvas_content(request)  # canvases: (S, S, 3) uint8 each
            data: dict[str, Any] = {"image": images}
        else:
            frames, _, notes = video_frames(request, self.model_type, self.temporal_patch_size)
            meta = video_metadata(visual, pad_to_multiple=self.temporal_patch_size)
            if self.model_type == "qwen2_5_vl" and "fps" not in mm_kwargs and meta[
                    "total_num_frames"] > 0:
                # transformers' VideoMetadata.sampled_fps: second_per_grid_ts = tps / fps
                mm_kwargs["fps"] = len(meta["frames_indices"]) / meta["total_num_frames"] * \
                    meta["fps"]
            content = [{"type": "video"}, {"type": "text", "text": request.prompt}]
            data = {"video": [(np.ascontiguousarray(frames), meta)]}
        messages = [{"role": "user", "content": content}]
        text = self.processor.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=True)
        if not isinstance(text, str):  # a batch of one: transformers returns a list
            text = text[0]
        prompt: dict[str, Any] = {"prompt": text, "multi_modal_data": data}
        if mm_kwargs:
            prompt["mm_processor_kwargs"] = mm_kwargs
        return prompt, tuple(notes)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        """Greedy answers, ``max_batch`` requests per ``LLM.generate`` call."""
        if self.llm is None:
            raise InvalidArgumentError(f"{self.name} is closed")
        vllm = require("vllm", "the vllm answerer (vllm:MODEL)", extra="vllm")
        out: list[Generation] = []
        for start in range(0, len(requests), self.max_batch):
            chunk = list(requests[start:start + self.max_batch])
            built = [self.vllm_prompt(r) for r in chunk]
            params = [vllm.SamplingParams(temperature=0.0, max_tokens=int(r.max_new_tokens))
                      for r in chunk]
            results = self.llm.generate([p for p, _ in built], sampling_params=params,
                                        use_tqdm=False)
            if len(results) != len(chunk):
                raise InvalidArgumentError(f"{self.name}: vLLM returned {len(results)} outputs "
                                           f"for {len(chunk)} prompts")
            for res, (_, notes) in zip(results, built):
                out.append(self._generation(res, notes))
        return out

    def _generation(self, result: Any, notes: tuple[str, ...]) -> Generation:
        text = result.outputs[0].text if result.outputs else ""
        ids = getattr(result, "prompt_token_ids", None)
        visual = None
        if ids is not None:
            pad_ids = {i for i in (self._video_id, self._image_id) if i is not None}
            visual = sum(1 for t in ids if t in pad_ids) if pad_ids else None
        return Generation(text=str(text).strip(), visual_tokens=visual,
                          prompt_tokens=None if ids is None else len(ids), notes=notes)
