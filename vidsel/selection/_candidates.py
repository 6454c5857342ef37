"""Candidate frames: the pool specs (``n``, ``"uniform:n"``, ``"fps:f"``, ``"all"``), keyframe
snapping (each keyframe once), decoding and embedding them chunk by chunk (the next chunk is
decoded in a thread while the embedder runs on the current one), and the embedding-cache key
(video content, model, candidates and how they were decoded)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Generator, MutableMapping
from typing import Any, Literal

import numpy as np

from .._progress import progress_bar
from .._validate import check_positive_int
from ..embed import Embedder, EmbeddingCache, content_id
from ..errors import CorruptVideoError, InvalidArgumentError
from ..io import decode_ahead

__all__ = [
    "DEFAULT_EMBED_SIZE",
    "DEFAULT_NUM_CANDIDATES",
    "CandidateMode",
    "candidate_embeddings",
    "candidate_indices",
    "decode_identity",
    "embed_candidates",
    "snap_to_keyframes",
]

logger = logging.getLogger(__name__)

#: MDP3's candidate pool: 128 frames sampled uniformly.
DEFAULT_NUM_CANDIDATES = 128
#: Short side of decoded candidates (embedders resize to their own input size anyway).
DEFAULT_EMBED_SIZE = 384
#: Candidates decoded and embedded per chunk (bounds memory on long videos).
_DECODE_CHUNK = 64
#: Chunks decoded ahead of the one being embedded (memory: this many more chunks of pixels).
_DECODE_AHEAD = 1

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


def snap_to_keyframes(reader: Any, cand: np.ndarray) -> np.ndarray:
    """The keyframes ``reader.decode(cand, mode="keyframe")`` returns, each once, ascending.

    Each candidate goes to its nearest keyframe (the earlier one on a tie), as the reader
    snaps; many candidates share a keyframe on long-GOP video (68 one-per-second candidates
    can be 9 keyframes), and a selector must not be handed the same frame twice.
    """
    keys = np.asarray(reader.metadata.keyframe_indices, dtype=np.int64)
    if not len(keys):
        keys = np.zeros(1, np.int64)
    req = np.asarray(cand, dtype=np.int64)
    pos = np.searchsorted(keys, req)
    lo = keys[np.clip(pos - 1, 0, len(keys) - 1)]
    hi = keys[np.clip(pos, 0, len(keys) - 1)]
    return np.unique(np.where(np.abs(req - lo) <= np.abs(hi - req), lo, hi))


def _decoded_chunks(reader: Any, cand: np.ndarray, *, size: int | None, mode: str
                    ) -> Generator[tuple[np.ndarray, Any, float], None, None]:
    """``(chunk, batch, decode seconds)`` for each chunk of ``cand`` in order, decoded by a
    producer thread at most :data:`_DECODE_AHEAD` chunks ahead of the consumer.

    FFmpeg and the embedder's tensor code release the GIL, so decoding the next chunk overlaps
    embedding this one; the chunks, their order and every call on the reader are those of a
    plain loop, so results are the same bit for bit. Only the producer touches the reader
    until the generator ends (closed early or not, it waits for the producer to stop); its
    exceptions are raised here.
    """
    chunks = [cand[i:i + _DECODE_CHUNK] for i in range(0, len(cand), _DECODE_CHUNK)]

    def decoded() -> Generator[tuple[np.ndarray, Any, float], None, None]:
        for chunk in chunks:
            t0 = time.perf_counter()
            batch = reader.decode(chunk, size=size, mode=mode, on_missing="skip")
            yield chunk, batch, time.perf_counter() - t0

    if len(chunks) <= 1 or _DECODE_AHEAD < 1:  # nothing to overlap
        yield from decoded()
    else:  # io's decode-ahead thread: its exceptions are raised here, closing stops it
        yield from decode_ahead(decoded(), depth=_DECODE_AHEAD)


def embed_candidates(reader: Any, cand: np.ndarray, embedder: Any, *, size: int | None,
                     mode: str, progress: bool | None = None,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Decode and embed candidates chunk by chunk, the next chunk decoding while the current
    one is embedded (a progress bar over frames when ``progress`` asks for one, see
    :mod:`vidsel._progress`).

    Returns:
        (embeds (n, d), indices (n,) int64, timestamps_s (n,) float64, decode seconds, embed
        seconds; the two overlap, so their sum can exceed the time taken); undecodable candidates are dropped, and a frame the decoder returns twice
        (keyframe mode on candidates that were not snapped first) is embedded once.

    Raises:
        CorruptVideoError: no candidate could be decoded.
    """
    embeds, idx, ts = [], [], []
    seen: set[int] = set()
    t_dec = t_emb = 0.0
    decoded = _decoded_chunks(reader, cand, size=size, mode=mode)
    with progress_bar(total=len(cand), desc="embedding frames", unit="frame",
                      progress=progress) as bar, contextlib.closing(decoded):
        for chunk, batch, dt in decoded:
            t1 = time.perf_counter()
            if batch.missing:
                logger.warning("%s: %d candidate frames could not be decoded and are skipped",
                               reader.path, len(batch.missing))
            got = np.asarray(batch.indices, dtype=np.int64)
            _, first = np.unique(got, return_index=True)
            keep = np.array([int(j) for j in np.sort(first) if int(got[j]) not in seen],
                            dtype=np.int64)
            if len(keep):
                seen.update(int(i) for i in got[keep])
                embeds.append(embedder.embed_images(batch.frames[keep], progress=False))
                idx.append(got[keep])
                ts.append(np.asarray(batch.timestamps_s, dtype=np.float64)[keep])
            t_dec += dt
            t_emb += time.perf_counter() - t1
            bar.update(len(chunk))
    if not idx:
        raise CorruptVideoError(
            f"{reader.path}: none of the {len(cand)} candidate frames could be decoded",
            path=str(reader.path), missing=tuple(int(i) for i in cand))
    e, i, t = np.concatenate(embeds), np.concatenate(idx), np.concatenate(ts)
    order = np.argsort(i, kind="stable")
    return e[order], i[order], t[order], t_dec, t_emb


