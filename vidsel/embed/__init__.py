"""Frame and text embedders (CLIP / SigLIP / SigLIP2) and the on-disk frame-embedding cache.

- :class:`Embedder` — the interface: ``embed_images((N, H, W, 3) uint8) -> (N, d) float32``
  and ``embed_text(str) -> (d,) float32``, L2-normalised, batched, device and dtype aware;
  long text handled as MDP3 does (:func:`head_tail_chunks`), optional prompt cleaning
  (:func:`make_prompt_cleaner`).
- :class:`HFEmbedder` (transformers, ``hf:`` specs) and :class:`OpenClipEmbedder` (open_clip,
  ``open_clip:`` specs; ``pip install 'vidsel[clip]'``).
- :func:`load_embedder` resolves spec strings; :func:`available_embedders` lists the kinds.
- :class:`EmbeddingCache` and :func:`content_id` — cached frame embeddings keyed by video
  content, model and candidate frames (safetensors, no pickle).

Weights come from a local path, or a hub id / open_clip tag resolved from the local caches:
nothing is downloaded unless allowed (``allow_download=True`` or ``VIDSEL_ALLOW_DOWNLOAD=1``),
and weights that are not local raise :class:`~vidsel.errors.ModelNotAvailableError` at once,
saying how to provide them. Only safetensors are loaded unless pickle-based files are allowed
(``allow_pickle=True`` or ``VIDSEL_ALLOW_PICKLE=1``). Random weights are only ever built on
explicit request (``open_clip:NAME@random`` / ``random_init=True``).
"""

from ._access import ALLOW_DOWNLOAD_ENV, downloads_allowed, hub_offline_var
from ._base import DTYPES, Embedder
from ._cache import CachedEmbeddings, EmbeddingCache, content_id
from ._hf import DEFAULT_HF_MODEL, HF_MODEL_TYPES, HFEmbedder
from ._openclip import OpenClipEmbedder
from ._registry import (
    EMBEDDERS,
    available_embedders,
    load_embedder,
    register_embedder,
    resolve_device,
    shared_embedder,
    shared_embedder_loaded,
)
from ._text import PromptCleaner, head_tail_chunks, make_prompt_cleaner

__all__ = [
    "ALLOW_DOWNLOAD_ENV",
    "DEFAULT_HF_MODEL",
    "DTYPES",
    "EMBEDDERS",
    "HF_MODEL_TYPES",
    "CachedEmbeddings",
    "Embedder",
    "EmbeddingCache",
    "HFEmbedder",
    "OpenClipEmbedder",
    "PromptCleaner",
    "available_embedders",
    "content_id",
    "downloads_allowed",
    "head_tail_chunks",
    "hub_offline_var",
    "load_embedder",
    "make_prompt_cleaner",
    "register_embedder",
    "resolve_device",
    "shared_embedder",
    "shared_embedder_loaded",
]
