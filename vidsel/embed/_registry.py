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

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._validate import check_choice
from ..errors import InvalidArgumentError, ModelNotAvailableError
from ._base import Embedder

__all__ = ["available_embedders", "load_embedder", "register_embedder"]

#: kind -> factory(target: str, **options) -> Embedder
_FACTORIES: dict[str, Callable[..., Embedder]] = {}
_ALIASES: dict[str, str] = {"siglip": "hf:google/siglip-so400m-patch14-384"}


def register_embedder(kind: str, factory: Callable[..., Embedder], *,
                      overwrite: bool = False) -> None:
    """Register ``factory(target, **options) -> Embedder`` for specs ``"<kind>:<target>"``."""
    if kind in _FACTORIES and not overwrite:
        raise InvalidArgumentError(f"embedder kind {kind!r} is already registered")
    _FACTORIES[kind] = factory


def available_embedders() -> tuple[str, ...]:
    """Registered embedder kinds (spec prefixes) and aliases, sorted."""
    return tuple(sorted([*_FACTORIES, *_ALIASES]))


def load_embedder(spec: str | Embedder, **options: Any) -> Embedder:
    """Resolve a spec string (or pass an :class:`Embedder` through).

    Args:
        spec: see the module docstring.
        **options: forwarded to the factory (``device``, ``dtype``, ``batch_size``,
            ``prompt_cleaner``, ...).

    Raises:
        InvalidArgumentError: unknown kind or malformed spec.
        ModelNotAvailableError: weights not available (message says how to provide them).
    """
    if isinstance(spec, Embedder):
        return spec
    if not isinstance(spec, str) or not spec:
        raise InvalidArgumentError(f"embedder={spec!r} must be an Embedder or a spec string")
    spec = _ALIASES.get(spec, spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return _FACTORIES["hf"](str(path), **options)
        raise ModelNotAvailableError(
            f"{spec!r} is a directory without config.json; for open_clip checkpoints use "
            f"'open_clip:MODEL_NAME@{spec}/<file>.safetensors'"
        )
    kind, sep, target = spec.partition(":")
    if not sep:
        raise InvalidArgumentError(
            f"embedder={spec!r} is not a spec: use '<kind>:<model>' with kind one of "
            f"{', '.join(map(repr, sorted(_FACTORIES)))}, or an alias "
            f"{', '.join(map(repr, sorted(_ALIASES)))}, or a local model directory"
        )
    check_choice("embedder kind", kind, sorted(_FACTORIES))
    return _FACTORIES[kind](target, **options)


def _hf_factory(target: str, **options: Any) -> Embedder:
    from ._hf import HFEmbedder

    return HFEmbedder.from_pretrained(target, **options)


def _open_clip_factory(target: str, **options: Any) -> Embedder:
    from ._openclip import OpenClipEmbedder

    name, _, pretrained = target.partition("@")
    if pretrained == "random":
        options.setdefault("random_init", True)
    return OpenClipEmbedder.from_pretrained(name, pretrained if pretrained not in ("", "random")
                                            else None, **options)


register_embedder("hf", _hf_factory)
register_embedder("open_clip", _open_clip_factory)
