"""Exported motion vectors of a decoded picture, read without keeping the picture alive.

PyAV caches a frame's side data in a container that refers back to the frame (and so does
each side-data object in it): once ``frame.side_data`` is read, the frame is in a reference
cycle and lives until Python's cyclic garbage collector runs, not until the pass drops it. A
motion-vector pass that holds a few dozen pictures ahead of its consumer then keeps hundreds
of dead ones, and the decoder, whose picture pool cannot take their buffers back, allocates
and zeroes new ones for every picture: on a 640x360 clip some 100,000 page faults and
0.3-0.5 CPU-s a pass (PyAV 18). :func:`frame_motion_vectors` reads the vectors, then clears
the cached container (its ``tp_clear``, what the collector would do), so the picture is freed
as soon as nothing refers to it. A picture with a display matrix keeps its container (the
converter reads the matrix from it later). Clearing relies on how PyAV's container uses its
fields (only when it is built and in ``Frame.side_data``: so in PyAV 14-18); on other PyAV
releases and other Pythons than CPython nothing is cleared. Either way the vectors are the
same.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

import numpy as np

from ._frames import MV_DTYPE

__all__ = ["CLEARED_PYAV", "clear_side_data", "frame_motion_vectors"]

logger = logging.getLogger(__name__)

#: ``Py_tp_clear`` (Include/typeslots.h), the slot id :c:func:`PyType_GetSlot` takes.
_PY_TP_CLEAR = 51
_Inquiry = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object)  # holds the GIL while it runs
_clearers: dict[type, Any] = {}


#: PyAV major versions whose side-data container is known to survive a clear (checked
#: against their sources: its fields are read only when it is built).
CLEARED_PYAV = range(14, 19)


def _get_slot() -> Any:
    try:
        import av

        major = int(str(av.__version__).split(".")[0])
    except (ImportError, ValueError):  # pragma: no cover - defensive
        return None
    if sys.implementation.name != "cpython" or major not in CLEARED_PYAV:
        logger.debug("PyAV %s on %s: side data left to the collector", av.__version__,
                     sys.implementation.name)
        return None
    try:
        fn = ctypes.pythonapi.PyType_GetSlot
    except (AttributeError, OSError):  # pragma: no cover - not CPython
        return None
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.py_object, ctypes.c_int]
    return fn


_GET_SLOT = _get_slot()


def clear_side_data(container: Any) -> bool:
    """Clear a frame's cached side-data container (drop its references to the frame and to
    its side-data objects); True when it was cleared. The container is unusable afterwards."""
    if _GET_SLOT is None:  # pragma: no cover - not CPython, or another PyAV release
        return False
    kind = type(container)
    fn = _clearers.get(kind)
    if fn is None:
        try:
            ptr = _GET_SLOT(kind, _PY_TP_CLEAR)
        except (SystemError, TypeError, ValueError):  # pragma: no cover - defensive
            ptr = None
        if not ptr:  # pragma: no cover - a type without references to clear
            logger.debug("%s has no tp_clear: side data left to the collector", kind)
            return False
        fn = _clearers[kind] = _Inquiry(ptr)
    fn(container)
    return True


def frame_motion_vectors(frame: Any) -> np.ndarray | None:
    """(M,) :data:`MV_DTYPE` motion vectors of a picture decoded with ``+export_mvs`` (a view
    of its side data), or None without any; the frame's side-data container is cleared
    afterwards unless it holds a display matrix (see the module doc)."""
    side = frame.side_data
    sd = side.get("MOTION_VECTORS")
    mvs = None if sd is None else np.frombuffer(sd, MV_DTYPE)
    if side.get("DISPLAYMATRIX") is None:
        clear_side_data(side)
    return mvs
