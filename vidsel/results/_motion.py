"""Per-frame motion on a block grid: :class:`MotionFields` (what
:func:`vidsel.codec.motion_vectors` returns)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._fields import FieldsEq, coerce_arrays
from .._json import float_array, float_or_nan, json_safe, reads_dict
from ..deprecation import renamed_fields
from ..errors import InvalidArgumentError
from ._geometry import shape_repr as _shape

__all__ = ["MotionFields"]


@renamed_fields({"frame_indices": "indices"})
@dataclass(frozen=True, repr=False, eq=False)
class MotionFields(FieldsEq):
    """Per-frame motion on a block grid, for the frames a decode pass produced.

    Attributes:
        path: the video file.
        codec: decoder name.
        indices: (T,) int64 presentation indices of the analysed frames (ascending), as in
            :class:`~vidsel.io.FrameBatch` and :class:`~vidsel.results.Selection`
            (``frame_indices`` is its deprecated name).
        pict_type: (T,) ``<U1`` picture type of each analysed frame (from the decoder).
        flow: (T, Gh, Gw, 2) float32 mean displacement (dx, dy) along the motion, in coded
            pixels, of each ``block`` x ``block`` cell (0 where no vector: intra or keyframe).
        coverage: (T, Gh, Gw) float32 share of the cell's area that carries a vector (0 = intra).
        intra_share: (T,) float32 share of the picture without vectors (1.0 for I-frames; a
            value near 1 on a P-frame is a cut hint).
        block: cell side in coded pixels.
        coded_size: (height, width) of the decoded pictures (before rotation metadata).
        elapsed_s: wall time of the decode pass.
    """

    path: str
    codec: str
    indices: np.ndarray
    pict_type: np.ndarray
    flow: np.ndarray
    coverage: np.ndarray
    intra_share: np.ndarray
    block: int
    coded_size: tuple[int, int]
    elapsed_s: float = field(default=0.0, compare=False)

    def __post_init__(self) -> None:
        coerce_arrays(self, {"indices": np.int64, "pict_type": "<U1", "flow": np.float32,
                             "coverage": np.float32, "intra_share": np.float32})
        t = len(self.indices)
        if self.flow.ndim != 4 or self.flow.shape[0] != t or self.flow.shape[-1] != 2:
            raise InvalidArgumentError(
                f"flow must be (T, Gh, Gw, 2) with T={t}, got {self.flow.shape}")
        if self.coverage.shape != self.flow.shape[:3]:
            raise InvalidArgumentError(f"coverage {self.coverage.shape} does not match flow "
                                       f"{self.flow.shape[:3]}")
        if len(self.pict_type) != t or len(self.intra_share) != t:
            raise InvalidArgumentError("pict_type / intra_share must have one entry per frame")
        if t > 1 and not np.all(np.diff(self.indices) > 0):
            raise InvalidArgumentError("indices must be strictly increasing")

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def grid(self) -> tuple[int, int]:
        """(Gh, Gw) cells per frame."""
        return int(self.flow.shape[1]), int(self.flow.shape[2])

    def magnitude(self) -> np.ndarray:
        """(T, Gh, Gw) float32 vector length in pixels."""
        return np.hypot(self.flow[..., 0], self.flow[..., 1])

    def mean_flow(self) -> np.ndarray:
        """(T, 2) coverage-weighted mean (dx, dy) per frame (a global-motion estimate)."""
        w = self.coverage
        s = w.sum(axis=(1, 2))
        num = (self.flow * w[..., None]).sum(axis=(1, 2))
        return (num / np.maximum(s, 1e-9)[:, None]).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with every array; :meth:`from_dict` inverts it."""
        return json_safe({  # type: ignore[no-any-return]
            "path": self.path, "codec": self.codec, "indices": self.indices,
            "pict_type": self.pict_type, "flow": self.flow, "coverage": self.coverage,
            "intra_share": self.intra_share, "block": self.block,
            "coded_size": list(self.coded_size), "elapsed_s": self.elapsed_s})

    @classmethod
    @reads_dict
    def from_dict(cls, d: Mapping[str, Any]) -> MotionFields:
        """Inverse of :meth:`to_dict` (also reads the old key ``frame_indices``)."""
        flow = np.asarray(d["flow"], np.float32)
        if flow.ndim != 4:  # no frames: JSON kept no grid shape
            flow = flow.reshape(0, 0, 0, 2)
        cov = np.asarray(d["coverage"], np.float32).reshape(flow.shape[:3])
        h, w = d["coded_size"]
        indices = d["frame_indices" if "frame_indices" in d and "indices" not in d else "indices"]
        return cls(path=str(d["path"]), codec=str(d["codec"]),
                   indices=np.asarray(indices, np.int64),
                   pict_type=np.asarray(d["pict_type"], "<U1"), flow=flow, coverage=cov,
                   intra_share=float_array(d["intra_share"], dtype=np.float32),  # type: ignore[arg-type]
                   block=int(d["block"]), coded_size=(int(h), int(w)),
                   elapsed_s=float_or_nan(d.get("elapsed_s", 0.0)))

    def __repr__(self) -> str:
        return (f"MotionFields(path={self.path!r}, codec={self.codec!r}, frames={len(self)}, "
                f"grid={self.grid}, block={self.block}, flow={_shape(self.flow)})")
