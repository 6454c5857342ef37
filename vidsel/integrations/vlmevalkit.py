"""Frame selection inside VLMEvalKit model wrappers.

VLMEvalKit (open-compass; not on PyPI) extracts a video's frames uniformly (the dataset's
``nframe`` / ``fps``) and hands a model wrapper a *message*: a list of
``{"type": "text" | "image" | "video", "value": ...}`` items. Two recipes:

1. **Ovis wrappers** (``frame_selection=True``): the wrapper gives the Ovis model a
   ``frame_selector`` object (the MDP3 plugin, ``MDP3(conversations, frames)``) that keeps
   ``n_frames`` of the extracted frames. :class:`OvisFrameSelector` is a drop-in for that
   object, running any vidsel selector on any vidsel embedder::

       model = Ovis2(model_path="AIDC-AI/Ovis2-8B")
       model.frame_selector = OvisFrameSelector(32, embedder="hf:/models/siglip")

2. **Any wrapper, from the video itself**: :func:`select_from_message` takes a message with a
   ``video`` item (a dataset built with ``video_llm=True``), selects frames from the *whole
   video* with any vidsel method (not from a few uniform frames already extracted), saves them
   as image files and returns the message with the video replaced by those images and their
   true timestamps as text, plus the :class:`~vidsel.results.Selection`.

Neither imports VLMEvalKit.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._validate import check_choice, check_positive_int
from ..embed import Embedder, content_id, shared_embedder
from ..errors import InvalidArgumentError
from ..eval import default_cache_dir, options_for, route_options
from ..io import VideoReader
from ..methods import available_methods, get_method, run_method
from ..results import PatchConfig, Selection
from ..runs import output_failed
from ..selection import FrameSelector

__all__ = ["OvisFrameSelector", "default_frames_dir", "select_from_message"]

logger = logging.getLogger(__name__)

#: How :func:`select_from_message` tells the model when its frames were shown.
TimestampMode = Literal["text", "interleave", "none"]


class OvisFrameSelector(FrameSelector):
    """:class:`~vidsel.selection.FrameSelector` with the call shape VLMEvalKit's Ovis wrappers
    (and the Ovis remote code they call) use for the MDP3 plugin object:
    ``frame_selector(conversations=..., frames=..., clear_prompt=True)``.

    Set it as the wrapper's ``frame_selector`` (see the module docstring); the Ovis model's
    ``preprocess_inputs`` calls it with the conversation (one ``<image>`` per extracted frame)
    and the frames (PIL images), and gets back the conversation with the placeholders of the
    dropped frames removed and the kept frames.

    Args:
        k: frames to keep (VLMEvalKit's ``n_frames``; its Ovis configs use 32).
        prompt_cleaner: ``str -> str`` applied to the query when the caller passes
            ``clear_prompt=True`` (as the MDP3 plugin strips the benchmark's instructions);
            build one with :func:`vidsel.embed.make_prompt_cleaner` from the phrases of your
            benchmark's prompt. None: the query is embedded as it is.
        **kwargs: as :class:`~vidsel.selection.FrameSelector` (``method``, ``embedder``,
            ``params``, ``image_token``, ``embedder_options``, ``return_indices``).
    """

    def __init__(self, k: int = 16, *, prompt_cleaner: Callable[[str], str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(k, **kwargs)
        if prompt_cleaner is not None and not callable(prompt_cleaner):
            raise InvalidArgumentError(f"prompt_cleaner={prompt_cleaner!r} must be a function "
                                       f"str -> str (vidsel.embed.make_prompt_cleaner)")
        self.prompt_cleaner = prompt_cleaner
        self._clean = False

    def __repr__(self) -> str:
        return f"OvisFrameSelector(k={self.k}, method={self.method!r})"

    def __call__(self, conversations: Sequence[Mapping[str, str]], frames: Sequence[Any],
                 clear_prompt: bool = True, **kwargs: Any) -> tuple[Any, ...]:
        """``(conversations, frames)`` with ``k`` frames kept (see
        :meth:`FrameSelector.__call__`); ``clear_prompt`` applies ``prompt_cleaner`` to the
        query first (the MDP3 plugin's default is True).

        Raises:
            InvalidArgumentError: as :meth:`FrameSelector.__call__`, or an unknown keyword.
        """
        if kwargs:
            raise InvalidArgumentError(f"frame_selector() takes conversations, frames and "
                                       f"clear_prompt, not {', '.join(sorted(kwargs))}")
        self._clean = bool(clear_prompt) and self.prompt_cleaner is not None
        try:
            return super().__call__(conversations, frames)
        finally:
            self._clean = False

    def select(self, prompt: str, frames: Sequence[Any]) -> np.ndarray:
        if self._clean and self.prompt_cleaner is not None:
            prompt = self.prompt_cleaner(prompt)
        return super().select(prompt, frames)


def default_frames_dir() -> Path:
    """Where :func:`select_from_message` saves frames by default:
    ``$VIDSEL_CACHE_DIR/frames``, else ``$XDG_CACHE_HOME/vidsel/frames``
    (``~/.cache/vidsel/frames``)."""
    return default_cache_dir().parent / "frames"


def _check_message(message: Any) -> list[Mapping[str, Any]]:
    if isinstance(message, (str, bytes)) or not isinstance(message, Sequence):
        raise InvalidArgumentError(
            f"message={message!r:.80} must be a list of {{'type': 'text' | 'image' | 'video', "
            f"'value': ...}} items (VLMEvalKit's message format)")
    for j, item in enumerate(message):
        if not isinstance(item, Mapping) or "type" not in item or "value" not in item:
            raise InvalidArgumentError(f"message[{j}]={item!r:.80} must be a dict with 'type' "
                                       f"and 'value'")
    return list(message)


def _frames_folder(frames_dir: str | os.PathLike[str] | None) -> Path:
    """The (absolute) folder frames are saved under, created with its parents.

    Raises:
        InvalidArgumentError: ``frames_dir`` (or a folder above it) is a file.
        OutputError: the folder cannot be created (no permission, read-only file system).
    """
    if frames_dir is not None and not isinstance(frames_dir, (str, os.PathLike)):
        raise InvalidArgumentError(f"frames_dir={frames_dir!r} must be a folder path")
    folder = (Path(frames_dir).expanduser() if frames_dir is not None
              else default_frames_dir()).absolute()  # wrappers may open them from elsewhere
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidArgumentError(
            f"frames_dir={str(folder)!r} is a file (or lies under one), not a folder: pass a "
            f"folder for the selected frames") from None
    except OSError as e:
        raise output_failed(folder, e, "frames folder") from None
    return folder


def _save_frames(reader: VideoReader, path: str, indices: np.ndarray, folder: Path,
                 size: int | None) -> list[str]:
    """The selected frames as JPEG files under ``folder`` (one sub-folder per video content and
    size; a frame already saved is reused), in ``indices`` order.

    Raises:
        InvalidArgumentError: a file where the video's sub-folder goes.
        OutputError: a frame cannot be written (no permission, disk full); no temporary file
            is left behind.
    """
    sub = folder / (content_id(path)[:24] + ("" if size is None else f"-s{size}"))
    paths = [sub / f"frame-{int(i):07d}.jpg" for i in indices]
    todo = [j for j, p in enumerate(paths) if not p.is_file()]
    if not todo:
        return [str(p) for p in paths]
    from PIL import Image

    try:
        sub.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidArgumentError(f"{str(sub)!r} is a file, not the folder of {path}'s "
                                   f"frames: remove it or pass another frames_dir") from None
    except OSError as e:
        raise output_failed(sub, e, "frames folder") from None
    frames = reader.get_frames(np.asarray(indices)[todo], size=size)
    for j, frame in zip(todo, frames):
        tmp = sub / f".{paths[j].name}.{secrets.token_hex(4)}.tmp"
        data = io.BytesIO()
        Image.fromarray(frame).save(data, format="JPEG", quality=95)
        try:
            # Python's file writer raises on a short write (disk full, file size limit), where
            # Pillow's own file output can stop part-way without an error
            with open(tmp, "wb") as f:
                f.write(data.getbuffer())
            os.replace(tmp, paths[j])  # atomic: a reader never sees half a file
        except OSError as e:
            raise output_failed(paths[j], e, "frame") from None
        finally:
            with contextlib.suppress(OSError):  # gone once replaced; removed if the save failed
                tmp.unlink(missing_ok=True)
    return [str(p) for p in paths]


def _timestamps_text(times: np.ndarray, duration_s: float) -> str:
    shown = ", ".join(f"{t:.1f}s" for t in times)
    return (f"The video lasts {duration_s:.1f} seconds; these {len(times)} frames were taken at "
            f"{shown}.")


def select_from_message(message: Sequence[Mapping[str, Any]], *, method: str = "mdp3",
                        budget: int = 16, embedder: str | Embedder | None = None,
                        query: str | None = None,
                        prompt_cleaner: Callable[[str], str] | None = None,
                        geometry: PatchConfig | None = None,
                        frames_dir: str | os.PathLike[str] | None = None,
                        size: int | None = None, timestamps: TimestampMode = "text",
                        device: str | None = None, **params: Any,
                        ) -> tuple[list[dict[str, Any]], Selection]:
    """Replace the video of a VLMEvalKit message by the frames a vidsel method selects from it.

    Args:
        message: VLMEvalKit's message: ``{"type": "text" | "image" | "video", "value": ...}``
            items, with exactly one ``video`` item whose value is a local video path.
        method: a frame method (:func:`vidsel.methods.available_methods`, not ``codec``).
        budget: frames to select.
        embedder: spec or :class:`~vidsel.embed.Embedder` for methods that score frames
            against the query.
        query: the text frames are chosen for (default: the message's text items joined by
            newlines).
        prompt_cleaner: ``str -> str`` applied to the query (strip the benchmark's
            instructions; :func:`vidsel.embed.make_prompt_cleaner`).
        geometry: the model's patch geometry (recorded in the selection's token count).
        frames_dir: where frames are saved (default :func:`default_frames_dir`; created with
            its parents); a frame of a video is saved once and reused by every question and
            method.
        size: short side of the saved frames (None: the video's own size).
        timestamps: ``"text"``: one text item before the frames saying when each was taken
            (playback seconds) and how long the video is; ``"interleave"``: a ``"[12.3s]"``
            text item before each frame; ``"none"``.
        device: the embedder's device when ``embedder`` is a spec.
        **params: method options and selector parameters (``candidates=``, ``lam=``...).

    Returns:
        ``(new_message, selection)``: a new list (the input is not changed) where the video
        item became ``image`` items (frame file paths, in time order) and the timestamp text;
        every other item is kept in place. ``selection.indices`` are the frames' indices.

    Raises:
        InvalidArgumentError: a malformed message, no or several video items, a patch method,
            a scoring method without an embedder, a ``frames_dir`` that is a file.
        OutputError: (:mod:`vidsel.runs`; an ``OSError``) the frames cannot be written under
            ``frames_dir`` (no permission, disk full), naming the path.
        VidselError subclasses: the video is missing or unreadable (naming the file).
    """
    items = _check_message(message)
    check_choice("timestamps", timestamps, ("text", "interleave", "none"))
    budget = check_positive_int("budget", budget)
    if size is not None:
        size = check_positive_int("size", size)
    entry = get_method(method)
    if entry.kind != "frames":
        raise InvalidArgumentError(
            f"method={method!r} selects {entry.kind}, not frames; VLMEvalKit wrappers take "
            f"frame images: use one of "
            f"{', '.join(m for m in available_methods() if get_method(m).kind == 'frames')}")
    videos = [j for j, item in enumerate(items) if item["type"] == "video"]
    if len(videos) != 1:
        raise InvalidArgumentError(
            f"the message has {len(videos)} video items; select_from_message replaces exactly "
            f"one (call it once per video for several)")
    video = items[videos[0]]["value"]
    if not isinstance(video, (str, os.PathLike)):
        raise InvalidArgumentError(f"the video item's value {video!r:.80} must be a path")
    video = os.fspath(video)
    if video.startswith("file://"):  # a file URL, as VLMEvalKit's datasets may write it
        video = video[len("file://"):]
    if query is not None and not isinstance(query, str):
        raise InvalidArgumentError(f"query={query!r:.80} must be text")
    if prompt_cleaner is not None and not callable(prompt_cleaner):
        raise InvalidArgumentError(f"prompt_cleaner={prompt_cleaner!r} must be a function "
                                   f"str -> str (vidsel.embed.make_prompt_cleaner)")
    if query is None:
        query = "\n".join(str(it["value"]).strip() for it in items
                          if it["type"] == "text" and str(it["value"]).strip())
    if prompt_cleaner is not None:
        query = prompt_cleaner(query)
    routed = route_options([method], params)[method]
    spec = embedder.name if isinstance(embedder, Embedder) else embedder
    options: dict[str, Any] = options_for(method, routed, spec if entry.needs_embedder else None)
    if "embedder" in options:  # loaded once per process for a spec
        options["embedder"] = (embedder if isinstance(embedder, Embedder)
                               else shared_embedder(str(spec), device))
    folder = _frames_folder(frames_dir)  # before the selection: a bad folder fails fast
    with VideoReader(video) as reader:  # one reader: the file is opened (and warned about) once
        sel = run_method(method, reader, question=query, budget=budget, geometry=geometry,
                         **options)
        if not isinstance(sel, Selection):  # pragma: no cover - frame methods give Selections
            raise InvalidArgumentError(f"method {method!r} did not return a frame Selection")
        files = _save_frames(reader, video, np.asarray(sel.indices), folder, size)
        start, duration = reader.metadata.start_time_s, reader.metadata.duration_s
    times = np.asarray(sel.timestamps_s, dtype=np.float64) - start  # playback seconds
    frames: list[dict[str, Any]] = []
    if timestamps == "text":
        frames.append({"type": "text", "value": _timestamps_text(times, duration)})
    for file, t in zip(files, times):
        if timestamps == "interleave":
            frames.append({"type": "text", "value": f"[{t:.1f}s]"})
        frames.append({"type": "image", "value": file})
    out: list[dict[str, Any]] = []
    for j, item in enumerate(items):
        out.extend(frames if j == videos[0] else [dict(item)])
    logger.debug("%s: %d frames selected with %s for the message", video, len(files), method)
    return out, sel
