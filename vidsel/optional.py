"""Optional third-party packages (torch, transformers, safetensors, open_clip, ...) imported
when a feature first needs them; a missing one is a :class:`MissingDependencyError` naming the
pip extra that brings it."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, feature: str, *, extra: str = "embed", needs: str | None = None,
            error: type[MissingDependencyError] = MissingDependencyError) -> ModuleType:
    """Import ``module`` (e.g. ``"safetensors.numpy"``) for ``feature``.

    Args:
        module: the module to import.
        feature: what needs it, the start of the message (``"the hf embedder"``).
        extra: the vidsel extra that installs it.
        needs: what to name as missing (default: the top-level package of ``module``).
        error: the error class to raise (a :class:`MissingDependencyError`; ovis_model passes
            its own).

    Raises:
        MissingDependencyError: the package is not installed, e.g. "the hf embedder needs
            torch and transformers: pip install 'vidsel[embed]'".
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise error(
            f"{feature} needs {needs or module.split('.')[0]}: "
            f"pip install 'vidsel[{extra}]'") from exc
