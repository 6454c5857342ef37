"""What every selection result offers, frames or patches: :class:`VisualSelection`."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

__all__ = ["SelectionKind", "VisualSelection"]

SelectionKind = Literal["frames", "patches"]


@runtime_checkable
class VisualSelection(Protocol):
    """The shared face of :class:`~vidsel.results.Selection` (whole frames) and
    :class:`~vidsel.results.PatchSelection` (codec patches): what a video-level method
    (:func:`vidsel.methods.run_method`) returns and what the CLI, batch runs and models consume.

    Attributes:
        kind: ``"frames"`` or ``"patches"``.
        path: the video file.
        method: the method name that produced it.
        timestamps_s: (rows,) float64 presentation time of each row's source frame (a row is a
            frame of a Selection, a patch of a PatchSelection).
    """

    kind: ClassVar[SelectionKind]

    @property
    def path(self) -> str | None:
        """The video file."""
        ...

    @property
    def method(self) -> str:
        """The method name that produced the selection."""
        ...

    @property
    def timestamps_s(self) -> np.ndarray:
        """(rows,) float64 presentation time of each row's source frame."""
        ...

    @property
    def source_frames(self) -> np.ndarray:
        """(S,) int64 sorted unique frame indices that contribute pixels."""
        ...

    @property
    def source_timestamps_s(self) -> np.ndarray:
        """(S,) float64 presentation time of each source frame."""
        ...

    @property
    def num_tokens(self) -> int | None:
        """Visual tokens the selection costs the model (None when the geometry is unknown)."""
        ...

    def images(self) -> tuple[np.ndarray, list[str]]:
        """(N, H, W, 3) uint8 pictures of what the model sees, and a file-name-safe label each."""
        ...

    def contact_sheet(self) -> Any:
        """A ``PIL.Image`` overview of the selection."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict that :meth:`from_dict` turns back into an equal result."""
        ...
