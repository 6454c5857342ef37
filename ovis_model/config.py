"""Frozen configuration dataclasses, read from and written to an Ovis checkpoint's ``config.json``.

The on-disk layout is the official Ovis2.5 one::

    {"model_type": "ovis2_5",            # the public training code writes "ovis"
     "hidden_size": 2048,                # must equal llm_config.hidden_size
     "visual_vocab_size": 65536,
     "llm_config": {"model_type": "qwen3", ...},          # a transformers config dict
     "vit_config": {"model_type": "siglip2_navit", ...}}  # -> VisionConfig

``VisionConfig`` also carries a few vidsel fields (``position_scheme``, ``segment_mode``, ...);
official checkpoints do not have them and get the Ovis2.5 defaults. Fields that change results are
all honoured; values the implementation cannot honour are refused in ``__post_init__`` with an
:class:`~ovis_model.errors.InvalidArgumentError` naming the field.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from vidsel import errors as vidsel_errors
from vidsel.registry import Registry

from .constants import INDICATOR_IDS
from .errors import InvalidArgumentError

__all__ = [
    "HIDDEN_ACTS",
    "PRESETS",
    "OvisConfig",
    "PositionScheme",
    "SegmentMode",
    "VisionConfig",
    "preset",
]

logger = logging.getLogger(__name__)

PositionScheme = Literal["navit2d", "rope3d"]
SegmentMode = Literal["frame", "window", "item"]
_POSITION_SCHEMES = ("navit2d", "rope3d")
_SEGMENT_MODES = ("frame", "window", "item")
_LAYER_NORM_TYPES = ("layer_norm", "rms_norm")
#: ``hidden_act`` values the encoder implements: every parameter-free activation of transformers'
#: ``ACT2FN`` (what the public SigLIP / OneVision-Encoder MLPs accept). ``prelu`` and ``xielu``
#: carry learned parameters and are refused. ``vision._ACTIVATIONS`` implements these names.
HIDDEN_ACTS = (
    "gelu", "gelu_10", "gelu_accurate", "gelu_fast", "gelu_new", "gelu_python",
    "gelu_python_tanh", "gelu_pytorch_tanh", "hardswish", "laplace", "leaky_relu", "linear",
    "mish", "quick_gelu", "relu", "relu2", "relu6", "sigmoid", "silu", "sqrtsoftplus", "swish",
    "tanh",
)
_LLM_TYPES = ("qwen3", "qwen2")
_OVIS_TYPES = ("ovis2_5", "ovis")

# Keys that describe a file rather than the computation: kept for the round trip, never used.
_METADATA_KEYS = frozenset({
    "_attn_implementation_autoset", "_name_or_path", "architectures", "auto_map", "torch_dtype",
    "dtype", "transformers_version", "initializer_range", "initializer_factor", "use_cache",
    "output_hidden_states", "output_attentions", "return_dict", "use_return_dict",
    "vocab_size", "num_attention_heads", "max_position_embeddings", "multimodal_max_length",
    "tie_word_embeddings", "chunk_size_feed_forward", "is_encoder_decoder", "id2label",
    "label2id", "problem_type", "tokenizer_class", "pad_token_id", "bos_token_id",
    "eos_token_id",
})


def _bad(name: str, value: object, allowed: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{name}={value!r} is not supported; allowed: {allowed}")


#: Field annotations checked by :func:`_check_types` -> (accepted types, their description).
_SCALAR_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "bool": ((bool,), "true or false"),
    "str": ((str,), "a string"),
}


def _check_types(obj: Any, prefix: str) -> None:
    """Refuse a scalar field whose value has the wrong type (e.g. ``hidden_size="x"`` from a
    hand-edited config.json) with one clear error, before any arithmetic on it."""
    for f in fields(obj):
        spec = _SCALAR_TYPES.get(str(f.type))
        if spec is None:
            continue
        value = getattr(obj, f.name)
        ok = isinstance(value, spec[0]) and (f.type == "bool" or not isinstance(value, bool))
        if not ok:
            raise InvalidArgumentError(
                f"{prefix}{f.name}={value!r} must be {spec[1]}, got {type(value).__name__}")


def _int_tuple(name: str, value: Any) -> tuple[int, ...]:
    """``"0|3|7"`` or ``[0, 3, 7]`` -> ``(0, 3, 7)``."""
    items = value.split("|") if isinstance(value, str) else value
    try:
        return tuple(int(i) for i in items if i != "")
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"{name}={value!r} must be layer indices ('0|3|7' or [0, 3, 7])") from None


@dataclass(frozen=True)
class VisionConfig:
    """Shape and position scheme of the vision encoder (the ``vit_config`` block).

    The first group of fields is the official ``siglip2_navit`` config; the second group is vidsel's
    (absent from official checkpoints, where the defaults reproduce Ovis2.5 exactly).

    Attributes:
        position_scheme: ``"navit2d"`` = Ovis2.5 / SigLIP2-NaViT (learned table interpolated to the
            frame grid + 2-D rotary on (h, w)); ``"rope3d"`` = OneVision-style 3-D rotary on
            (t, h, w), split 4:6:6, interleaved rotation, t = source frame index.
        segment_mode: how the processor cuts attention segments: ``"frame"`` (one per frame, as
            Ovis2.5), ``"window"`` (``frames_per_segment`` consecutive source frames per segment, as
            OneVision) or ``"item"`` (one per image / video).
        pre_layernorm: LayerNorm on the patch embeddings before the first block (OneVision).
        patch_bias: whether the patch embedding has a bias (SigLIP yes, OneVision no).
        layer_norm_type: ``"layer_norm"`` or ``"rms_norm"`` for every norm of the encoder.
        post_layernorm: the encoder has a final norm (``post_layernorm``; SigLIP always, unused by
            Ovis; OneVision-Encoder only together with its pooling head).
        use_head: the attention-pooling head of OneVision-Encoder (``use_head``): a learned probe
            attends over each item's post-norm features, then RMSNorm + MLP with a residual;
            needs ``post_layernorm``.
    """

    model_type: str = "siglip2_navit"
    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 27
    num_attention_heads: int = 16
    num_channels: int = 3
    patch_size: int = 16
    image_size: int = 512
    hidden_act: str = "gelu_pytorch_tanh"
    layer_norm_eps: float = 1e-6
    attention_dropout: float = 0.0
    hidden_stride: int = 2
    temporal_patch_size: int = 1
    num_patches: int = -1
    preserve_original_pe: bool = True
    use_rope: bool = True
    window_size: int = 112
    fullatt_block_indexes: tuple[int, ...] | None = None
    # vidsel fields
    position_scheme: PositionScheme = "navit2d"
    rope_theta: float = 10000.0
    segment_mode: SegmentMode = "frame"
    frames_per_segment: int = 4
    pre_layernorm: bool = False
    patch_bias: bool = True
    layer_norm_type: str = "layer_norm"
    post_layernorm: bool = True
    use_head: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_types(self, "vit_config.")
        for name in ("hidden_size", "intermediate_size", "num_channels", "patch_size",
                     "image_size"):
            if getattr(self, name) < 1:
                raise _bad(f"vit_config.{name}", getattr(self, name), "an integer >= 1")
        if self.num_hidden_layers < 0:
            raise _bad("vit_config.num_hidden_layers", self.num_hidden_layers, "an integer >= 0")
        if not self.layer_norm_eps > 0:
            raise _bad("vit_config.layer_norm_eps", self.layer_norm_eps, "a number > 0")
        if not 0 <= self.attention_dropout < 1:
            raise _bad("vit_config.attention_dropout", self.attention_dropout, "a number in [0, 1)")
        if not self.rope_theta > 0:
            raise _bad("vit_config.rope_theta", self.rope_theta, "a number > 0")
        if self.hidden_act not in HIDDEN_ACTS:
            raise _bad("vit_config.hidden_act", self.hidden_act, str(list(HIDDEN_ACTS)))
        if self.use_head and not self.post_layernorm:
            raise InvalidArgumentError(
                "vit_config.use_head=True needs post_layernorm=True (the head pools the "
                "post-norm features)")
        fai = self.fullatt_block_indexes
        if fai is not None and (not isinstance(fai, tuple) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in fai)):
            raise InvalidArgumentError(
                f"vit_config.fullatt_block_indexes={fai!r} must be None or a tuple of ints")
        if self.num_attention_heads < 1:
            raise _bad("vit_config.num_attention_heads", self.num_attention_heads,
                       "an integer >= 1")
        if self.hidden_size % self.num_attention_heads:
            raise InvalidArgumentError(
                f"vit_config.hidden_size={self.hidden_size} is not divisible by "
                f"num_attention_heads={self.num_attention_heads}")
        if self.position_scheme not in _POSITION_SCHEMES:
            raise _bad("vit_config.position_scheme", self.position_scheme, str(_POSITION_SCHEMES))
        if self.segment_mode not in _SEGMENT_MODES:
            raise _bad("vit_config.segment_mode", self.segment_mode, str(_SEGMENT_MODES))
        if self.layer_norm_type not in _LAYER_NORM_TYPES:
            raise _bad("vit_config.layer_norm_type", self.layer_norm_type, str(_LAYER_NORM_TYPES))
        if self.temporal_patch_size != 1:
            # The official conv patch embedding cannot consume T > 1 either (in_channels = C).
            raise _bad("vit_config.temporal_patch_size", self.temporal_patch_size, "1")
        if self.hidden_stride < 1:
            raise _bad("vit_config.hidden_stride", self.hidden_stride, "an integer >= 1")
        if self.frames_per_segment < 1:
            raise _bad("vit_config.frames_per_segment", self.frames_per_segment, "an integer >= 1")
        hd = self.head_dim
        if self.use_rope and self.position_scheme == "navit2d" and hd % 4:
            raise InvalidArgumentError(
                f"vit_config: 2-D rotary needs head_dim divisible by 4, got head_dim={hd}")
        if self.use_rope and self.position_scheme == "rope3d" and (hd // 2) % 16:
            raise InvalidArgumentError(
                f"vit_config: the 4:6:6 3-D rotary needs head_dim/2 divisible by 16, got "
                f"head_dim={hd}")
        if self.preserve_original_pe:
            side = self.position_table_size
            if side * side != self.position_table_len:
                raise InvalidArgumentError(
                    f"vit_config.num_patches={self.num_patches} is not a square number")
        if self.fullatt_block_indexes is not None:
            if self.merged_window_size < 1:
                raise InvalidArgumentError(
                    f"vit_config.window_size={self.window_size} is smaller than one merged token "
                    f"(patch_size * hidden_stride = {self.patch_size * self.hidden_stride})")
            bad = [i for i in self.fullatt_block_indexes
                   if not 0 <= i < self.num_hidden_layers]
            if bad:
                raise InvalidArgumentError(
                    f"vit_config.fullatt_block_indexes={self.fullatt_block_indexes!r} names "
                    f"layers outside 0..{self.num_hidden_layers - 1}")

    # derived -------------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def patch_dim(self) -> int:
        """Length of one packed patch row: C * T * p * p."""
        return self.num_channels * self.temporal_patch_size * self.patch_size**2

    @property
    def position_table_len(self) -> int:
        if self.num_patches > 0:
            return self.num_patches
        return (self.image_size // self.patch_size) ** 2

    @property
    def position_table_size(self) -> int:
        """Side of the square learned position table."""
        if self.num_patches > 0:
            return round(self.num_patches**0.5)
        return self.image_size // self.patch_size

    @property
    def merged_window_size(self) -> int:
        """Window side in merged tokens (official: window_size // hidden_stride // patch_size)."""
        return self.window_size // self.hidden_stride // self.patch_size

    def uses_window_attention(self) -> bool:
        return self.fullatt_block_indexes is not None

    def layer_is_full_attention(self, index: int) -> bool:
        return self.fullatt_block_indexes is None or index in self.fullatt_block_indexes

    # serialisation ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VisionConfig:
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(
                f"vit_config must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)} - {"extra"}
        kwargs: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key in names:
                kwargs[key] = value
            else:
                if key not in _METADATA_KEYS:
                    logger.warning("vit_config: unknown field %r=%r kept but not used", key, value)
                extra[key] = value
        fai = kwargs.get("fullatt_block_indexes")
        if fai is not None:
            kwargs["fullatt_block_indexes"] = _int_tuple("vit_config.fullatt_block_indexes", fai)
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name == "extra":
                continue
            out[f.name] = getattr(self, f.name)
        fai = self.fullatt_block_indexes
        out["fullatt_block_indexes"] = None if fai is None else "|".join(str(i) for i in fai)
        return out


@dataclass(frozen=True)
class OvisConfig:
    """The whole model: LLM config dict + :class:`VisionConfig` + visual vocabulary.

    Attributes:
        llm_config: the transformers config dict of the LLM (``model_type`` "qwen3" or "qwen2");
            it is handed to ``AutoConfig.for_model`` unchanged, so every field is honoured there.
        vit_config: the vision encoder.
        visual_vocab_size: rows of the visual embedding table, indicator rows included.
        hidden_size: LLM width; must equal ``llm_config["hidden_size"]``.
    """

    llm_config: Mapping[str, Any]
    vit_config: VisionConfig
    visual_vocab_size: int = 65536
    hidden_size: int = 2048
    model_type: str = "ovis2_5"
    conversation_formatter_class: str = "Qwen3ConversationFormatter"
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_types(self, "")
        if not isinstance(self.llm_config, Mapping):
            raise InvalidArgumentError(
                f"llm_config must be a mapping (a transformers config dict), got "
                f"{type(self.llm_config).__name__}")
        if not isinstance(self.vit_config, VisionConfig):
            raise InvalidArgumentError(
                f"vit_config must be a VisionConfig, got {type(self.vit_config).__name__}")
        if self.model_type not in _OVIS_TYPES:
            raise _bad("model_type", self.model_type, str(_OVIS_TYPES))
        llm_type = self.llm_config.get("model_type")
        if llm_type not in _LLM_TYPES:
            raise _bad("llm_config.model_type", llm_type, str(_LLM_TYPES))
        if self.llm_config.get("hidden_size", -1) != self.hidden_size:
            raise InvalidArgumentError(
                f"hidden_size={self.hidden_size} differs from llm_config.hidden_size="
                f"{self.llm_config.get('hidden_size')}")
        if self.visual_vocab_size <= len(INDICATOR_IDS):
            raise InvalidArgumentError(
                f"visual_vocab_size={self.visual_vocab_size} must exceed the "
                f"{len(INDICATOR_IDS)} indicator slots")

    @property
    def num_indicators(self) -> int:
        return len(INDICATOR_IDS)

    @property
    def head_vocab_size(self) -> int:
        """Width of the visual head's output (visual vocabulary minus indicator slots)."""
        return self.visual_vocab_size - len(INDICATOR_IDS)

    @property
    def vocab_size(self) -> int:
        return int(self.llm_config["vocab_size"])

    @property
    def tie_word_embeddings(self) -> bool:
        return bool(self.llm_config.get("tie_word_embeddings", False))

    def replace(self, **changes: Any) -> OvisConfig:
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OvisConfig:
        if not isinstance(data, Mapping):
            raise InvalidArgumentError(f"config must be a JSON object, got {type(data).__name__}")
        data = dict(data)
        for key in ("llm_config", "vit_config"):
            if key not in data:
                raise InvalidArgumentError(f"config has no {key!r} block; not an Ovis2.5 config")
        if "visual_tokenizer_config" in data:
            raise InvalidArgumentError(
                "config has 'visual_tokenizer_config': this is an Ovis1.x/Ovis2 checkpoint; "
                "only the Ovis2.5 layout (llm_config + vit_config) is supported")
        llm = data.pop("llm_config")
        if not isinstance(llm, Mapping):
            raise InvalidArgumentError(
                f"llm_config must be a JSON object, got {type(llm).__name__}")
        llm = dict(llm)
        vit = VisionConfig.from_dict(data.pop("vit_config"))
        kwargs: dict[str, Any] = {}
        for name in ("visual_vocab_size", "hidden_size", "model_type",
                     "conversation_formatter_class"):
            if name in data:
                kwargs[name] = data.pop(name)
        for key, value in data.items():
            if key not in _METADATA_KEYS:
                logger.warning("config: unknown field %r=%r kept but not used", key, value)
        return cls(llm_config=llm, vit_config=vit, extra=data, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.extra)
        out.update(
            model_type=self.model_type,
            hidden_size=self.hidden_size,
            visual_vocab_size=self.visual_vocab_size,
            conversation_formatter_class=self.conversation_formatter_class,
            llm_config=dict(self.llm_config),
            vit_config=self.vit_config.to_dict(),
        )
        return out

    @classmethod
    def from_json_file(cls, path: str | Path) -> OvisConfig:
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    def to_json_file(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2, sort_keys=True)
            fh.write("\n")


# --------------------------------------------------------------------------------------------
# presets


def _qwen3(hidden: int, layers: int, heads: int, kv_heads: int, inter: int, *, head_dim: int,
           vocab: int = 151936, tie: bool = False) -> dict[str, Any]:
    return {
        "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"], "attention_bias": False,
        "attention_dropout": 0.0, "head_dim": head_dim, "hidden_act": "silu",
        "hidden_size": hidden, "intermediate_size": inter, "max_position_embeddings": 40960,
        "max_window_layers": layers, "num_attention_heads": heads, "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads, "rms_norm_eps": 1e-6, "rope_scaling": None,
        "rope_theta": 1000000.0, "sliding_window": None, "use_cache": True,
        "use_sliding_window": False, "vocab_size": vocab, "tie_word_embeddings": tie,
        "bos_token_id": 151643, "eos_token_id": 151645,
    }


_SIGLIP2_SO400M = VisionConfig()  # Ovis2.5's ViT: the defaults above

_ONEVISION_LARGE = VisionConfig(
    model_type="onevision_encoder", hidden_size=1024, intermediate_size=4096,
    num_hidden_layers=24, num_attention_heads=16, patch_size=14, image_size=448,
    hidden_act="gelu", layer_norm_eps=1e-6, preserve_original_pe=False, use_rope=True,
    position_scheme="rope3d", segment_mode="window", frames_per_segment=4,
    pre_layernorm=True, patch_bias=False,
)


def _ovis2_5_2b() -> OvisConfig:
    llm = _qwen3(2048, 28, 16, 8, 6144, head_dim=128, tie=True)
    return OvisConfig(llm_config=llm, vit_config=_SIGLIP2_SO400M, visual_vocab_size=65536,
                      hidden_size=2048)


def _ovis2_5_9b() -> OvisConfig:
    llm = _qwen3(4096, 36, 32, 8, 12288, head_dim=128, tie=False)
    return OvisConfig(llm_config=llm, vit_config=_SIGLIP2_SO400M, visual_vocab_size=65536,
                      hidden_size=4096)


def _onevision_2b() -> OvisConfig:
    llm = _qwen3(2048, 28, 16, 8, 6144, head_dim=128, tie=True)
    return OvisConfig(llm_config=llm, vit_config=_ONEVISION_LARGE, visual_vocab_size=65536,
                      hidden_size=2048)


def _tiny_llm(vocab: int = 1024) -> dict[str, Any]:
    llm = _qwen3(64, 2, 4, 2, 192, head_dim=16, vocab=vocab)
    llm.pop("bos_token_id")
    llm.pop("eos_token_id")
    return llm


def _tiny() -> OvisConfig:
    """The golden tiny checkpoint's shapes (../shared/golden/ovis2_5_tiny)."""
    vit = VisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, patch_size=16, image_size=64)
    return OvisConfig(llm_config=_tiny_llm(), vit_config=vit, visual_vocab_size=512,
                      hidden_size=64)


