""":class:`VidselSampler`: a video sampler with the shape of lmms-eval PR #900.

The proposal (never merged; lmms-eval 0.7.3 samples uniformly only) makes frame sampling a
plug-in: a sampler gets the qwen-vl-utils-style element of one video and returns the frame
indices to decode. This one returns what a vidsel method selects.

Index space: vidsel counts frames in presentation order from the demuxed packets
(:class:`vidsel.VideoReader`); decoders that trust the container's frame count (decord) agree
on constant-frame-rate files and may differ by a few frames on broken or variable-rate ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from .._validate import check_positive_int
from ..embed import Embedder, shared_embedder
from ..errors import InvalidArgumentError
from ..eval import options_for, route_options
from ..io import VideoReader
from ..methods import get_method, run_method
from ..select import available_selectors, get_selector
from ..selection import DEFAULT_EMBED_SIZE, pool_size, select_in_window
from ._lmms_args import as_int

__all__ = ["VidselSampler"]

logger = logging.getLogger(__name__)

def _video_path(ele: Any) -> str:
    """The file of a qwen-vl-utils video element (``file://`` prefix removed)."""
    if not isinstance(ele, Mapping):
        raise InvalidArgumentError(
            f"ele={ele!r:.80} must be a qwen-vl-utils video element: a dict with 'video' (the "
            f"video's path) and 'nframes', got {type(ele).__name__}")
    if "video" not in ele:
        raise InvalidArgumentError(f"ele has no 'video' (the video's path); its keys: "
                                   f"{', '.join(map(str, ele)) or 'none'}")
    video = ele["video"]
    if isinstance(video, (list, tuple)):
        raise InvalidArgumentError(
            "ele['video'] is a list of frames: VidselSampler selects from a video file "
            "(a path), not from frames already extracted")
    if not isinstance(video, str) or not video:
        raise InvalidArgumentError(f"ele['video']={video!r} must be the video's path")
    if video.startswith("file://"):
        video = video[len("file://"):]
    if "://" in video:
        raise InvalidArgumentError(f"ele['video']={video!r}: VidselSampler reads local files "
                                   f"only (download the video first)")
    return video


def _ele_int(ele: Mapping[str, Any], key: str, default: int | None) -> int | None:
    """``ele[key]`` as an int (``default`` when absent or None)."""
    value = ele.get(key)
    return default if value is None else as_int(f"ele[{key!r}]", value)


class VidselSampler:
    """Frame indices from a vidsel method, for a sampler hook such as lmms-eval PR #900.

    Args:
        method: a frame method (:func:`vidsel.methods.available_methods`; not ``codec``,
            whose patches are not frames).
        embedder: an embedder spec (``"hf:/models/siglip"``) or
            :class:`~vidsel.embed.Embedder`, for methods that score frames against the
            question (``mdp3``, ``topk``...).
        device: the embedder's device when ``embedder`` is a spec (default: its default).
        **params: the method's options (``candidates``, ``candidate_mode``, ``embed_size``,
            ``cache_dir``: the frame-embedding cache) and its selector's parameters
            (``lam``, ``segment_size``...), shared out as ``vidsel eval --param`` does.
            Within a frame range (``start_frame`` / ``end_frame``) the candidates are drawn
            from the range (:func:`vidsel.selection.select_in_window`); selectors that
            score nothing pick among all its frames.

    Example:
        >>> sampler = VidselSampler("mdp3", embedder="hf:/models/siglip")    # doctest: +SKIP
        >>> sampler.sample({"video": "clip.mp4", "nframes": 8, "total_frames": 240,
        ...                 "video_fps": 24.0}, question="When does the door open?")
        ...                                                                  # doctest: +SKIP
        [3, 41, 77, ...]
    """

    def __init__(self, method: str = "mdp3", embedder: str | Embedder | None = None, *,
                 device: str | None = None, **params: Any) -> None:
        self.method = str(method)
        self.entry = get_method(self.method)
        if self.entry.kind != "frames":
            raise InvalidArgumentError(
                f"method={method!r} selects {self.entry.kind}, not frames; a sampler returns "
                f"frame indices: use a frame method ("
                f"{', '.join(available_selectors())})")
        if embedder is not None and not isinstance(embedder, (str, Embedder)):
            raise InvalidArgumentError(f"embedder={embedder!r} must be a spec string or a "
                                       f"vidsel.embed.Embedder")
        routed = route_options([self.method], params)[self.method]
        # options_for checks the options and that a scoring method has an embedder
        spec = embedder.name if isinstance(embedder, Embedder) else embedder
        self.options = options_for(self.method, routed,
                                   spec if self.entry.needs_embedder else None)
        if "embedder" in self.options and isinstance(embedder, Embedder):
            self.options["embedder"] = embedder  # a ready embedder is used as it is
        self.device = device
        self._embedder: Embedder | None = None

    def __repr__(self) -> str:
        return f"VidselSampler(method={self.method!r})"

    @property
    def embedder(self) -> Embedder | None:
        """The embedder (loaded on first use, once per process for a spec)."""
        spec = self.options.get("embedder")
        if spec is None:
            return None
        if self._embedder is None:
            self._embedder = spec if isinstance(spec, Embedder) else shared_embedder(
                str(spec), self.device)
        return self._embedder

    def sample(self, ele: Mapping[str, Any], **kwargs: Any) -> list[int]:
        """The frames to decode for ``ele``.

        Args:
            ele: a qwen-vl-utils-style video element: ``video`` (a local path or
                ``file://`` URL), ``nframes`` (frames wanted), optionally ``total_frames``
                and ``video_fps`` (as the caller's decoder counts them),
                ``start_frame`` / ``end_frame`` (inclusive range, default the whole video)
                and ``question``.
            **kwargs: ``question=`` (or ``query=``): the text the frames are chosen for
                (default ``ele["question"]``); needed by methods that score frames.

        Returns:
            ``nframes`` ascending, distinct absolute frame indices within
            ``[start_frame, end_frame]`` (fewer only when the range holds fewer frames, or
            with ``candidate_mode="keyframe"``, whose pool is one frame per keyframe).

        Raises:
            InvalidArgumentError: a malformed ``ele``, an empty range, a missing question.
            VidselError subclasses: the video is missing or unreadable (they name the file).
        """
        path = _video_path(ele)
        unknown = sorted(set(kwargs) - {"question", "query"})
        if unknown:
            raise InvalidArgumentError(f"VidselSampler.sample takes question= (or query=), "
                                       f"not {', '.join(unknown)}")
        question = kwargs.get("question", kwargs.get("query", ele.get("question")))
        if question is not None and not isinstance(question, str):
            raise InvalidArgumentError(f"question={question!r} must be a string")
        if question is None and (self.entry.needs_question or self.entry.needs_embedder):
            raise InvalidArgumentError(
                f"method {self.method!r} chooses frames for a question: pass "
                f"sample(ele, question=...) or put it in ele['question']")
        nframes = _ele_int(ele, "nframes", None)
        if nframes is None:
            raise InvalidArgumentError("ele['nframes'] (frames wanted) is missing")
        nframes = check_positive_int("ele['nframes']", nframes)
        with VideoReader(path, backend=str(self.options.get("backend", "pyav"))) as reader:
            n_video = int(reader.metadata.num_frames)
            total = _ele_int(ele, "total_frames", n_video) or n_video
            start = _ele_int(ele, "start_frame", 0) or 0
            end = _ele_int(ele, "end_frame", total - 1)
            end = total - 1 if end is None else end
            if end > n_video - 1:
                logger.warning("%s: end_frame %d is past the %d frames vidsel decodes; "
                               "clamped to %d", path, end, n_video, n_video - 1)
                end = n_video - 1
            if not 0 <= start <= end:
                raise InvalidArgumentError(
                    f"{path}: frame range [{start}, {end}] is empty or negative (the video "
                    f"has {n_video} frames)")
            if start == 0 and end == n_video - 1:
                indices = self._whole(reader, question, nframes)
            else:
                indices = self._range(reader, question, nframes, start, end)
        return [int(i) for i in indices]

    __call__ = sample

    # -- the two paths ------------------------------------------------------------------------
    def _whole(self, reader: VideoReader, question: str | None, k: int) -> np.ndarray:
        """The method itself on the whole video (what ``vidsel select`` returns)."""
        options = dict(self.options)
        if "embedder" in options:
            options["embedder"] = self.embedder
            pool = options.get("candidates")
            if pool is None:  # room to choose: max(128, 4 k) frames, as vidsel.qwen draws them
                options["candidates"] = pool_size(reader.metadata.num_frames, k)
            elif isinstance(pool, int) and not isinstance(pool, bool) and 0 < pool < k:
                options["candidates"] = k  # a pool of at least the frames wanted
        sel = run_method(self.method, reader, question=question, budget=k, **options)
        return np.asarray(sel.source_frames, dtype=np.int64)

    def _range(self, reader: VideoReader, question: str | None, k: int, start: int,
               end: int) -> np.ndarray:
        """The method's selector on candidates within ``[start, end]``
        (:func:`vidsel.selection.select_in_window`: :func:`vidsel.select_frames`' steps on the
        window, with its embedding cache when ``cache_dir`` is given)."""
        if self.method not in available_selectors():
            raise InvalidArgumentError(
                f"method {self.method!r} selects over whole videos only; a frame range "
                f"(start_frame / end_frame) needs a selector method "
                f"({', '.join(available_selectors())})")
        scoring = get_selector(self.method).needs != "none"
        mode: Literal["exact", "keyframe"] = (
            "keyframe" if self.options.get("candidate_mode") == "keyframe" else "exact")
        sel = select_in_window(
            reader, self.method, k, start_frame=start, end_frame=end, question=question,
            embedder=self.embedder, params=self.options.get("params"),
            # selectors that score nothing pick among every frame of the range
            candidates=self.options.get("candidates", pool_size(end - start + 1, k))
            if scoring else "all",
            candidate_mode=mode, embed_size=self.options.get("embed_size", DEFAULT_EMBED_SIZE),
            cache_dir=self.options.get("cache_dir"))
        return np.asarray(sel.indices, dtype=np.int64)
