"""The vision encoder over packed patches (SigLIP2-NaViT as in Ovis2.5, or OneVision-style).

Module and parameter names follow the official Ovis2.5 checkpoint under
``visual_tokenizer.vit.``: ``vision_model.embeddings.{patch_embedding,position_embedding}``,
``vision_model.encoder.layers.{i}.{layer_norm1,self_attn.{q,k,v,out}_proj,layer_norm2,mlp.fc1,
mlp.fc2}``, ``vision_model.post_layernorm`` (kept for the checkpoint; Ovis does not use it). The
OneVision variant adds ``vision_model.pre_layernorm``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionBackend, Segments, make_segments, resolve_attention_backend
from .config import VisionConfig
from .errors import InvalidArgumentError
from .positions import apply_rotary, rotary_frequencies, window_partition

__all__ = ["VisionEncoder", "VisionOutput"]


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "quick_gelu": _quick_gelu,
    "silu": F.silu,
    "swish": F.silu,
    "relu": F.relu,
}


def _norm(cfg: VisionConfig) -> nn.Module:
    if cfg.layer_norm_type == "rms_norm":
        return nn.RMSNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
    return nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)


class _Embeddings(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.patch_embedding: nn.Module
        if cfg.num_patches > 0:  # SigLIP2 naflex: a Linear over the flattened patch
            self.patch_embedding = nn.Linear(cfg.patch_dim, cfg.hidden_size, bias=cfg.patch_bias)
        else:
            self.patch_embedding = nn.Conv2d(cfg.num_channels, cfg.hidden_size, cfg.patch_size,
                                             stride=cfg.patch_size, bias=cfg.patch_bias)
        self.position_embedding = (nn.Embedding(cfg.position_table_len, cfg.hidden_size)
                                   if cfg.preserve_original_pe else None)

    def forward(self, pixel_values: torch.Tensor, positions: torch.Tensor,
                frame_grids: torch.Tensor | None) -> torch.Tensor:
        """Patch embeddings plus the learned table interpolated to each frame's grid.

        Args:
            pixel_values: ``(N, C*p*p)`` rows laid out (C, p, p).
            positions: long ``(N, 3)`` (t, h, w).
            frame_grids: long ``(N, 2)`` (H, W) patch grid of each patch's frame; needed when the
                learned position table is used.

        Returns:
            ``(N, hidden)``.
        """
        weight: torch.Tensor = self.patch_embedding.weight  # type: ignore[assignment]
        bias: torch.Tensor | None = self.patch_embedding.bias  # type: ignore[assignment]
        # A conv with kernel = stride = p over one p x p patch is a matmul with the flattened
        # kernel: (N, C*p*p) @ (C*p*p, D).
        x = F.linear(pixel_values.to(weight.dtype), weight.reshape(weight.shape[0], -1), bias)
        if self.position_embedding is None:
            return x
        if frame_grids is None:
            raise InvalidArgumentError(
                "frame_grids is required when vit_config.preserve_original_pe is true")
        side = self.cfg.position_table_size
        # (side*side, D) -> (1, D, side, side)
        table = self.position_embedding.weight.float().reshape(side, side, -1).permute(2, 0, 1)[None]
        pe = torch.empty_like(x)
        shapes = torch.unique(frame_grids, dim=0).tolist()
        for gh, gw in shapes:
            resized = F.interpolate(table, size=(gh, gw), mode="bicubic", align_corners=False)
            resized = resized[0].permute(1, 2, 0).reshape(gh * gw, -1)  # (gh*gw, D)
            if len(shapes) == 1:
                idx = positions[:, 1] * gw + positions[:, 2]  # (N,)
                pe = resized[idx].to(x.dtype)
            else:
                sel = (frame_grids[:, 0] == gh) & (frame_grids[:, 1] == gw)
                idx = positions[sel, 1] * gw + positions[sel, 2]
                pe[sel] = resized[idx].to(x.dtype)
        return x + pe


class _Attention(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden_size
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.head_dim
        self.scale = self.head_dim**-0.5
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor, segments: Segments, backend: AttentionBackend,
                rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        n = x.shape[0]
        # (N, D) -> (N, heads, head_dim)
        q = self.q_proj(x).view(n, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(n, self.num_heads, self.head_dim)
        v = self.v_proj(x).view(n, self.num_heads, self.head_dim)
        if rope is not None:
            cos, sin = rope
            q = apply_rotary(q, cos, sin, self.cfg.position_scheme)
            k = apply_rotary(k, cos, sin, self.cfg.position_scheme)
        dropout = self.cfg.attention_dropout if self.training else 0.0
        out = backend(q, k, v, segments, self.scale, dropout)  # (N, heads, head_dim)
        return self.out_proj(out.reshape(n, -1))


class _MLP(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        if cfg.hidden_act not in _ACTIVATIONS:
            raise InvalidArgumentError(
                f"vit_config.hidden_act={cfg.hidden_act!r} is not supported; allowed: "
                f"{sorted(_ACTIVATIONS)}")
        self.act = _ACTIVATIONS[cfg.hidden_act]
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class _Layer(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.layer_norm1 = _norm(cfg)
        self.self_attn = _Attention(cfg)
        self.layer_norm2 = _norm(cfg)
        self.mlp = _MLP(cfg)

    def forward(self, x: torch.Tensor, segments: Segments, backend: AttentionBackend,
                rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x), segments, backend, rope)
        return x + self.mlp(self.layer_norm2(x))


class _Encoder(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.num_hidden_layers))


class _VisionModel(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.pre_layernorm = _norm(cfg) if cfg.pre_layernorm else None
        self.encoder = _Encoder(cfg)
        self.post_layernorm = _norm(cfg)


@dataclass
class VisionOutput:
    """Encoder outputs, all in the caller's packed patch order.

    Attributes:
        last_hidden_state: ``(N, hidden)`` last block output, WITHOUT the final norm (what Ovis
            feeds its visual head).
        patch_embeds: ``(N, hidden)`` embeddings entering the first block (only when requested).
        hidden_states: one ``(N, hidden)`` tensor per block (only when requested).
    """

    last_hidden_state: torch.Tensor
    patch_embeds: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None

    def post_layernorm(self, encoder: VisionEncoder) -> torch.Tensor:
        """The final-norm output (SigLIP's pooled path; Ovis never uses it)."""
        return encoder.vision_model.post_layernorm(self.last_hidden_state)  # type: ignore[no-any-return]


class VisionEncoder(nn.Module):
    """Vision transformer over packed patches with per-patch ``(t, h, w)`` positions.

    Args:
        config: the encoder shape and position scheme.
        attn_impl: attention backend name (see :mod:`ovis_model.attention`), resolved now.
        device: the device the backend is resolved for (CUDA-only backends need "cuda").
    """

    def __init__(self, config: VisionConfig, *, attn_impl: str = "sdpa",
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.config = config
        self.vision_model = _VisionModel(config)
        self.backend = resolve_attention_backend(attn_impl, device, dtype)

    @property
    def attn_impl(self) -> str:
        return self.backend.name

    def set_attn_impl(self, attn_impl: str, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> None:
        """Switch the attention backend (resolved immediately; raises when unavailable)."""
        self.backend = resolve_attention_backend(attn_impl, device, dtype)

    def forward(self, pixel_values: torch.Tensor, positions: torch.Tensor,
                cu_seqlens: torch.Tensor, frame_grids: torch.Tensor | None = None, *,
                output_hidden_states: bool = False) -> VisionOutput:
        """Encode packed patches.

        Args:
            pixel_values: ``(N, C*p*p)`` normalised patches, rows laid out (C, p, p), packed in
                merge-block order (see :mod:`ovis_model.positions`).
            positions: long ``(N, 3)`` (t, h, w) per patch.
            cu_seqlens: int ``(S + 1,)`` attention segments over the packed order.
            frame_grids: long ``(N, 2)`` (H, W) patch grid of each patch's source frame (used by
                the learned position table; ignored when the config has none).
            output_hidden_states: also return the patch embeddings and every block's output.
        """
        cfg = self.config
        n = pixel_values.shape[0]
        if pixel_values.dim() != 2 or pixel_values.shape[1] != cfg.patch_dim:
            raise InvalidArgumentError(
                f"pixel_values must be (N, {cfg.patch_dim}), got {tuple(pixel_values.shape)}")
        if positions.shape != (n, 3):
            raise InvalidArgumentError(
                f"positions must be ({n}, 3), got {tuple(positions.shape)}")
        device = pixel_values.device
        positions = positions.to(device=device, dtype=torch.long)
        if frame_grids is not None:
            frame_grids = frame_grids.to(device=device, dtype=torch.long)
        segments = make_segments(cu_seqlens, device)
        if segments.total != n:
            raise InvalidArgumentError(
                f"cu_seqlens covers {segments.total} patches but pixel_values has {n}")
        vm = self.vision_model
        x = vm.embeddings(pixel_values, positions, frame_grids)  # (N, D)
        patch_embeds = x if output_hidden_states else None
        if vm.pre_layernorm is not None:
            x = vm.pre_layernorm(x)

        rope: tuple[torch.Tensor, torch.Tensor] | None = None
        freqs = None
        if cfg.use_rope:
            freqs = rotary_frequencies(positions, cfg.head_dim, cfg.position_scheme,
                                       cfg.rope_theta)  # (N, head_dim/2)

        perm = None
        window_segments = segments
        if cfg.uses_window_attention():
            perm, cu_win = window_partition(positions, segments.cu_seqlens, cfg.hidden_stride,
                                            cfg.merged_window_size)
            window_segments = make_segments(cu_win, device)
            x = x[perm]
            if freqs is not None:
                freqs = freqs[perm]
            # full-attention segments stay contiguous: windows never cross a frame
        if freqs is not None:
            emb = torch.cat([freqs, freqs], dim=-1)  # (N, head_dim)
            rope = (emb.cos(), emb.sin())

        inverse = torch.argsort(perm) if perm is not None else None
        states: list[torch.Tensor] = []
        for i, layer in enumerate(vm.encoder.layers):
            segs = segments if cfg.layer_is_full_attention(i) else window_segments
            x = layer(x, segs, self.backend, rope)
            if output_hidden_states:
                states.append(x if inverse is None else x[inverse])
        if inverse is not None:
            x = x[inverse]
        return VisionOutput(last_hidden_state=x, patch_embeds=patch_embeds,
                            hidden_states=tuple(states) if output_hidden_states else None)

    def flops_per_patch(self, segment_len: float) -> float:
        """Forward FLOPs per patch (matmuls only) at a mean attention segment length."""
        cfg = self.config
        d, m = cfg.hidden_size, cfg.intermediate_size
        per_layer = 2 * (4 * d * d + 2 * d * m) + 2 * 2 * segment_len * d
        return float(cfg.num_hidden_layers * per_layer + 2 * cfg.patch_dim * d)

    @staticmethod
    def num_params(module: nn.Module) -> int:
        return sum(math.prod(p.shape) for p in module.parameters())
