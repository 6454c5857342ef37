"""Candidate frames: the pool specs (``n``, ``"uniform:n"``, ``"fps:f"``, ``"all"``), decoding
and embedding them chunk by chunk, and the embedding-cache key (video content, model,
candidates and how they were decoded)."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import MutableMapping
from typing import Any, Literal

import numpy as np

from .._validate import check_positive_int
from ..embed import Embedder, EmbeddingCache, content_id
from ..errors import CorruptVideoError, InvalidArgumentError

__all__ = [
    "DEFAULT_EMBED_SIZE",
    "DEFAULT_NUM_CANDIDATES",
    "CandidateMode",
    "candidate_embeddings",
    "candidate_indices",
    "decode_identity",
    "embed_candidates",
]

logger = logging.getLogger(__name__)

#: MDP3's candidate pool: 128 frames sampled uniformly.
DEFAULT_NUM_CANDIDATES = 128
#: Short side of decoded candidates (embedders resize to their own input size anyway).
DEFAULT_EMBED_SIZE = 384
#: Candidates decoded and embedded per chunk (bounds memory on long videos).
_DECODE_CHUNK = 64

CandidateMode = Literal["exact", "keyframe"]
_FPS_SPEC = re.compile(r"^fps:(\d+(\.\d*)?|\.\d+)$")
_UNIFORM_SPEC = re.compile(r"^uniform:(\d+)$")


def candidate_indices(reader: Any, candidates: int | str) -> np.ndarray:
    """Candidate frame indices (ascending, unique) for a reader.

    Args:
        reader: a :class:`vidsel.VideoReader`.
        candidates: ``n`` (int) or ``"uniform:n"`` — n frames evenly spread, first and last
            included (MDP3: 128); ``"fps:f"`` — the frames displayed every ``1/f`` seconds (1 fps
            for long videos); ``"all"`` — every frame.

    Raises:
        InvalidArgumentError: any other spec.
    """
    if isinstance(candidates, (int, np.integer)) and not isinstance(candidates, bool):
        return np.asarray(reader.uniform_indices(check_positive_int("candidates", candidates)))
    if isinstance(candidates, str):
        spec = candidates.strip().lower()
        if spec == "all":
            return np.arange(reader.metadata.num_frames, dtype=np.int64)
        m = _UNIFORM_SPEC.match(spec)
        if m:
            return np.asarray(reader.uniform_indices(check_positive_int("candidates",
                                                                         int(m.group(1)))))
        m = _FPS_SPEC.match(spec)
        if m and float(m.group(1)) > 0:
            return np.asarray(reader.fps_indices(float(m.group(1))))
    raise InvalidArgumentError(
        f"candidates={candidates!r} is not allowed; use an int n, 'uniform:<n>', 'fps:<f>' "
        f"or 'all'"
    )


def decode_identity(reader: Any) -> str:
    """What decides the decoded pixels besides frames and size: the reader backend (PyAV and
    decord may differ in colour conversion and scaling) and its resize interpolation."""
    backend = getattr(reader, "backend", None) or type(reader).__name__
    interp = getattr(reader, "interpolation", None)
    if interp is None:  # readers without the public attribute keep it on their backend
        inner = getattr(reader, "_backend", None)
        interp = getattr(inner, "interpolation", None) or getattr(inner, "_interp", None)
    return f"backend={backend}|interp={interp or 'default'}"


def embed_candidates(reader: Any, cand: np.ndarray, embedder: Any, *, size: int | None,
                     mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Decode and embed candidates chunk by chunk.

    Returns:
        (embeds (n, d), indices (n,) int64, timestamps_s (n,) float64, decode seconds, embed
        seconds); undecodable candidates are dropped and keyframe-mode duplicates merged.

    Raises:
        CorruptVideoError: no candidate could be decoded.
    """
    embeds, idx, ts = [], [], []
    t_dec = t_emb = 0.0
    for start in range(0, len(cand), _DECODE_CHUNK):
        t0 = time.perf_counter()
        batch = reader.decode(cand[start:start + _DECODE_CHUNK], size=size, mode=mode,
                              on_missing="skip")
        t1 = time.perf_counter()
        if batch.missing:
            logger.warning("%s: %d candidate frames could not be decoded and are skipped",
                           reader.path, len(batch.missing))
        if len(batch):
            embeds.append(embedder.embed_images(batch.frames))
            idx.append(np.asarray(batch.indices, dtype=np.int64))
            ts.append(np.asarray(batch.timestamps_s, dtype=np.float64))
        t_dec += t1 - t0
        t_emb += time.perf_counter() - t1
    if not idx:
        raise CorruptVideoError(
            f"{reader.path}: none of the {len(cand)} candidate frames could be decoded",
            path=str(reader.path), missing=tuple(int(i) for i in cand))
    e, i, t = np.concatenate(embeds), np.concatenate(idx), np.concatenate(ts)
    _, first = np.unique(i, return_index=True)  # keyframe mode can return a frame twice
    keep = np.sort(first)
    return e[keep], i[keep], t[keep], t_dec, t_emb


def candidate_embeddings(
    reader: Any, cand: np.ndarray, embedder: Embedder, *, size: int | None, mode: str,
    cache_dir: str | os.PathLike[str] | None, timings: MutableMapping[str, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Frame embeddings of the candidates, from the cache in ``cache_dir`` when it holds them.

    Decoding and image-encoding seconds are added to ``timings`` (``decode``,
    ``embed_images``) only when they are computed.

    Returns:
        (embeds (n, d) float32, indices (n,) int64, timestamps_s (n,) float64, cache_hit).
    """

    def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        e, i, t, t_dec, t_emb = embed_candidates(reader, cand, embedder, size=size, mode=mode)
        timings["decode"] = t_dec
        timings["embed_images"] = t_emb
        return e, i, t

    if cache_dir is None:
        return (*compute(), False)
    md = reader.metadata
    cache = EmbeddingCache(cache_dir)
    meta = cache.key_material(
        video_id=f"{content_id(reader.path)}|stream={md.stream_index}|n={md.num_frames}",
        model=embedder.cache_key,
        indices=cand, timestamps_s=np.asarray(md.timestamps_s)[cand],
        decode=f"{mode}@{size}|{decode_identity(reader)}",
    )
    entry, hit = cache.get_or_compute(meta, compute)
    return entry.embeds, entry.indices, entry.timestamps_s, hit
