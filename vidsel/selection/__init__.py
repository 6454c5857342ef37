"""Keyframe selection for a video and a question: :func:`select_frames` -> :class:`Selection`.

- :func:`select_frames` (``_select.py``): candidates -> embeddings -> an array-level selector
  from :mod:`vidsel.select`;
- candidates, their decoding and embedding, and the embedding-cache key (``_candidates.py``):
  :func:`candidate_indices`, :data:`DEFAULT_NUM_CANDIDATES`;
- adapters to other libraries (``_adapters.py``): vLLM (:func:`to_vllm`,
  :func:`vllm_metadata`, the even-frame policy :data:`EVEN_POLICIES` / :func:`even_positions`),
  any transformers video processor (:func:`to_transformers`), Qwen-VL metadata
  (:func:`to_qwen`, :func:`qwen_video_metadata`) and transformers' ``sample_indices_fn``
  (:func:`indices_for`);
- :func:`select_in_window` (``_window.py``): the same selection restricted to a frame window
  (``start_frame..end_frame``), for integrations whose caller fixes a time range;
- :class:`FrameSelector` (``_frame_selector.py``): an Ovis-style
  ``frame_selector(conversations, frames)``.

:class:`Selection` itself is a result type (:mod:`vidsel.results`), re-exported here.

Example:
    >>> sel = select_frames("talk.mp4", "When is the whiteboard shown?", k=8,
    ...                     embedder="hf:/models/siglip-so400m", cache_dir="~/.cache/vidsel")
    ...                                                                 # doctest: +SKIP
    >>> sel.indices, sel.timestamps_s, sel.source_fps                   # doctest: +SKIP
    >>> frames, metadata = to_qwen(sel, size=448)                       # doctest: +SKIP
"""

from ..results import Selection
from ._adapters import (
    DEFAULT_EVEN,
    EVEN_POLICIES,
    VIDEO_BACKEND,
    EvenPolicy,
    even_positions,
    indices_for,
    padded_indices,
    qwen_video_metadata,
    sample_indices_fn,
    to_qwen,
    to_transformers,
    to_vllm,
    vllm_metadata,
)
from ._candidates import (
    DEFAULT_EMBED_SIZE,
    DEFAULT_NUM_CANDIDATES,
    CandidateMode,
    candidate_indices,
)
from ._frame_selector import FrameSelector
from ._select import select_frames
from ._window import POOL_FACTOR, pool_size, select_in_window

__all__ = [
    "DEFAULT_EMBED_SIZE",
    "DEFAULT_EVEN",
    "DEFAULT_NUM_CANDIDATES",
    "EVEN_POLICIES",
    "POOL_FACTOR",
    "VIDEO_BACKEND",
    "CandidateMode",
    "EvenPolicy",
    "FrameSelector",
    "Selection",
    "candidate_indices",
    "even_positions",
    "indices_for",
    "padded_indices",
    "pool_size",
    "qwen_video_metadata",
    "sample_indices_fn",
    "select_frames",
    "select_in_window",
    "to_qwen",
    "to_transformers",
    "to_vllm",
    "vllm_metadata",
]
