"""decord decode backend (optional extra ``vidsel[decord]``).

Differences from the PyAV backend, all handled or documented:

- decord indexes frames itself; vidsel checks its count against the packet index and refuses
  to run (``DecodeError``) if they disagree rather than return shifted frames.
- decord resizes when the reader is created, so one decord reader is kept per output size.
- decord applies rotation metadata itself (resizing in display orientation); display matrices
  with a mirror flip and 10/12-bit sources (which decord converts wrongly) are refused.
- decord has no keyframe-only mode here; ``mode="keyframe"`` decodes the keyframes exactly.
- decord cannot decode VP9 / AV1 in its wheels and is unmaintained upstream; use PyAV there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import DecodeError
from ..optional import require
from ._pyav import PyAVBackend

__all__ = ["DecordBackend"]

logger = logging.getLogger(__name__)


def _import_decord() -> Any:
    return require("decord", "the decord backend", extra="decord",
                   needs="decord (x86-64 Linux/Windows wheels only)")


class DecordBackend(PyAVBackend):
    """Metadata and packet index from PyAV; pixels from decord."""

    name = "decord"

    def __init__(self, path: str, *, stream: int | None = None, threads: int = 0,
                 interpolation: str = "BILINEAR", workers: int | None = None) -> None:
        self._decord = _import_decord()
        # decord decodes the pixels itself (its own threads): PyAV only indexes here
        super().__init__(path, stream=stream, threads=threads, interpolation=interpolation,
                         workers=1)
        self._readers: dict[tuple[int, int], Any] = {}
        if self.mirrored:
            raise DecodeError(f"{path}: decord cannot apply this mirrored display matrix; "
                              "use backend='pyav'")
        if any(tag in self.pix_fmt for tag in ("p10", "p12", "p14", "p16")):
            raise DecodeError(f"{path}: decord converts high-bit-depth video ({self.pix_fmt}) "
                              "incorrectly; use backend='pyav'")

    def _reader(self, out_hw: tuple[int, int]) -> Any:
        if out_hw not in self._readers:
            h, w = out_hw
            kw: dict[str, Any] = {"num_threads": self._threads}
            if (h, w) != self.display_size:
                kw.update(width=w, height=h)
            try:
                r = self._decord.VideoReader(self.path, ctx=self._decord.cpu(0), **kw)
            except Exception as e:  # decord raises its own DECORDError
                raise DecodeError(f"{self.path}: decord cannot open the video: {e}") from e
            if len(r) != len(self.table):
                raise DecodeError(
                    f"{self.path}: decord counts {len(r)} frames but the stream has "
                    f"{len(self.table)}; use backend='pyav' for this file")
            self._readers[out_hw] = r
        return self._readers[out_hw]

    def decode_exact(self, targets: np.ndarray, out_hw: tuple[int, int],
                     sink: Callable[[int, np.ndarray], None]) -> list[int]:
        targets = np.asarray(targets, np.int64)
        if len(targets) == 0:
            return []
        reader = self._reader(out_hw)
        try:
            ts = np.asarray(reader.get_frame_timestamp(targets.tolist()))[:, 0]
        except Exception as e:
            raise DecodeError(f"{self.path}: decord cannot index frames: {e}") from e
        ours = self.table.timestamps_s[targets] - self.table.timestamps_s[0]
        tol = 0.5 * float(np.median(np.diff(self.table.timestamps_s))) if len(self.table) > 1 else 1e-3
        if np.any(np.abs(ts - ours) > tol):
            bad = int(targets[np.argmax(np.abs(ts - ours))])
            raise DecodeError(
                f"{self.path}: decord's frame {bad} is not the stream's frame {bad} (timestamps "
                f"disagree); use backend='pyav' for this file")
        try:
            batch = reader.get_batch(targets.tolist()).asnumpy()
        except Exception as e:
            raise DecodeError(f"{self.path}: decord failed to decode frames: {e}") from e
        for i, t in enumerate(targets):
            sink(int(t), batch[i])
        return []

    def decode_keyframes(self, keys: np.ndarray, out_hw: tuple[int, int],
                         sink: Callable[[int, np.ndarray], None]) -> list[int]:
        return self.decode_exact(keys, out_hw, sink)

    def close(self) -> None:
        self._readers.clear()
        super().close()
