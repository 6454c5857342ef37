"""What the installed PyAV can do, where vidsel's exactness depends on it."""

from __future__ import annotations

import logging
from typing import Any

import av

__all__ = ["SWS_THREADS", "decoder_threads", "decoder_version", "fresh_decoders_supported"]

logger = logging.getLogger(__name__)

_warned = False

#: The installed PyAV takes swscale's thread count (``VideoReformatter.reformat(threads=)``,
#: PyAV >= 17, where reformatting became multithreaded; before, it is one thread).
SWS_THREADS = int(av.__version__.split(".")[0]) >= 17


#: FFmpeg's AV_CODEC_CAP_FRAME_THREADS | AV_CODEC_CAP_SLICE_THREADS | AV_CODEC_CAP_OTHER_THREADS.
_THREAD_CAPS = (1 << 12) | (1 << 13) | (1 << 15)


def decoder_threads(codec_context: Any) -> bool:
    """Whether the stream's decoder can use more than one core (frame, slice or its own
    threads: H.264, HEVC, MPEG-4, VP8/9, AV1, ...; not VP6 or FLV1). True when unknown."""
    try:
        return bool(int(codec_context.codec.capabilities) & _THREAD_CAPS)
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - defensive
        return True


def fresh_decoders_supported(codec_context: Any) -> bool:
    """Whether a stand-alone decoder can be given the demuxer's reorder delay
    (``CodecContext.reorder_depth``, PyAV >= 17).

    Without it (PyAV 15 / 16, e.g. the 15.x lmms-eval pins) the reader keeps the stream's own
    decoder, flushed between stretches: clean files decode exactly all the same, but on damaged
    data a frame's pixels may depend on what was decoded before it. Said once per process.
    """
    global _warned
    if hasattr(codec_context, "reorder_depth"):
        return True
    if not _warned:
        _warned = True
        logger.warning("PyAV %s predates 17: clean files decode exactly, but on damaged or "
                       "truncated files a frame's pixels may depend on the decode order and a "
                       "cut-off last frame can fail to decode; pip install 'av>=17' for exact "
                       "frames there", av.__version__)
    return False


def decoder_version() -> str:
    """PyAV's, libavcodec's and libswscale's versions (``"av 18.1.0, libavcodec 62.28.102,
    libswscale 9.5.100"``): decoded
    pixels may differ slightly between FFmpeg builds (colour conversion), so caches of pixels
    key on this."""
    libs = [f"{name} {'.'.join(str(v) for v in av.library_versions.get(name) or ()) or '?'}"
            for name in ("libavcodec", "libswscale")]  # decoding, colour conversion
    return ", ".join([f"av {av.__version__}", *libs])
