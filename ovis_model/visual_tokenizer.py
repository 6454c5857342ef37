"""Ovis's probabilistic visual tokens: ViT features -> merged neighbours -> head -> softmax.

``features`` = the encoder's last block output (no final norm), with each merge block of
``hidden_stride**2`` consecutive patches concatenated along channels; ``head`` = Linear (no bias)
+ LayerNorm; tokens = float32 softmax over the head vocabulary, followed by ``len(INDICATOR_IDS)``
zero columns (indicator slots are never produced by the head). The visual embedding table maps
tokens (probability rows, or integer ids for indicators) to LLM embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import OvisConfig
from .constants import INDICATOR_IDS
from .errors import InvalidArgumentError
from .vision import VisionEncoder, VisionOutput

__all__ = ["VisualEmbedding", "VisualTokenizer", "VisualTokens"]


@dataclass
class VisualTokens:
    """Visual tokenizer outputs.

    Attributes:
        tokens: ``(M, visual_vocab_size)`` probabilities (indicator columns zero), M = N / s^2.
        head_logits: ``(M, visual_vocab_size - n_indicators)`` pre-softmax head output.
        features: ``(M, s^2 * vit_hidden)`` merged encoder features.
        vision: the encoder outputs (patch order).
    """

    tokens: torch.Tensor
    head_logits: torch.Tensor
    features: torch.Tensor
    vision: VisionOutput


class VisualTokenizer(nn.Module):
    """ViT + head, named as in the checkpoint (``visual_tokenizer.vit.*``, ``.head.{0,1}.*``)."""

    def __init__(self, config: OvisConfig, *, attn_impl: str = "sdpa",
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        vit = config.vit_config
        self.config = config
        self.vit = VisionEncoder(vit, attn_impl=attn_impl, device=device, dtype=dtype)
        self.head = nn.Sequential(
            nn.Linear(vit.hidden_size * vit.hidden_stride**2, config.head_vocab_size, bias=False),
            nn.LayerNorm(config.head_vocab_size),  # eps 1e-5, as the official head
        )

    def forward(self, pixel_values: torch.Tensor, positions: torch.Tensor,
                cu_seqlens: torch.Tensor, frame_grids: torch.Tensor | None = None, *,
                output_hidden_states: bool = False) -> VisualTokens:
        """Tokenize packed patches (see :meth:`VisionEncoder.forward` for the arguments)."""
        unit = self.config.vit_config.hidden_stride ** 2
        n = pixel_values.shape[0]
        if n % unit:
            raise InvalidArgumentError(
                f"{n} patches are not a whole number of {unit}-patch merge blocks")
        out = self.vit(pixel_values, positions, cu_seqlens, frame_grids,
                       output_hidden_states=output_hidden_states)
        # (N, D) -> (N / s^2, s^2 * D): consecutive merge-block patches side by side
        features = out.last_hidden_state.reshape(n // unit, -1)
        logits = self.head(features)  # (M, V - n_ind)
        probs = torch.softmax(logits, dim=-1, dtype=torch.float32).to(logits.dtype)
        pad = probs.new_zeros(probs.shape[0], len(INDICATOR_IDS))
        tokens = torch.cat([probs, pad], dim=1)  # (M, V)
        return VisualTokens(tokens=tokens, head_logits=logits, features=features, vision=out)


class VisualEmbedding(nn.Embedding):
    """The visual embedding table: integer ids -> rows; probability rows -> ``probs @ weight``."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if not torch.is_floating_point(tokens):
            return super().forward(tokens)
        return torch.matmul(tokens.to(self.weight.dtype), self.weight)
