"""Public OneVision-Encoder checkpoints: ``config.json`` and key mapping onto the packed encoder.

A released OneVision-Encoder folder holds ``config.json`` (``model_type`` ``"onevision_encoder"``)
and ``model.safetensors`` (or a sharded index) with these keys (``D`` = hidden size)::

    embeddings.patch_embedding.weight                     (D, C, p, p)   conv, no bias
    layernorm_pre.{weight,bias}                           (D,)           bias absent for rms_norm
    encoder.layers.{i}.layer_norm1.{weight,bias}
    encoder.layers.{i}.self_attn.{q,k,v,out}_proj.{weight,bias}
    encoder.layers.{i}.layer_norm2.{weight,bias}
    encoder.layers.{i}.mlp.{fc1,fc2}.{weight,bias}
    layernorm_post.{weight,bias}                          only with use_head
    head.probe                                            (1, 1, D)      only with use_head
    head.attention.{in_proj_weight (3D, D), in_proj_bias (3D,), out_proj.{weight,bias}}
    head.norm.weight                                      RMSNorm, whatever layer_norm_type
    head.mlp.{fc1,fc2}.{weight,bias}

LLaVA-OneVision-2 stores the same tower under a prefix (``model.visual.`` / ``visual.``) with
fused attention projections: ``self_attn.qkv.{weight,bias}`` (rows ``[q; k; v]``) and
``self_attn.proj.*`` for ``out_proj``; :func:`load_onevision_state_dict` accepts both layouts.

Our :class:`~ovis_model.vision.VisionEncoder` keeps its own module names (``vision_model.*``);
this module maps between the two, strictly: a key that maps nowhere, a parameter without a
tensor, or a tensor of the wrong shape raises :class:`~ovis_model.errors.CheckpointError`.

Config mapping (public field -> :class:`~ovis_model.config.VisionConfig`): every public field
keeps its name (``hidden_size``, ``intermediate_size``, ``num_hidden_layers``,
``num_attention_heads``, ``num_channels``, ``image_size``, ``patch_size``, ``hidden_act``,
``layer_norm_eps``, ``layer_norm_type``, ``attention_dropout``, ``rope_theta``, ``use_head``);
``use_head`` also sets ``post_layernorm``. Fixed by the architecture: ``position_scheme="rope3d"``,
``pre_layernorm=True``, ``patch_bias=False``, ``preserve_original_pe=False``, ``use_rope=True``,
``segment_mode="item"`` (the public encoder attends over the whole input). ``rope_temporal_size``
only matters for the public dense 5-D input without positions; packed input always carries its
``(t, h, w)``, so it is only kept (in ``extra``, when written) for the round trip. Missing fields take the public
defaults; unknown ones are kept and logged.

Layering: below :mod:`ovis_model.vision` (which calls :func:`load_pretrained_encoder` /
:func:`save_pretrained_encoder`); this module knows configs and ``nn.Module`` s only.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from .checkpoint import (
    CONFIG_NAME,
    check_state_keys,
    dtype_name,
    load_state_dict,
    resolve_checkpoint_dir,
    saved_dtype,
    write_safetensors,
)
from .config import _METADATA_KEYS, HIDDEN_ACTS, VisionConfig
from .errors import CheckpointError, InvalidArgumentError

__all__ = [
    "MODEL_TYPE",
    "config_from_onevision",
    "config_to_onevision",
    "load_onevision_state_dict",
    "load_pretrained_encoder",
    "map_onevision_state_dict",
    "read_onevision_config",
    "save_pretrained_encoder",
    "to_onevision_state_dict",
]

logger = logging.getLogger(__name__)

MODEL_TYPE = "onevision_encoder"

#: The public ``OneVisionEncoderConfig`` defaults (applied to fields a config.json omits).
_DEFAULTS: dict[str, Any] = {
    "hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24,
    "num_attention_heads": 16, "num_channels": 3, "image_size": 448, "patch_size": 14,
    "hidden_act": "gelu", "layer_norm_eps": 1e-6, "layer_norm_type": "layer_norm",
    "attention_dropout": 0.0, "rope_theta": 10000.0, "rope_temporal_size": 64, "use_head": True,
}
_INT_FIELDS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
               "num_channels", "image_size", "patch_size")
_FLOAT_FIELDS = ("layer_norm_eps", "attention_dropout", "rope_theta")
#: OneVision fields that map 1:1 onto VisionConfig fields of the same name
_SAME_NAME = (*_INT_FIELDS, *_FLOAT_FIELDS, "hidden_act", "layer_norm_type", "use_head")
_LAYER_NORM_TYPES = ("layer_norm", "rms_norm")

# public key (prefix stripped) -> ours: first matching rule wins
_RENAMES: tuple[tuple[str, str], ...] = (
    ("embeddings.patch_embedding.", "vision_model.embeddings.patch_embedding."),
    ("layernorm_pre.", "vision_model.pre_layernorm."),
    ("layernorm_post.", "vision_model.post_layernorm."),
    ("encoder.layers.", "vision_model.encoder.layers."),
    ("head.", "vision_model.head."),
)
_FUSED = re.compile(r"^encoder\.layers\.(\d+)\.self_attn\.(qkv|proj)\.(weight|bias)$")

M = TypeVar("M", bound=nn.Module)


# --------------------------------------------------------------------------------------------
# config.json


def _field_error(name: str, value: object, want: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"onevision_encoder config: {name}={value!r} must be {want}")


def config_from_onevision(data: Mapping[str, Any], *,
                          defaults: Mapping[str, Any] | None = None) -> VisionConfig:
    """A public OneVision-Encoder ``config.json`` (as a dict) as a :class:`VisionConfig`.

    Args:
        data: the config dict; fields it omits take the public ``OneVisionEncoderConfig``
            defaults.
        defaults: other defaults for omitted fields, e.g. ``{"use_head": False}`` for the
            ``vision_config`` block of LLaVA-OneVision-2, whose class defaults ``use_head`` to
            false (its own fields, ``spatial_merge_size``, ``frame_windows_size``, ..., are the
            caller's: drop them first or they are kept as unknown fields, with a warning).

    Raises:
        CheckpointError: ``model_type`` is not ``"onevision_encoder"``.
        InvalidArgumentError: a field of the wrong type or an unsupported value (the message
            names the field and the allowed values).
    """
    if not isinstance(data, Mapping):
        raise InvalidArgumentError(f"config must be a JSON object, got {type(data).__name__}")
    model_type = data.get("model_type")
    if model_type != MODEL_TYPE:
        hint = {"ovis2_5": "; load Ovis checkpoints with OvisModel.from_pretrained",
                "ovis": "; load Ovis checkpoints with OvisModel.from_pretrained"}.get(
                    str(model_type), "")
        raise CheckpointError(f"config model_type={model_type!r} is not a OneVision-Encoder "
                              f"config (expected {MODEL_TYPE!r}){hint}")
    unknown_defaults = sorted(set(defaults or {}) - set(_DEFAULTS))
    if unknown_defaults:
        raise InvalidArgumentError(f"defaults={unknown_defaults} are not OneVision-Encoder "
                                   f"fields; allowed: {sorted(_DEFAULTS)}")
    values = {**_DEFAULTS, **(defaults or {}),
              **{k: v for k, v in data.items() if k in _DEFAULTS}}
    for name in _INT_FIELDS:
        v = values[name]
        if not isinstance(v, int) or isinstance(v, bool):
            raise _field_error(name, v, "an integer")
    for name in _FLOAT_FIELDS:
        v = values[name]
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise _field_error(name, v, "a number")
        values[name] = float(v)
    if not isinstance(values["use_head"], bool):
        raise _field_error("use_head", values["use_head"], "true or false")
    if values["hidden_act"] not in HIDDEN_ACTS:
        raise _field_error("hidden_act", values["hidden_act"],
                           f"one of {list(HIDDEN_ACTS)} (prelu / xielu carry learned "
                           "parameters and are not supported)")
    if values["layer_norm_type"] not in _LAYER_NORM_TYPES:
        raise _field_error("layer_norm_type", values["layer_norm_type"],
                           f"one of {list(_LAYER_NORM_TYPES)}")
    rts = values["rope_temporal_size"]
    if rts is not None and (not isinstance(rts, int) or isinstance(rts, bool) or rts < 1):
        raise _field_error("rope_temporal_size", rts, "null or an integer >= 1")
    # kept only when written (LLaVA-OneVision-2's vision_config has no such field)
    extra: dict[str, Any] = {"rope_temporal_size": rts} if "rope_temporal_size" in data else {}
    for key, value in data.items():
        if key in _DEFAULTS or key == "model_type":
            continue
        if key not in _METADATA_KEYS:
            logger.warning("onevision_encoder config: unknown field %r=%r kept but not used",
                           key, value)
        extra[key] = value
    kwargs = {name: values[name] for name in _SAME_NAME}
    try:
        return VisionConfig(
            model_type=MODEL_TYPE, post_layernorm=values["use_head"], position_scheme="rope3d",
            pre_layernorm=True, patch_bias=False, preserve_original_pe=False, use_rope=True,
            segment_mode="item", extra=extra, **kwargs)
    except InvalidArgumentError as exc:  # name the public field, not vit_config.*
        text = str(exc).replace("vit_config: ", "").replace("vit_config.", "")
        raise InvalidArgumentError(f"onevision_encoder config: {text}") from None


def config_to_onevision(config: VisionConfig) -> dict[str, Any]:
    """The public ``config.json`` dict of an encoder config (inverse of
    :func:`config_from_onevision`; kept extra fields written back).

    Raises:
        InvalidArgumentError: the config is not a OneVision-Encoder architecture (another
            position scheme, a learned position table, a patch bias, window attention, no
            pre-norm, or a post-norm without the head).
    """
    wrong = []
    if config.position_scheme != "rope3d" or not config.use_rope:
        wrong.append(f"position_scheme={config.position_scheme!r} (needs 'rope3d')")
    if config.preserve_original_pe:
        wrong.append("preserve_original_pe=True")
    if config.patch_bias:
        wrong.append("patch_bias=True")
    if not config.pre_layernorm:
        wrong.append("pre_layernorm=False")
    if config.fullatt_block_indexes is not None:
        wrong.append("window attention (fullatt_block_indexes)")
    if config.num_patches > 0:
        wrong.append("num_patches > 0 (linear patch embedding)")
    if config.post_layernorm != config.use_head:
        wrong.append(f"post_layernorm={config.post_layernorm} with use_head={config.use_head}")
    if wrong:
        raise InvalidArgumentError(
            "this encoder cannot be written as a OneVision-Encoder checkpoint: "
            + ", ".join(wrong))
    out: dict[str, Any] = {**config.extra}
    for name in _SAME_NAME:
        out[name] = getattr(config, name)
    out["model_type"] = MODEL_TYPE
    return out


def read_onevision_config(directory: Path) -> tuple[VisionConfig, torch.dtype]:
    """``config.json`` of a checkpoint folder and the dtype it was saved in (its ``torch_dtype``
    / ``dtype``; float32 when it names none).

    Raises:
        CheckpointError: not JSON, not a OneVision-Encoder config, an unknown dtype name.
        InvalidArgumentError: a bad field (the message names the file and the field).
    """
    path = directory / CONFIG_NAME
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from exc
    try:
        config = config_from_onevision(data)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{path}: {exc}") from None
    return config, saved_dtype(config.extra, directory)


# --------------------------------------------------------------------------------------------
# state dicts


def map_onevision_state_dict(state: Mapping[str, torch.Tensor], *, prefix: str = "",
                             skip: Iterable[str] = ()
                             ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename a OneVision-Encoder state dict to :class:`~ovis_model.vision.VisionEncoder` names.

    Args:
        state: tensors by name; keys not starting with ``prefix`` are ignored (e.g. the LLM of
            a LLaVA-OneVision-2 checkpoint).
        prefix: the tower's key prefix: ``""`` (a OneVision-Encoder folder), ``"model.visual."``
            or ``"visual."`` (LLaVA-OneVision-2).
        skip: sub-prefixes (after ``prefix``) that belong to someone else and are ignored, e.g.
            ``("merger.",)``.

    Returns:
        ``(mapped, unknown)``: ``mapped`` our key -> tensor (fused ``qkv`` split into
        ``q_proj``, ``k_proj``, ``v_proj`` in that order, ``proj`` renamed ``out_proj``);
        ``unknown`` the full names under ``prefix`` that map to nothing.
    """
    skips = tuple(skip)
    mapped: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for full, tensor in state.items():
        if not full.startswith(prefix):
            continue
        key = full[len(prefix):]
        if skips and key.startswith(skips):
            continue
        fused = _FUSED.match(key)
        if fused:
            layer, kind, param = fused.groups()
            base = f"vision_model.encoder.layers.{layer}.self_attn."
            if kind == "proj":
                mapped[f"{base}out_proj.{param}"] = tensor
            elif tensor.shape[0] % 3:
                raise CheckpointError(f"{full}: fused qkv of shape {tuple(tensor.shape)} does not "
                                      "split into three equal parts")
            else:
                q, k, v = tensor.chunk(3, dim=0)  # rows [q; k; v]
                for name, part in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
                    mapped[f"{base}{name}.{param}"] = part
            continue
        for public, ours in _RENAMES:
            if key.startswith(public):
                mapped[ours + key[len(public):]] = tensor
                break
        else:
            unknown.append(full)
    return mapped, unknown


_ROTARY = re.compile(r"^video_rope\.inv_freq_([thw])$")


def _drop_rotary_tables(state: Mapping[str, torch.Tensor], config: VisionConfig, prefix: str,
                        where: str | Path) -> Mapping[str, torch.Tensor]:
    """Accept ``video_rope.inv_freq_{t,h,w}`` (non-persistent in the public code, so normally
    absent; a checkpoint exported otherwise may carry them) when they equal the rotary tables
    the config implies, and drop them: the encoder computes them itself."""
    found = {k: t for k, t in state.items()
             if k.startswith(prefix) and _ROTARY.match(k[len(prefix):])}
    if not found:
        return state
    half = config.head_dim // 2
    sizes = {"t": 4 * (half // 16), "h": 6 * (half // 16), "w": 6 * (half // 16)}
    for key, table in found.items():
        m = _ROTARY.match(key[len(prefix):])
        if m is None:  # pragma: no cover - found holds only keys that matched
            continue
        n = sizes[m.group(1)]
        want = 1.0 / (config.rope_theta ** (torch.arange(n, dtype=torch.float32) / n))
        got = table.detach().float().cpu()
        if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-3, atol=0.0):
            raise CheckpointError(
                f"{where}: {key} of shape {tuple(got.shape)} is not the rotary table of "
                f"rope_theta={config.rope_theta}, head_dim={config.head_dim} ({n} frequencies "
                "theta^(-i/n)); the config does not match the weights")
    return {k: t for k, t in state.items() if k not in found}


def load_onevision_state_dict(encoder: nn.Module, state: Mapping[str, torch.Tensor], *,
                              prefix: str = "", skip: Iterable[str] = (),
                              where: str | Path = "state dict") -> None:
    """Load a OneVision-Encoder state dict (separate or fused attention keys) into ``encoder``,
    strictly, assigning the tensors (works on an encoder built on the ``meta`` device).

    Args:
        encoder: a :class:`~ovis_model.vision.VisionEncoder` whose config matches the weights.
        state: tensors by name, already in the wanted dtype / device.
        prefix, skip: see :func:`map_onevision_state_dict`.
        where: the checkpoint's name for error messages.

    ``video_rope.inv_freq_{t,h,w}`` tables, if a checkpoint carries them, are checked against
    the config and dropped (the encoder computes its rotary angles itself).

    Raises:
        CheckpointError: keys under ``prefix`` that map nowhere (unexpected), parameters of the
            encoder without a tensor (missing) or tensors of the wrong shape; all are listed.
    """
    config: VisionConfig = encoder.config  # type: ignore[assignment]
    state = _drop_rotary_tables(state, config, prefix, where)
    mapped, unknown = map_onevision_state_dict(state, prefix=prefix, skip=skip)
    check_state_keys(encoder.state_dict(), mapped, what="OneVision-Encoder", where=where,
                     unknown=unknown, hint=f" (names as in VisionEncoder; checkpoint keys under "
                                           f"prefix {prefix!r})")
    encoder.load_state_dict(mapped, strict=True, assign=True)


def to_onevision_state_dict(encoder: nn.Module, *, prefix: str = "",
                            fused: bool = False) -> dict[str, torch.Tensor]:
    """The encoder's weights under the public names (inverse of :func:`map_onevision_state_dict`).

    Args:
        prefix: prepended to every key.
        fused: write LLaVA-OneVision-2's ``self_attn.qkv`` / ``self_attn.proj`` instead of the
            separate ``{q,k,v,out}_proj``.
    """
    back = {ours: public for public, ours in _RENAMES}
    out: dict[str, torch.Tensor] = {}
    state = encoder.state_dict()
    for key, tensor in state.items():
        for ours, public in back.items():
            if key.startswith(ours):
                out[prefix + public + key[len(ours):]] = tensor.detach().contiguous()
                break
        else:  # pragma: no cover - every encoder parameter has a rule
            raise InvalidArgumentError(f"no OneVision-Encoder name for parameter {key!r}")
    if fused:
        pattern = re.compile(rf"^{re.escape(prefix)}encoder\.layers\.(\d+)\.self_attn\."
                             r"(q|k|v|out)_proj\.(weight|bias)$")
        groups: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
        for key in list(out):
            m = pattern.match(key)
            if m is None:
                continue
            layer, kind, param = m.groups()
            groups.setdefault((layer, param), {})[kind] = out.pop(key)
        for (layer, param), parts in groups.items():
            base = f"{prefix}encoder.layers.{layer}.self_attn."
            out[f"{base}qkv.{param}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
            out[f"{base}proj.{param}"] = parts["out"]
    return out


# --------------------------------------------------------------------------------------------
# folders


def load_pretrained_encoder(cls: Callable[..., M], path_or_hub_id: str | Path, *,
                            dtype: torch.dtype | None = None,
                            device: torch.device | str = "cpu", attn_impl: str = "sdpa",
                            allow_download: bool | None = None) -> M:
    """Build ``cls`` (:class:`~ovis_model.vision.VisionEncoder`) from a OneVision-Encoder folder
    or hub id: config mapped, weights loaded strictly, no random initialisation.

    Args:
        dtype: parameter dtype; None = the checkpoint's saved dtype (float32 when unnamed).
        device: where the weights go; ``attn_impl`` is resolved for it.
        allow_download: fetch a hub id that is not cached (None: only with
            ``VIDSEL_ALLOW_DOWNLOAD=1``); see :func:`ovis_model.checkpoint.resolve_checkpoint_dir`.
    """
    directory = resolve_checkpoint_dir(path_or_hub_id, allow_download=allow_download)
    config, saved = read_onevision_config(directory)
    dtype = saved if dtype is None else dtype
    with torch.device("meta"):
        encoder = cls(config, attn_impl=attn_impl, device=device, dtype=dtype)
    state = load_state_dict(directory, device=device, dtype=dtype)
    load_onevision_state_dict(encoder, state, where=directory)
    logger.info("loaded OneVision-Encoder %s (%s, %s, attention %s, head %s)", directory, dtype,
                device, attn_impl, config.use_head)
    return encoder.eval()


def save_pretrained_encoder(encoder: nn.Module, directory: str | Path, *,
                            max_shard_size: int = 5 * 2**30) -> Path:
    """Write ``encoder`` as a public OneVision-Encoder folder (``config.json`` +
    ``model.safetensors``, sharded above ``max_shard_size`` bytes)."""
    config: VisionConfig = encoder.config  # type: ignore[assignment]
    data = config_to_onevision(config)
    dtype = next(encoder.parameters()).dtype
    data["torch_dtype"] = dtype_name(dtype)
    if "dtype" in data:
        data["dtype"] = data["torch_dtype"]
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / CONFIG_NAME, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    files = write_safetensors(to_onevision_state_dict(encoder), out,
                              max_shard_size=max_shard_size)
    logger.info("saved OneVision-Encoder in %d file(s) to %s", files, out)
    return out
