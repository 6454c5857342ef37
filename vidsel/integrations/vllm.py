"""vidsel as a vLLM video loader: ``video_backend="vidsel"`` (query-free methods, server side).

vLLM loads the entry point ``vllm.general_plugins: vidsel_video_loader =
vidsel.integrations.vllm:register`` in each of its processes (possibly several times);
:func:`register` then adds the loader class ``"vidsel"`` to
``vllm.multimodal.video.VIDEO_LOADER_REGISTRY``. Select it with either

- ``--media-io-kwargs '{"video": {"video_backend": "vidsel", "method": "keyframes"}}'`` (server
  default) or the same ``media_io_kwargs`` in a request, or
- ``VLLM_VIDEO_LOADER_BACKEND=vidsel`` -- which vLLM 0.33 overrides for models whose video
  processor has its own loader (Qwen2-VL / Qwen2.5-VL: ``qwen2_vl``, Qwen3-VL: ``qwen3_vl``):
  for those, name ``video_backend`` in ``--media-io-kwargs``.

``load_bytes(data, num_frames=-1, fps=-1, method="uniform", even="error", size=None)`` returns
``(frames, metadata)``: frames (T, H, W, 3) uint8 decoded exactly, and the metadata keys of
vLLM's ``create_hf_metadata`` (``total_num_frames``, ``fps``, ``duration``, ``video_backend``,
``frames_indices``, ``do_sample_frames=False``) with the true source indices. vLLM's own
decoding options (:data:`VLLM_DECODING_OPTIONS`: ``backend``, ``device``, ``max_duration``,
``frame_recovery``..., which an EPD encode-only instance or a server-wide
``--media-io-kwargs`` puts there) are ignored, said once per process at INFO: vidsel decodes
with its own exact reader on the CPU. Other keys are refused. Inside vLLM,
``VideoMediaIO`` always passes ``num_frames`` (32 unless ``media_io_kwargs`` set it). Methods,
frame counts and the even-frame policy: :mod:`vidsel.integrations._vllm_loader`. The loader
never sees the question: question-aware methods are refused; run them on the client and send
the frames with :func:`vidsel.selection.to_vllm`.

Without vllm, :func:`register` does nothing (logged at DEBUG); this module imports vllm only
inside :func:`register`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from ..errors import MissingDependencyError
from ..optional import require
from ..selection import VIDEO_BACKEND
from ._vllm_loader import (
    DEFAULT_METHOD,
    LOADER_METHODS,
    LOADER_OPTIONS,
    VLLM_DECODING_OPTIONS,
    load_video_bytes,
    load_video_file,
)

__all__ = [
    "DEFAULT_METHOD",
    "LOADER_METHODS",
    "LOADER_OPTIONS",
    "VIDEO_BACKEND",
    "VLLM_DECODING_OPTIONS",
    "load_video_bytes",
    "load_video_file",
    "loader_class",
    "register",
]

logger = logging.getLogger(__name__)

#: Marks the loader class this module made (idempotent registration).
_MARK = "_vidsel_video_loader"


def _load_bytes(cls: type, data: bytes, num_frames: int = -1, fps: float = -1,
                **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """vLLM's ``VideoLoader.load_bytes``: see :func:`load_video_bytes`."""
    return load_video_bytes(data, num_frames, fps, **kwargs)


@functools.cache
def loader_class(base: type) -> type:
    """The ``"vidsel"`` loader: a subclass of vLLM's ``VideoLoader`` ``base`` whose
    ``load_bytes`` is :func:`load_video_bytes` (one class per base, so registering again
    changes nothing)."""
    return type("VidselVideoLoader", (base,), {
        "__module__": __name__,
        "__doc__": "vidsel's vLLM video loader (query-free methods: "
                   f"{', '.join(LOADER_METHODS)}); see vidsel.integrations.vllm.",
        _MARK: True,
        "load_bytes": classmethod(_load_bytes),
    })


def register() -> None:
    """Register the ``"vidsel"`` video loader with vLLM (the ``vllm.general_plugins`` entry
    point). Safe to call any number of times, in any process.

    Without vllm this does nothing (DEBUG log). A vllm without
    ``vllm.multimodal.video.VIDEO_LOADER_REGISTRY`` / ``VideoLoader`` gets a WARNING and no
    loader; vLLM starts either way (an exception here would stop it).
    """
    try:
        video = require("vllm.multimodal.video", "vidsel's vLLM video loader", extra="vllm")
    except MissingDependencyError as exc:
        logger.debug("vllm is not importable (%s): vidsel's video loader is not registered", exc)
        return
    registry = getattr(video, "VIDEO_LOADER_REGISTRY", None)
    base = getattr(video, "VideoLoader", None)
    name2class = getattr(registry, "name2class", None)
    if registry is None or not isinstance(base, type) or not isinstance(name2class, dict):
        logger.warning("this vllm has no vllm.multimodal.video.VIDEO_LOADER_REGISTRY / "
                       "VideoLoader of the 0.33 kind: vidsel's video loader %r is not "
                       "registered", VIDEO_BACKEND)
        return
    current = name2class.get(VIDEO_BACKEND)
    if current is not None and getattr(current, _MARK, False) and issubclass(current, base):
        return
    if current is not None:
        logger.warning("replacing vLLM's video loader %r (%r) with vidsel's", VIDEO_BACKEND,
                       current)
    registry.register(VIDEO_BACKEND)(loader_class(base))
    logger.debug("registered vidsel's video loader %r with vLLM", VIDEO_BACKEND)
