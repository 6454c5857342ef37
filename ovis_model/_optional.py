"""Optional third-party packages of the ``model`` extra, imported when first needed."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["EXTRA", "require"]

#: the pip extra that brings torch, transformers and safetensors.
EXTRA = "model"


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` (e.g. ``"safetensors.torch"``) for ``feature``.

    Raises:
        MissingDependencyError: the package is not installed; the message names the extra.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise MissingDependencyError(
            f"{feature} needs {package}: pip install 'vidsel[{EXTRA}]'") from exc
