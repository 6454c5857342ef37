"""Patch geometry of a vision encoder (:class:`PatchConfig`) and its named presets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._json import reads_dict
from .._validate import check_positive_int
from ..errors import InvalidArgumentError
from ..registry import Registry

__all__ = ["PRESETS", "PatchConfig", "shape_repr"]


def shape_repr(a: np.ndarray | None) -> str:
    """``dtype[shape]`` of an array for reprs (``"None"`` for None)."""
    return "None" if a is None else f"{a.dtype}{list(a.shape)}"


@dataclass(frozen=True)
class PatchConfig:
    """Patch geometry of a vision encoder.

    Attributes:
        patch_size: side of a patch in pixels of the resized frame.
        merge: patches merged per side into one LLM token (2 = 2 x 2 patches per token).
        frame_size: (height, width) every frame is resized to; multiples of
            ``patch_size * merge``.
    """

    patch_size: int = 14
    merge: int = 2
    frame_size: tuple[int, int] = (392, 392)

    def __post_init__(self) -> None:
        check_positive_int("patch_size", self.patch_size)
        check_positive_int("merge", self.merge)
        unit = self.patch_size * self.merge
        fs = self.frame_size
        if (not isinstance(fs, tuple) or len(fs) != 2
                or any(not isinstance(v, (int, np.integer)) or v < unit or v % unit for v in fs)):
            raise InvalidArgumentError(
                f"frame_size={fs!r} must be (height, width), each a positive multiple of "
                f"patch_size * merge = {unit}")

    @classmethod
    def make(cls, *, patch_size: int = 14, merge: int = 2,
             frame_size: int | Sequence[int] = 392) -> PatchConfig:
        """Build from user arguments; an int ``frame_size`` means a square frame."""
        if isinstance(frame_size, (int, np.integer)) and not isinstance(frame_size, bool):
            fs = (int(frame_size), int(frame_size))
        else:
            try:
                fs = tuple(int(v) for v in frame_size)  # type: ignore[union-attr,assignment]
            except (TypeError, ValueError):
                raise InvalidArgumentError(
                    f"frame_size={frame_size!r} must be an int or (height, width)") from None
        return cls(patch_size=patch_size, merge=merge, frame_size=fs)  # type: ignore[arg-type]

    @classmethod
    def preset(cls, name: str) -> PatchConfig:
        """A named preset: ``"llava-ov-2"`` (14 px, 2x2, 392x392) or ``"ovis2.5"`` (16 px, 448).

        Raises:
            InvalidArgumentError: an unknown name (the message lists :data:`PRESETS`).
        """
        return PRESETS.get(name)

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, cols) of patches per frame."""
        return self.frame_size[0] // self.patch_size, self.frame_size[1] // self.patch_size

    @property
    def token_grid(self) -> tuple[int, int]:
        """(rows, cols) of merged tokens per frame."""
        gh, gw = self.grid
        return gh // self.merge, gw // self.merge

    @property
    def patches_per_frame(self) -> int:
        gh, gw = self.grid
        return gh * gw

    @property
    def tokens_per_frame(self) -> int:
        th, tw = self.token_grid
        return th * tw

    def to_dict(self) -> dict[str, Any]:
        """``{"patch_size", "merge", "frame_size"}``; :meth:`from_dict` inverts it."""
        return {"patch_size": self.patch_size, "merge": self.merge,
                "frame_size": list(self.frame_size)}

    @classmethod
    @reads_dict
    def from_dict(cls, d: Mapping[str, Any]) -> PatchConfig:
        """Inverse of :meth:`to_dict` (extra keys are ignored)."""
        return cls.make(patch_size=int(d["patch_size"]), merge=int(d["merge"]),
                        frame_size=d["frame_size"])


#: Named patch geometries (``PatchConfig.preset(name)``); register more with
#: ``PRESETS.register(name, PatchConfig(...))``.
PRESETS: Registry[PatchConfig] = Registry("preset")
PRESETS.register("llava-ov-2", PatchConfig(14, 2, (392, 392)))
PRESETS.register("ovis2.5", PatchConfig(16, 2, (448, 448)))
