"""Optional third-party packages of the ``model`` extra, imported when first needed."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["EXTRA", "require"]

#: the pip extra that brings torch, transformers and safetensors.
EXTRA = "model"


def require(module: str, feature: str, *, extra: str = EXTRA,
            needs: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"safetensors.torch"``) for ``feature`` (the same contract as
    vidsel's own helper, raising ovis_model's error).

    Args:
        module: the module to import.
        feature: what needs it, the start of the message.
        extra: the vidsel extra that installs it.
        needs: what to name as missing (default: the top-level package of ``module``).

    Raises:
        MissingDependencyError: the package is not installed; the message names the extra.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs {needs or module.split('.')[0]}: "
            f"pip install 'vidsel[{extra}]'") from exc
