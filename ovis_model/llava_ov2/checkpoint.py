"""Released LLaVA-OneVision-2 checkpoints: key mapping, strict loading and saving.

Released key layout (transformers-5 remote code; no ``_checkpoint_conversion_mapping``)::

    lm_head.weight                                (V, D_llm); absent when tied
    model.language_model.*                        stock Qwen3 names (embed_tokens, layers, norm)
    model.visual.embeddings.patch_embedding.weight, model.visual.layernorm_pre.*,
    model.visual.encoder.layers.{i}.{layer_norm1, layer_norm2, mlp.fc1, mlp.fc2}.*,
    model.visual.encoder.layers.{i}.self_attn.{qkv, proj}.*      fused q/k/v rows [q; k; v]
    model.visual.merger.{ln_q, mlp.0, mlp.2}.*  (+ pos_emb_h / pos_emb_w when configured)

The older layout ``visual.*`` / ``model.*`` (LLM) / ``lm_head.weight`` loads too. Ours:
``visual.vision_model.*`` (:func:`ovis_model.onevision_encoder.load_onevision_state_dict` maps the
tower, fused or separate attention keys), ``merger.*``, ``llm.model.*``, ``llm.lm_head.weight``.
Everything is strict: a key that maps nowhere, a parameter without a tensor or a wrong shape
raises :class:`~ovis_model.errors.CheckpointError` listing them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from ..checkpoint import (
    CONFIG_NAME,
    check_state_keys,
    dtype_name,
    load_state_dict,
    materialise_buffers,
    resolve_checkpoint_dir,
    saved_dtype,
    write_safetensors,
)
from ..errors import CheckpointError
from ..onevision_encoder import load_onevision_state_dict, to_onevision_state_dict
from .config import LlavaOV2Config

__all__ = ["load_llava_ov2", "released_layout", "save_llava_ov2"]

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=nn.Module)

#: (vision prefix, LLM prefix) of the released layout and of the older one
_LAYOUTS = (("model.visual.", "model.language_model."), ("visual.", "model."))
_LM_HEAD = "lm_head.weight"


def released_layout(keys: Iterable[str]) -> tuple[str, str]:
    """(vision prefix, LLM prefix) the checkpoint's keys use.

    Raises:
        CheckpointError: neither layout (no vision tower keys).
    """
    names = list(keys)
    for vision, llm in _LAYOUTS:
        if any(k.startswith(vision) for k in names):
            return vision, llm
    raise CheckpointError(
        f"no LLaVA-OneVision-2 vision tower in the weights (expected keys under "
        f"{_LAYOUTS[0][0]!r} or {_LAYOUTS[1][0]!r}; found e.g. {sorted(names)[:4]})")


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], *, what: str,
                 where: Path | str, optional: tuple[str, ...] = ()) -> None:
    check_state_keys(module.state_dict(), state, what=what, where=where, optional=optional)
    module.load_state_dict(state, strict=False, assign=True)


def load_llava_ov2(cls: Callable[..., M], path_or_hub_id: str | Path, *,
                   dtype: torch.dtype | None = None, device: torch.device | str = "cpu",
                   attn_impl: str = "sdpa", llm_attn_impl: str = "sdpa",
                   allow_download: bool | None = None) -> M:
    """Build ``cls`` (:class:`~ovis_model.llava_ov2.LlavaOneVision2Model`) on the ``meta``
    device and assign the checkpoint's tensors (no random init runs)."""
    directory = resolve_checkpoint_dir(path_or_hub_id, allow_download=allow_download)
    config = LlavaOV2Config.from_json_file(directory / CONFIG_NAME)
    if dtype is None:
        dtype = saved_dtype(config.extra, directory)
    with torch.device("meta"):
        model: Any = cls(config, attn_impl=attn_impl, llm_attn_impl=llm_attn_impl,
                         device=device, dtype=dtype)
    state = load_state_dict(directory, device=device, dtype=dtype)
    vision_prefix, llm_prefix = released_layout(state.keys())
    merger_prefix = vision_prefix + "merger."
    load_onevision_state_dict(model.visual, state, prefix=vision_prefix, skip=("merger.",),
                              where=directory)
    merger = {k[len(merger_prefix):]: v for k, v in state.items() if k.startswith(merger_prefix)}
    _load_strict(model.merger, merger, what="merger", where=directory)
    llm_state: dict[str, torch.Tensor] = {}
    other: list[str] = []
    for key, tensor in state.items():
        if key.startswith(vision_prefix):
            continue
        if key.startswith(llm_prefix):
            llm_state["model." + key[len(llm_prefix):]] = tensor
        elif key == _LM_HEAD:
            llm_state[_LM_HEAD] = tensor
        else:
            other.append(key)
    if other:
        raise CheckpointError(f"{directory}: keys that belong to no part of LLaVA-OneVision-2: "
                              f"{sorted(other)[:8]}")
    tied = config.tie_word_embeddings
    head = llm_state.get(_LM_HEAD)
    embed = llm_state.get("model.embed_tokens.weight")
    if tied and head is not None and (embed is None or not torch.equal(head, embed)):
        # as transformers does: a stored head that differs from the embedding is used, untied
        logger.warning("%s: tie_word_embeddings is true but the checkpoint stores an lm_head "
                       "that differs from the input embedding; using the stored lm_head "
                       "(not tied)", directory)
        tied = False
    if tied:
        llm_state.pop(_LM_HEAD, None)
    _load_strict(model.llm, llm_state, what="LLM", where=directory,
                 optional=(_LM_HEAD,) if tied else ())
    llm: Any = model.llm
    if tied:
        llm.get_output_embeddings().weight = llm.get_input_embeddings().weight
    materialise_buffers(model, device)
    meta = [n for n, p in model.named_parameters() if p.is_meta]
    if meta:
        raise CheckpointError(f"{directory}: parameters left unloaded: {meta[:8]}")
    logger.info("loaded LLaVA-OneVision-2 %s (%s, %s, vision attention %s, llm attention %s)",
                directory, dtype, device, attn_impl, llm_attn_impl)
    return model.eval()  # type: ignore[no-any-return]


def save_llava_ov2(model: Any, directory: str | Path, *,
                   max_shard_size: int = 5 * 2**30) -> Path:
    """Write ``config.json`` and safetensors with the released key names (fused ``qkv``)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config: LlavaOV2Config = model.config
    config.replace(extra={**config.extra, "torch_dtype": dtype_name(model.dtype)}).to_json_file(
        out / CONFIG_NAME)
    vision_prefix, llm_prefix = _LAYOUTS[0]
    state = to_onevision_state_dict(model.visual, prefix=vision_prefix, fused=True)
    for key, tensor in model.merger.state_dict().items():
        state[f"{vision_prefix}merger.{key}"] = tensor.detach().contiguous()
    for key, tensor in model.llm.state_dict().items():
        if key.startswith("model."):
            state[llm_prefix + key[len("model."):]] = tensor.detach().contiguous()
        elif key == _LM_HEAD and not config.tie_word_embeddings:
            state[key] = tensor.detach().contiguous()
    write_safetensors(state, out, max_shard_size=max_shard_size)
    return out
