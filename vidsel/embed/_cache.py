"""On-disk cache of query-independent frame embeddings.

An entry is keyed by the video's content identity (not its path or mtime), the embedder's
identity (model, weights, preprocessing, dtype), the candidate frames (indices and timestamps)
and how they were decoded. Entries are safetensors files (embeddings float32 (n, d), indices
int64 (n,), timestamps float64 (n,)) with the key material as JSON metadata; no pickle. A second
question on the same video and candidates then costs no decoding and no image encoding.

Layout: ``<root>/<key[:2]>/<key>.safetensors``; writes are atomic (temp file + rename).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, VideoNotFoundError
from ..optional import require

__all__ = ["CachedEmbeddings", "EmbeddingCache", "content_id"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20  # bytes hashed at head, middle and tail
_FORMAT = "vidsel.frame_embeddings.v1"
_TENSORS = ("embeds", "indices", "timestamps_s")


def _safetensors(module: str = "safetensors") -> Any:
    """``safetensors`` (or a submodule), imported on first use.

    Raises:
        MissingDependencyError: "the embedding cache needs safetensors: pip install
            'vidsel[embed]'".
    """
    return require(module, "the embedding cache", extra="embed", needs="safetensors")


def content_id(path: str | os.PathLike[str]) -> str:
    """Cheap content identity of a file: its size plus SHA-256 of 1 MiB at head, middle, tail.

    Independent of the path and of modification times: a copied or touched file keeps its id,
    an edited one (almost surely) does not.
    """
    p = Path(path)
    if not p.is_file():
        raise VideoNotFoundError(f"no such video file: {str(p)!r}")
    size = p.stat().st_size
    h = hashlib.sha256(f"size={size};".encode())
    with p.open("rb") as f:
        for off in sorted({0, max(0, size // 2 - _CHUNK // 2), max(0, size - _CHUNK)}):
            f.seek(off)
            h.update(f.read(_CHUNK))
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class CachedEmbeddings:
    """A cache entry.

    Attributes:
        embeds: (n, d) float32 frame embeddings, L2-normalised.
        indices: (n,) int64 candidate frame indices.
        timestamps_s: (n,) float64 presentation times.
        meta: the key material it was stored under.
    """

    embeds: np.ndarray = field(repr=False)
    indices: np.ndarray = field(repr=False)
    timestamps_s: np.ndarray = field(repr=False)
    meta: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.indices.ndim != 1:
            raise InvalidArgumentError(
                f"inconsistent cache entry: indices must be 1-D, got {self.indices.shape}")
        n = self.indices.shape[0]
        if self.embeds.ndim != 2 or self.embeds.shape[0] != n or self.timestamps_s.shape != (n,):
            raise InvalidArgumentError(
                f"inconsistent cache entry: embeds {self.embeds.shape}, indices "
                f"{self.indices.shape}, timestamps {self.timestamps_s.shape}"
            )

    def __repr__(self) -> str:
        return f"CachedEmbeddings(n={self.embeds.shape[0]}, d={self.embeds.shape[1]})"


class EmbeddingCache:
    """Directory of cached frame embeddings.

    Args:
        root: cache directory (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.root)!r})"

    @staticmethod
    def key_material(*, video_id: str, model: str, indices: np.ndarray,
                     timestamps_s: np.ndarray, decode: str) -> dict[str, str]:
        """The fields an entry is keyed by (all strings, stored as metadata)."""
        idx = np.ascontiguousarray(indices, dtype=np.int64)
        ts = np.round(np.ascontiguousarray(timestamps_s, dtype=np.float64), 6)
        return {
            "format": _FORMAT,
            "video": video_id,
            "model": model,
            "decode": decode,
            "n": str(idx.size),
            "indices_sha": hashlib.sha256(idx.tobytes()).hexdigest()[:32],
            "timestamps_sha": hashlib.sha256(ts.tobytes()).hexdigest()[:32],
        }

    def path_for(self, meta: dict[str, str]) -> Path:
        key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
        return self.root / key[:2] / f"{key}.safetensors"

    def load(self, meta: dict[str, str]) -> CachedEmbeddings | None:
        """The entry for ``meta``, or None (missing, unreadable or mismatching entries)."""
        st, st_numpy = _safetensors(), _safetensors("safetensors.numpy")
        path = self.path_for(meta)
        if not path.is_file():
            return None
        try:
            with st.safe_open(str(path), framework="numpy") as f:
                stored = dict(f.metadata() or {})
            tensors = st_numpy.load_file(str(path))
        except (OSError, st.SafetensorError, ValueError) as e:
            logger.warning("ignoring unreadable cache entry %s: %s", path, e)
            return None
        if stored != meta:
            logger.warning("ignoring cache entry %s: key mismatch", path)
            return None
        missing = [k for k in _TENSORS if k not in tensors]
        if missing:
            logger.warning("ignoring malformed cache entry %s: no %s tensor", path,
                           ", ".join(missing))
            return None
        try:
            entry = CachedEmbeddings(tensors["embeds"], tensors["indices"],
                                     tensors["timestamps_s"], stored)
        except InvalidArgumentError as e:  # shapes that do not fit together
            logger.warning("ignoring malformed cache entry %s: %s", path, e)
            return None
        logger.debug("cache hit %s", path)
        return entry

    def save(self, meta: dict[str, str], embeds: np.ndarray, indices: np.ndarray,
             timestamps_s: np.ndarray) -> Path:
        """Store an entry atomically; returns its path."""
        save_file = _safetensors("safetensors.numpy").save_file
        entry = CachedEmbeddings(np.ascontiguousarray(embeds, dtype=np.float32),
                                 np.ascontiguousarray(indices, dtype=np.int64),
                                 np.ascontiguousarray(timestamps_s, dtype=np.float64), meta)
        path = self.path_for(meta)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            save_file({"embeds": entry.embeds, "indices": entry.indices,
                       "timestamps_s": entry.timestamps_s}, tmp, metadata=dict(meta))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        logger.debug("cached %d frame embeddings at %s", entry.embeds.shape[0], path)
        return path

    def get_or_compute(self, meta: dict[str, str], compute: Any) -> tuple[CachedEmbeddings, bool]:
        """The cached entry, or ``compute() -> (embeds, indices, timestamps_s)`` stored first.

        Returns:
            (entry, hit) where ``hit`` tells whether it came from disk.

        A failed write (read-only directory, full disk, ...) does not lose the computed
        result: it is logged as a warning naming the file and the entry is returned anyway.
        """
        hit = self.load(meta)
        if hit is not None:
            return hit, True
        embeds, indices, ts = compute()
        entry = CachedEmbeddings(np.asarray(embeds, np.float32), np.asarray(indices, np.int64),
                                 np.asarray(ts, np.float64), meta)
        try:
            self.save(meta, entry.embeds, entry.indices, entry.timestamps_s)
        except (OSError, _safetensors().SafetensorError) as e:  # it wraps the writer's I/O
            logger.warning("could not write the embedding cache entry %s (%s); continuing "
                           "without caching it", self.path_for(meta), e)
        return entry, False
