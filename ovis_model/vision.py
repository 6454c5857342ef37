"""The vision encoder over packed patches (SigLIP2-NaViT as in Ovis2.5, or OneVision-Encoder).

Module and parameter names follow the official Ovis2.5 checkpoint under
``visual_tokenizer.vit.``: ``vision_model.embeddings.{patch_embedding,position_embedding}``,
``vision_model.encoder.layers.{i}.{layer_norm1,self_attn.{q,k,v,out}_proj,layer_norm2,mlp.fc1,
mlp.fc2}``, ``vision_model.post_layernorm`` (kept for the checkpoint; Ovis does not use it). The
OneVision variant adds ``vision_model.pre_layernorm`` and, with ``use_head``, the attention-pooling
``vision_model.head``; public OneVision-Encoder folders load through
:meth:`VisionEncoder.from_pretrained` (key mapping in :mod:`ovis_model.onevision_encoder`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionBackend, Segments, make_segments, resolve_attention_backend
from .config import HIDDEN_ACTS, VisionConfig
from .errors import InvalidArgumentError
from .onevision_encoder import load_pretrained_encoder, save_pretrained_encoder
from .positions import apply_rotary, rotary_frequencies, window_partition

__all__ = ["VisionEncoder", "VisionOutput"]


def _gelu_tanh_formula(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of GELU written out (``gelu_new``, ``gelu_accurate``)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3.0))))


def _gelu_fast(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def _laplace(x: torch.Tensor, mu: float = 0.707107, sigma: float = 0.282095) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf((x - mu) / (sigma * math.sqrt(2.0))))


#: ``hidden_act`` name -> function; the names are :data:`ovis_model.config.HIDDEN_ACTS`.
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_10": lambda x: torch.clip(F.gelu(x), -10.0, 10.0),
    "gelu_accurate": _gelu_tanh_formula,
    "gelu_fast": _gelu_fast,
    "gelu_new": _gelu_tanh_formula,
    "gelu_python": lambda x: x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))),
    "gelu_python_tanh": _gelu_tanh_formula,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "hardswish": F.hardswish,
    "laplace": _laplace,
    "leaky_relu": F.leaky_relu,
    "linear": lambda x: x,
    "mish": F.mish,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "relu": F.relu,
    "relu2": lambda x: torch.square(F.relu(x)),
    "relu6": F.relu6,
    "sigmoid": torch.sigmoid,
    "silu": F.silu,
    "sqrtsoftplus": lambda x: F.softplus(x).sqrt(),
    "swish": F.silu,
    "tanh": torch.tanh,
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
        if cfg.hidden_act not in _ACTIVATIONS:  # VisionConfig refuses these already
            raise InvalidArgumentError(
                f"vit_config.hidden_act={cfg.hidden_act!r} is not supported; allowed: "
                f"{list(HIDDEN_ACTS)}")
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


class _ProbeAttention(nn.Module):
    """Parameters of the head's multi-head attention, laid out as ``nn.MultiheadAttention``
    stores them: ``in_proj_weight`` ``(3D, D)`` rows ``[q; k; v]``, ``in_proj_bias`` ``(3D,)``,
    ``out_proj``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        if not self.in_proj_weight.is_meta:
            nn.init.xavier_uniform_(self.in_proj_weight)
            nn.init.zeros_(self.in_proj_bias)


