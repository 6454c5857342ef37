"""``LlavaOV2Config``: a released LLaVA-OneVision-2 ``config.json``, read without remote code.

On-disk layout (model_type ``"llava_onevision2"``; the 8B release's values)::

    {"model_type": "llava_onevision2",
     "image_token_id": 151655, "video_token_id": 151656,          # <|image_pad|>, <|video_pad|>
     "vision_start_token_id": 151652, "vision_end_token_id": 151653,
     "tie_word_embeddings": false,
     "vision_config": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                       "patch_size": 14, "spatial_merge_size": 2, "out_hidden_size": 4096,
                       "frame_windows_size": 4, "layer_norm_type": "layer_norm", ...},
     "text_config": {"model_type": "qwen3", "hidden_size": 4096, ...}}   # a transformers dict

``vision_config`` is a OneVision-Encoder config (read by
:func:`ovis_model.onevision_encoder.config_from_onevision`, ``use_head`` defaulting to false as in
the LLaVA-OneVision-2 class) plus the merger's fields: ``spatial_merge_size`` (the class default is
3; the 8B says 2 - always read from the file), ``out_hidden_size`` (the LLM width),
``frame_windows_size`` (canvases per attention window, default 4),
``use_patch_position_encoding`` / ``patch_position_encoding_type`` / ``max_position_embeddings``
(the optional absolute (h, w) tables added after the merger; off in the release).
``text_config`` goes to ``transformers.AutoConfig.for_model`` unchanged (Qwen3 or Qwen2).
Unknown fields are kept for the round trip and logged; values that cannot be honoured raise
:class:`~ovis_model.errors.InvalidArgumentError` naming the field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from vidsel import errors as vidsel_errors
from vidsel.registry import Registry

from ..config import _METADATA_KEYS, VisionConfig
from ..errors import CheckpointError, InvalidArgumentError, ModelNotAvailableError
from ..onevision_encoder import config_from_onevision, config_to_onevision

__all__ = ["LLAVA_OV2_PRESETS", "MODEL_TYPE", "LlavaOV2Config", "llava_ov2_preset"]

logger = logging.getLogger(__name__)

MODEL_TYPE = "llava_onevision2"
_LLM_TYPES = ("qwen3", "qwen2")
#: LLaVA-OneVision-2's own vision_config fields (the rest is OneVision-Encoder's)
_MERGER_FIELDS = ("spatial_merge_size", "out_hidden_size", "frame_windows_size",
                  "use_patch_position_encoding", "patch_position_encoding_type",
                  "max_position_embeddings")
#: vision_config fields the released file carries that change nothing here
_VISION_INERT = ("text_hidden_size", "tokens_per_second", "temporal_patch_size", "model_type",
                 "initializer_range")
_TOKEN_FIELDS = ("image_token_id", "video_token_id", "vision_start_token_id",
                 "vision_end_token_id")


def _int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgumentError(
            f"llava_onevision2 config: {name}={value!r} must be an integer >= {minimum}")
    return value


@dataclass(frozen=True)
class LlavaOV2Config:
    """The whole LLaVA-OneVision-2 model.

    Attributes:
        vision: the OneVision-Encoder tower (its ``hidden_stride`` is ``spatial_merge_size``).
        text_config: the transformers config dict of the LLM (Qwen3 in the release).
        out_hidden_size: merger output width (= the LLM's hidden size).
        frame_windows_size: grid-row frames per attention window (a row of ``t`` canvases
            attends in windows of this many; single frames and images attend alone).
        use_patch_position_encoding: add learned ``(h, w)`` tables after the merger.
        max_position_embeddings: rows of those tables.
        image_token_id, video_token_id, vision_start_token_id, vision_end_token_id: the
            special tokens (released ids 151655, 151656, 151652, 151653).
        tie_word_embeddings: ``lm_head`` shares the input embedding (false in the release).
        extra: other top-level fields, kept for the round trip.
    """

    vision: VisionConfig
    text_config: Mapping[str, Any]
    out_hidden_size: int
    frame_windows_size: int = 4
    use_patch_position_encoding: bool = False
    patch_position_encoding_type: str = "absolute"
    max_position_embeddings: int = 8192
    image_token_id: int = 151655
    video_token_id: int = 151656
    vision_start_token_id: int = 151652
    vision_end_token_id: int = 151653
    tie_word_embeddings: bool = False
    vision_extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.text_config, Mapping):
            raise InvalidArgumentError("llava_onevision2 config: text_config must be a JSON "
                                       f"object, got {type(self.text_config).__name__}")
        llm_type = self.text_config.get("model_type")
        if llm_type not in _LLM_TYPES:
            raise InvalidArgumentError(
                f"llava_onevision2 config: text_config.model_type={llm_type!r} is not supported; "
                f"allowed: {list(_LLM_TYPES)}")
        hidden = self.text_config.get("hidden_size")
        _int("out_hidden_size", self.out_hidden_size)
        if hidden != self.out_hidden_size:
            raise InvalidArgumentError(
                f"llava_onevision2 config: vision_config.out_hidden_size={self.out_hidden_size} "
                f"must equal text_config.hidden_size={hidden} (the merger feeds the LLM)")
        vocab = self.text_config.get("vocab_size")
        _int("text_config.vocab_size", vocab)
        _int("frame_windows_size", self.frame_windows_size)
        _int("max_position_embeddings", self.max_position_embeddings)
        for name in _TOKEN_FIELDS:
            _int(name, getattr(self, name), 0)
        outside = [f"{n}={getattr(self, n)}" for n in _TOKEN_FIELDS if getattr(self, n) >= vocab]
        if outside:
            raise InvalidArgumentError(
                f"llava_onevision2 config: {', '.join(outside)} outside the vocabulary "
                f"(text_config.vocab_size={vocab})")
        if len({getattr(self, n) for n in _TOKEN_FIELDS}) != len(_TOKEN_FIELDS):
            raise InvalidArgumentError(
                "llava_onevision2 config: image / video / vision start / vision end token ids "
                "must differ")
        for name in ("use_patch_position_encoding", "tie_word_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidArgumentError(
                    f"llava_onevision2 config: {name}={getattr(self, name)!r} must be true or "
                    "false")
        if self.patch_position_encoding_type != "absolute":
            raise InvalidArgumentError(
                f"llava_onevision2 config: patch_position_encoding_type="
                f"{self.patch_position_encoding_type!r} is not supported; allowed: ['absolute']")
        if self.vision.use_head:
            raise InvalidArgumentError(
                "llava_onevision2 config: vision_config.use_head=true is not supported (the "
                "released model feeds the merger the last layer's patch features, no pooling head)")

    # derived -------------------------------------------------------------------------------
    @property
    def spatial_merge_size(self) -> int:
        """Patches per side of one visual token (the vision config's ``hidden_stride``)."""
        return self.vision.hidden_stride

    @property
    def merge_unit(self) -> int:
        """Patches per visual token (``spatial_merge_size ** 2``)."""
        return self.vision.hidden_stride ** 2

    @property
    def vocab_size(self) -> int:
        """The LLM's vocabulary size (``text_config.vocab_size``, checked at construction)."""
        return int(self.text_config["vocab_size"])

    def replace(self, **changes: Any) -> LlavaOV2Config:
        return replace(self, **changes)

    # serialisation ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LlavaOV2Config:
        """Read a released ``config.json`` dict.

        Raises:
            CheckpointError: ``model_type`` is not ``"llava_onevision2"``.
            InvalidArgumentError: a field of the wrong type or an unsupported value.
        """
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(f"config must be a JSON object, got {type(data).__name__}")
        if data.get("model_type") != MODEL_TYPE:
            raise CheckpointError(
                f"config model_type={data.get('model_type')!r} is not a LLaVA-OneVision-2 config "
                f"(expected {MODEL_TYPE!r}); ovis_model.load_model() picks the right class")
        data = dict(data)
        vision_raw = data.pop("vision_config", None)
        text = data.pop("text_config", None)
        if not isinstance(vision_raw, Mapping) or not isinstance(text, Mapping):
            raise InvalidArgumentError(
                "llava_onevision2 config needs vision_config and text_config objects")
        vision_raw = dict(vision_raw)
        merger: dict[str, Any] = {k: vision_raw.pop(k) for k in _MERGER_FIELDS
                                  if k in vision_raw}
        vision_extra = {k: vision_raw.pop(k) for k in _VISION_INERT if k in vision_raw}
        if vision_extra.get("temporal_patch_size", 1) != 1:
            raise InvalidArgumentError(
                f"llava_onevision2 config: vision_config.temporal_patch_size="
                f"{vision_extra['temporal_patch_size']!r} is not supported; allowed: 1")
        merge = _int("vision_config.spatial_merge_size", merger.get("spatial_merge_size", 3))
        vision_raw["model_type"] = "onevision_encoder"
        vision = config_from_onevision(vision_raw, defaults={"use_head": False})
        vision = replace(vision, hidden_stride=merge, segment_mode="item")
        kwargs: dict[str, Any] = {}
        for name in _TOKEN_FIELDS:
            if name in data:
                kwargs[name] = data.pop(name)
        tie = data.pop("tie_word_embeddings", text.get("tie_word_embeddings", False))
        for key, value in data.items():
            if key not in _METADATA_KEYS and key != "model_type":
                logger.warning("llava_onevision2 config: unknown field %r=%r kept but not used",
                               key, value)
        data.pop("model_type", None)
        out_hidden: Any = merger.get("out_hidden_size", text.get("hidden_size", 0))
        return cls(
            vision=vision, text_config=dict(text),
            out_hidden_size=out_hidden,
            frame_windows_size=merger.get("frame_windows_size", 4),
            use_patch_position_encoding=merger.get("use_patch_position_encoding", False),
            patch_position_encoding_type=merger.get("patch_position_encoding_type", "absolute"),
            max_position_embeddings=merger.get("max_position_embeddings", 8192),
            tie_word_embeddings=tie, vision_extra=vision_extra, extra=data, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The released ``config.json`` layout (inverse of :meth:`from_dict`)."""
        vision = config_to_onevision(replace(self.vision, segment_mode="item"))
        vision.update(self.vision_extra)
        vision.update(spatial_merge_size=self.spatial_merge_size,
                      out_hidden_size=self.out_hidden_size,
                      frame_windows_size=self.frame_windows_size)
        if self.use_patch_position_encoding:
            vision.update(use_patch_position_encoding=True,
                          patch_position_encoding_type=self.patch_position_encoding_type,
                          max_position_embeddings=self.max_position_embeddings)
        out: dict[str, Any] = dict(self.extra)
        out.update(model_type=MODEL_TYPE,
                   architectures=["LlavaOnevision2ForConditionalGeneration"],
                   vision_config=vision,
                   text_config={**self.text_config,
                                "tie_word_embeddings": self.tie_word_embeddings},
                   tie_word_embeddings=self.tie_word_embeddings,
                   **{name: getattr(self, name) for name in _TOKEN_FIELDS})
        out.pop("auto_map", None)  # no remote code is needed to read what we write
        return out

    @classmethod
    def from_json_file(cls, path: str | Path) -> LlavaOV2Config:
        """Read a ``config.json``.

        Raises:
            ModelNotAvailableError: no such file.
            CheckpointError: not JSON, or not a LLaVA-OneVision-2 config.
        """
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError as exc:
            raise ModelNotAvailableError(f"{path}: no such config file") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path}: not a JSON config ({exc})") from exc
        return cls.from_dict(data)

    def to_json_file(self, path: str | Path) -> None:
        """Write the released ``config.json`` layout (:meth:`to_dict`)."""
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2, sort_keys=True)
            fh.write("\n")


# --------------------------------------------------------------------------------------------
# presets


def _qwen3_text(hidden: int, layers: int, heads: int, kv_heads: int, inter: int, *,
                head_dim: int, vocab: int, rope_theta: float) -> dict[str, Any]:
    return {"model_type": "qwen3", "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kv_heads,
            "intermediate_size": inter, "head_dim": head_dim, "vocab_size": vocab,
            "hidden_act": "silu", "rms_norm_eps": 1e-6, "attention_bias": False,
            "max_position_embeddings": 40960, "rope_theta": rope_theta,
            "tie_word_embeddings": False, "use_sliding_window": False}


def _vision(hidden: int, layers: int, heads: int, inter: int, *, merge: int) -> VisionConfig:
    base = config_from_onevision(
        {"model_type": "onevision_encoder", "hidden_size": hidden, "num_hidden_layers": layers,
         "num_attention_heads": heads, "intermediate_size": inter, "patch_size": 14,
         "image_size": 448, "hidden_act": "gelu", "layer_norm_eps": 1e-6,
         "rope_temporal_size": None}, defaults={"use_head": False})
    return replace(base, hidden_stride=merge, segment_mode="item")


def _llava_ov2_8b() -> LlavaOV2Config:
    """The released 8B's shapes: OneVision-Encoder-L (24 x 1024, patch 14) + Qwen3-8B."""
    text = _qwen3_text(4096, 36, 32, 8, 12288, head_dim=128, vocab=151936, rope_theta=1e6)
    return LlavaOV2Config(vision=_vision(1024, 24, 16, 4096, merge=2), text_config=text,
                          out_hidden_size=4096)


def _tiny_llava_ov2() -> LlavaOV2Config:
    """The golden tiny checkpoint's shapes (tests/model/golden/llava_onevision2_tiny)."""
    text = _qwen3_text(64, 2, 4, 2, 96, head_dim=16, vocab=300, rope_theta=1e6)
    return LlavaOV2Config(vision=_vision(64, 2, 2, 128, merge=2), text_config=text,
                          out_hidden_size=64, image_token_id=272, video_token_id=273,
                          vision_start_token_id=270, vision_end_token_id=271)


#: LLaVA-OneVision-2 presets: ``"llava-ov2-8b"`` (the release's shapes) and
#: ``"tiny-llava-ov2"`` (tests). Add one with ``LLAVA_OV2_PRESETS.register(name, factory)``.
LLAVA_OV2_PRESETS: Registry[Callable[[], LlavaOV2Config]] = Registry("LLaVA-OneVision-2 preset")
LLAVA_OV2_PRESETS.register("llava-ov2-8b", _llava_ov2_8b)
LLAVA_OV2_PRESETS.register("tiny-llava-ov2", _tiny_llava_ov2)


def llava_ov2_preset(name: str) -> LlavaOV2Config:
    """The named preset config (:data:`LLAVA_OV2_PRESETS`).

    Raises:
        InvalidArgumentError: an unknown name (the message lists the known ones).
    """
    try:
        factory = LLAVA_OV2_PRESETS.get(name)
    except vidsel_errors.InvalidArgumentError as exc:
        raise InvalidArgumentError(str(exc)) from None
    return factory()
