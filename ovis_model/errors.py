"""ovis_model's exception tree.

Every exception ovis_model raises on purpose derives from :class:`OvisError` (itself a
:class:`vidsel.errors.VidselError`), from the builtin a caller would naturally catch and, where
vidsel has one, from the matching vidsel error. So ``except ValueError``,
``except vidsel.errors.InvalidArgumentError``, ``except vidsel.VidselError`` and
``except ovis_model.OvisError`` all catch a bad argument::

    OvisError(VidselError)
    ├── InvalidArgumentError(OvisError, vidsel.errors.InvalidArgumentError)   ValueError
    ├── MissingDependencyError(OvisError, vidsel.errors.MissingDependencyError) ImportError
    ├── ModelNotAvailableError(OvisError, vidsel.errors.ModelNotAvailableError) OSError
    └── CheckpointError(OvisError, ValueError)
"""

from __future__ import annotations

from vidsel import errors as _vidsel_errors

__all__ = [
    "CheckpointError",
    "InvalidArgumentError",
    "MissingDependencyError",
    "ModelNotAvailableError",
    "OvisError",
]


class OvisError(_vidsel_errors.VidselError):
    """Base class of every error ovis_model raises on purpose."""


class InvalidArgumentError(OvisError, _vidsel_errors.InvalidArgumentError):
    """A public function got an argument value outside its allowed range or choices."""


class MissingDependencyError(OvisError, _vidsel_errors.MissingDependencyError):
    """An optional package (transformers, safetensors, flash-attn...) is not installed."""


class ModelNotAvailableError(OvisError, _vidsel_errors.ModelNotAvailableError):
    """Weights, config or tokenizer could not be found locally and cannot be downloaded."""


class CheckpointError(OvisError, ValueError):
    """A checkpoint directory whose contents do not fit its config (missing or unexpected
    tensors, an unknown ``torch_dtype``, a malformed shard index); the message names the
    directory."""