class _PoolingHead(nn.Module):
    """OneVision-Encoder's attention pooling: a learned probe attends over one item's rows, then
    ``out + MLP(RMSNorm(out))``; one vector per item."""

    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.num_heads = cfg.num_attention_heads
        self.probe = nn.Parameter(torch.empty(1, 1, d))
        if not self.probe.is_meta:
            nn.init.normal_(self.probe)
        self.attention = _ProbeAttention(d)
        self.norm = nn.RMSNorm(d, eps=cfg.layer_norm_eps)  # RMSNorm whatever layer_norm_type
        self.mlp = _MLP(cfg)

    def forward(self, x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """Pool ``x`` ``(N, D)`` over consecutive items of ``lengths`` (each >= 1, sum N).

        Returns:
            ``(len(lengths), D)``.
        """
        n, d = x.shape
        heads, hd = self.num_heads, d // self.num_heads
        s = len(lengths)
        wq, wk, wv = self.attention.in_proj_weight.chunk(3)  # each (D, D)
        bq, bk, bv = self.attention.in_proj_bias.chunk(3)  # each (D,)
        q = F.linear(self.probe.reshape(1, d), wq, bq).view(heads, hd)  # (H, hd), same per item
        k = F.linear(x, wk, bk).view(n, heads, hd)
        v = F.linear(x, wv, bv).view(n, heads, hd)
        scores = (k * q).sum(-1) * hd**-0.5  # (N, H)
        item = torch.repeat_interleave(
            torch.arange(s, device=x.device),
            torch.tensor(lengths, device=x.device))  # (N,) item of each row
        # softmax over the rows of each item: subtract the item's max, normalise by its sum
        top = scores.new_full((s, heads), float("-inf")).scatter_reduce(
            0, item[:, None].expand(n, heads), scores, reduce="amax")  # (S, H)
        w = (scores - top[item]).exp()  # (N, H)
        den = scores.new_zeros(s, heads).index_add_(0, item, w)  # (S, H)
        num = v.new_zeros(s, heads, hd).index_add_(0, item, w[..., None] * v)  # (S, H, hd)
        out = self.attention.out_proj((num / den[..., None]).reshape(s, d))  # (S, D)
        return out + self.mlp(self.norm(out))  # type: ignore[no-any-return]


class _VisionModel(nn.Module):
    def __init__(self, cfg: VisionConfig) -> None:
        super().__init__()
        self.embeddings = _Embeddings(cfg)
        self.pre_layernorm = _norm(cfg) if cfg.pre_layernorm else None
        self.encoder = _Encoder(cfg)
        self.post_layernorm = _norm(cfg) if cfg.post_layernorm else None
        self.head = _PoolingHead(cfg) if cfg.use_head else None


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
        """The final-norm output ``(N, hidden)``: SigLIP's pooled path (Ovis never uses it);
        for a OneVision-Encoder with ``use_head`` the public model's ``last_hidden_state``."""
        return encoder.post_norm(self.last_hidden_state)


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

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | Path, *, dtype: torch.dtype | None = None,
                        device: torch.device | str = "cpu", attn_impl: str = "sdpa",
                        allow_download: bool | None = None) -> VisionEncoder:
        """Load a public OneVision-Encoder checkpoint (folder or hub id), strictly.

        Reads ``config.json`` (``model_type`` ``"onevision_encoder"``) and ``model.safetensors``
        (or its sharded index) with the public key names; see :mod:`ovis_model.onevision_encoder`.

        Args:
            path_or_hub_id: a checkpoint folder, or a hub id looked up in the local Hugging Face
                cache (downloaded only when allowed).
            dtype: parameter dtype; None = the dtype the checkpoint was saved in.
            device: where the weights go.
            attn_impl: attention backend, resolved for ``device`` / ``dtype``.
            allow_download: fetch a hub id that is not cached (None: only with
                ``VIDSEL_ALLOW_DOWNLOAD=1``).

        Raises:
            ModelNotAvailableError: nothing local and no download allowed / possible.
            CheckpointError: not a OneVision-Encoder config, or missing / unexpected /
                wrongly shaped tensors (all listed).
            InvalidArgumentError: a config field of the wrong type or an unsupported value.
        """
        return load_pretrained_encoder(cls, path_or_hub_id, dtype=dtype, device=device,
                                       attn_impl=attn_impl, allow_download=allow_download)

    def save_pretrained(self, directory: str | Path, *,
                        max_shard_size: int = 5 * 2**30) -> Path:
        """Write a public OneVision-Encoder folder (config.json + safetensors, public key names)
        that :meth:`from_pretrained` and the public implementation both read."""
        return save_pretrained_encoder(self, directory, max_shard_size=max_shard_size)

    @property
    def attn_impl(self) -> str:
        return self.backend.name

    def post_norm(self, last_hidden_state: torch.Tensor) -> torch.Tensor:
        """The final norm applied to ``last_hidden_state`` ``(N, hidden)`` from :meth:`forward`.

        Raises:
            InvalidArgumentError: the config has no final norm (a OneVision-Encoder without its
                head).
        """
        norm = self.vision_model.post_layernorm
        if norm is None:
            raise InvalidArgumentError(
                "this encoder has no final norm (vit_config.post_layernorm is false; "
                "OneVision-Encoder has one only with use_head)")
        return norm(last_hidden_state)  # type: ignore[no-any-return]

    def pool(self, last_hidden_state: torch.Tensor,
             cu_seqlens: torch.Tensor | list[int]) -> torch.Tensor:
        """One vector per item with the attention-pooling head (OneVision-Encoder ``use_head``).

        Applies the final norm, then the head over each item's rows, as the public model
        computes ``pooler_output`` for one sequence.

        Args:
            last_hidden_state: ``(N, hidden)`` as returned by :meth:`forward` (before the final
                norm).
            cu_seqlens: int ``(S + 1,)`` item boundaries over the rows (not necessarily the
                attention segments: a video split into attention windows is one item here);
                every item needs at least one row.

        Returns:
            ``(S, hidden)``.

        Example: an image of 24 patches and a video of 64 packed one after the other, pooled
        with ``cu_seqlens = [0, 24, 88]`` -> two vectors.

        Raises:
            InvalidArgumentError: no head (``use_head`` false), or bad ``cu_seqlens``.
        """
        head = self.vision_model.head
        if head is None:
            raise InvalidArgumentError("this encoder has no pooling head (vit_config.use_head "
                                       "is false)")
        n = last_hidden_state.shape[0]
        bounds = (cu_seqlens.detach().to("cpu", torch.int64).tolist()
                  if isinstance(cu_seqlens, torch.Tensor) else [int(b) for b in cu_seqlens])
        lengths = [b - a for a, b in itertools.pairwise(bounds)]
        if len(bounds) < 2 or bounds[0] != 0 or bounds[-1] != n or min(lengths) < 1:
            raise InvalidArgumentError(
                f"cu_seqlens must rise strictly from 0 to {n} (one non-empty item each), got "
                f"{bounds[:16]}")
        return head(self.post_norm(last_hidden_state), lengths)  # type: ignore[no-any-return]

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
