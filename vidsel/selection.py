"""Keyframe selection for a video and a question: :func:`select_frames` -> :class:`Selection`.

Pipeline: candidate frames (n uniform, fps-based or all) are decoded with the reader's fast
paths, embedded once per video and model (cached on disk when ``cache_dir`` is given), the
question is embedded, and an array-level selector from :mod:`vidsel.select` picks k of them.
A :class:`Selection` always carries frame indices *and* seconds *and* the source fps, and hands
itself to consumers: Qwen-VL-style video metadata, transformers' ``sample_indices_fn`` hook, and
an Ovis-style ``frame_selector(conversations, frames)`` callable (:class:`FrameSelector`).

Example:
    >>> sel = select_frames("talk.mp4", "When is the whiteboard shown?", k=8,
    ...                     embedder="hf:/models/siglip-so400m", cache_dir="~/.cache/vidsel")
    ...                                                                 # doctest: +SKIP
    >>> sel.indices, sel.timestamps_s, sel.source_fps                   # doctest: +SKIP
    >>> frames = sel.load_frames(size=448)                              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from ._validate import check_choice, check_positive_int
from .errors import CorruptVideoError, InvalidArgumentError, MissingDependencyError

__all__ = [
    "DEFAULT_NUM_CANDIDATES",
    "FrameSelector",
    "Selection",
    "candidate_indices",
    "select_frames",
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


# ------------------------------------------------------------------------------------------------
# Selection
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Selection:
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
        video: path of the video (needed by :meth:`load_frames`).
        num_frames: frames in the source video.
        num_candidates: size of the candidate pool the selector chose from.
        question: the question the frames were selected for.
        cache_hit: frame embeddings came from the on-disk cache.
        timings_s: seconds spent in ``decode``, ``embed_images``, ``embed_text``, ``select``.
        candidate_timestamps_s: (n,) float64 time of every candidate the selector chose from,
            or None (no embedder); with ``candidate_scores`` the relevance curve :meth:`plot`
            draws.
        candidate_scores: (n,) float64 relevance (cosine similarity) of every candidate, or None.

    In Jupyter a selection displays as a contact sheet of its frames with their timestamps
    (``_repr_png_``); :meth:`plot` draws the relevance over time with the chosen frames marked.
    """

    indices: np.ndarray
    timestamps_s: np.ndarray
    scores: np.ndarray | None
    method: str
    params: Mapping[str, Any] = field(default_factory=dict)
    source_fps: float = 0.0
    video: str | None = None
    num_frames: int | None = None
    num_candidates: int | None = None
    question: str | None = None
    cache_hit: bool = False
    timings_s: Mapping[str, float] = field(default_factory=dict)
    candidate_timestamps_s: np.ndarray | None = None
    candidate_scores: np.ndarray | None = None

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
        video = f", video={os.path.basename(self.video)!r}" if self.video else ""
        return (f"Selection(k={len(self)}, method={self.method!r}, "
                f"source_fps={self.source_fps:.3f}{span}{video})")

    # --- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (no pixels): lists of ints and floats; NaN scores become None."""
        scores = None if self.scores is None else [
            float(s) if math.isfinite(s) else None for s in self.scores.tolist()
        ]
        return {
            "indices": [int(i) for i in self.indices.tolist()],
            "timestamps_s": [float(t) for t in self.timestamps_s.tolist()],
            "scores": scores,
            "method": self.method,
            "params": _json_safe(dict(self.params)),
            "source_fps": self.source_fps,
            "video": self.video,
            "num_frames": self.num_frames,
            "num_candidates": self.num_candidates,
            "question": self.question,
            "cache_hit": self.cache_hit,
            "timings_s": {k: float(v) for k, v in self.timings_s.items()},
            **({} if self.candidate_scores is None or self.candidate_timestamps_s is None else {
                "candidate_timestamps_s": [float(t) for t in self.candidate_timestamps_s],
                "candidate_scores": [float(v) if math.isfinite(v) else None
                                     for v in self.candidate_scores.tolist()],
            }),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Selection:
        """Inverse of :meth:`to_dict`."""
        scores = d.get("scores")
        return cls(
            indices=np.asarray(d["indices"], dtype=np.int64),
            timestamps_s=np.asarray(d["timestamps_s"], dtype=np.float64),
            scores=None if scores is None else np.asarray(
                [np.nan if s is None else s for s in scores], dtype=np.float64),
            method=str(d["method"]), params=dict(d.get("params") or {}),
            source_fps=float(d["source_fps"]), video=d.get("video"),
            num_frames=d.get("num_frames"), num_candidates=d.get("num_candidates"),
            question=d.get("question"), cache_hit=bool(d.get("cache_hit", False)),
            timings_s=dict(d.get("timings_s") or {}),
            candidate_timestamps_s=(None if d.get("candidate_scores") is None else
                                    np.asarray(d["candidate_timestamps_s"], np.float64)),
            candidate_scores=(None if d.get("candidate_scores") is None else np.asarray(
                [np.nan if v is None else v for v in d["candidate_scores"]], np.float64)),
        )

    # --- pixels ----------------------------------------------------------------------------------
    def load_frames(self, size: int | tuple[int, int] | None = None, *,
                    backend: str = "pyav") -> np.ndarray:
        """Decode the selected frames: (k, H, W, 3) uint8 RGB.

        Args:
            size: None (native), short side, or (height, width).
            backend: reader backend.
        """
        if self.video is None:
            raise InvalidArgumentError("this Selection has no video path to decode frames from")
        from .io import VideoReader

        with VideoReader(self.video, backend=backend) as reader:
            return reader.get_frames(self.indices, size=size)

    def frames(self, size: int | tuple[int, int] | None = None) -> np.ndarray:
        """Alias of :meth:`load_frames`."""
        return self.load_frames(size)

    # --- notebook rendering ----------------------------------------------------------------------
    def contact_sheet(self, *, thumb: int = 160, columns: int | None = None) -> Any:
        """A ``PIL.Image`` of the selected frames, each labelled with its index, time and score.

        Args:
            thumb: long side of each tile in pixels.
            columns: tiles per row (default: about square, at most 8).
        """
        from ._render import selection_sheet

        return selection_sheet(self, thumb=thumb, columns=columns)

    def save_contact_sheet(self, path: str | os.PathLike[str], *, thumb: int = 160,
                           columns: int | None = None) -> str:
        """Write :meth:`contact_sheet` to ``path`` (format from the suffix); returns the path."""
        self.contact_sheet(thumb=thumb, columns=columns).save(path)
        return os.fspath(path)

    def _repr_png_(self) -> bytes | None:
        """Jupyter display: the contact sheet as PNG (None, i.e. the text repr, when the
        frames cannot be decoded)."""
        if self.video is None or not len(self):
            return None
        from ._render import to_png
        from .errors import VidselError

        try:
            return to_png(self.contact_sheet())
        except (VidselError, OSError, ValueError, RuntimeError) as e:
            logger.warning("cannot render %r as an image: %s", self, e)
            return None

    def plot(self, ax: Any = None, *, title: str | None = None) -> Any:
        """Relevance over time with the chosen frames marked (needs matplotlib).

        Draws the relevance of every candidate frame to the question (when the selection was
        made with an embedder) as a curve, and the chosen frames as markers at their
        timestamps; a selection without scores (``uniform``) shows its frames on the time axis.

        The figure is built with ``matplotlib.figure.Figure`` directly: no pyplot state is
        touched and no backend is selected, so it works the same in scripts, servers and
        notebooks (Jupyter displays a returned ``Figure``). Save it with
        ``sel.plot().savefig("relevance.png")``.

        Args:
            ax: a matplotlib ``Axes`` to draw on (default: a new figure).
            title: axes title (default: method, k and question).

        Returns:
            The matplotlib ``Figure`` drawn on (``ax.figure`` when ``ax`` is given; its axes
            are ``fig.axes``).

        Raises:
            MissingDependencyError: matplotlib is not installed.
        """
        try:
            import matplotlib  # noqa: F401 - the package itself must be importable
            from matplotlib.figure import Figure
        except ImportError as e:
            raise MissingDependencyError(
                "Selection.plot needs matplotlib: pip install 'vidsel[plot]'") from e
        if ax is None:
            fig = Figure(figsize=(9, 2.8), layout="tight")
            ax = fig.add_subplot()
        ts = self.timestamps_s
        if self.candidate_scores is not None and self.candidate_timestamps_s is not None:
            ax.plot(self.candidate_timestamps_s, self.candidate_scores, color="0.45", lw=1.2,
                    label=f"relevance ({len(self.candidate_scores)} candidates)")
        if self.scores is not None:
            ax.scatter(ts, self.scores, color="tab:red", zorder=3, s=28,
                       label=f"chosen ({len(self)})")
            ax.set_ylabel("relevance (cosine)")
        else:
            ax.scatter(ts, np.zeros(len(self)), color="tab:red", zorder=3, s=28, marker="|",
                       label=f"chosen ({len(self)})")
            ax.set_yticks([])
        for t in ts.tolist():
            ax.axvline(t, color="tab:red", alpha=0.25, lw=0.8)
        if self.num_frames:
            ax.set_xlim(0.0, max(float(self.num_frames) / self.source_fps,
                                 float(ts[-1]) if len(ts) else 0.0))
        ax.set_xlabel("time (s)")
        if title is None:
            q = f": {self.question}" if self.question else ""
            title = f"{self.method}, k={len(self)}{q}"
        ax.set_title(title[:100], fontsize=9)
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3)
        return ax.figure

    # --- adapters --------------------------------------------------------------------------------
    def padded_indices(self, multiple: int = 2) -> np.ndarray:
        """Indices with the last one repeated until the count is a multiple of ``multiple``
        (Qwen-VL merges frames in temporal pairs and pads the same way itself)."""
        multiple = check_positive_int("multiple", multiple)
        if not len(self):
            return self.indices.copy()
        pad = -len(self) % multiple
        return np.concatenate([self.indices, np.repeat(self.indices[-1:], pad)])

    def video_metadata(self, *, pad_to_multiple: int = 1) -> dict[str, Any]:
        """Qwen-VL-style video metadata: real frame indices and the source fps.

        The keys are those of ``transformers.video_utils.VideoMetadata`` (``total_num_frames``,
        ``fps``, ``duration``, ``frames_indices``, ``video_backend``): Qwen3-VL's processor turns
        ``frames_indices / fps`` into the ``<t seconds>`` markers, so passing this (with
        ``do_sample_frames=False``) gives the model real timestamps instead of fake ones.

        Args:
            pad_to_multiple: repeat the last frame until the count divides by this (2 for
                Qwen-VL's temporal patches when you also pad the frames, see :meth:`to_qwen`).
        """
        idx = self.padded_indices(pad_to_multiple)
        total = self.num_frames
        return {
            "total_num_frames": int(total) if total is not None else int(idx[-1]) + 1,
            "fps": self.source_fps,
            "duration": (float(total) / self.source_fps) if total else None,
            "frames_indices": [int(i) for i in idx.tolist()],
            "video_backend": "vidsel",
        }

    def to_qwen(self, *, size: int | tuple[int, int] | None = None,
                temporal_patch_size: int = 2) -> tuple[np.ndarray, Any]:
        """Frames and metadata for a transformers Qwen-VL processor.

        Returns ``(frames, metadata)``: frames (k', H, W, 3) uint8 with ``k'`` padded to a
        multiple of ``temporal_patch_size`` by repeating the last frame, and a
        ``transformers.video_utils.VideoMetadata`` with the matching real indices and source fps.
        Use as ``processor(text=..., videos=[frames], video_metadata=[metadata],
        do_sample_frames=False)``.
        """
        from transformers.video_utils import VideoMetadata

        frames = self.load_frames(size)
        pad = -len(frames) % check_positive_int("temporal_patch_size", temporal_patch_size)
        if pad and len(frames):
            frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
        md = self.video_metadata(pad_to_multiple=temporal_patch_size)
        h, w = (int(frames.shape[1]), int(frames.shape[2])) if len(frames) else (None, None)
        return frames, VideoMetadata(width=w, height=h, **md)

    def indices_for(self, total_num_frames: int | None = None,
                    fps: float | None = None) -> np.ndarray:
        """The selection's frame indices in the frame numbering of another decoder.

        When that decoder counts the same number of frames as vidsel did (or either count is
        unknown), these are :attr:`indices`. Otherwise each selected frame is mapped through
        its timestamp: ``round((t - t0) * fps)`` clipped to ``[0, total_num_frames - 1]``,
        with ``t0`` the stream's start time (so the first frame of the stream maps to 0) and
        ``fps`` the decoder's rate (default: :attr:`source_fps`).

        Args:
            total_num_frames: frames the other decoder reports.
            fps: its frame rate.

        Returns:
            (k,) int64 ascending, unique indices.

        Raises:
            InvalidArgumentError: the mapping would merge selected frames (the other decoder
                has fewer frames than the selection needs, e.g. a lower frame rate): the
                message names the video and the colliding frames instead of silently
                returning fewer frames.
        """
        indices = self.indices.copy()
        own_total = self.num_frames
        if total_num_frames is None or own_total is None or \
                int(total_num_frames) == int(own_total) or not len(self):
            return indices
        total = check_positive_int("total_num_frames", int(total_num_frames))
        rate = float(fps) if fps else self.source_fps
        if not (math.isfinite(rate) and rate > 0):
            raise InvalidArgumentError(f"fps={fps!r} must be a positive number")
        # stream start time: the first selected frame sits at indices[0] / source_fps
        t0 = float(self.timestamps_s[0]) - float(indices[0]) / self.source_fps
        mapped = np.clip(np.round((self.timestamps_s - t0) * rate), 0, total - 1).astype(np.int64)
        dup = np.flatnonzero(np.diff(mapped) <= 0)
        if dup.size:
            j = int(dup[0])
            video = self.video or "<no video path>"
            raise InvalidArgumentError(
                f"{video}: the decoder reports {total} frames at {rate:g} fps where vidsel "
                f"counted {own_total}; mapping the {len(self)} selected frames by timestamp "
                f"merges frames {int(indices[j])} and {int(indices[j + 1])} (both -> "
                f"{int(mapped[j + 1])}), so {len(self) - np.unique(mapped).size} selected "
                f"frame(s) would be lost; decode with vidsel (load_frames / to_qwen) or select "
                f"fewer frames")
        logger.warning("%s: decoder reports %s frames, vidsel counted %s: mapped the selection "
                       "by timestamp", self.video, total, own_total)
        return mapped

    def sample_indices_fn(self) -> Callable[..., np.ndarray]:
        """A transformers ``sample_indices_fn(metadata, **kwargs) -> indices`` returning this
        selection, e.g. ``processor(videos=path, sample_indices_fn=sel.sample_indices_fn())``.

        When the decoder in use counts a different number of frames than vidsel did, the
        selection is mapped through its timestamps (see :meth:`indices_for`) and a warning
        logged; a mapping that would merge selected frames raises
        :class:`~vidsel.errors.InvalidArgumentError`.
        """

        def sample_indices_fn(metadata: Any = None, **kwargs: Any) -> np.ndarray:
            total = getattr(metadata, "total_num_frames", None) if metadata is not None else None
            fps = getattr(metadata, "fps", None) if metadata is not None else None
            return self.indices_for(total, fps)

        return sample_indices_fn


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    return repr(obj)


