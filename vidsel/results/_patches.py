"""Codec patch results: the patch selection and its packing into canvases (the geometry,
:class:`PatchConfig`, lives in ``_geometry.py``).

Layout of a selection (worked example, ``patch_size=14, merge=2, frame_size=(392, 392)``): a
frame is a 28 x 28 grid of patches, i.e. 14 x 14 = 196 tokens of 2 x 2 patches. Patches are
stored token by token: the 4 patches of one token are consecutive (row-major inside the token),
tokens are sorted by (source frame, token row, token column). So::

    positions[0:4]  = [[f, 0, 0], [f, 0, 1], [f, 1, 0], [f, 1, 1]]   # token (0, 0) of frame f
    positions[4:8]  = [[f, 0, 2], [f, 0, 3], [f, 1, 2], [f, 1, 3]]   # token (0, 1) of frame f

and a merged model token never mixes frames.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from .._fields import FieldsEq, coerce_arrays
from .._json import float_array, float_dict, float_or_nan, json_safe, reads_dict
from .._validate import check_positive_int
from ..deprecation import renamed_fields
from ..errors import InvalidArgumentError
from ..render import (
    DEFAULT_THUMB,
    MAX_TILES,
    patch_selection_heatmap,
    patch_selection_plot,
    patch_selection_sheet,
    save_figure,
    to_png,
)
from ._geometry import PRESETS, PatchConfig
from ._geometry import shape_repr as _shape
from ._protocol import SelectionKind

__all__ = ["PRESETS", "Canvases", "PatchConfig", "PatchSelection"]


@renamed_fields({"timestamps": "timestamps_s"})
@dataclass(frozen=True, repr=False, eq=False)
class Canvases(FieldsEq):
    """Selected patches packed into square images for models that take images.

    Attributes:
        images: (C, S, S, 3) uint8 canvases (S = ``side`` pixels); padding cells are black.
            None after :meth:`from_dict` (pixels are not serialised).
        positions: (C, S/p, S/p, 3) int64 (source frame, patch row, patch column) of each cell,
            -1 in padding cells.
        valid: (C, S/p, S/p) bool, False for padding cells.
        timestamps_s: (C, S/p, S/p) float64 seconds of each cell's source frame (NaN in
            padding); ``timestamps`` is its deprecated name.
        patch_size: patch side in pixels.
    """

    images: np.ndarray | None
    positions: np.ndarray
    valid: np.ndarray
    timestamps_s: np.ndarray
    patch_size: int

    def __post_init__(self) -> None:
        coerce_arrays(self, {"positions": np.int64, "valid": bool, "timestamps_s": np.float64},
                      optional={"images": np.uint8})
        if self.valid.ndim != 3:
            raise InvalidArgumentError(f"valid must be (C, Gh, Gw), got {self.valid.shape}")
        c, gh, gw = self.valid.shape
        if self.positions.shape != (c, gh, gw, 3) or self.timestamps_s.shape != (c, gh, gw):
            raise InvalidArgumentError("positions / timestamps_s do not match valid")
        p = self.patch_size
        if self.images is not None and self.images.shape != (c, gh * p, gw * p, 3):
            raise InvalidArgumentError(f"images {self.images.shape} do not match the cell grid")

    def __len__(self) -> int:
        return int(self.valid.shape[0])

    @property
    def num_padding(self) -> int:
        return int((~self.valid).sum())

    @property
    def labels(self) -> list[str]:
        """File-name-safe label of each canvas: ``canvas_000``, ``canvas_001``..."""
        return [f"canvas_{i:03d}" for i in range(len(self))]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict without the pixels; :meth:`from_dict` inverts it (``images=None``)."""
        return json_safe({"positions": self.positions, "valid": self.valid,  # type: ignore[no-any-return]
                          "timestamps_s": self.timestamps_s, "patch_size": self.patch_size})

    @classmethod
    @reads_dict
    def from_dict(cls, d: Mapping[str, Any]) -> Canvases:
        """Inverse of :meth:`to_dict` (also reads the old key ``timestamps``); ``images`` is
        None, so the result equals the original with ``images=None``.

        Raises:
            InvalidArgumentError: ``d`` is malformed.
        """
        ts = d["timestamps" if "timestamps" in d and "timestamps_s" not in d else "timestamps_s"]
        valid = np.asarray(d["valid"], bool)
        if valid.ndim != 3:  # no canvases: JSON kept no grid shape
            valid = valid.reshape(0, 0, 0)
        return cls(images=None,
                   positions=np.asarray(d["positions"], np.int64).reshape(*valid.shape, 3),
                   valid=valid,
                   timestamps_s=np.asarray(_nan(ts), np.float64).reshape(valid.shape),
                   patch_size=int(d["patch_size"]))

    def __repr__(self) -> str:
        return (f"Canvases(n={len(self)}, images={_shape(self.images)}, "
                f"padding_cells={self.num_padding})")


