"""transformers vision-language models as answerers (``hf:DIR_OR_ID`` model specs).

:class:`HFAnswerer` loads ``transformers.AutoProcessor`` + ``AutoModelForImageTextToText``
from a local folder or a hub id and answers :class:`~vidsel.eval.Request` s with greedy
decoding, several requests per ``generate`` call (left padding).

Families (``config.model_type``) with video input: ``qwen2_vl``, ``qwen2_5_vl``, ``qwen3_vl``,
``llava_onevision``. Other image-text-to-text models take codec patches only (as images).

Frames go in as ``videos=[frames]`` with a ``transformers.video_utils.VideoMetadata`` holding
the real source fps and frame indices, and ``do_sample_frames=False``: the processor keeps
every selected frame, and Qwen3-VL's ``<t seconds>`` markers are ``frames_indices / fps``, the
frames' true times (without metadata Qwen3-VL assumes 24 fps). Qwen-VL models merge frames in
temporal pairs: an odd count is padded by repeating the last frame, and the
:class:`~vidsel.eval.Generation` says so in its ``notes``. (Qwen2.5-VL's temporal positions
use one spacing for the whole clip, ``2 / sampled_fps``: exact for a uniform selection only.)

Codec patches go in as the selection's packed canvases (several images), with a text line per
canvas giving the times of the frames its patches come from.

Token accounting (:class:`HFGeometry`): ``T`` Qwen-VL frames cost ``ceil(T / 2)`` frames'
token grids; a canvas (an image) its full grid. LLaVA-OneVision pools every frame to 196 tokens
(384 px SigLIP) plus one newline per video; a canvas among several costs ``num_image_tokens +
1`` (730: ``canvas_tokens``), a single canvas its anyres tiles. ``Generation.visual_tokens``
reports what each prompt really held.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._validate import check_choice, check_positive_int
from ..embed import ALLOW_DOWNLOAD_ENV, DTYPES, downloads_allowed, hub_offline_var
from ..errors import InvalidArgumentError, MissingDependencyError, ModelNotAvailableError
from ..optional import require
from ..results import PatchConfig
from ._answerer import Answerer
from ._types import Generation, Request, VisualInput

__all__ = ["CANVAS_INTRO", "HF_FAMILIES", "QWEN_FAMILIES", "HFAnswerer", "HFGeometry",
           "canvas_content", "model_source", "processor_geometry", "video_frames"]

logger = logging.getLogger(__name__)

#: ``config.model_type`` of the models that take video frames (and codec patches as images).
HF_FAMILIES: tuple[str, ...] = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_onevision")
_TITLES = {"qwen2_vl": "Qwen2-VL", "qwen2_5_vl": "Qwen2.5-VL", "qwen3_vl": "Qwen3-VL",
           "llava_onevision": "LLaVA-OneVision"}
#: The Qwen-VL families (pixel limits; frames merged in groups of ``temporal_patch_size``).
QWEN_FAMILIES: tuple[str, ...] = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
_FEATURE = "the hf answerer"

#: What precedes the canvases of a codec-patch input (``{n}``: how many).
CANVAS_INTRO = ("The video is shown as {n} canvas image(s) of patches cut from its frames; "
                "each canvas is listed with the times of the frames its patches come from.")


@dataclass(frozen=True)
class HFGeometry:
    """The patch geometry a transformers VLM's video preprocessing gives a frame (picklable:
    it runs in selection workers). ``geometry(height, width)`` ->
    :class:`~vidsel.results.PatchConfig`.

    Attributes:
        resize: ``"qwen2"`` (Qwen2-VL / Qwen2.5-VL ``smart_resize``: per-frame pixel limits),
            ``"qwen3"`` (Qwen3-VL: the limits bound the whole clip, ``t x h x w``, so the frame
            size depends on the number of frames) or ``"fixed"`` (every frame resized to
            ``frame_size``: LLaVA-OneVision, image-only models).
        patch_size: vision patch side in pixels.
        merge: patches merged per side into one LLM token.
        temporal_patch_size: frames merged into one temporal patch (2 for Qwen-VL, else 1).
        min_pixels: the processor's ``size["shortest_edge"]`` (qwen resizes).
        max_pixels: its ``size["longest_edge"]`` (qwen resizes).
        frame_size: (height, width) of a ``"fixed"`` geometry.
        cap_pixels_per_frame: the processor's qwen-vl-utils per-frame cap (frame size then
            depends on the frame count for Qwen2-VL too).
        max_video_tokens: the cap's token budget.
        num_frames: frames per clip assumed when a call does not say (None: one temporal
            patch, the largest frame size).
        tokens_per_video: extra tokens per clip (LLaVA-OneVision's newline token).
        pooled_side: LLaVA-OneVision: tokens per side of a pooled frame.
        canvas_tokens: tokens one codec canvas costs as an image when that is not a frame's
            (LLaVA-OneVision: ``num_image_tokens + 1``, unpooled); None: a frame's.
    """

    resize: Literal["qwen2", "qwen3", "fixed"]
    patch_size: int
    merge: int
    temporal_patch_size: int = 1
    min_pixels: int = 0
    max_pixels: int = 0
    frame_size: tuple[int, int] | None = None
    cap_pixels_per_frame: bool = False
    max_video_tokens: int = 0
    num_frames: int | None = None
    tokens_per_video: int = 0
    pooled_side: int | None = None
    canvas_tokens: int | None = None

    def __call__(self, height: int, width: int, num_frames: int | None = None) -> PatchConfig:
        """The :class:`~vidsel.results.PatchConfig` of ``num_frames`` frames of a
        ``height`` x ``width`` video (frame count padded to the temporal patch size)."""
        check_positive_int("height", height)
        check_positive_int("width", width)
        if self.resize == "fixed":
            if self.frame_size is None:  # pragma: no cover - built by HFAnswerer
                raise InvalidArgumentError("a fixed HFGeometry needs frame_size")
            return PatchConfig(self.patch_size, self.merge, self.frame_size)
        t = self._frames(num_frames)
        factor = self.patch_size * self.merge
        max_pixels = self.max_pixels
        try:
            if self.resize == "qwen3":
                mod = require("transformers.models.qwen3_vl.video_processing_qwen3_vl", _FEATURE,
                              extra="embed", needs="torch and transformers")
                if self.cap_pixels_per_frame:  # Qwen3VLVideoProcessor.resize
                    per_frame = max(min(self.max_video_tokens * factor * factor,
                                        self.max_pixels // t), int(self.min_pixels * 1.05))
                    max_pixels = per_frame * t
                h, w = mod.smart_resize(t, int(height), int(width),
                                        temporal_factor=self.temporal_patch_size, factor=factor,
                                        min_pixels=self.min_pixels, max_pixels=max_pixels)
            else:
                mod = require("transformers.models.qwen2_vl.video_processing_qwen2_vl", _FEATURE,
                              extra="embed", needs="torch and transformers")
                if self.cap_pixels_per_frame:  # Qwen2VLVideoProcessor.resize
                    total = int(self.max_video_tokens * factor * factor * 0.9)
                    max_pixels = max(min(max_pixels, total * self.temporal_patch_size // t),
                                     int(self.min_pixels * 1.05))
                h, w = mod.smart_resize(int(height), int(width), factor=factor,
                                        min_pixels=self.min_pixels, max_pixels=max_pixels)
        except ValueError as e:
            raise InvalidArgumentError(f"a {height} x {width} video: {e}") from None
        return PatchConfig(self.patch_size, self.merge, (int(h), int(w)))

    def _frames(self, num_frames: int | None) -> int:
        n = num_frames if num_frames is not None else self.num_frames
        n = check_positive_int("num_frames", n) if n is not None else self.temporal_patch_size
        return n + (-n % self.temporal_patch_size)

    def for_frames(self, num_frames: int) -> HFGeometry:
        """The same geometry assuming clips of ``num_frames`` frames (the budget), for
        callers that pass only ``(height, width)``."""
        return replace(self, num_frames=check_positive_int("num_frames", num_frames))

    def video_tokens(self, height: int, width: int, num_frames: int) -> int:
        """Visual tokens the model spends on ``num_frames`` frames of a ``height`` x ``width``
        video: Qwen-VL ``ceil(T / 2) * tokens_per_frame``; LLaVA-OneVision ``T * pooled + 1``.
        """
        t = check_positive_int("num_frames", num_frames)
        if self.pooled_side is not None:
            return t * self.pooled_side ** 2 + self.tokens_per_video
        cfg = self(height, width, t)
        pairs = self._frames(t) // self.temporal_patch_size
        return pairs * cfg.tokens_per_frame + self.tokens_per_video


def processor_geometry(processor: Any, config: Any) -> HFGeometry:
    """The :class:`HFGeometry` of a checkpoint's preprocessing, from its transformers processor
    and ``config`` (shared by the ``hf`` and ``vllm`` backends, which run the same processor).

    - Qwen2-VL / Qwen2.5-VL / Qwen3-VL: transformers' smart resize with the video processor's
      patch size, merge, pixel limits and per-frame cap.
    - LLaVA-OneVision: every frame resized to the processor's size and SigLIP's patch grid
      pooled 2 x 2 (384 px: 27 x 27 patches -> 14 x 14 = 196 tokens, stated as 392 x 392 with
      14 px patches merged 2 x 2).
    - other image-text models: the image processor's fixed size in whole patches, no merge.

    Raises:
        InvalidArgumentError: the image size of another model cannot be told.
    """
    family = str(getattr(config, "model_type", ""))
    if family in QWEN_FAMILIES:
        vp = processor.video_processor
        size = dict(vp.size)
        return HFGeometry(
            resize="qwen3" if family == "qwen3_vl" else "qwen2",
            patch_size=int(vp.patch_size), merge=int(vp.merge_size),
            temporal_patch_size=int(vp.temporal_patch_size),
            min_pixels=int(size["shortest_edge"]), max_pixels=int(size["longest_edge"]),
            cap_pixels_per_frame=bool(getattr(vp, "cap_pixels_per_frame", False)),
            max_video_tokens=int(getattr(vp, "max_video_tokens", 0) or 0))
    patch = int(getattr(getattr(config, "vision_config", None), "patch_size", 14) or 14)
    if family == "llava_onevision":
        side = math.ceil(math.isqrt(int(processor.num_image_tokens)) / 2)  # 27 -> 14
        return HFGeometry(resize="fixed", patch_size=patch, merge=2,
                          frame_size=(side * 2 * patch, side * 2 * patch),
                          tokens_per_video=1, pooled_side=side,
                          canvas_tokens=int(processor.num_image_tokens) + 1)
    ip = processor.image_processor
    size = dict(getattr(ip, "crop_size", None) or {}) or dict(ip.size)
    h = size.get("height", size.get("shortest_edge"))
    w = size.get("width", size.get("shortest_edge"))
    if not h or not w:
        raise InvalidArgumentError(f"a {family!r} model: cannot tell the image size its "
                                   f"processor resizes to (size={size})")
    return HFGeometry(resize="fixed", patch_size=patch, merge=1,
                      frame_size=(max(patch, int(h) // patch * patch),
                                  max(patch, int(w) // patch * patch)))


@dataclass
class _Prepared:
    """One request turned into processor inputs."""

    text: str
    video: np.ndarray | None = None
    metadata: Any = None
    images: list[np.ndarray] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def batch_key(self, stack_videos: bool) -> tuple[Any, ...]:
        if self.video is None:
            return ("images",)
        return ("video", tuple(self.video.shape) if stack_videos else None)


def _by_hand(backend: str, src: str) -> str:
    return (f"or download it where the hub is reachable (`hf download {src} --local-dir DIR`) "
            f"and use the model spec '{backend}:DIR'")


def model_source(target: str, allow_download: bool | None, *, backend: str,
                 extra: str = "embed") -> tuple[str, str, bool]:
    """``(name, folder or hub id, is a hub id to download)`` of the spec ``BACKEND:TARGET``
    (``hf`` / ``vllm``): a local folder; a hub id as its cached snapshot folder, or as is when
    downloads are allowed and the hub is on (else nothing touches the network). Raises
    ModelNotAvailableError (how to get the model) or MissingDependencyError (huggingface_hub)."""
    src = str(target)
    spec, local = f"{backend}:{src}", Path(src).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelNotAvailableError(
                f"{spec}: the model directory has no config.json: a Hugging Face model folder holds"
                f" config.json, the weights (*.safetensors), the processor and tokenizer files and "
                f"a chat template; get one with `hf download ORG/NAME --local-dir DIR`")
        return str(local.resolve()), str(local.resolve()), False
    if local.exists() or src.startswith((".", "/", "~")) or src.count("/") > 1:
        raise ModelNotAvailableError(f"{spec}: no model directory at {src!r} (and not a hub id "
                                     f"'org/name')")
    allowed, offline = downloads_allowed(allow_download), hub_offline_var()
    if allowed and not offline:
        return src, src, True
    hub = require("huggingface_hub", f"{spec} (a hub id)", extra=extra)
    try:
        hit = hub.try_to_load_from_cache(src, "config.json")
    except (ValueError, OSError):  # not a valid hub id, an unreadable cache
        hit = None
    if isinstance(hit, str):
        return src, str(Path(hit).parent), False
    why = (f"cannot be downloaded because {offline}={os.environ.get(offline)} is set: unset "
           f"{offline} to download it" if allowed and offline else
           f"vidsel downloads weights only when allowed: set {ALLOW_DOWNLOAD_ENV}=1 (Python: "
           f"allow_download=True) to fetch it")
    raise ModelNotAvailableError(f"{spec} is not available locally, and {why}, "
                                 f"{_by_hand(backend, src)}")


def _unavailable(name: str, hub: bool, err: Exception, what: str) -> ModelNotAvailableError:
    """The error for a model that could not be loaded (``hub``: fetched from the hub)."""
    reason = str(err).strip().rstrip(".")
    if not hub:
        return ModelNotAvailableError(f"cannot load the {what} of {name!r}: {reason}")
    return ModelNotAvailableError(f"could not download model {name!r}: {reason}. Check the name "
                                  f"and the network, {_by_hand('hf', name)}")


def video_frames(request: Request, family: str,
                 temporal_patch_size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(frames, indices, notes)`` of a frames request (``hf`` and ``vllm`` backends):
    (T', H, W, 3) uint8 frames and their (T',) source indices, the last repeated until T'
    divides by ``temporal_patch_size``, and notes on that padding and on Qwen3-VL time markers
    (``frame_index / fps``) more than half a frame off the frames' presentation times."""
    visual = request.visual
    frames = np.asarray(visual.frames, dtype=np.uint8)  # (T, H, W, 3)
    indices = np.asarray(visual.frame_indices, dtype=np.int64)  # (T,)
    if not len(frames):
        raise InvalidArgumentError(f"item {request.item_id!r}: no frames to show the model")
    notes: list[str] = []
    pad = -len(frames) % temporal_patch_size
    if pad:  # Qwen-VL merges frames in temporal pairs: repeat the last frame
        notes.append(f"padded {len(frames)} frames to {len(frames) + pad}: "
                     f"{_TITLES.get(family, family)} merges frames in pairs (the last frame "
                     f"repeated)")
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
        indices = np.concatenate([indices, np.repeat(indices[-1:], pad)])
    fps = float(visual.source_fps)
    if family == "qwen3_vl" and len(visual.timestamps_s) and fps > 0:
        drift = float(np.max(np.abs(np.asarray(visual.frame_indices) / fps
                                    - np.asarray(visual.timestamps_s))))
        if drift > 0.5 / fps:
            notes.append(f"time markers are frame_index / fps, {drift:.2f}s off the frames' "
                         f"presentation times (stream start offset or variable frame rate)")
    return frames, indices, notes


def canvas_content(request: Request) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """``(chat content, canvas images)`` of a codec-patch request (``hf`` and ``vllm``
    backends): an intro line, per canvas the times of the frames its patches come from
    (``"Canvas 1: patches from 0.0s, 1.5s"``) and an image item, then the prompt."""
    patches = request.visual.patches
    if patches is None:  # pragma: no cover - VisualInput checks it
        raise InvalidArgumentError("a patches VisualInput needs patches")
    canvases = patches.canvases()
    if canvases.images is None or not len(canvases):
        raise InvalidArgumentError(f"item {request.item_id!r}: no patches to show the model")
    content: list[dict[str, Any]] = [
        {"type": "text", "text": CANVAS_INTRO.format(n=len(canvases)) + "\n"}]
    for c in range(len(canvases)):
        times = np.unique(canvases.timestamps_s[c][canvases.valid[c]])  # sorted, no NaN
        labels = list(dict.fromkeys(f"{t:.1f}s" for t in times))
        content.append({"type": "text",
                        "text": f"Canvas {c + 1}: patches from {', '.join(labels)}\n"})
        content.append({"type": "image"})
    content.append({"type": "text", "text": request.prompt})
    return content, [np.ascontiguousarray(im) for im in canvases.images]


class HFAnswerer(Answerer):
    """A transformers VLM (processor + ``AutoModelForImageTextToText``) as an answerer.

    Build with :meth:`from_pretrained`, or wrap a model and processor already in memory.

    Args:
        model: a transformers image-text-to-text model (on its device, in eval mode).
        processor: its processor, with a chat template.
        name: the model's name in records (default ``hf:<name_or_path>``).
        max_batch: requests per ``generate`` call.

    Attributes:
        family: ``config.model_type``.
        kinds: ``("frames", "patches")`` for :data:`HF_FAMILIES`, ``("patches",)`` for other
            image-text models.
    """

    def __init__(self, model: Any, processor: Any, *, name: str | None = None,
                 max_batch: int = 4) -> None:
        self.model: Any = model
        self.processor = processor
        self.dtype = str(model.dtype).replace("torch.", "")
        self.max_batch = check_positive_int("max_batch", max_batch)
        config = model.config
        self.family = str(config.model_type)
        self.name = name or f"hf:{getattr(config, '_name_or_path', '') or self.family}"
        if getattr(processor, "chat_template", None) is None:
            raise InvalidArgumentError(
                f"{self.name} has no chat template (chat_template.jinja or "
                f"chat_template.json): vidsel lays out prompts with the model's own template; "
                f"use an instruct checkpoint or add its template to the folder")
        self.kinds = ("frames", "patches") if self.family in HF_FAMILIES else ("patches",)
        self._geometry = processor_geometry(processor, config)
        tok = processor.tokenizer
        self._mm_ids = {i for i in (getattr(processor, "video_token_id", None),
                                    getattr(processor, "image_token_id", None),
                                    getattr(config, "video_token_id", None),
                                    getattr(config, "image_token_id", None)) if i is not None}
        gen = copy.deepcopy(model.generation_config)
        gen.do_sample, gen.num_beams = False, 1
        gen.temperature = gen.top_p = gen.top_k = None
        if gen.pad_token_id is None:
            gen.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else \
                tok.eos_token_id
        self._generation = gen
        eos = gen.eos_token_id if gen.eos_token_id is not None else tok.eos_token_id
        self._stop = {int(e) for e in (eos if isinstance(eos, list) else [eos]) if e is not None}

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, target: str, *, device: str | None = None, dtype: str | None = None,
                        max_batch: int = 4, min_pixels: int | None = None,
                        max_pixels: int | None = None, allow_download: bool | None = None,
                        attn_implementation: str | None = None) -> HFAnswerer:
        """Load from a local folder or a hub id.

        Args:
            target: a model folder or a hub id (``Qwen/Qwen2.5-VL-7B-Instruct``).
            device: ``"cuda"``, ``"cuda:1"``, ``"cpu"``... (None: cuda when available).
            dtype: ``"bfloat16"``, ``"float16"``, ``"float32"`` (None / ``"auto"``: bfloat16 on
                a GPU, float32 on the CPU).
            max_batch: requests per ``generate`` call.
            min_pixels: override the video and image processors' ``size["shortest_edge"]``
                (Qwen-VL only): per frame for Qwen2-VL / Qwen2.5-VL and images, for the whole
                clip (``t x h x w``) for Qwen3-VL's video processor, as in transformers.
            max_pixels: the same for ``size["longest_edge"]``.
            allow_download: fetch a hub id that is not in the local cache (None: only when
                ``VIDSEL_ALLOW_DOWNLOAD=1``); otherwise a missing model fails at once.
            attn_implementation: transformers' attention backend (``"sdpa"``,
                ``"flash_attention_2"``, ``"eager"``; None: its default).

        Raises:
            ModelNotAvailableError: the model is not local and may not or cannot be
                downloaded, or its folder is incomplete; the message says how to provide it.
            InvalidArgumentError: not an image-text-to-text model, no chat template, or a bad
                option.
            MissingDependencyError: torch / transformers / torchvision are missing.
        """
        max_batch = check_positive_int("max_batch", max_batch)
        check_choice("dtype", "auto" if dtype is None else dtype, DTYPES)
        limits = {edge: check_positive_int(key, v) for key, edge, v in (
            ("min_pixels", "shortest_edge", min_pixels),
            ("max_pixels", "longest_edge", max_pixels)) if v is not None}
        name, load_from, hub = model_source(target, allow_download, backend="hf")
        torch = require("torch", _FEATURE, extra="embed", needs="torch and transformers")
        tf = require("transformers", _FEATURE, extra="embed", needs="torch and transformers")
        device = str(device) if device else ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype in (None, "auto"):
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        torch_dtype = getattr(torch, str(dtype))
        try:
            config = tf.AutoConfig.from_pretrained(load_from)
        except (OSError, ValueError) as e:
            raise _unavailable(name, hub, e, "configuration") from e
        family = str(config.model_type)
        image_text = tf.models.auto.modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
        if family not in HF_FAMILIES and family not in image_text:
            raise InvalidArgumentError(
                f"{name!r} is a {family!r} model, not an image-text-to-text model; the hf "
                f"answerer takes video with {', '.join(map(repr, HF_FAMILIES))} and codec "
                f"patches with any image-text-to-text model")
        if family not in QWEN_FAMILIES and limits:
            raise InvalidArgumentError(
                f"min_pixels / max_pixels set the Qwen-VL processors' pixel limits; {name!r} is "
                f"a {family!r} model with fixed frame sizes")
        try:
            processor = tf.AutoProcessor.from_pretrained(load_from)
        except (OSError, ValueError) as e:
            raise _unavailable(name, hub, e, "processor") from e
        except ImportError as e:
            raise MissingDependencyError(f"{_FEATURE} needs {e}") from e
        for sub in ("video_processor", "image_processor"):
            proc = getattr(processor, sub, None)
            if proc is not None and limits:
                proc.size = {**dict(proc.size), **limits}
        kw: dict[str, Any] = {"dtype": torch_dtype}
        if attn_implementation is not None:
            kw["attn_implementation"] = str(attn_implementation)
        try:
            model = tf.AutoModelForImageTextToText.from_pretrained(load_from, **kw)
        except ImportError as e:
            raise MissingDependencyError(f"{_FEATURE}: {e}") from e
        except (OSError, ValueError) as e:
            raise _unavailable(name, hub, e, "weights") from e
        model = model.to(device).eval()
        logger.info("loaded %s (%s) on %s/%s", name, family, device, dtype)
        return cls(model, processor, name=f"hf:{name}", max_batch=max_batch)

    # -- geometry -----------------------------------------------------------------------------
    def geometry(self) -> HFGeometry:
        """The picklable :class:`HFGeometry` of this model's frame preprocessing (call it
        with ``num_frames=`` or use :meth:`HFGeometry.for_frames` for Qwen3-VL, whose frame
        size depends on the number of frames)."""
        return self._geometry

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "family": self.family, "dtype": self.dtype}
        if self.family in QWEN_FAMILIES:
            d["pixels"] = [self._geometry.min_pixels, self._geometry.max_pixels]
        return d

    # -- generation ---------------------------------------------------------------------------
    def _prepare(self, request: Request) -> _Prepared:
        if self.model is None:
            raise InvalidArgumentError(f"{self.name} is closed")
        visual = request.visual
        if visual.kind not in self.kinds:
            raise InvalidArgumentError(
                f"{self.name} ({self.family}) takes {' and '.join(self.kinds)} inputs, not "
                f"{visual.kind}; video input needs one of {', '.join(HF_FAMILIES)}")
        if visual.kind == "frames":
            return self._prepare_frames(request, visual)
        content, images = canvas_content(request)
        notes = (["one canvas: LLaVA-OneVision's single-image (anyres) mode, more tokens than a "
                  "canvas among several"] if self.family == "llava_onevision"
                 and len(images) == 1 else [])
        return _Prepared(text=self._chat(content), images=images, notes=notes)

    def _chat(self, content: list[dict[str, Any]]) -> str:
        text: str = self.processor.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)
        return text

    def _prepare_frames(self, request: Request, visual: VisualInput) -> _Prepared:
        VideoMetadata = require("transformers.video_utils", _FEATURE, extra="embed",
                                needs="torch and transformers").VideoMetadata
        frames, indices, notes = video_frames(request, self.family,
                                              self._geometry.temporal_patch_size)
        metadata = VideoMetadata(
            total_num_frames=int(visual.num_frames), fps=float(visual.source_fps),
            width=int(frames.shape[2]), height=int(frames.shape[1]),
            duration=float(visual.duration_s), video_backend="vidsel",
            frames_indices=[int(i) for i in indices])
        text = self._chat([{"type": "video"}, {"type": "text", "text": request.prompt}])
        return _Prepared(text=text, video=frames, metadata=metadata, notes=notes)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        """One :class:`~vidsel.eval.Generation` per request, in order: greedy decoding,
        :attr:`max_batch` requests per ``generate`` call (requests whose inputs cannot share a
        batch, e.g. LLaVA-OneVision clips of different lengths, go in separate calls)."""
        requests = list(requests)
        prepared = [self._prepare(r) for r in requests]
        stack = self.family == "llava_onevision"  # its video processor stacks clips
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, p in enumerate(prepared):
            groups.setdefault(p.batch_key(stack), []).append(i)
        out: list[Generation | None] = [None] * len(requests)
        for members in groups.values():
            for start in range(0, len(members), self.max_batch):
                chunk = members[start:start + self.max_batch]
                for i, g in zip(chunk, self._run([requests[i] for i in chunk],
                                                 [prepared[i] for i in chunk])):
                    out[i] = g
        return [g for g in out if g is not None]

    def inputs(self, requests: Sequence[Request]) -> Any:
        """The processor's tensors for ``requests`` as one batch (what :meth:`generate` feeds
        the model; decode ``input_ids`` to see the prompts with their visual placeholders and
        Qwen3-VL's time markers).

        Returns:
            A transformers ``BatchFeature``: ``input_ids`` / ``attention_mask`` (B, L) left
            padded, and the model's pixel tensors (``pixel_values_videos``,
            ``video_grid_thw``...), on the model's device.

        Raises:
            InvalidArgumentError: a visual input the model cannot take, or requests that
                cannot share a batch (frames with patches; LLaVA-OneVision clips of different
                lengths).
        """
        return self._inputs(list(requests), [self._prepare(r) for r in requests])

    def _inputs(self, requests: list[Request], prepared: list[_Prepared]) -> Any:
        kinds = {p.video is None for p in prepared}
        if len(kinds) > 1:
            raise InvalidArgumentError("frames and patches requests cannot share a batch")
        kw: dict[str, Any] = {"text": [p.text for p in prepared], "padding": True,
                              "padding_side": "left", "return_tensors": "pt"}
        if prepared[0].video is not None:
            kw.update(videos=[p.video for p in prepared],
                      video_metadata=[p.metadata for p in prepared], do_sample_frames=False)
            if self.family in QWEN_FAMILIES:
                kw["cap_pixels_per_frame"] = self._geometry.cap_pixels_per_frame
        else:
            kw["images"] = [p.images for p in prepared]
        try:
            inputs = self.processor(**kw)
        except (ValueError, TypeError, IndexError) as e:
            what = ", ".join(repr(r.item_id) for r in requests)
            raise InvalidArgumentError(f"{self.name} ({self.family}) cannot take the visual "
                                       f"input of item(s) {what}: {e}") from e
        inputs = inputs.to(self.model.device)
        for key in [k for k in inputs if k.startswith("pixel_values")]:
            # only the pixels take the model's dtype (Qwen2.5-VL's second_per_grid_ts stays
            # float32: its temporal positions are rounded from it)
            inputs[key] = inputs[key].to(self.model.dtype)
        return inputs

    def _run(self, requests: list[Request], prepared: list[_Prepared]) -> list[Generation]:
        torch = require("torch", _FEATURE, extra="embed", needs="torch and transformers")
        inputs = self._inputs(requests, prepared)
        ids = inputs["input_ids"]  # (B, L), left padded
        gen = copy.deepcopy(self._generation)
        gen.max_new_tokens = max(r.max_new_tokens for r in requests)
        with torch.inference_mode():
            generated = self.model.generate(**inputs, generation_config=gen)
        new = generated[:, ids.shape[1]:].cpu().tolist()  # (B, <= max_new_tokens)
        mm = torch.zeros_like(ids, dtype=torch.bool)
        for token in self._mm_ids:
            mm |= ids == token
        visual_tokens = mm.sum(dim=1).cpu().tolist()
        prompt_tokens = inputs["attention_mask"].sum(dim=1).cpu().tolist()
        gens = []
        for row, r, p, vt, pt in zip(new, requests, prepared, visual_tokens, prompt_tokens):
            row = row[:r.max_new_tokens]
            cut = next((j for j, t in enumerate(row) if t in self._stop), len(row))
            text = self.processor.tokenizer.decode(row[:cut], skip_special_tokens=True)
            gens.append(Generation(text=text.strip(), visual_tokens=int(vt),
                                   prompt_tokens=int(pt), notes=tuple(p.notes)))
        return gens

    def close(self) -> None:
        """Drop the model (and free its GPU memory); idempotent."""
        if self.model is None:
            return
        on_gpu = str(self.model.device).startswith("cuda")
        self.model = None
        if on_gpu:
            require("torch", _FEATURE, extra="embed").cuda.empty_cache()

    def __repr__(self) -> str:
        return (f"HFAnswerer(name={self.name!r}, family={self.family!r}, "
                f"max_batch={self.max_batch})")
