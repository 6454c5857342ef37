"""Uniform vs codec sampling at equal budgets: :class:`Comparison` (what
:func:`vidsel.codec.compare` returns) and its rows."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._fields import FieldsEq
from .._json import float_or_nan, json_safe, reads_dict
from ..deprecation import renamed_fields
from ..errors import InvalidArgumentError, MissingDependencyError
from ..render import comparison_plot, figure_png, save_figure
from ._geometry import PatchConfig

__all__ = ["Comparison", "ComparisonRow"]

logger = logging.getLogger(__name__)


@renamed_fields({"seconds": "elapsed_s"})
@dataclass(frozen=True, eq=False)
class ComparisonRow(FieldsEq):
    """One (method, budget) measurement.

    Attributes:
        method: ``"uniform"`` (the frames ``run_method("uniform", path, budget=budget_frames)``
            picks, kept whole: evenly spaced, first and last frame included) or ``"codec"``
            (:func:`vidsel.codec.select_patches`).
        budget_frames: budget in frame-equivalents.
        num_tokens: tokens spent.
        span_s: time between the first and last contributing frame.
        span_fraction: ``span_s`` / video duration.
        frames_touched: distinct source frames contributing tokens.
        moving_share: share of tokens on content that changes.
        psnr_db: mean hold-last re-rendering PSNR over the evaluation frames.
        elapsed_s: wall time of the selection, pixels included (``seconds`` is its deprecated
            name).
        anchor_tokens, motion_tokens: how the tokens were spent.
    """

    method: str
    budget_frames: int
    num_tokens: int
    span_s: float
    span_fraction: float
    frames_touched: int
    moving_share: float
    psnr_db: float
    elapsed_s: float
    anchor_tokens: int
    motion_tokens: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of every field; :meth:`from_dict` inverts it."""
        return json_safe(asdict(self))  # type: ignore[no-any-return]

    @classmethod
    @reads_dict
    def from_dict(cls, d: Mapping[str, Any]) -> ComparisonRow:
        """Inverse of :meth:`to_dict` (also reads the old key ``seconds``; None, JSON's NaN,
        comes back as NaN)."""
        kw = dict(d)
        if "elapsed_s" not in kw and "seconds" in kw:
            kw["elapsed_s"] = kw.pop("seconds")
        return cls(method=str(kw["method"]), budget_frames=int(kw["budget_frames"]),
                   num_tokens=int(kw["num_tokens"]), span_s=float_or_nan(kw["span_s"]),
                   span_fraction=float_or_nan(kw["span_fraction"]),
                   frames_touched=int(kw["frames_touched"]),
                   moving_share=float_or_nan(kw["moving_share"]),
                   psnr_db=float_or_nan(kw["psnr_db"]),
                   elapsed_s=float_or_nan(kw["elapsed_s"]),
                   anchor_tokens=int(kw["anchor_tokens"]),
                   motion_tokens=int(kw["motion_tokens"]))


@dataclass(frozen=True, repr=False, eq=False)
class Comparison(FieldsEq):
    """Uniform vs codec sampling of one video at several budgets.

    Attributes:
        path: the video file.
        num_frames: frames in the video.
        duration_s: video duration in seconds.
        signal: the codec selections' change signal.
        eval_frames: frames the fidelity proxy re-rendered.
        config: the patch geometry.
        rows: one :class:`ComparisonRow` per (budget, method).
    """

    path: str
    num_frames: int
    duration_s: float
    signal: str
    eval_frames: int
    config: PatchConfig
    rows: tuple[ComparisonRow, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.config, PatchConfig):
            raise InvalidArgumentError(
                f"config must be a PatchConfig, got {type(self.config).__name__}")
        rows = tuple(self.rows)
        if not all(isinstance(r, ComparisonRow) for r in rows):
            raise InvalidArgumentError("rows must be ComparisonRow objects")
        object.__setattr__(self, "rows", rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; :meth:`from_dict` inverts it."""
        return json_safe({  # type: ignore[no-any-return]
            "path": self.path, "num_frames": self.num_frames, "duration_s": self.duration_s,
            "signal": self.signal, "eval_frames": self.eval_frames,
            **self.config.to_dict(), "rows": [r.to_dict() for r in self.rows]})

    @classmethod
    @reads_dict
    def from_dict(cls, d: Mapping[str, Any]) -> Comparison:
        """Inverse of :meth:`to_dict`."""
        return cls(path=str(d["path"]), num_frames=int(d["num_frames"]),
                   duration_s=float_or_nan(d["duration_s"]), signal=str(d["signal"]),
                   eval_frames=int(d["eval_frames"]), config=PatchConfig.from_dict(d),
                   rows=tuple(ComparisonRow.from_dict(r) for r in d.get("rows", ())))

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    def table(self) -> str:
        """Markdown table, one line per (budget, method)."""
        lines = ["| budget (frames) | method | tokens | span s (%) | frames touched | "
                 "moving share | proxy PSNR dB | time s |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in sorted(self.rows, key=lambda r: (r.budget_frames, r.method != "uniform")):
            lines.append(
                f"| {r.budget_frames} | {r.method} | {r.num_tokens} | {r.span_s:.1f} "
                f"({100 * r.span_fraction:.0f}%) | {r.frames_touched} | {r.moving_share:.2f} | "
                f"{r.psnr_db:.2f} | {r.elapsed_s:.2f} |")
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike[str] | None = None) -> Any:
        """PSNR / frames touched / moving share vs budget, one line per method.

        The convention of every result's ``plot`` (``Selection``, ``PatchSelection``): a
        matplotlib ``Figure`` built without pyplot state or a backend switch (safe in
        notebooks and servers), also saved to ``path`` when one is given.

        Args:
            path: where to save the figure (format from the suffix); None: not saved.

        Returns:
            The matplotlib ``Figure``.

        Raises:
            MissingDependencyError: matplotlib is not installed.
        """
        series: dict[str, list[tuple[int, float, int, float]]] = {}
        for r in self.rows:
            series.setdefault(r.method, []).append(
                (r.budget_frames, r.psnr_db, r.frames_touched, r.moving_share))
        return save_figure(comparison_plot(series, title=Path(self.path).name), path)

    def figure(self) -> Any:
        """The same ``Figure`` as :meth:`plot` (kept for existing code)."""
        return self.plot()

    def _repr_png_(self) -> bytes | None:
        """Jupyter display: :meth:`plot` as PNG (None, i.e. the text repr, without matplotlib
        or rows)."""
        if not self.rows:
            return None
        try:
            return figure_png(self.plot())
        except MissingDependencyError as e:
            logger.info("cannot render %r as an image: %s", self, e)
            return None

    def __repr__(self) -> str:
        return (f"Comparison(path={self.path!r}, rows={len(self.rows)}, signal={self.signal!r}, "
                f"eval_frames={self.eval_frames})")
