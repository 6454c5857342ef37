"""``OvisModel``: visual tokenizer + visual embedding table + a transformers Qwen LLM.

Data flow for one call (shapes for batch 1)::

    pixel_values (N, C*p*p), positions (N, 3), cu_seqlens (S+1,)
      -> VisualTokenizer -> tokens (M, V) with M = N / s^2
      -> vte: tokens @ vte.weight -> visual embeds (M, D_llm)
    input_ids (B, L) with placeholders (-300 atoms, -301..-304 indicators)
      -> text embeddings with atoms / indicators replaced -> inputs_embeds (B, L, D_llm)
      -> llm(inputs_embeds=..., attention_mask=...) -> logits (B, L, vocab)

The LLM is built from ``config.llm_config`` with ``AutoModelForCausalLM.from_config`` (no remote
code). Weights load through :mod:`ovis_model.checkpoint`.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from . import checkpoint
from ._optional import require
from .config import OvisConfig
from .constants import INDICATOR_IDS, VISUAL_ATOM_ID
from .errors import InvalidArgumentError
from .positions import layout_from_grids
from .visual_tokenizer import VisualEmbedding, VisualTokenizer, VisualTokens

__all__ = [
    "LLM_ATTN_IMPLS",
    "OvisModel",
    "PackedVLM",
    "build_causal_lm",
    "build_llm",
    "build_seeded",
]

logger = logging.getLogger(__name__)

#: attention implementations accepted for the LLM (passed to transformers).
LLM_ATTN_IMPLS = ("sdpa", "eager", "flash_attention_2", "flex_attention")


M = TypeVar("M", bound=nn.Module)
V = TypeVar("V", bound="PackedVLM")


def build_seeded(build: Callable[[], M], device: torch.device | str,
                 seed: int | None) -> M:
    """``build()`` with its random initialisation seeded by ``seed`` (None: unseeded), inside
    ``torch.random.fork_rng`` so the caller's RNG state (CPU and ``device``'s CUDA) is left
    untouched."""
    if seed is None:
        return build()
    cuda = list(range(torch.cuda.device_count())) if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        return build()


def build_llm(config: OvisConfig, *, attn_impl: str = "sdpa",
              dtype: torch.dtype | None = None) -> nn.Module:
    """Build the causal LM from ``config.llm_config`` (random init; weights load separately)."""
    return build_causal_lm(config.llm_config, attn_impl=attn_impl, dtype=dtype)


def build_causal_lm(llm_config: Mapping[str, Any], *, attn_impl: str = "sdpa",
                    dtype: torch.dtype | None = None) -> nn.Module:
    """A transformers causal LM from its config dict (``model_type`` "qwen3" / "qwen2"; random
    init, no remote code). Shared by Ovis and LLaVA-OneVision-2."""
    if attn_impl not in LLM_ATTN_IMPLS:
        raise InvalidArgumentError(
            f"llm_attn_impl={attn_impl!r} is unknown; allowed: {list(LLM_ATTN_IMPLS)}")
    if attn_impl == "flash_attention_2":
        require("flash_attn", "llm_attn_impl='flash_attention_2'", extra="gpu",
                needs="flash-attn")
    transformers = require("transformers", "ovis_model's LLM")
    llm_dict = dict(llm_config)
    model_type = llm_dict.pop("model_type", None)
    if not isinstance(model_type, str):
        raise InvalidArgumentError(f"the LLM config needs a model_type string, got "
                                   f"{model_type!r}")
    try:
        llm_cfg = transformers.AutoConfig.for_model(model_type, **llm_dict)
    except Exception as exc:  # transformers' own validation errors (several types)
        raise InvalidArgumentError(
            f"the LLM config ({model_type}) is not valid for transformers: "
            f"{type(exc).__name__}: {exc}") from exc
    return transformers.AutoModelForCausalLM.from_config(
        llm_cfg, attn_implementation=attn_impl, dtype=dtype or torch.float32)


class PackedVLM(nn.Module):
    """What both model families share: a packed-patch vision side feeding a transformers LLM
    through ``inputs_embeds``. Subclasses build ``self.llm`` and implement
    :meth:`encode_visual` (``.tokens``) and :meth:`merge_multimodal`; construction from a config,
    the visual embedding of a prompt and generation live here."""

    llm: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Subclasses take ``(config, *, attn_impl, llm_attn_impl, device, dtype)``."""
        super().__init__()

    @property
    @abstractmethod
    def device(self) -> torch.device:
        """Where the parameters are."""

    @abstractmethod
    def encode_visual(self, pixel_values: torch.Tensor, grid_thws: torch.Tensor | None = None,
                      *, positions: torch.Tensor | None = None,
                      cu_seqlens: torch.Tensor | None = None,
                      frame_grids: torch.Tensor | None = None) -> Any:
        """Visual tokens (``.tokens``) of packed patches."""

    @abstractmethod
    def merge_multimodal(self, input_ids: torch.Tensor,
                         visual_tokens: torch.Tensor | None) -> torch.Tensor:
        """``(B, L, D_llm)`` text embeddings with the visual tokens placed."""

    @classmethod
    def from_config(cls: type[V], config: Any, *, attn_impl: str = "sdpa",
                    llm_attn_impl: str = "sdpa", device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32, seed: int | None = None) -> V:
        """A randomly initialised model on ``device`` (for tests and benchmarks).

        Args:
            seed: seed of the initialisation (reproducible weights). The caller's global RNG
                state is left untouched: the seeded initialisation runs inside
                ``torch.random.fork_rng``.
        """
        def build() -> V:
            with torch.device(device):
                return cls(config, attn_impl=attn_impl, llm_attn_impl=llm_attn_impl,
                           device=device, dtype=dtype)

        return build_seeded(build, device, seed).eval()

    def embed_inputs(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
                     grid_thws: torch.Tensor | None = None, *,
                     positions: torch.Tensor | None = None,
                     cu_seqlens: torch.Tensor | None = None,
                     frame_grids: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L, D_llm)`` input embeddings of a prompt with its visual inputs encoded and
        merged in."""
        tokens = None
        if pixel_values is not None:
            tokens = self.encode_visual(pixel_values, grid_thws, positions=positions,
                                        cu_seqlens=cu_seqlens, frame_grids=frame_grids).tokens
        return self.merge_multimodal(input_ids.to(self.device), tokens)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 pixel_values: torch.Tensor | None = None,
                 grid_thws: torch.Tensor | None = None, *,
                 positions: torch.Tensor | None = None, cu_seqlens: torch.Tensor | None = None,
                 frame_grids: torch.Tensor | None = None, **generate_kwargs: Any) -> torch.Tensor:
        """Greedy (default) / sampled generation through ``inputs_embeds``.

        Args:
            input_ids: long ``(B, L)``; attention_mask: ``(B, L)`` (1 = token, left padding).
            pixel_values, grid_thws, positions, cu_seqlens, frame_grids: the packed visual
                inputs, as the processor returns them.

        Returns:
            long ``(B, new_tokens)``: only the generated ids.
        """
        embeds = self.embed_inputs(input_ids, pixel_values, grid_thws, positions=positions,
                                   cu_seqlens=cu_seqlens, frame_grids=frame_grids)
        if attention_mask is None:
            attention_mask = torch.ones(input_ids.shape, dtype=torch.long)
        attention_mask = attention_mask.to(self.device)
        generate_kwargs.setdefault("do_sample", False)
        out = self.llm.generate(inputs_embeds=embeds, attention_mask=attention_mask,
                                **generate_kwargs)
        return out  # type: ignore[no-any-return]


class OvisModel(PackedVLM):
    """Ovis2.5-format vision-language model.

    Build with random weights from a config (``OvisModel(config)`` or
    ``OvisModel.from_config(preset("tiny"))``) or load a checkpoint with :meth:`from_pretrained`.

    Args:
        config: the model config.
        attn_impl: vision attention backend (:data:`ovis_model.attention.ATTENTION_BACKENDS`).
        llm_attn_impl: transformers attention implementation for the LLM.
        device: device the vision backend is resolved for (parameters are created on the current
            default device; call ``.to(device)`` or use :meth:`from_pretrained`).
        dtype: parameter dtype.
    """

    def __init__(self, config: OvisConfig, *, attn_impl: str = "sdpa",
                 llm_attn_impl: str = "sdpa", device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.config = config
        self.llm = build_llm(config, attn_impl=llm_attn_impl, dtype=dtype)
        self.visual_tokenizer = VisualTokenizer(config, attn_impl=attn_impl, device=device,
                                                dtype=dtype)
        self.vte = VisualEmbedding(config.visual_vocab_size, config.hidden_size)
        if dtype is not None:
            self.visual_tokenizer.to(dtype)
            self.vte.to(dtype)
        self.llm_attn_impl = llm_attn_impl

    # construction / IO -----------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | Path, *, dtype: torch.dtype | None = None,
                        device: torch.device | str = "cpu", attn_impl: str = "sdpa",
                        llm_attn_impl: str = "sdpa",
                        allow_download: bool | None = None) -> OvisModel:
        """Load an Ovis2.5-format checkpoint (config.json + safetensors).

        Example: ``OvisModel.from_pretrained(path, dtype=torch.float32, attn_impl="sdpa")``.

        Args:
            path_or_hub_id: a checkpoint directory or a hub id (from the local Hugging Face
                cache unless downloads are allowed).
            dtype: parameter dtype. ``None`` (default) keeps the precision the checkpoint was
                saved in (its config's ``torch_dtype``, e.g. bfloat16 for the official Ovis2.5
                weights; float32 when the config names none); pass ``torch.float32`` for
                CPU-exact runs or ``torch.bfloat16`` to halve memory.
            device: where the weights go.
            attn_impl: vision attention backend (resolved for ``device``).
            llm_attn_impl: transformers attention implementation of the LLM.
            allow_download: download a hub id that is not cached. None (default): only when
                ``VIDSEL_ALLOW_DOWNLOAD=1``; otherwise nothing touches the network.

        Raises:
            ModelNotAvailableError: no such directory, or a hub id that is not cached and not
                downloadable (downloads not allowed, offline mode, no network).
            ovis_model.checkpoint.CheckpointError: the weights do not match the config, or the
                config's ``torch_dtype`` is not float32 / float16 / bfloat16.

        See :func:`ovis_model.checkpoint.load_pretrained`."""
        return checkpoint.load_pretrained(cls, path_or_hub_id, dtype=dtype, device=device,
                                          attn_impl=attn_impl, llm_attn_impl=llm_attn_impl,
                                          allow_download=allow_download)

    def save_pretrained(self, directory: str | Path, *, max_shard_size: int = 5 * 2**30) -> Path:
        """Write config.json + safetensors with the official key names."""
        return checkpoint.save_pretrained(self, directory, max_shard_size=max_shard_size)

    # properties ------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.vte.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.vte.weight.dtype

    @property
    def attn_impl(self) -> str:
        return self.visual_tokenizer.vit.attn_impl

    def get_wte(self) -> nn.Module:
        return self.llm.get_input_embeddings()  # type: ignore[no-any-return,operator]

    # vision ----------------------------------------------------------------------------------
    def encode_visual(self, pixel_values: torch.Tensor, grid_thws: torch.Tensor | None = None, *,
                      positions: torch.Tensor | None = None,
                      cu_seqlens: torch.Tensor | None = None,
                      frame_grids: torch.Tensor | None = None,
                      output_hidden_states: bool = False) -> VisualTokens:
        """Run the visual tokenizer.

        Either give explicit ``positions`` / ``cu_seqlens`` / ``frame_grids`` (from
        :class:`ovis_model.processor.OvisProcessor`), or only ``grid_thws`` ``(n, 3)`` for inputs
        in the official Ovis layout (merge-block order, t = 0..T-1, segments per
        ``vit_config.segment_mode``).
        """
        vit = self.config.vit_config
        if positions is None or cu_seqlens is None:
            if grid_thws is None:
                raise InvalidArgumentError(
                    "encode_visual needs grid_thws, or positions and cu_seqlens")
            positions, grids, cu = layout_from_grids(grid_thws, vit.hidden_stride,
                                                     vit.segment_mode, vit.frames_per_segment)
            cu_seqlens = cu if cu_seqlens is None else cu_seqlens
            frame_grids = grids if frame_grids is None else frame_grids
        pixel_values = pixel_values.to(device=self.device, dtype=self.dtype)
        return self.visual_tokenizer(pixel_values, positions, cu_seqlens, frame_grids,
                                     output_hidden_states=output_hidden_states)

    def merge_multimodal(self, input_ids: torch.Tensor,
                         visual_tokens: torch.Tensor | None) -> torch.Tensor:
        """Text embeddings with indicator and atom placeholders replaced.

        Args:
            input_ids: long ``(B, L)``; negative ids are placeholders.
            visual_tokens: ``(M, V)`` tokens for all ``-300`` atoms in row-major order of
                ``input_ids``, or None for text only.

        Returns:
            ``(B, L, D_llm)`` in the LLM's dtype.
        """
        wte = self.get_wte()
        placeholder = input_ids < 0
        embeds = wte(input_ids.masked_fill(placeholder, 0))  # (B, L, D)
        if not bool(placeholder.any()):
            return embeds  # type: ignore[no-any-return]
        known = (input_ids == VISUAL_ATOM_ID)
        for ind in INDICATOR_IDS:
            known |= input_ids == ind
        if not bool(known[placeholder].all()):
            bad = sorted(set(input_ids[placeholder & ~known].tolist()))
            raise InvalidArgumentError(
                f"input_ids hold unexpanded placeholders {bad}; expand <image>/<video> "
                "(-200/-201) with the processor first")
        n_ind = len(INDICATOR_IDS)
        first = self.config.visual_vocab_size - n_ind
        ind_rows = self.vte(torch.arange(first, first + n_ind, device=self.device))  # (4, D)
        ind_rows = ind_rows.to(embeds.dtype)
        for i, ind in enumerate(INDICATOR_IDS):
            mask = input_ids == ind
            embeds = torch.where(mask[..., None], ind_rows[i], embeds)
        atoms = input_ids == VISUAL_ATOM_ID
        n_atoms = int(atoms.sum())
        n_tokens = 0 if visual_tokens is None else visual_tokens.shape[0]
        if n_atoms != n_tokens:
            raise InvalidArgumentError(
                f"input_ids hold {n_atoms} visual atoms (-300) but the images give {n_tokens} "
                "visual tokens")
        if n_atoms and visual_tokens is not None:  # equal counts: tokens exist for the atoms
            visual = self.vte(visual_tokens).to(embeds.dtype)  # (M, D)
            embeds = embeds.masked_scatter(atoms[..., None], visual)
        return embeds  # type: ignore[no-any-return]

    # forward / generate ----------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None,
                grid_thws: torch.Tensor | None = None, *,
                positions: torch.Tensor | None = None, cu_seqlens: torch.Tensor | None = None,
                frame_grids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **llm_kwargs: Any) -> Any:
        """HF-style forward: returns the LLM output (``.logits`` ``(B, L, vocab)``).

        Args:
            input_ids: long ``(B, L)`` with expanded placeholders.
            attention_mask: ``(B, L)`` 1 = real token.
            pixel_values: ``(N, C*p*p)`` packed patches of every visual input, in prompt order.
            grid_thws: long ``(n, 3)``; positions / segments are derived from it unless given.
            **llm_kwargs: forwarded to the LLM (``output_hidden_states``, ``past_key_values`` ...).
        """
        embeds = self.embed_inputs(input_ids, pixel_values, grid_thws, positions=positions,
                                   cu_seqlens=cu_seqlens, frame_grids=frame_grids)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
        return self.llm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels,
                        **llm_kwargs)
