"""Answerers: one interface over every model an evaluation asks.

An :class:`Answerer` takes :class:`~vidsel.eval.Request` s (a :class:`~vidsel.eval.VisualInput`
and a prompt) and returns :class:`~vidsel.eval.Generation` s, batched where the backend allows.
It also states its **geometry**: for a video of ``height`` x ``width`` pixels, the patch size,
merge and frame size its preprocessing gives a frame (a :class:`~vidsel.results.PatchConfig`).
The runner selects with that geometry, so a budget of ``b`` frame-equivalents costs every
method the same visual tokens for this model.

Backends are entries of :data:`ANSWERERS` (a :class:`vidsel.registry.Registry`), named by the
prefix of a model spec: ``ovis:DIR``, ``hf:DIR_OR_ID``, ``vllm:DIR_OR_ID``,
``py:package.module:function``; :func:`load_answerer` turns a spec into an answerer. Any Python
callable is one too (:class:`CallableAnswerer`).
"""

from __future__ import annotations

import abc
import importlib
import inspect
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._validate import check_positive_int
from ..errors import InvalidArgumentError
from ..registry import Registry
from ..results import PatchConfig
from ._types import Generation, Request

__all__ = [
    "ANSWERERS",
    "Answerer",
    "AnswererSpec",
    "CallableAnswerer",
    "FixedGeometry",
    "GeometryFn",
    "available_answerers",
    "frame_geometry",
    "frame_tokens",
    "load_answerer",
    "register_answerer",
    "temporal_merge",
]

logger = logging.getLogger(__name__)

#: ``geometry(height, width) -> PatchConfig``: the patch geometry a model's preprocessing gives
#: frames of a ``height`` x ``width`` video. Must be picklable (it runs in selection workers).
#: Optional refinements, used when present (:func:`frame_geometry`, :func:`frame_tokens`):
#: a ``num_frames=`` keyword (models whose pixel limits bound the whole clip, e.g. Qwen3-VL),
#: a ``temporal_patch_size`` attribute (frames merged in time into one token grid: 2 for
#: Qwen-VL) and a ``video_tokens(height, width, num_frames)`` method (the model's exact count).
GeometryFn = Callable[..., PatchConfig]


