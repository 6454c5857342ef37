"""Methods that live in other packages: plugin modules imported by name or by entry point.

A plugin is a module that calls :func:`~vidsel.methods.register_method` when imported. Two ways
to make its methods known to every entry point (Python, ``vidsel select`` / ``batch``, and the
worker processes of a batch run):

- by name: ``load_plugins(["mypkg.methods"])``, or ``vidsel select --plugin mypkg.methods``;
- installed: a distribution declares the module in the entry-point group ``vidsel.methods``
  (``[project.entry-points."vidsel.methods"] mine = "mypkg.methods"`` in its pyproject.toml);
  the CLI loads every such entry point at start-up.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from importlib.metadata import entry_points

from ..errors import InvalidArgumentError
from ._registry import METHODS

__all__ = ["ENTRY_POINT_GROUP", "load_plugins"]

logger = logging.getLogger(__name__)

#: Entry-point group of installed method plugins.
ENTRY_POINT_GROUP = "vidsel.methods"

#: Installed entry points are scanned once per process (a batch worker calls
#: :func:`load_plugins` for every task).
_scanned_installed = False


def load_plugins(modules: Iterable[str] = (), *, installed: bool = True) -> tuple[str, ...]:
    """Import plugin modules so the methods they register become available.

    Args:
        modules: module names to import (``"mypkg.methods"``); importing one twice is a no-op.
        installed: also import every module declared in the ``vidsel.methods`` entry-point
            group of the installed distributions.

    Returns:
        The method names that were registered by this call, sorted.

    Raises:
        InvalidArgumentError: a plugin module cannot be imported (the message names it and
            why).
    """
    global _scanned_installed
    before = set(METHODS.names())
    targets = [(m, m) for m in modules]
    if installed and not _scanned_installed:
        targets += [(f"entry point {ep.name!r} ({ep.value})", ep.value)
                    for ep in entry_points(group=ENTRY_POINT_GROUP)]
    for label, module in targets:
        if not isinstance(module, str) or not module:
            raise InvalidArgumentError(f"plugin module {module!r} must be a module name")
        try:
            importlib.import_module(module.split(":")[0])
        except Exception as e:  # a plugin's own failure: name the plugin, keep the cause
            raise InvalidArgumentError(
                f"vidsel method plugin {label} could not be imported: "
                f"{type(e).__name__}: {e}") from e
    if installed:
        _scanned_installed = True
    added = tuple(sorted(set(METHODS.names()) - before))
    if added:
        logger.debug("plugins registered methods: %s", ", ".join(added))
    return added
