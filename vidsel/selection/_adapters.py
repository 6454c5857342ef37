"""A :class:`~vidsel.results.Selection` handed to other libraries.

- vLLM (offline ``LLM.generate``): :func:`to_vllm` gives ``(frames, metadata)`` for
  ``multi_modal_data={"video": [(frames, metadata)]}``, with the real indices, the source fps
  and ``do_sample_frames=False``, and an explicit policy for odd frame counts (``even=``).
  :func:`vllm_metadata` builds that metadata dict (also used by the ``vllm`` answerer and
  vidsel's vLLM video loader, :mod:`vidsel.integrations.vllm`).
- transformers video processors, one way for all of them: :func:`to_transformers` gives the
  processor's keyword arguments ``videos``, ``video_metadata``, ``do_sample_frames=False``,
  padded to the processor's own temporal patch size.
- transformers video processors (Qwen2-VL, Qwen2.5-VL, Qwen3-VL, LLaVA-OneVision):
  :func:`to_qwen` decodes the selected frames (padded to the temporal patch size) with a
  ``transformers.video_utils.VideoMetadata`` holding the real indices and source fps; pass
  ``videos=[frames], video_metadata=[metadata], do_sample_frames=False``.
  :func:`qwen_video_metadata` gives the metadata as a dict. The processors themselves take no
  ``sample_indices_fn`` (transformers 5: a ``TypeError`` from a video processor, ignored with a
  warning by a full processor).
- transformers' ``sample_indices_fn`` hook of ``transformers.video_utils.load_video``:
  :func:`sample_indices_fn`; when that decoder counts frames differently the selection is
  mapped through its timestamps (:func:`indices_for`), never silently merging frames.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from .._validate import check_choice, check_positive_float, check_positive_int
from ..errors import InvalidArgumentError
from ..optional import require
from ..results import Selection

__all__ = [
    "DEFAULT_EVEN",
    "EVEN_POLICIES",
    "VIDEO_BACKEND",
    "EvenPolicy",
    "even_positions",
    "indices_for",
    "padded_indices",
    "qwen_video_metadata",
    "sample_indices_fn",
    "to_qwen",
    "to_transformers",
    "to_vllm",
    "vllm_metadata",
]

logger = logging.getLogger(__name__)

#: ``video_backend`` of every metadata dict vidsel builds, and the name of its vLLM video loader.
VIDEO_BACKEND = "vidsel"

#: What to do with an odd frame count. Qwen2-VL, Qwen2.5-VL and Qwen3-VL merge frames in
#: temporal pairs, and vLLM's maintainers prefer an error to silent padding: ``"error"`` raises,
#: ``"pad"`` repeats the last frame, ``"drop"`` leaves the last frame out, None sets no
#: constraint (models that merge no frames, e.g. LLaVA-OneVision).
EvenPolicy = Literal["error", "pad", "drop"]
#: The allowed values of ``even=``.
EVEN_POLICIES: tuple[EvenPolicy | None, ...] = ("error", "pad", "drop", None)
#: The default of ``even=`` in :func:`to_vllm` and vidsel's vLLM video loader.
DEFAULT_EVEN: EvenPolicy | None = "error"


def padded_indices(sel: Selection, multiple: int = 2) -> np.ndarray:
    """The selection's indices with the last one repeated until the count is a multiple of
    ``multiple`` (Qwen-VL merges frames in temporal pairs and pads the same way itself)."""
    multiple = check_positive_int("multiple", multiple)
    if not len(sel):
        return sel.indices.copy()
    pad = -len(sel) % multiple
    return np.concatenate([sel.indices, np.repeat(sel.indices[-1:], pad)])


def qwen_video_metadata(sel: Selection, *, pad_to_multiple: int = 1) -> dict[str, Any]:
    """Qwen-VL-style video metadata: real frame indices and the source fps.

    The keys are those of ``transformers.video_utils.VideoMetadata`` (``total_num_frames``,
    ``fps``, ``duration``, ``frames_indices``, ``video_backend``): Qwen3-VL's processor turns
    ``frames_indices / fps`` into the ``<t seconds>`` markers, so passing this (with
    ``do_sample_frames=False``) gives the model real timestamps instead of fake ones.

    Args:
        sel: the selection.
        pad_to_multiple: repeat the last frame until the count divides by this (2 for
            Qwen-VL's temporal patches when you also pad the frames, see :func:`to_qwen`).
    """
    idx = padded_indices(sel, pad_to_multiple)
    total = sel.num_frames
    return {
        "total_num_frames": int(total) if total is not None else int(idx[-1]) + 1,
        "fps": sel.source_fps,
        "duration": (float(total) / sel.source_fps) if total else None,
        "frames_indices": [int(i) for i in idx.tolist()],
        "video_backend": VIDEO_BACKEND,
    }


def to_qwen(sel: Selection, *, size: int | tuple[int, int] | None = None,
            temporal_patch_size: int = 2) -> tuple[np.ndarray, Any]:
    """Frames and metadata for a transformers video processor (Qwen-VL, LLaVA-OneVision).

    Use as ``processor(text=..., videos=[frames], video_metadata=[metadata],
    do_sample_frames=False)``: ``do_sample_frames=False`` keeps every selected frame (Qwen3-VL's
    processor samples by default), and the metadata gives Qwen3-VL its ``<t seconds>`` markers
    (``frames_indices / fps``, one per temporal pair: the mean of the pair's two times) and
    Qwen2.5-VL its ``second_per_grid_ts`` (one spacing for the whole video:
    ``temporal_patch_size * total_num_frames / (len(frames) * fps)``, exact only for a uniform
    selection).
    LLaVA-OneVision merges no frames: use ``temporal_patch_size=1``.

    Args:
        sel: the selection (decoded through its ``path``).
        size: None (native), short side, or (height, width) of the decoded frames.
        temporal_patch_size: frames are padded to a multiple of this.

    Returns:
        ``(frames, metadata)``: frames (k', H, W, 3) uint8 with ``k'`` padded to a multiple of
        ``temporal_patch_size`` by repeating the last frame, and a
        ``transformers.video_utils.VideoMetadata`` with the matching real indices and source fps.

    Raises:
        MissingDependencyError: transformers is not installed.
    """
    VideoMetadata = require("transformers.video_utils", "to_qwen", extra="embed").VideoMetadata
    tps = check_positive_int("temporal_patch_size", temporal_patch_size)
    frames = sel.load_frames(size)
    pad = -len(frames) % tps
    if pad and len(frames):
        frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
    md = qwen_video_metadata(sel, pad_to_multiple=tps)
    h, w = (int(frames.shape[1]), int(frames.shape[2])) if len(frames) else (None, None)
    return frames, VideoMetadata(width=w, height=h, **md)


def indices_for(sel: Selection, total_num_frames: int | None = None,
                fps: float | None = None) -> np.ndarray:
    """The selection's frame indices in the frame numbering of another decoder.

    When that decoder counts the same number of frames as vidsel did (or either count is
    unknown: None, or 0 as PyAV reports for containers without a frame count such as MKV,
    WebM and MPEG-TS), these are ``sel.indices``. Otherwise each selected frame is mapped through its
    timestamp: ``round((t - t0) * fps)`` clipped to ``[0, total_num_frames - 1]``, with ``t0``
    the stream's start time (so the first frame of the stream maps to 0) and ``fps`` the
    decoder's rate (default: ``sel.source_fps``).

    Args:
        sel: the selection.
        total_num_frames: frames the other decoder reports (None or 0: unknown).
        fps: its frame rate.

    Returns:
        (k,) int64 ascending, unique indices.

    Raises:
        InvalidArgumentError: the mapping would merge selected frames (the other decoder has
            fewer frames than the selection needs, e.g. a lower frame rate): the message names
            the video and the colliding frames instead of silently returning fewer frames.
    """
    indices = sel.indices.copy()
    own_total = sel.num_frames
    if not total_num_frames or own_total is None or \
            int(total_num_frames) == int(own_total) or not len(sel):
        return indices
    total = check_positive_int("total_num_frames", int(total_num_frames))
    rate = float(fps) if fps else sel.source_fps
    if not (math.isfinite(rate) and rate > 0):
        raise InvalidArgumentError(f"fps={fps!r} must be a positive number")
    # stream start time: the first selected frame sits at indices[0] / source_fps
    t0 = float(sel.timestamps_s[0]) - float(indices[0]) / sel.source_fps
    mapped = np.clip(np.round((sel.timestamps_s - t0) * rate), 0, total - 1).astype(np.int64)
    dup = np.flatnonzero(np.diff(mapped) <= 0)
    if dup.size:
        j = int(dup[0])
        path = sel.path or "<no video path>"
        raise InvalidArgumentError(
            f"{path}: the decoder reports {total} frames at {rate:g} fps where vidsel "
            f"counted {own_total}; mapping the {len(sel)} selected frames by timestamp "
            f"merges frames {int(indices[j])} and {int(indices[j + 1])} (both -> "
            f"{int(mapped[j + 1])}), so {len(sel) - np.unique(mapped).size} selected "
            f"frame(s) would be lost; decode with vidsel (load_frames / to_qwen) or select "
            f"fewer frames")
    logger.warning("%s: decoder reports %s frames, vidsel counted %s: mapped the selection "
                   "by timestamp", sel.path, total, own_total)
    return mapped


def sample_indices_fn(sel: Selection) -> Callable[..., np.ndarray]:
    """A transformers ``sample_indices_fn(metadata, **kwargs) -> indices`` returning this
    selection, for ``transformers.video_utils.load_video(path, backend="pyav",
    sample_indices_fn=sample_indices_fn(sel))``; hand the ``(frames, metadata)`` it returns to a
    processor as ``videos=[frames], video_metadata=[metadata], do_sample_frames=False``. (Video
    processors take no ``sample_indices_fn`` keyword in transformers 5.)

    Which frame number means which frame depends on the decoder ``load_video`` uses
    (``metadata.video_backend``):

    - ``"pyav"``: the i-th frame of a sequential decode, as in vidsel: the selection's indices,
      whatever frame count the container declares (an AVI may declare 98 frames where 96
      decode);
    - ``"opencv"``: the same numbering, but it stops at the declared count: an index at or past
      a declared count it cannot reach raises :class:`~vidsel.errors.InvalidArgumentError`;
    - ``"decord"``: its numbering can differ from a sequential decode (hidden VP9 frames,
      edit lists, MPEG-TS starts), so a frame count other than vidsel's raises instead of
      handing over frames that may be others; with the same count the indices go as they are;
    - other decoders: a different frame count maps the selection through its timestamps
      (:func:`indices_for`, e.g. a decoder at another frame rate) with a warning, and a mapping
      that would merge selected frames raises.

    A count of 0 or None (unknown: PyAV on MKV, WebM, MPEG-TS) keeps the indices.
    """

    def fn(metadata: Any = None, **kwargs: Any) -> np.ndarray:
        backend = getattr(metadata, "video_backend", None)
        total = getattr(metadata, "total_num_frames", None) if metadata is not None else None
        fps = getattr(metadata, "fps", None) if metadata is not None else None
        own = sel.num_frames
        known = bool(total) and own is not None and len(sel) > 0
        if backend == "pyav":  # vidsel's own numbering
            return sel.indices.copy()
        if backend == "opencv":
            if known and int(sel.indices[-1]) >= int(total):  # type: ignore[arg-type]
                raise InvalidArgumentError(
                    f"{sel.path}: opencv stops at the {total} frames the container declares, "
                    f"and the selection needs frame {int(sel.indices[-1])} (vidsel decodes "
                    f"{own}); use load_video(..., backend='pyav') or "
                    f"vidsel.selection.to_transformers")
            return sel.indices.copy()
        if backend == "decord" and known and int(total) != int(own):  # type: ignore[arg-type]
            raise InvalidArgumentError(
                f"{sel.path}: decord counts {total} frames where a sequential decode gives "
                f"{own}, so its frame numbers may name other frames; use "
                f"load_video(..., backend='pyav') or vidsel.selection.to_transformers")
        return indices_for(sel, total, fps)

    return fn


def _check_selection(sel: Any, fn: str) -> None:
    """Refuse anything but a frame :class:`Selection` (a codec PatchSelection holds patches)."""
    if not isinstance(sel, Selection):
        raise InvalidArgumentError(
            f"{fn} takes a vidsel.results.Selection (frames), got {type(sel).__name__}; codec "
            f"patches (a PatchSelection) reach a model as images: sel.canvases()")


def even_positions(count: int, even: EvenPolicy | None, *, what: str = "selection") -> np.ndarray:
    """Positions into ``count`` frames that obey the even-frame policy ``even``.

    - ``"error"``: an odd ``count`` raises (the message names the other choices);
    - ``"pad"``: the last frame repeated once (``count=3 -> [0, 1, 2, 2]``);
    - ``"drop"``: the last frame left out (``count=3 -> [0, 1]``; one frame cannot be dropped);
    - None: no constraint (``arange(count)``).

    A padded or dropped frame is logged (INFO) with ``what``; the metadata built from these
    positions shows it too (a repeated last index, or one index fewer).

    Args:
        count: frames selected (>= 0).
        even: the policy, one of :data:`EVEN_POLICIES`.
        what: names the frames in messages (a video path, "vLLM request").

    Returns:
        (count',) int64 positions, ascending (the last one repeated for ``"pad"``).

    Raises:
        InvalidArgumentError: an unknown policy; an odd count under ``"error"``; one frame
            under ``"drop"``.
    """
    check_choice("even", even, EVEN_POLICIES)
    count = check_positive_int("count", count, allow_zero=True)
    pos = np.arange(count, dtype=np.int64)
    if even is None or count % 2 == 0:
        return pos
    if even == "error":
        raise InvalidArgumentError(
            f"{what}: {count} frames, an odd count, with even='error' (Qwen-VL models merge "
            f"frames in temporal pairs); pass even='pad' (repeat the last frame), even='drop' "
            f"(leave it out), or even=None (no constraint: models that merge no frames, "
            f"e.g. LLaVA-OneVision), or select an even number of frames")
    if even == "pad":
        logger.info("%s: %d frames, odd: repeated the last frame (even='pad')", what, count)
        return np.concatenate([pos, pos[-1:]])
    if count == 1:
        raise InvalidArgumentError(
            f"{what}: 1 frame cannot be made even with even='drop'; use even='pad' or None")
    logger.info("%s: %d frames, odd: left the last frame out (even='drop')", what, count)
    return pos[:-1]


def _integral(name: str, value: Any) -> int:
    """``value`` as an int if it is an integer or an integral real number (``24``, ``24.0``,
    ``np.int64(24)``); bools, strings, None and fractions are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise InvalidArgumentError(f"{name}={value!r} must be an integer")
    if isinstance(value, (float, np.floating)) and not (math.isfinite(value)
                                                        and float(value).is_integer()):
        raise InvalidArgumentError(f"{name}={value!r} must be an integer (got a fraction)")
    return int(value)


def _real(name: str, value: Any) -> float:
    """``value`` as a finite float; bools, strings, None, nan and inf are refused."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, (bool, np.bool_, str, bytes)) or not math.isfinite(number):
        raise InvalidArgumentError(f"{name}={value!r} must be a finite number")
    return number


def _frame_indices(frames_indices: Any, total: int) -> list[int]:
    """``frames_indices`` as a list of ints, each in ``[0, total)`` (``>= 0`` when ``total``
    is 0, unknown)."""
    try:
        arr = np.asarray(frames_indices)
    except (TypeError, ValueError):  # ragged nesting
        arr = np.asarray(None)
    if arr.ndim != 1:
        raise InvalidArgumentError(f"frames_indices={frames_indices!r} must be a sequence "
                                   f"(T,) of frame indices")
    indices = [_integral(f"frames_indices[{i}]", v) for i, v in enumerate(arr.tolist())]
    bad = [i for i in indices if i < 0 or (total > 0 and i >= total)]
    if bad:
        bound = f"[0, {total})" if total > 0 else ">= 0"
        raise InvalidArgumentError(f"frames_indices: {bad[0]} is not a frame of the video "
                                   f"(total_num_frames={total}: indices must be {bound})")
    return indices


def vllm_metadata(frames_indices: Any, *, fps: float, total_num_frames: int,
                  duration: float | None = None) -> dict[str, Any]:
    """vLLM's video metadata dict for frames already chosen: the keys of vLLM's
    ``VideoLoader.create_hf_metadata`` with the true source indices and
    ``do_sample_frames=False`` (vLLM then keeps every frame; its Qwen3-VL processor turns
    ``frames_indices / fps`` into the ``<t seconds>`` markers).

    Args:
        frames_indices: (T,) source frame index of each frame handed over (a padded frame
            repeats its index), integers in ``[0, total_num_frames)`` (``>= 0`` when
            ``total_num_frames`` is 0, unknown).
        fps: the source video's frame rate, a finite number > 0.
        total_num_frames: frames in the source video, an integer >= 0 (0: unknown).
        duration: the video's duration in seconds, finite and >= 0 (default
            ``total_num_frames / fps``).

    Returns:
        ``{"total_num_frames": int, "fps": float, "duration": float, "video_backend":
        "vidsel", "frames_indices": list[int], "do_sample_frames": False}``.

    Raises:
        InvalidArgumentError: any argument of the wrong type or out of range (a fractional
            count or index, an index past the video, a non-finite fps or duration...).
    """
    rate = _real("fps", fps)
    if rate <= 0:
        raise InvalidArgumentError(f"fps={fps!r} must be > 0")
    total = _integral("total_num_frames", total_num_frames)
    if total < 0:
        raise InvalidArgumentError(f"total_num_frames={total_num_frames!r} must be >= 0")
    if duration is not None:
        _real("duration", duration)
        duration = check_positive_float("duration", duration, allow_zero=True)
    return {
        "total_num_frames": total,
        "fps": rate,
        "duration": duration if duration is not None else total / rate,
        "video_backend": VIDEO_BACKEND,
        "frames_indices": _frame_indices(frames_indices, total),
        "do_sample_frames": False,
    }


def to_vllm(sel: Selection, *, size: int | tuple[int, int] | None = None,
            even: EvenPolicy | None = DEFAULT_EVEN) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames and metadata for vLLM's offline engine:
    ``llm.generate({"prompt": ..., "multi_modal_data": {"video": [to_vllm(sel)]}})``.

    The metadata (:func:`vllm_metadata`) holds the selection's true frame indices and the
    source fps with ``do_sample_frames=False``, so vLLM keeps every selected frame and Qwen3-VL's
    ``<t seconds>`` markers are the frames' true times. The selection may come from any method,
    question-aware ones included (``mdp3``, ``topk``...): it is made on the client.

    Args:
        sel: the selection (decoded through its ``path``).
        size: None (native), short side, or (height, width) of the decoded frames.
        even: odd frame counts: ``"error"`` (default: raise, as vLLM's maintainers prefer to
            padding), ``"pad"`` (repeat the last frame; ``frames_indices`` repeats its index),
            ``"drop"`` (leave the last frame out), None (no constraint, e.g. LLaVA-OneVision).
            A padded or dropped frame is logged at INFO.

    Returns:
        ``(frames, metadata)``: frames (T, H, W, 3) uint8 (``T = len(sel)``, +1 or -1 under
        ``"pad"`` / ``"drop"`` when odd) and the metadata dict (``total_num_frames``: the
        video's frames, ``sel.num_frames``, or the last index + 1 when unknown; ``duration``:
        ``total_num_frames / fps``).

    Raises:
        InvalidArgumentError: an empty selection, an odd count under ``even="error"``, a bad
            ``even`` value, no video path.

    Example:
        >>> sel = run_method("mdp3", "clip.mp4", question="Who opens the door?", budget=8,
        ...                  embedder="hf:/models/siglip")                   # doctest: +SKIP
        >>> frames, meta = to_vllm(sel, size=448)                          # doctest: +SKIP
        >>> meta["frames_indices"] == sel.indices.tolist()                 # doctest: +SKIP
        True
    """
    _check_selection(sel, "to_vllm")
    check_choice("even", even, EVEN_POLICIES)
    if not len(sel):
        raise InvalidArgumentError(f"{sel.path or '<no video path>'}: the selection is empty; "
                                   f"vLLM needs at least one frame")
    pos = even_positions(len(sel), even, what=f"{sel.path or '<no video path>'}: selection")
    frames = sel.load_frames(size)[pos]  # (T, H, W, 3) uint8
    total = sel.num_frames if sel.num_frames is not None else int(sel.indices[-1]) + 1
    meta = vllm_metadata(sel.indices[pos], fps=sel.source_fps, total_num_frames=total)
    return np.ascontiguousarray(frames), meta


def to_transformers(sel: Selection, processor: Any = None, *,
                    size: int | tuple[int, int] | None = None) -> dict[str, Any]:
    """A selection as the keyword arguments of any transformers video processor:
    ``processor(text=..., **to_transformers(sel, processor), return_tensors="pt")``.

    The frames are decoded by vidsel (exact indices) and padded to the processor's temporal
    patch size (``processor.video_processor.temporal_patch_size``: 2 for Qwen2-VL,
    Qwen2.5-VL and Qwen3-VL; 1 when the processor has none, e.g. LLaVA-OneVision, or when
    ``processor`` is None) by repeating the last frame; the metadata carries the true indices
    and the source fps; ``do_sample_frames=False`` stops the processor from sampling again.
    What each model then gets of time: Qwen3-VL a ``<t seconds>`` marker per temporal pair
    (the mean of the pair's true times), Qwen2.5-VL one ``second_per_grid_ts`` spacing for the
    whole video (exact only for a uniform selection), Qwen2-VL and LLaVA-OneVision no time.

    Args:
        sel: the selection (decoded through its ``path``).
        processor: a transformers processor (or its video processor); None: no padding.
        size: None (native), short side, or (height, width) of the decoded frames.

    Returns:
        ``{"videos": [frames], "video_metadata": [metadata], "do_sample_frames": False}``
        with frames (T, H, W, 3) uint8 and a ``transformers.video_utils.VideoMetadata``
        (see :func:`to_qwen`).

    Raises:
        MissingDependencyError: transformers is not installed.
        InvalidArgumentError: the processor's ``temporal_patch_size`` is not a positive
            integer.
    """
    _check_selection(sel, "to_transformers")
    if processor is not None and not callable(processor):
        raise InvalidArgumentError(
            f"processor={processor!r} must be a transformers processor or video processor "
            f"(AutoProcessor.from_pretrained(...)), or None for no temporal padding")
    video_processor = getattr(processor, "video_processor", processor)
    tps = getattr(video_processor, "temporal_patch_size", None) if processor is not None \
        else None
    if tps is not None:
        try:
            tps = check_positive_int("temporal_patch_size",
                                     _integral("temporal_patch_size", tps))
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(
                f"{type(video_processor).__name__}.{exc}: the processor's temporal patch "
                f"size must be a positive integer (frames merged in time)") from None
    frames, metadata = to_qwen(sel, size=size, temporal_patch_size=tps or 1)
    return {"videos": [frames], "video_metadata": [metadata], "do_sample_frames": False}
