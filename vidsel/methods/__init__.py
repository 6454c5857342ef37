"""Video-level methods: one registry, one call shape, one result protocol.

>>> from vidsel.methods import available_methods
>>> available_methods()  # doctest: +NORMALIZE_WHITESPACE
('aks', 'bolt', 'codec', 'dpp', 'mdp3', 'mdp3-reference', 'topk', 'uniform')

See :func:`run_method`; a method of your own plugs in with :func:`register_method`.
"""

from ._builtin import codec_method, frame_method
from ._plugins import ENTRY_POINT_GROUP, load_plugins
from ._registry import (
    DEFAULT_GEOMETRY,
    METHODS,
    Method,
    MethodFn,
    available_methods,
    get_method,
    register_method,
    run_method,
)

__all__ = [
    "DEFAULT_GEOMETRY",
    "ENTRY_POINT_GROUP",
    "METHODS",
    "Method",
    "MethodFn",
    "available_methods",
    "codec_method",
    "frame_method",
    "get_method",
    "load_plugins",
    "register_method",
    "run_method",
]
