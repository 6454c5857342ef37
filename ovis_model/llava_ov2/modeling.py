"""``LlavaOneVision2Model``: OneVision-Encoder + 2 x 2 patch merger + a transformers Qwen3 LLM.

Data flow for one call (shapes for batch 1; ``m`` = ``spatial_merge_size``)::

    pixel_values (N, C*p*p), positions (N, 3) = (t, h, w), cu_seqlens (S+1,)
      -> VisionEncoder (3-D rotary from the positions, attention inside each segment)
      -> last layer's features, no post-norm                             (N, D_vit)
      -> merger: LayerNorm per patch, m*m consecutive patches concatenated,
         Linear -> GELU -> Linear                                        (N / m^2, D_llm)
         (+ learned (h, w) tables of the group's first patch // m, when configured)
    input_ids (B, L): every <|image_pad|> / <|video_pad|> slot takes the next visual token
      -> Qwen3 on inputs_embeds, 1-D positions (cumsum of the mask - 1)  -> logits (B, L, V)

Patches arrive packed in merge-block order: the ``m * m`` rows of one visual token are
consecutive, share their ``t`` and form one aligned ``m x m`` block (checked). Where the
released processor puts a video's codec canvases in one grid row ``[T, H, W]`` it attends in
windows of ``frame_windows_size`` canvases; single frames and images attend alone
(:func:`window_cu_seqlens` builds that rule from grid rows; :class:`LlavaOV2Processor` builds
``cu_seqlens`` itself).

Weights load from the released safetensors (``model.visual.*``, ``model.language_model.*``,
``lm_head.weight``; the older ``visual.*`` / ``model.*`` layout is accepted too) with no remote
code, strictly: :mod:`ovis_model.llava_ov2.checkpoint`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InvalidArgumentError, MissingDependencyError
from ..modeling import PackedVLM, build_causal_lm
from ..vision import VisionEncoder
from .checkpoint import load_llava_ov2, save_llava_ov2
from .config import LlavaOV2Config

__all__ = ["LlavaOneVision2Model", "OV2VisualOutput", "PatchMerger", "window_cu_seqlens"]

logger = logging.getLogger(__name__)


def window_cu_seqlens(grid_thw: torch.Tensor, window: int) -> torch.Tensor:
    """Attention segments of the released model for grid rows ``(t, h, w)``.

    A row with ``t > window`` is cut into ``t // window`` windows of ``window * h * w`` patches
    and one of the remainder; any other row is one segment. Example: rows ``[[6, 2, 4],
    [1, 4, 6]]`` with window 4 -> ``[0, 32, 48, 72]``.

    Returns:
        int32 ``(S + 1,)``.
    """
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise InvalidArgumentError(f"window={window!r} must be an int >= 1 (frames)")
    grid = torch.as_tensor(grid_thw, dtype=torch.long)
    if grid.dim() not in (1, 2) or grid.shape[-1] != 3:
        raise InvalidArgumentError(f"grid_thw must be (n, 3) rows of (t, h, w), got "
                                   f"{tuple(grid.shape)}")
    grid = grid.reshape(-1, 3)
    sizes: list[int] = []
    for t, h, w in grid.tolist():
        if min(t, h, w) < 1:
            raise InvalidArgumentError(f"grid row {(t, h, w)} must be positive")
        if t > window:
            sizes += [window * h * w] * (t // window)
            if t % window:
                sizes.append((t % window) * h * w)
        else:
            sizes.append(t * h * w)
    cu = torch.zeros(len(sizes) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(torch.tensor(sizes, dtype=torch.long), 0).to(torch.int32)
    return cu


def _check_rope_theta(text: dict[str, Any], built: Any) -> None:
    """The LLM transformers built must use the config's rotary base: released configs state it
    as transformers 5's ``rope_parameters``, which older transformers ignore (silently falling
    back to 10000 and wrong logits).

    Raises:
        MissingDependencyError: the installed transformers read another base.
    """
    params = text.get("rope_parameters")
    want = text.get("rope_theta")
    if want is None and isinstance(params, dict):
        want = params.get("rope_theta")
    if want is None:
        return
    got_params = getattr(built, "rope_parameters", None)
    got = got_params.get("rope_theta") if isinstance(got_params, dict) else None
    if got is None:
        got = getattr(built, "rope_theta", None)
    if got is not None and float(got) != float(want):
        import transformers

        raise MissingDependencyError(
            f"transformers {transformers.__version__} built the LLM with rope_theta={got}, but "
            f"the checkpoint says {want}: LLaVA-OneVision-2 configs need transformers >= 5 "
            "(pip install -U 'transformers>=5')")


class PatchMerger(nn.Module):
    """LayerNorm on each patch, ``m x m`` consecutive patches concatenated, Linear-GELU-Linear.

    Module names follow the checkpoint (``merger.ln_q``, ``merger.mlp.{0,2}``,
    ``merger.pos_emb_{h,w}``).
    """

    def __init__(self, config: LlavaOV2Config) -> None:
        super().__init__()
        d = config.vision.hidden_size
        self.unit = config.merge_unit
        self.stride = config.spatial_merge_size
        width = d * self.unit
        self.ln_q = nn.LayerNorm(d, eps=config.vision.layer_norm_eps)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(),
                                 nn.Linear(width, config.out_hidden_size))
        self.pos_emb_h: nn.Embedding | None = None
        self.pos_emb_w: nn.Embedding | None = None
        if config.use_patch_position_encoding:
            self.pos_emb_h = nn.Embedding(config.max_position_embeddings, config.out_hidden_size)
            self.pos_emb_w = nn.Embedding(config.max_position_embeddings, config.out_hidden_size)

    def forward(self, features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``features`` ``(N, D_vit)`` in merge-block order, ``positions`` long ``(N, 3)``
        -> ``(N / m^2, D_llm)``."""
        x = self.ln_q(features).reshape(-1, features.shape[-1] * self.unit)
        x = self.mlp(x)
        if self.pos_emb_h is not None and self.pos_emb_w is not None:
            first = positions.reshape(-1, self.unit, 3)[:, 0]  # (M, 3) first patch of each group
            limit = self.pos_emb_h.num_embeddings
            block = first[:, 1:] // self.stride
            if bool((block >= limit).any()):
                raise InvalidArgumentError(
                    f"patch rows / columns reach {int(block.max()) * self.stride}, beyond the "
                    f"merger's position tables ({limit} rows of {self.stride} patches)")
            x = x + self.pos_emb_h(block[:, 0]) + self.pos_emb_w(block[:, 1])
        return x  # type: ignore[no-any-return]


