"""The selection cache: a selection and the pixels it hands the model, stored once per
(video content, question, method, budget, embedder, geometry, options), so that a second model
(or a rerun) reuses them without decoding or embedding again.

Layout: ``ROOT/ab/<key>/selection.json`` (the selection's ``to_dict()`` plus the video facts
a :class:`~vidsel.eval.VisualInput` needs) and ``pixels.npy`` (frames: (T, H, W, 3) uint8 at the
geometry's frame size; patches: (N, p, p, 3) uint8). An entry is written in a temporary folder
and renamed into place, so readers never see half an entry and concurrent writers of one key
(several workers, several shards on a shared file system) leave one complete entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .._json import json_safe
from ..errors import InvalidArgumentError
from ..io import decoder_version
from ..results import PatchConfig, PatchSelection, Selection, VisualSelection

__all__ = ["CACHE_VERSION", "CachedSelection", "SelectionCache", "selection_key"]

logger = logging.getLogger(__name__)

#: Changes when the entry layout or what a key covers changes.
CACHE_VERSION = 1


def selection_key(*, content_id: str, question: str | None, method: str, budget: int,
                  embedder: str | None, geometry: PatchConfig,
                  options: Mapping[str, Any]) -> str:
    """SHA-256 (hex, 40 characters) of everything that decides a selection and its pixels."""
    # vidsel's version too: a new release may select or decode differently; and the decoder's:
    # FFmpeg builds convert colour slightly differently (PyAV 15 vs 18: ~1 grey level)
    ident = {"v": CACHE_VERSION, "vidsel": __version__, "decoder": decoder_version(),
             "content_id": content_id, "question": question,
             "method": method, "budget": int(budget), "embedder": embedder,
             "geometry": geometry.to_dict(), "options": json_safe(dict(options))}
    text = json.dumps(ident, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True, eq=False)
class CachedSelection:
    """A selection with the pixels the model gets and the video facts around it.

    Attributes:
        selection: a :class:`~vidsel.results.Selection` or a
            :class:`~vidsel.results.PatchSelection` (with ``pixels``).
        frames: frames selections: (T, H, W, 3) uint8 at ``geometry.frame_size``; None for
            patches.
        geometry: the patch geometry it was made for.
        source_fps, num_frames, duration_s: the video's.
        start_time_s: the stream time of its first frame (subtitle times count from the
            start of playback: they are shifted by this).
        cache_hit: it came from the cache.
        timings_s: seconds spent making it (``open``, ``select``, ``frames``; empty for a
            cache hit).
        visual_tokens: what the selection costs the model that asked for it (frames merged
            in time counted as the model counts them); not stored: derived per model.
        key: its cache key (:func:`selection_key`).
    """

    selection: VisualSelection
    frames: np.ndarray | None
    geometry: PatchConfig
    source_fps: float
    num_frames: int
    duration_s: float
    start_time_s: float = 0.0
    cache_hit: bool = False
    timings_s: Mapping[str, float] = field(default_factory=dict)
    visual_tokens: int | None = None
    key: str | None = None


class SelectionCache:
    """Selections on disk under ``root`` (None: a cache that stores nothing)."""

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        self.root = None if root is None else Path(root).expanduser()

    def __repr__(self) -> str:
        return f"SelectionCache({str(self.root) if self.root else None!r})"

    def _dir(self, key: str) -> Path:
        if self.root is None:
            raise InvalidArgumentError("this selection cache is disabled (root=None)")
        return self.root / key[:2] / key

    def video_facts(self, content_id: str) -> dict[str, Any] | None:
        """The stored size, frame rate, frame count and duration of a video (by content id),
        so that a cache hit needs no demuxing at all; None when unknown."""
        if self.root is None:
            return None
        path = self.root / "videos" / f"{content_id}.json"
        try:
            facts = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # absent or damaged: the video is probed again
            return None
        keys = ("height", "width", "fps", "num_frames", "duration_s", "start_time_s")
        return dict(facts) if isinstance(facts, dict) and all(k in facts for k in keys) else None

    def put_video_facts(self, content_id: str, facts: Mapping[str, Any]) -> None:
        if self.root is None:
            return
        folder = self.root / "videos"
        tmp = folder / f".{content_id}.{secrets.token_hex(4)}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(json_safe(dict(facts))), encoding="utf-8")
            os.replace(tmp, folder / f"{content_id}.json")
        except OSError as e:  # not cached: the video is probed again next time
            with contextlib.suppress(OSError):
                tmp.unlink()
            logger.warning("selection cache: cannot store video facts under %s (%s)",
                           self.root, e.strerror or e)

    def get(self, key: str) -> CachedSelection | None:
        """The entry of ``key``, or None (absent, disabled, or unreadable: then it is
        dropped and recomputed)."""
        if self.root is None:
            return None
        folder = self._dir(key)
        meta_path = folder / "selection.json"
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            pixels = np.load(folder / "pixels.npy", allow_pickle=False)
            kind = meta["selection"]["kind"]
            sel: VisualSelection
            if kind == "patches":
                sel = replace(PatchSelection.from_dict(meta["selection"]), pixels=pixels)
                frames = None
            else:
                sel = Selection.from_dict(meta["selection"])
                frames = pixels
            return CachedSelection(selection=sel, frames=frames,
                                   geometry=PatchConfig.from_dict(meta["geometry"]),
                                   source_fps=float(meta["source_fps"]),
                                   num_frames=int(meta["num_frames"]),
                                   duration_s=float(meta["duration_s"]),
                                   start_time_s=float(meta.get("start_time_s", 0.0)),
                                   cache_hit=True)
        except Exception as e:  # any damage: recompute rather than fail the item
            logger.warning("selection cache entry %s is unreadable (%s: %s); recomputing",
                           folder, type(e).__name__, e)
            shutil.rmtree(folder, ignore_errors=True)
            return None

    def put(self, key: str, entry: CachedSelection) -> None:
        """Store ``entry`` under ``key`` (atomically; an existing entry is kept)."""
        if self.root is None:
            return
        folder = self._dir(key)
        if folder.is_dir():
            return
        sel = entry.selection
        if isinstance(sel, PatchSelection):
            if sel.pixels is None:
                raise InvalidArgumentError("a cached patch selection needs its pixels")
            payload, pixels = sel.to_dict(), sel.pixels
        elif isinstance(sel, Selection):
            if entry.frames is None:
                raise InvalidArgumentError("a cached frame selection needs its frames")
            payload, pixels = sel.to_dict(), entry.frames
        else:
            raise InvalidArgumentError(f"cannot cache a {type(sel).__name__}")
        meta = {"version": CACHE_VERSION, "selection": payload,
                "geometry": entry.geometry.to_dict(), "source_fps": entry.source_fps,
                "num_frames": entry.num_frames, "duration_s": entry.duration_s,
                "start_time_s": entry.start_time_s}
        tmp = folder.parent / f".{key}.{secrets.token_hex(4)}.tmp"
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            np.save(tmp / "pixels.npy", np.ascontiguousarray(pixels), allow_pickle=False)
            (tmp / "selection.json").write_text(json.dumps(json_safe(meta)), encoding="utf-8")
            try:
                os.rename(tmp, folder)
            except OSError:  # another writer finished first: keep theirs
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as e:  # a full or read-only disk: the run goes on without caching
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)
            logger.warning("selection cache: cannot store %s under %s (%s); going on without "
                           "caching it", key[:12], self.root, e.strerror or e)
        except BaseException:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)
            raise