def _takes_num_frames(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "num_frames" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def frame_geometry(geometry: GeometryFn, height: int, width: int,
                   num_frames: int | None = None) -> PatchConfig:
    """The :class:`~vidsel.results.PatchConfig` of ``num_frames`` frames of a ``height`` x
    ``width`` video (the count is passed only to geometry functions that take it).

    Raises:
        InvalidArgumentError: the function did not return a PatchConfig.
    """
    if num_frames is not None and _takes_num_frames(geometry):
        out = geometry(int(height), int(width), num_frames=int(num_frames))
    else:
        out = geometry(int(height), int(width))
    if not isinstance(out, PatchConfig):
        raise InvalidArgumentError(f"the model's geometry function returned {out!r}, not a "
                                   f"vidsel.results.PatchConfig")
    return out


def temporal_merge(geometry: GeometryFn) -> int:
    """Frames the model merges in time into one token grid (``temporal_patch_size``; 1 when
    the geometry does not say)."""
    value = getattr(geometry, "temporal_patch_size", 1)
    return value if isinstance(value, int) and value >= 1 else 1


def frame_tokens(geometry: GeometryFn, height: int, width: int, num_frames: int,
                 config: PatchConfig) -> int:
    """Visual tokens the model spends on ``num_frames`` whole frames: its own
    ``video_tokens`` when the geometry has one, else ``ceil(T / temporal_merge)`` token grids
    of ``config``."""
    exact = getattr(geometry, "video_tokens", None)
    if callable(exact):
        return int(exact(int(height), int(width), int(num_frames)))
    return math.ceil(num_frames / temporal_merge(geometry)) * config.tokens_per_frame


@dataclass(frozen=True)
class FixedGeometry:
    """The same :class:`~vidsel.results.PatchConfig` whatever the video's size (a model that
    resizes every frame to one square size)."""

    config: PatchConfig

    def __call__(self, height: int, width: int, num_frames: int | None = None) -> PatchConfig:
        return self.config


class Answerer(abc.ABC):
    """A model that answers prompts about visual inputs.

    Subclasses set :attr:`name` and implement :meth:`geometry` and :meth:`generate`.

    Attributes:
        name: the model's identity in records (a path or hub id with its backend).
        max_batch: requests :meth:`generate` takes at once (the runner batches up to this).
        kinds: visual input kinds the model takes (``"frames"``, ``"patches"``).
    """

    name: str = "answerer"
    max_batch: int = 1
    kinds: tuple[str, ...] = ("frames", "patches")

    @abc.abstractmethod
    def geometry(self) -> GeometryFn:
        """The (picklable) geometry function of this model's frame preprocessing."""

    @abc.abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        """One :class:`Generation` per request, in order (at most :attr:`max_batch`)."""

    def describe(self) -> dict[str, Any]:
        """What identifies the model's answers (goes into record keys): name and options."""
        return {"name": self.name}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model (GPU memory); idempotent."""

    def __enter__(self) -> Answerer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CallableAnswerer(Answerer):
    """Any Python function as an answerer.

    Args:
        fn: ``fn(request) -> str | Generation``, or with ``batched=True``
            ``fn(requests) -> list[str | Generation]``.
        geometry: a :class:`~vidsel.results.PatchConfig` (every video) or a geometry function
            (see :data:`GeometryFn`); default LLaVA-OneVision-2's 392 x 392 frames.
        name: the model's name in records (default: the function's qualified name).
        batched: ``fn`` takes a list of requests.
        max_batch: with ``batched``, requests per call.
    """

    def __init__(self, fn: Callable[..., Any], *, geometry: PatchConfig | GeometryFn | None = None,
                 name: str | None = None, batched: bool = False, max_batch: int = 8) -> None:
        if not callable(fn):
            raise InvalidArgumentError(f"fn={fn!r} is not callable")
        self.fn = fn
        self.batched = bool(batched)
        self.max_batch = check_positive_int("max_batch", max_batch) if batched else 1
        if geometry is None:
            geometry = PatchConfig.preset("llava-ov-2")
        self._geometry: GeometryFn = (FixedGeometry(geometry) if isinstance(geometry, PatchConfig)
                                      else geometry)
        if not callable(self._geometry):
            raise InvalidArgumentError(f"geometry={geometry!r} must be a PatchConfig or a "
                                       f"function (height, width) -> PatchConfig")
        self.name = name or ("py:" + getattr(fn, "__module__", "?") + ":"
                             + getattr(fn, "__qualname__", type(fn).__name__))

    def geometry(self) -> GeometryFn:
        return self._geometry

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        if self.batched:
            out = self.fn(list(requests))
            if not isinstance(out, Sequence) or isinstance(out, str) or \
                    len(out) != len(requests):
                raise InvalidArgumentError(
                    f"{self.name}: a batched answerer must return one answer per request "
                    f"({len(requests)}), got {type(out).__name__}")
            return [Generation.coerce(o) for o in out]
        return [Generation.coerce(self.fn(r)) for r in requests]


#: ``factory(target, **options) -> Answerer`` by spec prefix.
ANSWERERS: Registry[Callable[..., Answerer]] = Registry("answerer")


def register_answerer(name: str, factory: Callable[..., Answerer] | None = None, *,
                      overwrite: bool = False) -> Any:
    """Add a backend: ``factory(target, **options) -> Answerer`` for specs ``name:target``
    (directly, or as a decorator when ``factory`` is omitted)."""
    if factory is None:
        return ANSWERERS.register(name, overwrite=overwrite)
    return ANSWERERS.register(name, factory, overwrite=overwrite)


def available_answerers() -> tuple[str, ...]:
    """Registered backend names (spec prefixes), sorted."""
    return ANSWERERS.names()


@dataclass(frozen=True)
class AnswererSpec:
    """A model spec that can be sent to another process and loaded there (one replica per
    GPU worker): ``kind:target`` plus backend options.

    Attributes:
        kind: the backend (:func:`available_answerers`).
        target: what the backend loads (a folder, a hub id, ``module:function``).
        options: backend keyword options (JSON-safe values).
    """

    kind: str
    target: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str, **options: Any) -> AnswererSpec:
        """``"hf:/models/qwen"`` -> ``AnswererSpec("hf", "/models/qwen")``."""
        if not isinstance(spec, str) or ":" not in spec:
            raise InvalidArgumentError(
                f"model spec {spec!r} must be BACKEND:TARGET, e.g. 'ovis:/models/Ovis2.5-2B', "
                f"'hf:Qwen/Qwen2.5-VL-3B-Instruct', 'vllm:/models/qwen', "
                f"'py:mypkg.answer:fn'; backends: {', '.join(available_answerers())}")
        kind, target = spec.split(":", 1)
        kind = kind.strip().lower()
        ANSWERERS.get(kind)  # unknown backends fail here, listing the choices
        if not target:
            raise InvalidArgumentError(f"model spec {spec!r} names no model after '{kind}:'")
        return cls(kind=kind, target=target, options=dict(options))

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}"

    def load(self) -> Answerer:
        """Build the answerer (loads the model)."""
        return ANSWERERS.get(self.kind)(self.target, **dict(self.options))


def load_answerer(spec: str | AnswererSpec | Answerer | Callable[..., Any],
                  **options: Any) -> Answerer:
    """An :class:`Answerer` from a spec string, an :class:`AnswererSpec`, an answerer (returned
    as is) or a plain callable (wrapped in :class:`CallableAnswerer` with ``options``)."""
    if isinstance(spec, Answerer):
        if options:
            raise InvalidArgumentError("options are for model specs, not a ready answerer")
        return spec
    if isinstance(spec, AnswererSpec):
        if options:
            spec = AnswererSpec(spec.kind, spec.target, {**spec.options, **options})
        return spec.load()
    if isinstance(spec, str):
        return AnswererSpec.parse(spec, **options).load()
    if callable(spec):
        return CallableAnswerer(spec, **options)
    raise InvalidArgumentError(f"model={spec!r} must be a spec string ('hf:DIR'), an Answerer "
                               f"or a callable")


def _import_target(target: str) -> Any:
    """``package.module:attr`` -> the attribute (a plugin import, like ``--plugin``)."""
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise InvalidArgumentError(f"py:{target} must be py:package.module:function")
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # the module's own failure: name it, keep the cause
        raise InvalidArgumentError(f"py:{target}: cannot import {module!r} "
                                   f"({type(e).__name__}: {e})") from e
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidArgumentError(f"py:{target}: {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


@register_answerer("py")
def _py_answerer(target: str, **options: Any) -> Answerer:
    """``py:package.module:function``: a function (wrapped in :class:`CallableAnswerer`), an
    :class:`Answerer` instance, or a class / factory returning one (called with the
    options)."""
    obj = _import_target(target)
    if isinstance(obj, Answerer):
        return obj
    if isinstance(obj, type) and issubclass(obj, Answerer):
        return obj(**options)
    if not callable(obj):
        raise InvalidArgumentError(f"py:{target} is not callable")
    unknown = sorted(set(options) - {"geometry", "batched", "max_batch", "name"})
    if unknown:
        raise InvalidArgumentError(f"py:{target}: a function answerer takes the options "
                                   f"geometry, batched, max_batch, name; not {unknown}")
    options.setdefault("name", f"py:{target}")
    return CallableAnswerer(obj, **options)
