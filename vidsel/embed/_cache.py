"""On-disk cache of query-independent frame embeddings.

An entry is keyed by the video's content identity (not its path or mtime), the embedder's
identity (model, weights, preprocessing, dtype), the candidate frames (indices and timestamps)
and how they were decoded. Entries are safetensors files (embeddings float32 (r, d), indices
int64 (r,), timestamps float64 (r,), and the undecodable candidates int64 (m,)) with the key
material, the row count, the dimension and a SHA-256 of the tensors as metadata; no pickle. A
second question on the same video and candidates then costs no decoding and no image encoding.

An entry is used only when it checks out: the key, dtypes, shapes, row count and content hash
match, the embeddings are finite unit rows, the decoded plus the missing indices are exactly the
candidates it is keyed by, and (given the candidates' timestamps) every timestamp is its
frame's. Anything else is logged as a warning and recomputed.

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
from ..io import decoder_version
from ..optional import require

__all__ = ["CachedEmbeddings", "EmbeddingCache", "content_id"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20  # bytes hashed at head, middle and tail
_FORMAT = "vidsel.frame_embeddings.v2"
_TENSORS = ("embeds", "indices", "timestamps_s", "missing")
_DTYPES = {"embeds": np.float32, "indices": np.int64, "timestamps_s": np.float64,
           "missing": np.int64}
#: metadata an entry stores besides its key
_STORED = ("rows", "dim", "content_sha")
_NORM_TOL = 1e-3
_TS_TOL = 1e-6


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


def _sha(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:32]


def content_sha(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 of an entry's tensors (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name in _TENSORS:
        a = np.ascontiguousarray(tensors[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class CachedEmbeddings:
    """A cache entry.

    Attributes:
        embeds: (n, d) float32 frame embeddings, L2-normalised.
        indices: (n,) int64 candidate frame indices.
        timestamps_s: (n,) float64 presentation times.
        meta: the key material it was stored under.
        missing: (m,) int64 candidates that could not be decoded.
    """

    embeds: np.ndarray = field(repr=False)
    indices: np.ndarray = field(repr=False)
    timestamps_s: np.ndarray = field(repr=False)
    meta: dict[str, str] = field(default_factory=dict, repr=False)
    missing: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    def __post_init__(self) -> None:
        if self.indices.ndim != 1 or self.missing.ndim != 1:
            raise InvalidArgumentError(
                f"inconsistent cache entry: indices and missing must be 1-D, got "
                f"{self.indices.shape} and {self.missing.shape}")
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
            # FFmpeg builds convert colour slightly differently: other pixels, other embeddings
            "decoder": decoder_version(),
            "video": video_id,
            "model": model,
            "decode": decode,
            "n": str(idx.size),
            "indices_sha": _sha(idx),
            "timestamps_sha": _sha(ts),
        }

    def path_for(self, meta: dict[str, str]) -> Path:
        key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
        return self.root / key[:2] / f"{key}.safetensors"

    def load(self, meta: dict[str, str], *, timestamps_s: np.ndarray | None = None,
             dim: int | None = None) -> CachedEmbeddings | None:
        """The entry for ``meta`` if there is one and it checks out, else None.

        Args:
            meta: the key (:meth:`key_material`).
            timestamps_s: (n,) timestamps of the candidates the key was made from; when given,
                every stored timestamp must be its frame's.
            dim: the embedder's dimension; when given, the entry's must equal it.

        A missing entry is a quiet miss; an unreadable, malformed or inconsistent one is logged
        as a warning naming the file and the reason (and is recomputed by
        :meth:`get_or_compute`).
        """
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
        problem = _check_entry(meta, stored, tensors, timestamps_s=timestamps_s, dim=dim)
        if problem:
            logger.warning("ignoring malformed cache entry %s: %s; it is recomputed", path,
                           problem)
            return None
        logger.debug("cache hit %s", path)
        return CachedEmbeddings(tensors["embeds"], tensors["indices"], tensors["timestamps_s"],
                                {k: stored[k] for k in meta}, tensors["missing"])

    def save(self, meta: dict[str, str], embeds: np.ndarray, indices: np.ndarray,
             timestamps_s: np.ndarray, missing: np.ndarray | None = None) -> Path:
        """Store an entry atomically; returns its path."""
        save_file = _safetensors("safetensors.numpy").save_file
        entry = CachedEmbeddings(
            np.ascontiguousarray(embeds, dtype=np.float32),
            np.ascontiguousarray(indices, dtype=np.int64),
            np.ascontiguousarray(timestamps_s, dtype=np.float64), meta,
            np.ascontiguousarray(np.zeros(0) if missing is None else missing, dtype=np.int64))
        tensors = {"embeds": entry.embeds, "indices": entry.indices,
                   "timestamps_s": entry.timestamps_s, "missing": entry.missing}
        stored = {**meta, "rows": str(entry.embeds.shape[0]), "dim": str(entry.embeds.shape[1]),
                  "content_sha": content_sha(tensors)}
        path = self.path_for(meta)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=stored)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        logger.debug("cached %d frame embeddings at %s", entry.embeds.shape[0], path)
        return path

    def get_or_compute(self, meta: dict[str, str], compute: Any, *,
                       candidates: np.ndarray | None = None,
                       timestamps_s: np.ndarray | None = None,
                       dim: int | None = None) -> tuple[CachedEmbeddings, bool]:
        """The cached entry, or ``compute() -> (embeds, indices, timestamps_s)`` stored first.

        Args:
            meta: the key (:meth:`key_material`).
            compute: computes the entry on a miss.
            candidates: the (n,) candidate indices the key was made from; the ones
                ``compute`` did not return are stored as missing.
            timestamps_s, dim: checked against a stored entry (see :meth:`load`).

        Returns:
            (entry, hit) where ``hit`` tells whether it came from disk.

        A failed write (read-only directory, full disk, ...) does not lose the computed
        result: it is logged as a warning naming the file and the entry is returned anyway.
        """
        hit = self.load(meta, timestamps_s=timestamps_s, dim=dim)
        if hit is not None:
            return hit, True
        embeds, indices, ts = compute()
        indices = np.asarray(indices, np.int64)
        missing = (np.zeros(0, np.int64) if candidates is None else
                   np.setdiff1d(np.asarray(candidates, np.int64), indices).astype(np.int64))
        entry = CachedEmbeddings(np.asarray(embeds, np.float32), indices,
                                 np.asarray(ts, np.float64), meta, missing)
        try:
            self.save(meta, entry.embeds, entry.indices, entry.timestamps_s, entry.missing)
        except (OSError, _safetensors().SafetensorError) as e:  # it wraps the writer's I/O
            logger.warning("could not write the embedding cache entry %s (%s); continuing "
                           "without caching it", self.path_for(meta), e)
        return entry, False


def _check_entry(meta: dict[str, str], stored: dict[str, str], tensors: dict[str, np.ndarray],
                 *, timestamps_s: np.ndarray | None, dim: int | None) -> str:
    """Why a stored entry cannot be used for ``meta`` ("" when it can)."""
    if {k: stored.get(k) for k in meta} != meta or set(stored) - set(meta) != set(_STORED):
        return "key mismatch"
    missing = [k for k in _TENSORS if k not in tensors]
    if missing:
        return f"no {', '.join(missing)} tensor"
    for name, dtype in _DTYPES.items():
        if tensors[name].dtype != dtype:
            return f"{name} is {tensors[name].dtype}, not {np.dtype(dtype).name}"
    e, idx, ts, lost = (tensors[k] for k in _TENSORS)
    if e.ndim != 2 or idx.ndim != 1 or lost.ndim != 1 or idx.shape != (e.shape[0],) or (
            ts.shape != idx.shape):
        return (f"shapes do not fit: embeds {e.shape}, indices {idx.shape}, timestamps "
                f"{ts.shape}, missing {lost.shape}")
    if str(e.shape[0]) != stored["rows"] or str(e.shape[1]) != stored["dim"]:
        return (f"{e.shape[0]} x {e.shape[1]} embeddings where the entry records "
                f"{stored['rows']} x {stored['dim']}")
    if dim is not None and e.shape[1] != dim:
        return f"dimension {e.shape[1]}, the embedder's is {dim}"
    if content_sha(tensors) != stored["content_sha"]:
        return "content hash mismatch"
    if e.shape[0] == 0 or not np.all(np.isfinite(e)) or not np.all(np.isfinite(ts)):
        return "no rows, or values that are not finite"
    norms = np.linalg.norm(e.astype(np.float64), axis=1)
    if not np.all((np.abs(norms - 1.0) <= _NORM_TOL) | (norms == 0.0)):
        return "embeddings that are not L2-normalised"
    if np.any(np.diff(idx) <= 0):
        return "indices not strictly ascending"
    every = np.union1d(idx, lost)
    if len(every) != len(idx) + len(lost) or str(len(every)) != meta["n"] or (
            _sha(every.astype(np.int64)) != meta["indices_sha"]):
        return (f"{len(idx)} decoded + {len(lost)} missing frames are not the {meta['n']} "
                f"candidates of the key")
    if timestamps_s is not None:
        cand_ts = np.asarray(timestamps_s, np.float64)
        if cand_ts.shape != every.shape:
            return f"{len(every)} candidates where {cand_ts.shape[0]} were expected"
        want = cand_ts[np.searchsorted(every, idx)]
        if not np.allclose(ts, want, rtol=0.0, atol=_TS_TOL):
            return "timestamps that are not their frames'"
    return ""
