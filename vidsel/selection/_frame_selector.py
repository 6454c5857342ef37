"""Ovis-style ``frame_selector(conversations, frames)``: :class:`FrameSelector`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._validate import check_positive_int
from ..embed import load_embedder
from ..errors import InvalidArgumentError
from ..select import available_selectors, get_selector, run_selector
from ._select import options_dict

__all__ = ["FrameSelector"]


class FrameSelector:
    """Ovis-style ``frame_selector(conversations, frames) -> (conversations, frames)``.

    Drop-in for the MDP3 plugin: the human turns are joined into the prompt, every frame and
    the prompt are embedded, ``k`` frames are selected, and the ``<image>`` placeholders of the
    frames that were not selected are removed from the conversation.

    Args:
        k: frames to keep (the plugin ships 16); with ``len(frames) <= k`` nothing changes.
        method: selector name (default ``mdp3``).
        embedder: an Embedder or spec (see :func:`vidsel.select_frames`).
        params: selector parameters.
        image_token: the placeholder of one frame in the conversation.
        embedder_options: options for :func:`vidsel.embed.load_embedder`.
        return_indices: also return the selected indices (3-tuple).

    Example:
        >>> selector = FrameSelector(16, embedder="hf:/models/siglip")    # doctest: +SKIP
        >>> conversations, frames = selector(conversations, frames)       # doctest: +SKIP
    """

    def __init__(self, k: int = 16, *, method: str = "mdp3", embedder: Any = None,
                 params: Mapping[str, Any] | None = None, image_token: str = "<image>",
                 embedder_options: Mapping[str, Any] | None = None,
                 return_indices: bool = False) -> None:
        self.k = check_positive_int("k", k)
        if method not in available_selectors():
            raise InvalidArgumentError(
                f"method={method!r} is not a frame selector: FrameSelector chooses among given "
                f"frames with one of {', '.join(available_selectors())} (codec patches and "
                f"plugin methods select from a whole video: vidsel.run_method)")
        self.info = get_selector(method)
        self.method = method
        self.params = options_dict("params", params)
        self.info.check_params(self.params)
        if not isinstance(image_token, str) or not image_token:
            raise InvalidArgumentError(
                f"image_token={image_token!r} must be a non-empty string (e.g. '<image>')")
        self.image_token = image_token
        self.return_indices = return_indices
        self._embedder_spec = embedder
        self._embedder_options = options_dict("embedder_options", embedder_options)
        self._embedder: Any = None
        if self.info.needs != "none" and embedder is None:
            raise InvalidArgumentError(f"method={method!r} needs an embedder")

    def __repr__(self) -> str:
        return f"FrameSelector(k={self.k}, method={self.method!r})"

    @property
    def embedder(self) -> Any:
        """The embedder, loaded on first use."""
        if self._embedder is None and self._embedder_spec is not None:
            self._embedder = load_embedder(self._embedder_spec, **self._embedder_options)
        return self._embedder

    def select(self, prompt: str, frames: Sequence[Any]) -> np.ndarray:
        """Indices (ascending) of the frames to keep for ``prompt``."""
        n = len(frames)
        if n <= self.k:
            return np.arange(n, dtype=np.int64)
        if self.info.needs == "none":
            return run_selector(self.method, self.k, n=n, **self.params)
        emb = self.embedder
        # np.array copies: a PIL image's array view is read-only, and torch warns on those
        frame_embeds = emb.embed_images([np.array(f.convert("RGB")) if hasattr(f, "convert")
                                         else np.asarray(f) for f in frames])
        return run_selector(self.method, self.k, frame_embeds=frame_embeds,
                            text_embed=emb.embed_text(prompt), **self.params)

    def __call__(self, conversations: Sequence[Mapping[str, str]],
                 frames: Sequence[Any]) -> tuple[Any, ...]:
        """Select frames and drop the placeholders of the others.

        Placeholders are counted across all turns (frame ``g`` is the ``g``-th placeholder of
        the conversation). A dropped placeholder takes the one newline that directly follows
        it with it (the ``"<image>\\n"`` per-frame layout), so the kept ones stay one per
        line; every other character of the conversation is kept as it was.

        Raises:
            InvalidArgumentError: ``conversations`` is not a list of ``{"from", "value"}``
                turns with string values, ``frames`` is not a sequence, or the number of
                placeholders differs from ``len(frames)``.
        """
        tok = self.image_token
        _check_turns(conversations, frames)
        g = sum(c["value"].count(tok) for c in conversations)
        if g != len(frames):
            raise InvalidArgumentError(
                f"conversation has {g} {tok!r} placeholders but {len(frames)} frames")
        prompt = "\n".join(c["value"] for c in conversations if c.get("from") == "human")
        keep = self.select(prompt, frames)
        keep_set = set(int(i) for i in keep)
        out_convs = []
        g = 0  # global image counter across turns
        for conv in conversations:
            parts = conv["value"].split(tok)
            pieces: list[str] = [parts[0]]
            for clip in parts[1:]:  # clip = the text after placeholder g
                if g in keep_set:
                    pieces += [tok, clip]
                else:
                    pieces.append(clip[1:] if clip.startswith("\n") else clip)
                g += 1
            out_convs.append({**conv, "value": "".join(pieces)})
        kept = [frames[int(i)] for i in keep]
        if self.return_indices:
            return out_convs, kept, keep
        return out_convs, kept


def _check_turns(conversations: Any, frames: Any) -> None:
    """``conversations``: a sequence of mappings with a string ``"value"`` (and optionally a
    string ``"from"``); ``frames``: a sequence (list, tuple or array)."""
    if isinstance(conversations, (str, bytes)) or not isinstance(conversations, Sequence):
        raise InvalidArgumentError(
            f"conversations={conversations!r:.80} must be a list of turns "
            "({'from': 'human', 'value': '<image>...'})")
    for j, turn in enumerate(conversations):
        if not isinstance(turn, Mapping) or not isinstance(turn.get("value"), str) or not (
                isinstance(turn.get("from", ""), str)):
            raise InvalidArgumentError(
                f"conversations[{j}]={turn!r:.80} must be a turn with a string 'value' (and "
                "a string 'from')")
    if isinstance(frames, (str, bytes)) or not isinstance(frames, (Sequence, np.ndarray)):
        raise InvalidArgumentError(
            f"frames must be a sequence of images (list, tuple or array), got "
            f"{type(frames).__name__}")