def candidate_embeddings(
    reader: Any, cand: np.ndarray, embedder: Embedder, *, size: int | None, mode: str,
    cache_dir: str | os.PathLike[str] | None, timings: MutableMapping[str, float],
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Frame embeddings of the candidates, from the cache in ``cache_dir`` when it holds a
    valid entry for them (see :class:`vidsel.embed.EmbeddingCache`).

    ``cand`` must be ascending and unique (keyframe mode: snapped with
    :func:`snap_to_keyframes` first). Decoding and image-encoding seconds are added to
    ``timings`` (``decode``, ``embed_images``) only when they are computed.

    Returns:
        (embeds (n, d) float32, indices (n,) int64, timestamps_s (n,) float64, cache_hit).
    """

    def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        e, i, t, t_dec, t_emb = embed_candidates(reader, cand, embedder, size=size, mode=mode,
                                                 progress=progress)
        timings["decode"] = t_dec
        timings["embed_images"] = t_emb
        return e, i, t

    if cache_dir is None:
        return (*compute(), False)
    md = reader.metadata
    cache = EmbeddingCache(cache_dir)
    cand_ts = np.asarray(md.timestamps_s)[cand]
    meta = cache.key_material(
        video_id=f"{content_id(reader.path)}|stream={md.stream_index}|n={md.num_frames}",
        model=embedder.cache_key,
        indices=cand, timestamps_s=cand_ts,
        decode=f"{mode}@{size}|{decode_identity(reader)}",
    )
    entry, hit = cache.get_or_compute(meta, compute, candidates=cand, timestamps_s=cand_ts,
                                      dim=embedder.dim)
    return entry.embeds, entry.indices, entry.timestamps_s, hit