# ------------------------------------------------------------------------------------------------
# candidates
# ------------------------------------------------------------------------------------------------


def candidate_indices(reader: Any, candidates: int | str) -> np.ndarray:
    """Candidate frame indices (ascending, unique) for a reader.

    Args:
        reader: a :class:`vidsel.VideoReader`.
        candidates: ``n`` (int) or ``"uniform:n"`` — n frames evenly spread, first and last
            included (MDP3: 128); ``"fps:f"`` — the frames displayed every ``1/f`` seconds (1 fps
            for long videos); ``"all"`` — every frame.
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


def _decode_identity(reader: Any) -> str:
    """What decides the decoded pixels besides frames and size: the reader backend (PyAV and
    decord may differ in colour conversion and scaling) and its resize interpolation."""
    backend = getattr(reader, "backend", None) or type(reader).__name__
    interp = getattr(reader, "interpolation", None)
    if interp is None:  # VideoReader keeps it on its backend object
        inner = getattr(reader, "_backend", None)
        interp = getattr(inner, "interpolation", None) or getattr(inner, "_interp", None)
    return f"backend={backend}|interp={interp or 'default'}"


def _embed_candidates(reader: Any, cand: np.ndarray, embedder: Any, *, size: int | None,
                      mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Decode and embed candidates chunk by chunk. Returns (embeds (n, d), indices (n,),
    timestamps (n,), decode seconds, embed seconds); undecodable candidates are dropped and
    keyframe-mode duplicates merged."""
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