@dataclass
class OV2VisualOutput:
    """Vision outputs in the caller's packed order.

    Attributes:
        tokens: ``(N / m^2, D_llm)`` merged visual tokens (what fills the pad slots).
        features: ``(N, D_vit)`` the encoder's last layer, before the merger.
    """

    tokens: torch.Tensor
    features: torch.Tensor


def check_merge_groups(positions: torch.Tensor, stride: int) -> None:
    """Every ``stride**2`` consecutive rows must share ``t`` and fill one aligned block row by
    row (the order the merger concatenates them in).

    Raises:
        InvalidArgumentError: the packed order mixes frames or blocks inside a visual token.
    """
    unit = stride * stride
    n = positions.shape[0]
    if n % unit:
        raise InvalidArgumentError(
            f"{n} patches do not form whole visual tokens of {unit} ({stride} x {stride}) patches")
    if n == 0 or unit == 1:
        return
    groups = positions.reshape(-1, unit, 3)
    key = torch.stack([groups[..., 0], groups[..., 1] // stride, groups[..., 2] // stride], -1)
    # inside a token the patches come row by row: (h % s) * s + w % s == 0, 1, ..., s*s - 1
    slot = (groups[..., 1] % stride) * stride + groups[..., 2] % stride  # (M, unit)
    wrong = (key != key[:, :1]).any(-1).any(-1) | (
        slot != torch.arange(unit, device=positions.device)).any(-1)
    if bool(wrong.any()):
        bad = int(wrong.nonzero()[0, 0])
        raise InvalidArgumentError(
            f"visual token {bad} has patches {groups[bad].tolist()}: the {unit} consecutive "
            f"patches of a token must share t and fill one aligned {stride} x {stride} block "
            "row by row (merge-block order, as LlavaOV2Processor packs them)")


class LlavaOneVision2Model(PackedVLM):
    """LLaVA-OneVision-2, natively (no remote code).

    Build with random weights from a config (``LlavaOneVision2Model.from_config(cfg)``) or load
    a released checkpoint with :meth:`from_pretrained`.

    Args:
        config: the model config.
        attn_impl: vision attention backend (:data:`ovis_model.ATTENTION_BACKENDS`).
        llm_attn_impl: transformers attention implementation of the LLM.
        device: device the vision backend is resolved for.
        dtype: parameter dtype.
    """

    def __init__(self, config: LlavaOV2Config, *, attn_impl: str = "sdpa",
                 llm_attn_impl: str = "sdpa", device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if not isinstance(config, LlavaOV2Config):
            raise InvalidArgumentError(
                f"config must be a LlavaOV2Config, got {type(config).__name__}")
        self.config = config
        self.visual = VisionEncoder(config.vision, attn_impl=attn_impl, device=device,
                                    dtype=dtype)
        self.merger = PatchMerger(config)
        text = dict(config.text_config)
        text["tie_word_embeddings"] = config.tie_word_embeddings
        self.llm = build_causal_lm(text, attn_impl=llm_attn_impl, dtype=dtype)
        _check_rope_theta(text, self.llm.config)
        if dtype is not None:
            self.visual.to(dtype)
            self.merger.to(dtype)
        self.llm_attn_impl = llm_attn_impl

    # construction / IO -----------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | Path, *, dtype: torch.dtype | None = None,
                        device: torch.device | str = "cpu", attn_impl: str = "sdpa",
                        llm_attn_impl: str = "sdpa",
                        allow_download: bool | None = None) -> LlavaOneVision2Model:
        """Load a released LLaVA-OneVision-2 checkpoint (config.json + safetensors, single or
        sharded) without remote code.

        Args:
            path_or_hub_id: a checkpoint folder or a hub id (e.g.
                ``"lmms-lab-encoder/LLaVA-OneVision-2-8B-Instruct"``) from the local Hugging
                Face cache; downloaded only when allowed (``allow_download=True`` or
                ``VIDSEL_ALLOW_DOWNLOAD=1``) and the hub is not switched off.
            dtype: parameter dtype (None: the checkpoint's ``torch_dtype``, float32 if none).
            device, attn_impl, llm_attn_impl: as :meth:`ovis_model.OvisModel.from_pretrained`.

        Raises:
            ModelNotAvailableError: no such folder, or a hub id not cached and not
                downloadable (the message says how to provide it).
            CheckpointError: weights that do not match the config (missing / unexpected keys or
                wrong shapes, all listed) or a config that is not LLaVA-OneVision-2.
        """
        return load_llava_ov2(cls, path_or_hub_id, dtype=dtype, device=device,
                              attn_impl=attn_impl, llm_attn_impl=llm_attn_impl,
                              allow_download=allow_download)

    def save_pretrained(self, directory: str | Path, *,
                        max_shard_size: int = 5 * 2**30) -> Path:
        """Write config.json + safetensors in the released format (key names, fused ``qkv``)."""
        return save_llava_ov2(self, directory, max_shard_size=max_shard_size)

    # properties ------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.merger.ln_q.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.merger.ln_q.weight.dtype

    @property
    def attn_impl(self) -> str:
        return self.visual.attn_impl

    def get_wte(self) -> nn.Module:
        return self.llm.get_input_embeddings()  # type: ignore[no-any-return,operator]

    # vision ----------------------------------------------------------------------------------
    def encode_visual(self, pixel_values: torch.Tensor, grid_thws: torch.Tensor | None = None,
                      *, positions: torch.Tensor | None = None,
                      cu_seqlens: torch.Tensor | None = None,
                      frame_grids: torch.Tensor | None = None) -> OV2VisualOutput:
        """Encode packed patches and merge them into visual tokens.

        Args:
            pixel_values: ``(N, C*p*p)`` normalised patches in merge-block order.
            grid_thws: long ``(n, 3)`` grid rows; used for the segments when ``cu_seqlens``
                is not given (the released window rule, :func:`window_cu_seqlens`).
            positions: long ``(N, 3)`` (t, h, w) per patch - required, as in the released
                model (t = source frame index; 0 for images).
            cu_seqlens: int ``(S + 1,)`` attention segments over the packed order.
            frame_grids: ignored (OneVision has no learned position table); accepted so the
                processors' outputs fit both model families.
        """
        del frame_grids
        if positions is None:
            raise InvalidArgumentError(
                "LLaVA-OneVision-2 needs positions (N, 3) = (t, h, w) per patch (the released "
                "model's patch_positions); LlavaOV2Processor builds them")
        if cu_seqlens is None:
            if grid_thws is None:
                raise InvalidArgumentError("encode_visual needs cu_seqlens or grid_thws")
            cu_seqlens = window_cu_seqlens(grid_thws, self.config.frame_windows_size)
        positions = torch.as_tensor(positions)
        pixel_values = torch.as_tensor(pixel_values)
        if positions.dim() == 3 and positions.shape[0] == 1:  # the released (1, N, 3)
            positions = positions[0]
        if positions.is_floating_point() or positions.dim() != 2 or positions.shape[-1] != 3:
            raise InvalidArgumentError(
                f"positions must be integer (N, 3) = (t, h, w) per patch, got "
                f"{tuple(positions.shape)} {positions.dtype}")
        if positions.shape[0] != pixel_values.shape[0]:
            raise InvalidArgumentError(
                f"positions has {positions.shape[0]} rows for {pixel_values.shape[0]} patches")
        positions = positions.to(device=self.device, dtype=torch.long)
        check_merge_groups(positions, self.config.spatial_merge_size)
        pixel_values = pixel_values.to(device=self.device, dtype=self.dtype)
        features = self.visual(pixel_values, positions, cu_seqlens).last_hidden_state
        return OV2VisualOutput(tokens=self.merger(features, positions), features=features)

    def _slots(self, input_ids: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        return (input_ids == cfg.image_token_id) | (input_ids == cfg.video_token_id)

    def merge_multimodal(self, input_ids: torch.Tensor,
                         visual_tokens: torch.Tensor | None) -> torch.Tensor:
        """Text embeddings with every ``<|image_pad|>`` / ``<|video_pad|>`` slot replaced, in
        row-major order, by the next visual token.

        Args:
            input_ids: long ``(B, L)``.
            visual_tokens: ``(M, D_llm)`` or None (text only).

        Returns:
            ``(B, L, D_llm)`` in the LLM's dtype.
        """
        vocab = self.config.vocab_size
        if bool(((input_ids < 0) | (input_ids >= vocab)).any()):
            bad = sorted(set(input_ids[(input_ids < 0) | (input_ids >= vocab)].tolist()))[:8]
            raise InvalidArgumentError(
                f"input_ids hold ids outside the vocabulary [0, {vocab}): {bad}; build the "
                "prompt with LlavaOV2Processor (Ovis placeholders do not apply here)")
        embeds = self.get_wte()(input_ids)  # (B, L, D)
        slots = self._slots(input_ids)
        n_slots = int(slots.sum())
        n_tokens = 0 if visual_tokens is None else int(visual_tokens.shape[0])
        if n_slots != n_tokens:
            raise InvalidArgumentError(
                f"input_ids hold {n_slots} visual slots (<|image_pad|> / <|video_pad|>) but the "
                f"visual inputs give {n_tokens} visual tokens")
        if n_slots and visual_tokens is not None:
            embeds = embeds.masked_scatter(slots[..., None], visual_tokens.to(embeds.dtype))
        return embeds  # type: ignore[no-any-return]

    # forward / generate ----------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None,
                grid_thws: torch.Tensor | None = None, *,
                positions: torch.Tensor | None = None, cu_seqlens: torch.Tensor | None = None,
                frame_grids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                **llm_kwargs: Any) -> Any:
        """HF-style forward: the LLM output (``.logits`` ``(B, L, vocab)``).

        Positions are 1-D, as the released model: ``cumsum(attention_mask) - 1`` (padding
        positions set to 1), or ``0..L-1`` without a mask.
        """
        embeds = self.embed_inputs(input_ids, pixel_values, grid_thws, positions=positions,
                                   cu_seqlens=cu_seqlens, frame_grids=frame_grids)
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device)
            if "position_ids" not in llm_kwargs:
                pos = attention_mask.long().cumsum(-1) - 1
                llm_kwargs["position_ids"] = pos.masked_fill(attention_mask == 0, 1)
        return self.llm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels,
                        **llm_kwargs)
