"""Embedder registry and spec strings.

A spec names an embedder and its weights in one string (what the CLI's ``--embedder`` takes):

- ``"hf:google/siglip-so400m-patch14-384"`` or ``"hf:/models/siglip"`` — transformers SigLIP /
  SigLIP2 / CLIP, hub id or local directory;
- ``"open_clip:ViT-B-32@laion2b_s34b_b79k"`` or ``"open_clip:ViT-B-32@/ckpt/model.safetensors"``
  — an open_clip model name and a pretrained tag or local checkpoint;
- ``"siglip"`` — MDP3's default, ``hf:google/siglip-so400m-patch14-384``;
- a plain local directory: a transformers checkpoint (has ``config.json``) is loaded with ``hf``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._validate import unknown_keywords
from ..errors import InvalidArgumentError, ModelNotAvailableError
from ..optional import require
from ..registry import Registry
from ._base import Embedder
from ._hf import DEFAULT_HF_MODEL, HFEmbedder
from ._openclip import OpenClipEmbedder

__all__ = ["EMBEDDERS", "available_embedders", "load_embedder", "register_embedder",
           "resolve_device", "shared_embedder", "shared_embedder_loaded"]

#: kind (spec prefix) -> factory(target: str, **options) -> Embedder
EMBEDDERS: Registry[Callable[..., Embedder]] = Registry("embedder kind")
_ALIASES: dict[str, str] = {"siglip": f"hf:{DEFAULT_HF_MODEL}"}


def register_embedder(kind: str, factory: Callable[..., Embedder], *,
                      overwrite: bool = False) -> None:
    """Register ``factory(target, **options) -> Embedder`` for specs ``"<kind>:<target>"``.

    Raises:
        InvalidArgumentError: ``kind`` is taken and ``overwrite`` is False.
    """
    EMBEDDERS.register(kind, factory, overwrite=overwrite)


def available_embedders() -> tuple[str, ...]:
    """Registered embedder kinds (spec prefixes) and aliases, sorted."""
    return tuple(sorted([*EMBEDDERS.names(), *_ALIASES]))


def load_embedder(spec: str | Embedder, **options: Any) -> Embedder:
    """Resolve a spec string (or pass an :class:`Embedder` through).

    Args:
        spec: see the module docstring.
        **options: forwarded to the factory (``device``, ``dtype``, ``batch_size``,
            ``prompt_cleaner``, ``allow_download``, ``allow_pickle``, ...).

    Raises:
        InvalidArgumentError: unknown kind or malformed spec.
        MissingDependencyError: the embedder's packages are not installed (``hf``: torch and
            transformers, ``pip install 'vidsel[embed]'``; ``open_clip``:
            ``pip install 'vidsel[clip]'``).
        ModelNotAvailableError: weights not available locally and downloads not allowed
            (``VIDSEL_ALLOW_DOWNLOAD=1`` / ``allow_download=True``) or failed, or only
            pickle-based and not allowed; the message says what to do.
    """
    if isinstance(spec, Embedder):
        return spec
    if not isinstance(spec, str) or not spec:
        raise InvalidArgumentError(f"embedder={spec!r} must be an Embedder or a spec string")
    spec = _ALIASES.get(spec, spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return EMBEDDERS.get("hf")(str(path), **options)
        raise ModelNotAvailableError(
            f"{spec!r} is a directory without config.json; for open_clip checkpoints use "
            f"'open_clip:MODEL_NAME@{spec}/<file>.safetensors'"
        )
    kind, sep, target = spec.partition(":")
    if not sep:
        raise InvalidArgumentError(
            f"embedder={spec!r} is not a spec: use '<kind>:<model>' with kind one of "
            f"{', '.join(map(repr, EMBEDDERS.names()))}, or an alias "
            f"{', '.join(map(repr, sorted(_ALIASES)))}, or a local model directory"
        )
    return EMBEDDERS.get(kind)(target, **options)


#: Embedders loaded by :func:`shared_embedder` in this process, by (spec, device).
_SHARED: dict[tuple[str, str | None], Embedder] = {}
_SHARED_LOCK = threading.Lock()  # threads (a DataLoader's, a server's) load a model once


def resolve_device(device: str | None) -> str | None:
    """``"auto"`` -> ``"cuda"`` when torch sees a GPU, else ``"cpu"`` (imports torch: call it
    only when an embedder is used); any other value as it is.

    Raises:
        MissingDependencyError: ``"auto"`` without torch (a core install), naming ``vidsel[embed]``.
    """
    if device != "auto":
        return device
    torch = require("torch", "--device auto (the embedder's device)", extra="embed")
    return "cuda" if torch.cuda.is_available() else "cpu"


def shared_embedder(spec: str, device: str | None = None) -> Embedder:
    """The embedder of ``spec`` on ``device`` (``"auto"`` resolved), loaded once per process:
    every task of a batch or evaluation worker reuses it.

    Raises:
        InvalidArgumentError, ModelNotAvailableError, MissingDependencyError: as
            :func:`load_embedder`.
    """
    key = (str(spec), resolve_device(device))
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = load_embedder(key[0], **({"device": key[1]} if key[1] else {}))
        return _SHARED[key]


def shared_embedder_loaded(spec: str, device: str | None = None) -> bool:
    """Whether :func:`shared_embedder` has ``spec`` on ``device`` in this process already."""
    return (str(spec), resolve_device(device)) in _SHARED


def _check_options(kind: str, loader: Callable[..., Any], options: Mapping[str, Any],
                   *, skip: int = 1) -> None:
    """Refuse options ``loader`` does not take (one message listing the ones it does)."""
    unknown, allowed = unknown_keywords(loader, options, skip=skip)
    if unknown:
        raise InvalidArgumentError(
            f"the {kind} embedder does not take {unknown}; allowed: {allowed}")


def _hf_factory(target: str, **options: Any) -> Embedder:
    _check_options("hf", HFEmbedder.from_pretrained, options)
    return HFEmbedder.from_pretrained(target, **options)


def _open_clip_factory(target: str, **options: Any) -> Embedder:
    name, _, pretrained = target.partition("@")
    _check_options("open_clip", OpenClipEmbedder.from_pretrained, options, skip=2)
    if pretrained == "random":
        options.setdefault("random_init", True)
    return OpenClipEmbedder.from_pretrained(name, pretrained if pretrained not in ("", "random")
                                            else None, **options)


register_embedder("hf", _hf_factory)
register_embedder("open_clip", _open_clip_factory)
