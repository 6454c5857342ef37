"""The frames chosen for a question: :class:`Selection` (what :func:`vidsel.select_frames`
returns). Pure data plus JSON, decoding its own frames through :class:`vidsel.io.VideoReader`
and drawing through :mod:`vidsel.render`; adapters to other libraries (Qwen-VL metadata,
transformers' ``sample_indices_fn``) live in :mod:`vidsel.selection`.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from .. import render
from .._fields import FieldsEq
from .._json import float_array, float_dict, int_array, json_safe, reads_dict
from .._validate import check_positive_int
from ..deprecation import REMOVED_IN, renamed_fields
from ..errors import InvalidArgumentError, VidselError
from ..io import VideoReader
from ._protocol import SelectionKind

__all__ = ["Selection"]

logger = logging.getLogger(__name__)


@renamed_fields({"video": "path"})
@dataclass(frozen=True, repr=False, eq=False)
class Selection(FieldsEq):
    """The frames chosen for a question, in the source video's terms.

    Attributes:
        indices: (k,) int64 frame indices in the source video (presentation order), ascending,
            unique.
        timestamps_s: (k,) float64 presentation time of each frame in seconds (stream timeline).
        scores: (k,) float64 relevance of each frame to the question (cosine similarity of the
            embeddings), or None when no embedder was used (e.g. ``uniform``).
        method: selector name (see :func:`vidsel.select.available_selectors`).
        params: the selector's parameters, as used.
        source_fps: average frame rate of the source video.
        path: the video file (needed by :meth:`load_frames`); ``video`` is its deprecated name.
        num_frames: frames in the source video.
        num_candidates: size of the candidate pool the selector chose from.
        question: the question the frames were selected for.
        cache_hit: frame embeddings came from the on-disk cache.
        timings_s: seconds spent in ``decode``, ``embed_images``, ``embed_text``, ``select``.
        candidate_timestamps_s: (n,) float64 time of every candidate the selector chose from,
            or None (no embedder); with ``candidate_scores`` the relevance curve :meth:`plot`
            draws.
        candidate_scores: (n,) float64 relevance (cosine similarity) of every candidate, or None.
        tokens_per_frame: visual tokens one frame costs the model (None: unknown); gives
            :attr:`num_tokens`.

    A :class:`~vidsel.results.VisualSelection` (``kind = "frames"``). In Jupyter a selection
    displays as a contact sheet of its frames with their timestamps (``_repr_png_``);
    :meth:`plot` draws the relevance over time with the chosen frames marked.
    """

    kind: ClassVar[SelectionKind] = "frames"

    indices: np.ndarray
    timestamps_s: np.ndarray
    scores: np.ndarray | None
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    source_fps: float = 0.0
    path: str | None = None
    num_frames: int | None = None
    num_candidates: int | None = None
    question: str | None = None
    cache_hit: bool = False
    timings_s: Mapping[str, float] = field(default_factory=dict)
    candidate_timestamps_s: np.ndarray | None = None
    candidate_scores: np.ndarray | None = None
    tokens_per_frame: int | None = None

    def __post_init__(self) -> None:
        idx = np.asarray(self.indices)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise InvalidArgumentError(f"indices must be a 1-D integer array, got {idx.dtype} "
                                       f"of shape {idx.shape}")
        idx = idx.astype(np.int64)
        ts = np.asarray(self.timestamps_s, dtype=np.float64)
        if ts.shape != idx.shape:
            raise InvalidArgumentError(
                f"timestamps_s has shape {ts.shape}, indices {idx.shape}: lengths differ"
            )
        if idx.size and (np.any(np.diff(idx) <= 0) or idx[0] < 0):
            raise InvalidArgumentError(
                f"indices must be unique, non-negative and ascending, got {idx.tolist()}"
            )
        if self.num_frames is not None and idx.size and idx[-1] >= self.num_frames:
            raise InvalidArgumentError(
                f"index {int(idx[-1])} is outside the video's {self.num_frames} frames"
            )
        if not np.all(np.isfinite(ts)):
            raise InvalidArgumentError("timestamps_s contain NaN or inf")
        scores = None
        if self.scores is not None:
            scores = np.asarray(self.scores, dtype=np.float64)
            if scores.shape != idx.shape:
                raise InvalidArgumentError(
                    f"scores has shape {scores.shape}, indices {idx.shape}: lengths differ"
                )
        fps = float(self.source_fps)
        if not (math.isfinite(fps) and fps > 0):
            raise InvalidArgumentError(f"source_fps={self.source_fps!r} must be a positive number")
        if self.tokens_per_frame is not None:
            object.__setattr__(self, "tokens_per_frame",
                               check_positive_int("tokens_per_frame", self.tokens_per_frame))
        if self.path is not None:
            object.__setattr__(self, "path", os.fspath(self.path))
        for name, arr in (("indices", idx), ("timestamps_s", ts), ("scores", scores)):
            if arr is not None:
                arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "source_fps", fps)
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "timings_s", MappingProxyType(dict(self.timings_s)))
        self._check_candidates()

    def _check_candidates(self) -> None:
        if (self.candidate_timestamps_s is None) != (self.candidate_scores is None):
            raise InvalidArgumentError("candidate_timestamps_s and candidate_scores must be "
                                       "given together")
        if self.candidate_scores is None:
            return
        cts = np.asarray(self.candidate_timestamps_s, dtype=np.float64)
        cs = np.asarray(self.candidate_scores, dtype=np.float64)
        if cts.ndim != 1 or cts.shape != cs.shape:
            raise InvalidArgumentError(
                f"candidate_timestamps_s {cts.shape} and candidate_scores {cs.shape} must be "
                f"1-D arrays of the same length")
        for name, arr in (("candidate_timestamps_s", cts), ("candidate_scores", cs)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __repr__(self) -> str:
        span = (f", span={self.timestamps_s[0]:.2f}-{self.timestamps_s[-1]:.2f}s"
                if len(self) else "")
        path = f", path={os.path.basename(self.path)!r}" if self.path else ""
        return (f"Selection(k={len(self)}, method={self.method!r}, "
                f"source_fps={self.source_fps:.3f}{span}{path})")

    # --- VisualSelection -------------------------------------------------------------------------
    @property
    def source_frames(self) -> np.ndarray:
        """(k,) int64 the selected frame indices (= :attr:`indices`)."""
        return self.indices

    @property
    def source_timestamps_s(self) -> np.ndarray:
        """(k,) float64 their presentation times (= :attr:`timestamps_s`)."""
        return self.timestamps_s

    @property
    def num_tokens(self) -> int | None:
        """``len(self) * tokens_per_frame`` (None when ``tokens_per_frame`` is unknown)."""
        return None if self.tokens_per_frame is None else len(self) * self.tokens_per_frame

    def labels(self) -> list[str]:
        """One file-name-safe label per frame: ``frame_000123_0004.100s`` (index, seconds)."""
        return [f"frame_{int(i):06d}_{float(t):08.3f}s"
                for i, t in zip(self.indices.tolist(), self.timestamps_s.tolist())]

    def images(self) -> tuple[np.ndarray, list[str]]:
        """The selected frames at native size, (k, H, W, 3) uint8, and :meth:`labels`."""
        return self.load_frames(), self.labels()

    # --- serialisation ---------------------------------------------------------------------------
    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickles through :meth:`to_dict` (its mappings are read-only proxies, which pickle
        cannot copy), so a selection crosses process boundaries (process pools, Ray)."""
        return (type(self).from_dict, (self.to_dict(),))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (no pixels) that :meth:`from_dict` turns back into an equal
        selection: arrays as lists, NaN scores as None. The candidate keys appear only when
        the selection has a relevance curve."""
        d: dict[str, Any] = {
            "kind": self.kind,
            "indices": self.indices,
            "timestamps_s": self.timestamps_s,
            "scores": self.scores,
            "method": self.method,
            "params": dict(self.params),
            "source_fps": self.source_fps,
            "path": self.path,
            "num_frames": self.num_frames,
            "num_candidates": self.num_candidates,
            "question": self.question,
            "cache_hit": self.cache_hit,
            "timings_s": dict(self.timings_s),
            "tokens_per_frame": self.tokens_per_frame,
        }
        if self.candidate_scores is not None:
            d["candidate_timestamps_s"] = self.candidate_timestamps_s
            d["candidate_scores"] = self.candidate_scores
        return json_safe(d)  # type: ignore[no-any-return]

    @classmethod
    @reads_dict
    def from_dict(cls, d: Mapping[str, Any]) -> Selection:
        """Inverse of :meth:`to_dict` (also reads the old key ``video`` for ``path``).

        The result equals the original (``==``); NaN timings come back as NaN, and tuples in
        ``params`` come back as lists (JSON has no tuples; ``==`` treats them as equal).

        Raises:
            InvalidArgumentError: ``d`` is malformed.
        """
        has_curve = d.get("candidate_scores") is not None
        return cls(
            indices=int_array(d["indices"]),  # type: ignore[arg-type]
            timestamps_s=float_array(d["timestamps_s"]),  # type: ignore[arg-type]
            scores=float_array(d.get("scores")),
            method=str(d["method"]), params=dict(d.get("params") or {}),
            source_fps=float(d["source_fps"]), path=d.get("path", d.get("video")),
            num_frames=d.get("num_frames"), num_candidates=d.get("num_candidates"),
            question=d.get("question"), cache_hit=bool(d.get("cache_hit", False)),
            timings_s=float_dict(d.get("timings_s")),
            candidate_timestamps_s=(float_array(d.get("candidate_timestamps_s"))
                                    if has_curve else None),
            candidate_scores=float_array(d["candidate_scores"]) if has_curve else None,
            tokens_per_frame=d.get("tokens_per_frame"),
        )

    # --- pixels ----------------------------------------------------------------------------------
    def _reader(self, backend: str = "pyav") -> VideoReader:
        if self.path is None:
            raise InvalidArgumentError("this Selection has no video path to decode frames from")
        return VideoReader(self.path, backend=backend)

    def load_frames(self, size: int | tuple[int, int] | None = None, *,
                    backend: str = "pyav") -> np.ndarray:
        """Decode the selected frames: (k, H, W, 3) uint8 RGB.

        Args:
            size: None (native), short side, or (height, width).
            backend: reader backend.
        """
        with self._reader(backend) as reader:
            return reader.get_frames(self.indices, size=size)

    def frames(self, size: int | tuple[int, int] | None = None) -> np.ndarray:
        """Alias of :meth:`load_frames`."""
        return self.load_frames(size)

    # --- pictures --------------------------------------------------------------------------------
    def contact_sheet(self, *, thumb: int = render.DEFAULT_THUMB, columns: int | None = None,
                      frames: np.ndarray | None = None) -> Any:
        """A ``PIL.Image`` of the selected frames, each labelled with its index, time and
        score. Beyond :data:`vidsel.render.MAX_TILES` frames the tiles are evenly chosen and
        the title says so ("48 of 68 frames shown").

        Args:
            thumb: long side of each tile in pixels.
            columns: tiles per row (default: about square, at most 8).
            frames: (k, H, W, 3) uint8 frames already decoded for this selection (default:
                decoded at thumbnail size).
        """
        pick = render.tile_positions(len(self))
        if frames is not None:
            tiles = np.asarray(frames)[pick]
        else:
            with self._reader() as reader:
                md = reader.metadata
                short = max(1, round(thumb * min(md.height, md.width) / max(md.height, md.width)))
                tiles = reader.get_frames(self.indices[pick], size=short)
        labels = []
        for j in pick.tolist():
            line = f"#{int(self.indices[j])}  {float(self.timestamps_s[j]):.2f}s"
            if self.scores is not None and math.isfinite(float(self.scores[j])):
                line += f"\nscore {float(self.scores[j]):.3f}"
            labels.append(line)
        q = f" | {self.question}" if self.question else ""
        title = render.shown_title(f"{self.method}, k={len(self)}{q}"[:100], len(pick),
                                   len(self))
        return render.contact_sheet(tiles, labels, columns=columns, thumb=thumb, title=title)

    def save_contact_sheet(self, path: str | os.PathLike[str], *,
                           thumb: int = render.DEFAULT_THUMB,
                           columns: int | None = None) -> str:
        """Write :meth:`contact_sheet` to ``path`` (format from the suffix); returns the path."""
        self.contact_sheet(thumb=thumb, columns=columns).save(path)
        return os.fspath(path)

    def _repr_png_(self) -> bytes | None:
        """Jupyter display: the contact sheet as PNG (None, i.e. the text repr, when the
        frames cannot be decoded)."""
        if self.path is None or not len(self):
            return None
        try:
            return render.to_png(self.contact_sheet())
        except (VidselError, OSError, ValueError, RuntimeError) as e:
            logger.warning("cannot render %r as an image: %s", self, e)
            return None

    def plot(self, path: str | os.PathLike[str] | None = None, *, ax: Any = None,
             title: str | None = None) -> Any:
        """Relevance over time with the chosen frames marked (needs matplotlib).

        Draws the relevance of every candidate frame to the question (when the selection was
        made with an embedder) as a curve, and the chosen frames as markers at their
        timestamps; a selection without scores (``uniform``) shows its frames on the time axis.
        No pyplot state is touched (see :func:`vidsel.render.relevance_plot`). The convention
        of every result's ``plot`` (``PatchSelection``, ``Comparison``): returns the
        ``Figure``, and saves it too when ``path`` is given.

        Args:
            path: where to save the figure (format from the suffix); None: not saved.
            ax: a matplotlib ``Axes`` to draw on (default: a new figure). Passing the axes as
                the first argument (the 0.1 call ``plot(ax)``) still works, with a
                ``DeprecationWarning``.
            title: axes title (default: method, k and question).

        Returns:
            The matplotlib ``Figure`` drawn on (``ax.figure`` when ``ax`` is given).

        Raises:
            MissingDependencyError: matplotlib is not installed.
        """
        if path is not None and not isinstance(path, (str, os.PathLike)):
            if ax is not None:
                raise InvalidArgumentError(f"plot(path={path!r}) must be a file path")
            warnings.warn(f"Selection.plot(ax) is deprecated and will be removed in vidsel "
                          f"{REMOVED_IN}; use Selection.plot(ax=ax)", DeprecationWarning,
                          stacklevel=2)
            path, ax = None, path
        if title is None:
            q = f": {self.question}" if self.question else ""
            title = f"{self.method}, k={len(self)}{q}"
        duration = float(self.num_frames) / self.source_fps if self.num_frames else None
        return render.save_figure(render.relevance_plot(
            self.timestamps_s, self.scores, candidate_timestamps_s=self.candidate_timestamps_s,
            candidate_scores=self.candidate_scores, duration_s=duration, title=title, ax=ax),
            path)

    # --- deprecated adapters (now functions of vidsel.selection) ---------------------------------
    def padded_indices(self, multiple: int = 2) -> np.ndarray:
        """Deprecated: use :func:`vidsel.selection.padded_indices`."""
        return _adapter("padded_indices")(self, multiple)  # type: ignore[no-any-return]

    def video_metadata(self, *, pad_to_multiple: int = 1) -> dict[str, Any]:
        """Deprecated: use :func:`vidsel.selection.qwen_video_metadata`."""
        fn = _adapter("qwen_video_metadata", old="video_metadata")
        return fn(self, pad_to_multiple=pad_to_multiple)  # type: ignore[no-any-return]

    def to_qwen(self, *, size: int | tuple[int, int] | None = None,
                temporal_patch_size: int = 2) -> tuple[np.ndarray, Any]:
        """Deprecated: use :func:`vidsel.selection.to_qwen`."""
        fn = _adapter("to_qwen")
        return fn(self, size=size,  # type: ignore[no-any-return]
                  temporal_patch_size=temporal_patch_size)

    def indices_for(self, total_num_frames: int | None = None,
                    fps: float | None = None) -> np.ndarray:
        """Deprecated: use :func:`vidsel.selection.indices_for`."""
        return _adapter("indices_for")(self, total_num_frames, fps)  # type: ignore[no-any-return]

    def sample_indices_fn(self) -> Callable[..., np.ndarray]:
        """Deprecated: use :func:`vidsel.selection.sample_indices_fn`."""
        return _adapter("sample_indices_fn")(self)  # type: ignore[no-any-return]


def _adapter(name: str, *, old: str | None = None) -> Callable[..., Any]:
    """Warn that ``Selection.<old>()`` moved and return ``vidsel.selection.<name>``.

    The adapters sit in :mod:`vidsel.selection`, a layer above results, so the deprecated
    methods look them up when called (removed with these aliases in the next release).
    """
    warnings.warn(f"Selection.{old or name}() is deprecated and will be removed in vidsel "
                  f"{REMOVED_IN}; use vidsel.selection.{name}(selection, ...)",
                  DeprecationWarning, stacklevel=3)
    return getattr(importlib.import_module("vidsel.selection"), name)  # type: ignore[no-any-return]