def _tiny_onevision() -> OvisConfig:
    vit = VisionConfig(model_type="onevision_encoder", hidden_size=64, intermediate_size=128,
                       num_hidden_layers=2, num_attention_heads=2, patch_size=16,
                       image_size=64, hidden_act="gelu", preserve_original_pe=False,
                       position_scheme="rope3d", segment_mode="window", frames_per_segment=4,
                       pre_layernorm=True, patch_bias=False)
    return OvisConfig(llm_config=_tiny_llm(), vit_config=vit, visual_vocab_size=512,
                      hidden_size=64)


#: Named presets: name -> factory of a fresh :class:`OvisConfig`. ``tiny`` matches the golden
#: checkpoint and is for tests. Add one with ``PRESETS.register(name, factory)``.
PRESETS: Registry[Callable[[], OvisConfig]] = Registry("preset")
PRESETS.register("ovis2.5-2b", _ovis2_5_2b)
PRESETS.register("ovis2.5-9b", _ovis2_5_9b)
PRESETS.register("onevision-2b", _onevision_2b)
PRESETS.register("tiny", _tiny)
PRESETS.register("tiny-onevision", _tiny_onevision)


def preset(name: str) -> OvisConfig:
    """Return the named preset config (see :data:`PRESETS`).

    Raises:
        InvalidArgumentError: ``name`` is not registered (the registry's message lists them).
    """
    try:
        factory = PRESETS.get(name)
    except vidsel_errors.InvalidArgumentError as exc:
        raise InvalidArgumentError(str(exc)) from None
    return factory()