# ------------------------------------------------------------------------------------------------
# select_frames
# ------------------------------------------------------------------------------------------------


def select_frames(
    video: str | os.PathLike[str] | Any,
    question: str | None = None,
    k: int = 8,
    *,
    method: str = "mdp3",
    embedder: Any = None,
    candidates: int | str | None = None,
    candidate_mode: CandidateMode = "exact",
    cache_dir: str | os.PathLike[str] | None = None,
    params: Mapping[str, Any] | None = None,
    embed_size: int | None = DEFAULT_EMBED_SIZE,
    embedder_options: Mapping[str, Any] | None = None,
    backend: str = "pyav",
) -> Selection:
    """Select the ``k`` frames of ``video`` a video-LLM should see for ``question``.

    Args:
        video: a video path or an open :class:`vidsel.VideoReader`.
        question: the question / prompt (required by every method but ``uniform``).
        k: frames to select.
        method: a selector name (:func:`vidsel.select.available_selectors`): ``mdp3``
            (default), ``mdp3-reference``, ``dpp``, ``topk``, ``bolt``, ``aks``, ``uniform``.
        embedder: an :class:`vidsel.embed.Embedder`, a spec string (``"hf:/models/siglip"``,
            ``"open_clip:ViT-B-32@/ckpt.safetensors"``, a local model directory, ``"siglip"``),
            or None (only for methods that need no relevance, i.e. ``uniform``).
        candidates: the pool to select from: ``n`` / ``"uniform:n"``, ``"fps:f"`` or ``"all"``
            (see :func:`candidate_indices`). Default: 128 uniform (MDP3); ``uniform`` selects
            from all frames.
        candidate_mode: ``"exact"`` decodes exactly the candidate frames, ``"keyframe"`` snaps
            them to nearby keyframes (much cheaper to decode; duplicates merged).
        cache_dir: directory of the frame-embedding cache (None: no cache). A second question
            on the same video, model and candidates then costs no decoding and no image
            encoding.
        params: selector parameters (e.g. ``{"lam": 0.2, "segment_size": 32}``).
        embed_size: short side candidates are decoded at before embedding (None: native).
        embedder_options: options for :func:`vidsel.embed.load_embedder` when ``embedder`` is
            a spec (``device``, ``dtype``, ``batch_size``, ``prompt_cleaner``).
        backend: reader backend when ``video`` is a path.

    Returns:
        A :class:`Selection`.
    """
    from .select import get_selector, run_selector

    info = get_selector(method)
    k = check_positive_int("k", k)
    check_choice("candidate_mode", candidate_mode, ("exact", "keyframe"))
    params = dict(params or {})
    info.check_params(params)  # before any decoding
    needs_model = info.needs != "none"
    if needs_model and embedder is None:
        raise InvalidArgumentError(
            f"method={method!r} needs an embedder (e.g. embedder='hf:/path/to/siglip'); only "
            f"methods needing no relevance (uniform) run without one"
        )
    if needs_model and not isinstance(question, str):
        raise InvalidArgumentError(f"method={method!r} needs a question (str)")
    if candidates is None:
        candidates = DEFAULT_NUM_CANDIDATES if needs_model else "all"

    from .io import VideoReader

    own = not isinstance(video, VideoReader)
    reader: Any = VideoReader(video, backend=backend) if own else video
    try:
        md = reader.metadata
        cand = candidate_indices(reader, candidates)
        timings: dict[str, float] = {}
        cache_hit = False
        curve: np.ndarray | None = None
        if not needs_model:
            cand_ts = np.asarray(md.timestamps_s, dtype=np.float64)[cand]
            t0 = time.perf_counter()
            pos = run_selector(method, k, n=len(cand), **params)
            timings["select"] = time.perf_counter() - t0
            scores = None
        else:
            from .embed import EmbeddingCache, content_id, load_embedder

            emb = load_embedder(embedder, **dict(embedder_options or {}))

            def compute() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                e, i, t, t_dec, t_emb = _embed_candidates(reader, cand, emb, size=embed_size,
                                                           mode=candidate_mode)
                timings["decode"] = t_dec
                timings["embed_images"] = t_emb
                return e, i, t

            if cache_dir is not None:
                cache = EmbeddingCache(cache_dir)
                meta = cache.key_material(
                    video_id=f"{content_id(reader.path)}|stream={md.stream_index}|"
                             f"n={md.num_frames}",
                    model=emb.cache_key,
                    indices=cand, timestamps_s=np.asarray(md.timestamps_s)[cand],
                    decode=f"{candidate_mode}@{embed_size}|{_decode_identity(reader)}",
                )
                entry, cache_hit = cache.get_or_compute(meta, compute)
                frame_embeds, cand, cand_ts = entry.embeds, entry.indices, entry.timestamps_s
            else:
                frame_embeds, cand, cand_ts = compute()
            t0 = time.perf_counter()
            text_embed = emb.embed_text(question or "")
            timings["embed_text"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            pos = run_selector(method, k, frame_embeds=frame_embeds, text_embed=text_embed,
                               **params)
            timings["select"] = time.perf_counter() - t0
            from .select import cosine_scores

            scores = cosine_scores(frame_embeds[pos], text_embed)
            curve = cosine_scores(frame_embeds, text_embed)  # (n,) relevance, for plot()
            params = {**dict(info.defaults), **params, "embedder": emb.name}
        if not needs_model:
            params = {**dict(info.defaults), **params}
        logger.debug("selected %d of %d candidates with %s in %.1f ms", len(pos), len(cand),
                     method, 1e3 * timings["select"])
        return Selection(
            indices=cand[pos], timestamps_s=cand_ts[pos], scores=scores, method=method,
            params=params, source_fps=float(md.fps), video=str(reader.path),
            num_frames=int(md.num_frames), num_candidates=len(cand), question=question,
            cache_hit=cache_hit, timings_s=timings,
            candidate_timestamps_s=None if curve is None else cand_ts,
            candidate_scores=curve,
        )
    finally:
        if own:
            reader.close()


# ------------------------------------------------------------------------------------------------
# Ovis-style frame selector
# ------------------------------------------------------------------------------------------------


class FrameSelector:
    """Ovis-style ``frame_selector(conversations, frames) -> (conversations, frames)``.

    Drop-in for the MDP3 plugin: the human turns are joined into the prompt, every frame and
    the prompt are embedded, ``k`` frames are selected, and the ``<image>`` placeholders of the
    frames that were not selected are removed from the conversation.

    Args:
        k: frames to keep (the plugin ships 16); with ``len(frames) <= k`` nothing changes.
        method: selector name (default ``mdp3``).
        embedder: an Embedder or spec (see :func:`select_frames`).
        params: selector parameters.
        image_token: the placeholder of one frame in the conversation.
        embedder_options: options for :func:`vidsel.embed.load_embedder`.
        return_indices: also return the selected indices (3-tuple).

    Example:
        >>> selector = FrameSelector(16, embedder="hf:/models/siglip")    # doctest: +SKIP
        >>> conversations, frames = selector(conversations, frames)       # doctest: +SKIP
    """

    def __init__(self, k: int = 16, *, method: str = "mdp3", embedder: Any = None,
                 params: Mapping[str, Any] | None = None, image_token: str = "<image>",
                 embedder_options: Mapping[str, Any] | None = None,
                 return_indices: bool = False) -> None:
        from .select import get_selector

        self.k = check_positive_int("k", k)
        self.info = get_selector(method)
        self.method = method
        self.params = dict(params or {})
        self.info.check_params(self.params)
        self.image_token = image_token
        self.return_indices = return_indices
        self._embedder_spec = embedder
        self._embedder_options = dict(embedder_options or {})
        self._embedder: Any = None
        if self.info.needs != "none" and embedder is None:
            raise InvalidArgumentError(f"method={method!r} needs an embedder")

    def __repr__(self) -> str:
        return f"FrameSelector(k={self.k}, method={self.method!r})"

    @property
    def embedder(self) -> Any:
        if self._embedder is None and self._embedder_spec is not None:
            from .embed import load_embedder

            self._embedder = load_embedder(self._embedder_spec, **self._embedder_options)
        return self._embedder

    def select(self, prompt: str, frames: Sequence[Any]) -> np.ndarray:
        """Indices (ascending) of the frames to keep for ``prompt``."""
        from .select import run_selector

        n = len(frames)
        if n <= self.k:
            return np.arange(n, dtype=np.int64)
        if self.info.needs == "none":
            return run_selector(self.method, self.k, n=n, **self.params)
        emb = self.embedder
        frame_embeds = emb.embed_images([np.asarray(f.convert("RGB")) if hasattr(f, "convert")
                                         else np.asarray(f) for f in frames])
        return run_selector(self.method, self.k, frame_embeds=frame_embeds,
                            text_embed=emb.embed_text(prompt), **self.params)

    def __call__(self, conversations: Sequence[Mapping[str, str]],
                 frames: Sequence[Any]) -> tuple[Any, ...]:
        """Select frames and drop the placeholders of the others.

        Placeholders are counted across all turns (frame ``g`` is the ``g``-th placeholder of
        the conversation). A dropped placeholder takes the one newline that directly follows
        it with it (the ``"<image>\\n"`` per-frame layout), so the kept ones stay one per
        line; every other character of the conversation is kept as it was.

        Raises:
            InvalidArgumentError: the number of placeholders differs from ``len(frames)``.
        """
        tok = self.image_token
        g = sum(str(c["value"]).count(tok) for c in conversations)
        if g != len(frames):
            raise InvalidArgumentError(
                f"conversation has {g} {tok!r} placeholders but {len(frames)} frames")
        prompt = "\n".join(c["value"] for c in conversations if c.get("from") == "human")
        keep = self.select(prompt, frames)
        keep_set = set(int(i) for i in keep)
        out_convs = []
        g = 0  # global image counter across turns
        for conv in conversations:
            parts = conv["value"].split(tok)
            pieces: list[str] = [parts[0]]
            for clip in parts[1:]:  # clip = the text after placeholder g
                if g in keep_set:
                    pieces += [tok, clip]
                else:
                    pieces.append(clip[1:] if clip.startswith("\n") else clip)
                g += 1
            out_convs.append({**conv, "value": "".join(pieces)})
        kept = [frames[int(i)] for i in keep]
        if self.return_indices:
            return out_convs, kept, keep
        return out_convs, kept
