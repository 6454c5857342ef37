"""Optional third-party packages of the ``model`` extra, imported when first needed: vidsel's
:func:`vidsel.optional.require` with ovis_model's error and extra."""

from __future__ import annotations

from types import ModuleType

from vidsel.optional import require as _require

from .errors import MissingDependencyError

__all__ = ["EXTRA", "require"]

#: the pip extra that brings torch, transformers and safetensors.
EXTRA = "model"


def require(module: str, feature: str, *, extra: str = EXTRA,
            needs: str | None = None) -> ModuleType:
    """Import ``module`` for ``feature``; a missing package raises ovis_model's
    :class:`~ovis_model.errors.MissingDependencyError` naming the extra (see
    :func:`vidsel.optional.require`)."""
    return _require(module, feature, extra=extra, needs=needs, error=MissingDependencyError)
