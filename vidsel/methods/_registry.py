"""The one video-level method registry: a video, an optional question and a budget in, a
:class:`~vidsel.results.VisualSelection` out.

Every way vidsel has of choosing what a model sees is an entry here with one call shape::

    run_method(name, path, question=None, budget=8, geometry=None, **options)

``budget`` is in frame-equivalents: a frame method returns ``budget`` frames, a patch method
(``codec``) spends ``budget * geometry.tokens_per_frame`` tokens. ``geometry`` (a
:class:`~vidsel.results.PatchConfig`) is the model's patch geometry, so every result knows the
visual tokens it costs (``result.num_tokens``) and methods compare at equal tokens. The CLI,
batch runs and ``ovis_model`` tasks call this registry only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._validate import check_choice, check_positive_int, keyword_params
from ..errors import InvalidArgumentError
from ..io import VideoReader
from ..registry import Registry
from ..results import PatchConfig, SelectionKind, VisualSelection

__all__ = [
    "DEFAULT_GEOMETRY",
    "METHODS",
    "Method",
    "MethodFn",
    "available_methods",
    "get_method",
    "register_method",
    "run_method",
]

logger = logging.getLogger(__name__)

#: The patch geometry used when none is given: LLaVA-OneVision-2's 14 px patches, 2 x 2 merge,
#: 392 x 392 frames (196 tokens per frame).
DEFAULT_GEOMETRY = PatchConfig.preset("llava-ov-2")

#: Parameters of the call shape itself (never passed on as options).
_CALL_PARAMS = frozenset({"question", "budget", "geometry"})


#: ``fn(path, *, question, budget, geometry, **options) -> VisualSelection``: ``path`` is a video
#: file (or an open :class:`vidsel.VideoReader`), ``question`` a string or None, ``budget`` the
#: frame-equivalents (>= 1), ``geometry`` the model's :class:`~vidsel.results.PatchConfig`;
#: further keyword-only parameters are the method's options.
MethodFn = Callable[..., VisualSelection]


@dataclass(frozen=True)
class Method:
    """One registered method.

    Attributes:
        name: registry name.
        fn: the implementation (see :class:`MethodFn`).
        kind: ``"frames"`` (returns a Selection) or ``"patches"`` (a PatchSelection).
        needs_question: the method uses the question (an error without one).
        needs_embedder: the method scores relevance with a text/image embedder (the
            ``embedder=`` option is then required).
        options: option names ``fn`` accepts besides the call shape (None: anything).
        description: one line for ``--help`` and docs.
        check: optional ``check(options)`` raising InvalidArgumentError for option values the
            method would refuse (run by :meth:`check_options`, before any video is read).
        takes_reader: ``fn`` accepts an open :class:`vidsel.VideoReader` as ``path`` (and reuses
            it); otherwise a reader passed to :func:`run_method` reaches ``fn`` as its path.
    """

    name: str
    fn: MethodFn
    kind: SelectionKind
    needs_question: bool = False
    needs_embedder: bool = False
    options: frozenset[str] | None = None
    description: str = ""
    check: Callable[[Mapping[str, Any]], None] | None = None
    takes_reader: bool = False

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, ("frames", "patches"))
        if not callable(self.fn):
            raise InvalidArgumentError(f"method {self.name!r}: fn={self.fn!r} is not callable")

    def __call__(self, path: str | os.PathLike[str] | VideoReader, *,
                 question: str | None = None, budget: int = 8,
                 geometry: PatchConfig | None = None, **options: Any) -> VisualSelection:
        """Run the method (arguments checked first; see :func:`run_method`)."""
        budget = check_positive_int("budget", budget)
        geometry = DEFAULT_GEOMETRY if geometry is None else geometry
        if not isinstance(geometry, PatchConfig):
            raise InvalidArgumentError(
                f"geometry={geometry!r} must be a vidsel.results.PatchConfig "
                f"(e.g. PatchConfig.make(patch_size=14, merge=2, frame_size=392))")
        if question is not None and not isinstance(question, str):
            raise InvalidArgumentError(f"question={question!r} must be a string or None")
        if self.needs_question and not question:
            raise InvalidArgumentError(f"method {self.name!r} needs a question")
        # None means "not given": the method's own default applies
        options = {k: v for k, v in options.items() if v is not None}
        if self.needs_embedder and "embedder" not in options:
            raise InvalidArgumentError(
                f"method {self.name!r} scores frames against the question and needs an "
                f"embedder (e.g. embedder='hf:/path/to/siglip' or 'open_clip:ViT-B-32@/ckpt'); "
                f"methods that need none: "
                f"{', '.join(n for n, m in METHODS.items() if not m.needs_embedder)}")
        self.check_options(options)
        if isinstance(path, VideoReader):
            target: str | VideoReader = path if self.takes_reader else path.path
        elif isinstance(path, (str, os.PathLike)):
            target = os.fspath(path)
        else:
            raise InvalidArgumentError(
                f"path={path!r} must be a video file path or an open vidsel.VideoReader")
        result = self.fn(target, question=question, budget=budget, geometry=geometry,
                         **options)
        if not isinstance(result, VisualSelection) or result.kind != self.kind:
            raise InvalidArgumentError(
                f"method {self.name!r} is registered as kind={self.kind!r} but returned "
                f"{type(result).__name__} (kind={getattr(result, 'kind', None)!r}); frame "
                f"methods return a vidsel.results.Selection, patch methods a PatchSelection")
        return result

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Refuse option names the method does not take, then run its own ``check``.

        Cheap: nothing is read; the CLI calls it before touching any video.

        Raises:
            InvalidArgumentError: an unknown option name, or a value the method refuses.
        """
        if self.options is not None:
            unknown = sorted(set(options) - self.options)
            if unknown:
                raise InvalidArgumentError(
                    f"method {self.name!r} does not take option(s) {', '.join(unknown)}; it "
                    f"takes {', '.join(sorted(self.options)) or 'none'}")
        if self.check is not None:
            self.check(options)