def _nan(v: Any) -> Any:
    """Nested lists with None (JSON's NaN) turned back into NaN."""
    if v is None:
        return np.nan
    if isinstance(v, list):
        return [_nan(x) for x in v]
    return v


@renamed_fields({"timestamps": "timestamps_s", "timings": "timings_s"})
@dataclass(frozen=True, repr=False, eq=False)
class PatchSelection(FieldsEq):
    """Which patches of a video a model sees, with their positions, times and pixels.

    Arrays with N rows have one row per selected patch, in the token-major order described in
    the module doc (every ``merge**2`` consecutive rows form one token of one frame). A
    :class:`~vidsel.results.VisualSelection` (``kind = "patches"``).

    Attributes:
        path: the video file.
        method: ``"codec"`` (anchors + motion patches) or ``"uniform"`` (whole frames).
        config: the :class:`PatchConfig` used.
        positions: (N, 3) int64 (source frame index, patch row, patch column).
        timestamps_s: (N,) float64 presentation time of each patch's source frame, seconds
            (``timestamps`` is its deprecated name).
        is_anchor: (N,) bool, the patch belongs to a dense anchor frame.
        scores: (N,) float32 the method's score of each row (patch): the change energy of the
            patch's token for ``"codec"`` (motion patches), NaN for anchor patches and for
            ``"uniform"``. The counterpart of :attr:`vidsel.results.Selection.scores`, which is
            the method's per-frame score (relevance to the question).
        pixels: (N, patch_size, patch_size, 3) uint8 RGB, or None when not extracted.
        anchor_frames: (A,) int64 frames kept dense.
        candidate_frames: (T,) int64 frames whose patches competed for the motion budget.
        cut_frames: (K,) int64 frames the cut detector flagged (empty for uniform).
        budget_tokens: tokens the selection was asked to spend.
        num_frames: frames in the video.
        duration_s: video duration in seconds.
        signal: change signal: ``"motion_vectors"``, ``"pixel_diff"`` (fallback) or ``"none"``.
        fallback: True when the pixel-difference fallback replaced motion vectors.
        timings_s: seconds per stage (``index``, ``decode``, ``select``, ``pixels``, ``total``;
            ``timings`` is its deprecated name).
        question: the question that steered the selection (query-aware codec input), or None
            when none was used.
        params: how the question was used (``anchors``, ``relevance_share``, ``embedder``,
            ``relevance_frames``, and ``patch_relevance: True`` when patch maps weighed the
            tokens); empty without a question.
        relevance_frames: (R,) int64 frames scored against the question, or None.
        relevance_scores: (R,) float32 their cosine similarity to the question (the relevance
            curve, as :attr:`vidsel.results.Selection.candidate_scores`), or None.
        crop: (top, bottom, left, right) pixels of the source picture (as displayed, e.g.
            black bars) cut off before it was resized to ``frame_size``; (0, 0, 0, 0) when
            the whole picture was used. Positions (t, h, w) index the patch grid of the
            cropped-and-resized picture: patch (h, w) covers source display pixels
            ``top + [h, h + 1) * (H - top - bottom) / grid_h`` (rows) and
            ``left + [w, w + 1) * (W - left - right) / grid_w`` (columns) of an H x W frame.
    """

    kind: ClassVar[SelectionKind] = "patches"

    path: str
    method: str
    config: PatchConfig
    positions: np.ndarray
    timestamps_s: np.ndarray
    is_anchor: np.ndarray
    scores: np.ndarray
    pixels: np.ndarray | None
    anchor_frames: np.ndarray
    candidate_frames: np.ndarray
    cut_frames: np.ndarray
    budget_tokens: int
    num_frames: int
    duration_s: float
    signal: str
    fallback: bool
    timings_s: dict[str, float] = field(default_factory=dict, compare=False)
    question: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    relevance_frames: np.ndarray | None = None
    relevance_scores: np.ndarray | None = None
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self) -> None:
        crop = tuple(int(v) for v in self.crop)
        if len(crop) != 4 or min(crop) < 0:
            raise InvalidArgumentError(
                f"crop={self.crop!r} must be (top, bottom, left, right), four ints >= 0")
        object.__setattr__(self, "crop", crop)
        coerce_arrays(self, {"positions": np.int64, "timestamps_s": np.float64,
                             "is_anchor": bool, "scores": np.float32, "anchor_frames": np.int64,
                             "candidate_frames": np.int64, "cut_frames": np.int64},
                      optional={"pixels": np.uint8, "relevance_frames": np.int64,
                                "relevance_scores": np.float32})
        if (self.relevance_frames is None) != (self.relevance_scores is None) or (
                self.relevance_frames is not None and self.relevance_scores is not None
                and len(self.relevance_frames) != len(self.relevance_scores)):
            raise InvalidArgumentError(
                "relevance_frames and relevance_scores must both be None or have equal length")
        if not isinstance(self.config, PatchConfig):
            raise InvalidArgumentError(
                f"config must be a PatchConfig, got {type(self.config).__name__}")
        n = len(self.positions)
        if self.positions.ndim != 2 or self.positions.shape[1] != 3:
            raise InvalidArgumentError(f"positions must be (N, 3), got {self.positions.shape}")
        for name in ("timestamps_s", "is_anchor", "scores"):
            if len(getattr(self, name)) != n:
                raise InvalidArgumentError(
                    f"{name} has {len(getattr(self, name))} rows, expected {n}")
        m2 = self.config.merge ** 2
        if n % m2:
            raise InvalidArgumentError(f"{n} patches is not a whole number of {m2}-patch tokens")
        if self.budget_tokens < 0 or n // m2 > self.budget_tokens:
            raise InvalidArgumentError(
                f"{n // m2} tokens exceed budget_tokens={self.budget_tokens}")
        p = self.config.patch_size
        if self.pixels is not None and self.pixels.shape != (n, p, p, 3):
            raise InvalidArgumentError(
                f"pixels must be ({n}, {p}, {p}, 3), got {self.pixels.shape}")
        if n:
            gh, gw = self.config.grid
            if (self.positions[:, 0].min() < 0 or self.positions[:, 0].max() >= self.num_frames
                    or self.positions[:, 1].max() >= gh or self.positions[:, 2].max() >= gw
                    or self.positions[:, 1:].min() < 0):
                raise InvalidArgumentError("positions out of range")

    # -- sizes --------------------------------------------------------------------------------
    @property
    def num_patches(self) -> int:
        return len(self.positions)

    @property
    def num_tokens(self) -> int:
        """Merged LLM tokens: ``num_patches / merge**2``."""
        return self.num_patches // self.config.merge ** 2

    @property
    def num_anchor_patches(self) -> int:
        return int(self.is_anchor.sum())

    @property
    def num_motion_patches(self) -> int:
        return self.num_patches - self.num_anchor_patches

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    @property
    def merge(self) -> int:
        return self.config.merge

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width) of the resized frames the patches are cut from."""
        return self.config.frame_size

    @property
    def grid_hw(self) -> tuple[int, int]:
        """(rows, cols) of the full patch grid of a frame: ``frame_size // patch_size``.

        The grid ``positions[:, 1:]`` index into, whatever was selected (a motion-only
        selection may never touch the last row or column); what position embeddings are
        interpolated to.
        """
        return self.config.grid

    @property
    def source_frames(self) -> np.ndarray:
        """(S,) int64 sorted unique frames contributing at least one patch."""
        return np.unique(self.positions[:, 0])

    @property
    def source_timestamps_s(self) -> np.ndarray:
        """(S,) float64 presentation time of each of :attr:`source_frames`."""
        _, first = np.unique(self.positions[:, 0], return_index=True)
        return np.asarray(self.timestamps_s[first], np.float64)

    @property
    def span_s(self) -> float:
        """Time between the first and the last contributing frame, seconds."""
        if not self.num_patches:
            return 0.0
        return float(self.timestamps_s.max() - self.timestamps_s.min())

    @property
    def frame_equivalents(self) -> float:
        """Patches spent, in whole-frame units."""
        return self.num_patches / self.config.patches_per_frame

    def tokens_per_source_frame(self) -> dict[int, int]:
        """{frame: tokens} for each contributing frame."""
        f, c = np.unique(self.positions[:: self.config.merge ** 2, 0], return_counts=True)
        return {int(a): int(b) for a, b in zip(f, c)}

    # -- export -------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Compact JSON-safe summary: counts, anchor and cut frames, timings (no per-patch
        rows; not invertible, see :meth:`to_dict`)."""
        return json_safe({  # type: ignore[no-any-return]
            "kind": self.kind, "path": self.path, "method": self.method,
            "patch_size": self.patch_size, "merge": self.merge,
            "frame_size": list(self.frame_size), "budget_tokens": self.budget_tokens,
            "num_tokens": self.num_tokens, "num_patches": self.num_patches,
            "num_anchor_patches": self.num_anchor_patches,
            "num_motion_patches": self.num_motion_patches,
            "num_source_frames": len(self.source_frames), "num_frames": self.num_frames,
            "duration_s": self.duration_s, "span_s": self.span_s, "signal": self.signal,
            "fallback": self.fallback, "anchor_frames": self.anchor_frames,
            "cut_frames": self.cut_frames,
            "num_candidate_frames": len(self.candidate_frames),
            "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()},
            "question": self.question, "params": dict(self.params),
            "crop": list(self.crop),
        })

    def to_dict(self, *, per_patch: bool = True) -> dict[str, Any]:
        """JSON-safe dict: the :meth:`summary` keys plus every per-patch array (positions,
        timestamps_s, is_anchor, scores) and the candidate frames, which :meth:`from_dict`
        turns back into an equal selection without pixels (they are left out; ``pixels`` is
        None after the round trip).

        Args:
            per_patch: False gives the compact :meth:`summary` instead (kept for callers of
                the former ``to_dict(per_patch=False)`` default).
        """
        d = self.summary()
        if not per_patch:
            return d
        d.update(json_safe({
            "positions": self.positions, "timestamps_s": self.timestamps_s,
            "is_anchor": self.is_anchor, "scores": self.scores,
            "candidate_frames": self.candidate_frames,
            "timings_s": dict(self.timings_s),
            "relevance_frames": self.relevance_frames,
            "relevance_scores": self.relevance_scores,
        }))
        return d

    @classmethod
    @reads_dict
    def from_dict(cls, d: Mapping[str, Any]) -> PatchSelection:
        """Inverse of :meth:`to_dict`: equal to the original with ``pixels=None`` (pixels are
        not serialised; NaN scores and timings come back as NaN). Reads the old keys
        ``timestamps`` and ``timings`` too.

        Raises:
            InvalidArgumentError: ``d`` is a :meth:`summary` (no per-patch rows) or malformed.
        """
        if "positions" not in d or "scores" not in d:
            raise InvalidArgumentError(
                "PatchSelection.from_dict needs the full to_dict() (per-patch positions and "
                "scores), not its summary()")
        ts = d["timestamps" if "timestamps" in d and "timestamps_s" not in d else "timestamps_s"]
        timings = d["timings_s"] if "timings_s" in d else d.get("timings")
        positions = np.asarray(d["positions"], np.int64).reshape(-1, 3)
        return cls(
            path=d["path"], method=str(d["method"]), config=PatchConfig.from_dict(d),
            positions=positions,
            timestamps_s=float_array(ts),  # type: ignore[arg-type]
            is_anchor=np.asarray(d["is_anchor"], bool),
            scores=float_array(d["scores"], dtype=np.float32),  # type: ignore[arg-type]
            pixels=None,
            anchor_frames=np.asarray(d["anchor_frames"], np.int64),
            candidate_frames=np.asarray(d.get("candidate_frames", []), np.int64),
            cut_frames=np.asarray(d["cut_frames"], np.int64),
            budget_tokens=int(d["budget_tokens"]), num_frames=int(d["num_frames"]),
            duration_s=float_or_nan(d["duration_s"]), signal=str(d["signal"]),
            fallback=bool(d["fallback"]), timings_s=float_dict(timings),
            question=d.get("question"), params=dict(d.get("params") or {}),
            relevance_frames=(None if d.get("relevance_frames") is None
                              else np.asarray(d["relevance_frames"], np.int64)),
            relevance_scores=(None if d.get("relevance_scores") is None
                              else float_array(d["relevance_scores"], dtype=np.float32)),
            crop=tuple(d.get("crop") or (0, 0, 0, 0)))  # type: ignore[arg-type]

    def to_json(self, path: str | Path | None = None, *, per_patch: bool = True) -> str:
        """The :meth:`to_dict` dict as JSON text, also written to ``path`` if given."""
        text = json.dumps(self.to_dict(per_patch=per_patch), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    # -- packing ------------------------------------------------------------------------------
    def canvases(self, *, side: int | None = None) -> Canvases:
        """Pack the selected tokens into square canvases of ``side`` pixels.

        Each anchor frame starts a new canvas and keeps its own layout when it fits; motion
        tokens fill the following canvases row-major in time order (a canvas may hold tokens
        of several frames; each cell keeps its own position). Unused cells are padding
        (position -1, black pixels): the motion tokens after each anchor start a new canvas
        (time order), so there can be up to one canvas per anchor more than the budget in
        frames; ``num_padding`` counts the padding cells.

        Args:
            side: canvas side in pixels, a multiple of ``patch_size * merge``; default the
                larger side of ``frame_size``.
        """
        if self.pixels is None:
            raise InvalidArgumentError("canvases() needs pixels; select with pixels != 'none'")
        cfg = self.config
        unit = cfg.patch_size * cfg.merge
        side = side if side is not None else max(cfg.frame_size)
        side = check_positive_int("side", side)
        if side % unit:
            raise InvalidArgumentError(f"side={side!r} must be a multiple of {unit}")
        m, p = cfg.merge, cfg.patch_size
        tg = side // unit  # tokens per canvas side
        m2 = m * m
        tok_pos = self.positions.reshape(-1, m2, 3)  # (tokens, m*m, 3)
        tok_pix = (self.pixels.reshape(-1, m, m, p, p, 3)  # (tokens, m, m, p, p, 3)
                   .transpose(0, 1, 3, 2, 4, 5).reshape(-1, m * p, m * p, 3))
        tok_anchor = self.is_anchor[::m2]
        frames = tok_pos[:, 0, 0]
        th, tw = cfg.token_grid
        fits = th <= tg and tw <= tg
        slots: list[tuple[int, int, int]] = []  # (canvas, token row, token col) per token
        canvas = -1
        cursor = tg * tg  # full: the next motion token opens a canvas
        prev_anchor_frame = -1
        for t in range(len(frames)):
            if tok_anchor[t]:
                f = int(frames[t])
                if f != prev_anchor_frame:
                    canvas += 1
                    cursor = 0
                    prev_anchor_frame = f
                if fits:
                    r, c = int(tok_pos[t, 0, 1]) // m, int(tok_pos[t, 0, 2]) // m
                    slots.append((canvas, r, c))
                    cursor = tg * tg  # motion tokens start a fresh canvas after an anchor
                    continue
            else:
                prev_anchor_frame = -1
            if cursor >= tg * tg:
                canvas += 1
                cursor = 0
            slots.append((canvas, cursor // tg, cursor % tg))
            cursor += 1
        n_c = canvas + 1
        gcell = tg * m
        images = np.zeros((n_c, side, side, 3), np.uint8)
        positions = np.full((n_c, gcell, gcell, 3), -1, np.int64)
        valid = np.zeros((n_c, gcell, gcell), bool)
        stamps = np.full((n_c, gcell, gcell), np.nan)
        ts_tok = self.timestamps_s[::m2]
        for t, (ci, r, c) in enumerate(slots):
            images[ci, r * unit:(r + 1) * unit, c * unit:(c + 1) * unit] = tok_pix[t]
            positions[ci, r * m:(r + 1) * m, c * m:(c + 1) * m] = tok_pos[t].reshape(m, m, 3)
            valid[ci, r * m:(r + 1) * m, c * m:(c + 1) * m] = True
            stamps[ci, r * m:(r + 1) * m, c * m:(c + 1) * m] = ts_tok[t]
        return Canvases(images=images, positions=positions, valid=valid, timestamps_s=stamps,
                        patch_size=p)

    # -- pictures -----------------------------------------------------------------------------
    def images(self) -> tuple[np.ndarray, list[str]]:
        """What the model sees: the packed :meth:`canvases` (C, S, S, 3) uint8 and a label each
        (``canvas_000``...). Needs pixels."""
        c = self.canvases()
        if c.images is None:  # pragma: no cover - canvases() of a selection with pixels
            raise InvalidArgumentError("images() needs pixels; select with pixels != 'none'")
        return c.images, c.labels

    def contact_sheet(self, *, thumb: int = DEFAULT_THUMB, columns: int | None = None,
                      max_frames: int = MAX_TILES) -> Image.Image:
        """A ``PIL.Image``: contributing frames with their selected patches in place and the
        rest grey; anchor frames framed yellow, motion-only frames cyan. Beyond ``max_frames``
        every anchor frame is kept, the motion frames are evenly chosen and the title says so
        ("48 of 51 frames shown"). Needs pixels."""
        if self.pixels is None:
            raise InvalidArgumentError("a PatchSelection contact sheet needs pixels "
                                       "(select with pixels='decode')")
        title = (f"{self.method}: {self.num_tokens}/{self.budget_tokens} tokens from "
                 f"{len(self.source_frames)} frames")
        return patch_selection_sheet(self.pixels, self.positions, self.is_anchor,
                                     self.timestamps_s, frame_size=self.frame_size,
                                     merge=self.merge, title=title, thumb=thumb,
                                     columns=columns, max_tiles=max_frames)

    def save_contact_sheet(self, path: str | Path, *, thumb: int = DEFAULT_THUMB,
                           columns: int | None = None, max_frames: int = MAX_TILES) -> Path:
        """Write :meth:`contact_sheet` to ``path`` (format from the suffix); returns the path."""
        out = Path(path)
        self.contact_sheet(thumb=thumb, columns=columns, max_frames=max_frames).save(out)
        return out

    def _repr_png_(self) -> bytes | None:
        """Contact sheet for notebooks (None without pixels)."""
        if self.pixels is None or not self.num_patches:
            return None
        return to_png(self.contact_sheet())

    def plot(self, path: str | Path | None = None, *, ax: Any = None,
             title: str | None = None) -> Any:
        """Tokens per contributing frame over time (anchors yellow, motion cyan) as a
        matplotlib ``Figure``, saved to ``path`` when given: the convention of
        ``Selection.plot`` and ``Comparison.plot`` (:func:`vidsel.render.patch_selection_plot`;
        ``ax``: draw on these axes)."""
        title = title if title is not None else f"{self.method}: {self.num_tokens} tokens"
        return save_figure(patch_selection_plot(
            self.positions, self.is_anchor, self.timestamps_s, merge=self.merge,
            duration_s=self.duration_s, title=title, ax=ax), path)

    def heatmap(self, *, cell: int = 12, time_bins: int = 64) -> Image.Image:
        """A ``PIL.Image``: where (token grid) and when (time bins) tokens were spent."""
        return patch_selection_heatmap(self.positions, self.is_anchor, merge=self.merge,
                                       token_grid=self.config.token_grid,
                                       num_frames=self.num_frames, duration_s=self.duration_s,
                                       cell=cell, time_bins=time_bins)

    def save_heatmap(self, path: str | Path) -> Path:
        """Write :meth:`heatmap` to ``path``; returns the path."""
        out = Path(path)
        self.heatmap().save(out)
        return out

    def __repr__(self) -> str:
        return (f"PatchSelection(method={self.method!r}, tokens={self.num_tokens}/"
                f"{self.budget_tokens}, patches={self.num_patches} "
                f"(anchor {self.num_anchor_patches}, motion {self.num_motion_patches}), "
                f"source_frames={len(self.source_frames)}/{self.num_frames}, "
                f"span_s={self.span_s:.2f}, signal={self.signal!r}, "
                f"positions={_shape(self.positions)}, pixels={_shape(self.pixels)})")