#: All registered methods by name.
METHODS: Registry[Method] = Registry("method")


def _option_names(fn: Callable[..., Any]) -> frozenset[str] | None:
    """Keyword options ``fn`` takes beyond the call shape (None if it takes ``**kwargs``)."""
    names = keyword_params(fn, skip=1)
    return None if names is None else names - _CALL_PARAMS


def register_method(name: str, fn: MethodFn | None = None, *, kind: SelectionKind = "frames",
                    needs_question: bool = False, needs_embedder: bool = False,
                    options: frozenset[str] | set[str] | None = None, description: str = "",
                    check: Callable[[Mapping[str, Any]], None] | None = None,
                    takes_reader: bool = False, overwrite: bool = False) -> Any:
    """Register a video-level method (directly, or as a decorator when ``fn`` is omitted).

    Args:
        name: the name users pass (``run_method(name, ...)``, ``vidsel select --method``).
        fn: ``fn(path, *, question, budget, geometry, **options) -> VisualSelection``.
        kind: ``"frames"`` or ``"patches"``.
        needs_question, needs_embedder: see :class:`Method`.
        options: accepted option names (default: read from ``fn``'s signature).
        description: one line for help texts.
        check: ``check(options)`` validating option values up front (see :class:`Method`).
        takes_reader: ``fn`` reuses an open :class:`vidsel.VideoReader` passed as ``path``
            (default: it always gets a file path).
        overwrite: replace an existing entry of that name.

    Returns:
        The :class:`Method` (or a decorator returning ``fn`` unchanged).

    Example:
        >>> import numpy as np
        >>> from vidsel.methods import register_method, run_method
        >>> from vidsel.results import Selection
        >>> @register_method("first-frames", description="the first `budget` frames")
        ... def first_frames(path, *, question, budget, geometry):
        ...     with vidsel.VideoReader(path) as r:
        ...         idx = np.arange(min(budget, len(r)))
        ...         return Selection(indices=idx, timestamps_s=r.metadata.timestamps_s[idx],
        ...                          scores=None, method="first-frames",
        ...                          source_fps=r.metadata.fps, path=r.path,
        ...                          num_frames=len(r),
        ...                          tokens_per_frame=geometry.tokens_per_frame)
        >>> run_method("first-frames", "clip.mp4", budget=4).num_tokens  # doctest: +SKIP
        784
    """

    def add(f: MethodFn) -> Method:
        method = Method(name=name, fn=f, kind=kind, needs_question=needs_question,
                        needs_embedder=needs_embedder,
                        options=frozenset(options) if options is not None else _option_names(f),
                        description=description, check=check, takes_reader=takes_reader)
        METHODS.register(name, method, overwrite=overwrite)
        return method

    if fn is None:
        def deco(f: MethodFn) -> MethodFn:
            add(f)
            return f

        return deco
    return add(fn)


def get_method(name: str) -> Method:
    """The :class:`Method` registered as ``name`` (the error lists the choices)."""
    return METHODS.get(name)


def available_methods() -> tuple[str, ...]:
    """Registered method names, sorted."""
    return METHODS.names()


def run_method(name: str, path: str | os.PathLike[str] | VideoReader, *,
               question: str | None = None, budget: int = 8,
               geometry: PatchConfig | None = None, **options: Any) -> VisualSelection:
    """Choose what a model sees of ``path`` with the method ``name``.

    Args:
        name: a registered method (:func:`available_methods`): ``uniform``, ``topk``, ``dpp``,
            ``mdp3``, ``mdp3-reference``, ``bolt``, ``aks``, ``codec``, or your own.
        path: the video file (frame methods also take an open :class:`vidsel.VideoReader`).
        question: what the model will be asked (required by text-relevance methods).
        budget: frame-equivalents: frames for frame methods, ``budget * tokens_per_frame``
            tokens for patch methods.
        geometry: the model's patch geometry (default :data:`DEFAULT_GEOMETRY`).
        **options: method options (``get_method(name).options`` lists them), e.g.
            ``embedder=``, ``cache_dir=``, ``candidates=`` for frame methods, ``anchors=``,
            ``pixels=`` for ``codec``.

    Returns:
        A :class:`~vidsel.results.Selection` (frames) or
        :class:`~vidsel.results.PatchSelection` (patches); ``result.num_tokens`` is its cost.

    Raises:
        InvalidArgumentError: unknown method or option, missing question / embedder, bad budget.
        VidselError subclasses from reading the video.
    """
    return get_method(name)(path, question=question, budget=budget, geometry=geometry,
                            **options)
