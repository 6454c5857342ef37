"""User defaults of the command line, set once: environment variables or a TOML file.

``vidsel select`` / ``batch`` / ``demo`` read them when an option is not given on the command
line (the command line always wins; the Python API never reads them, so a library call does
what its arguments say). First match wins:

1. the command-line option (``--embedder``, ``--device``);
2. the environment: ``VIDSEL_EMBEDDER``, ``VIDSEL_DEVICE``;
3. the config file: ``$VIDSEL_CONFIG`` when set, else ``$XDG_CONFIG_HOME/vidsel/config.toml``
   (``~/.config/vidsel/config.toml`` when ``XDG_CONFIG_HOME`` is unset)::

       # ~/.config/vidsel/config.toml
       embedder = "hf:/models/siglip-so400m-patch14-384"   # any --embedder spec
       device = "cuda"                                     # any --device value

A missing default file is no error, but a ``VIDSEL_CONFIG`` naming a file that does not exist
is a :class:`ConfigError` (a typo must not silently drop your defaults); a file that is not valid TOML, or a key of the wrong type, is a
:class:`ConfigError` naming the file. Unknown keys are logged and ignored.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: the same parser as a package
    import tomli as tomllib

from .errors import InvalidArgumentError

__all__ = ["CONFIG_KEYS", "ENV_VARS", "Config", "ConfigError", "config_path", "load_config"]

logger = logging.getLogger(__name__)

#: Keys of the config file (all strings) and the environment variable that overrides each.
ENV_VARS = {"embedder": "VIDSEL_EMBEDDER", "device": "VIDSEL_DEVICE"}
CONFIG_KEYS = tuple(ENV_VARS)


class ConfigError(InvalidArgumentError):
    """The config file cannot be used (not TOML, or a value of the wrong type)."""


@dataclass(frozen=True)
class Config:
    """User defaults.

    Attributes:
        embedder: default ``--embedder`` spec (None: none configured).
        device: default ``--device`` of the embedder (None: the embedder's default).
        sources: for each key that is set, where it came from (``"VIDSEL_EMBEDDER"`` or the
            config file's path), for messages.
    """

    embedder: str | None = None
    device: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    def describe(self, key: str) -> str:
        """``"hf:DIR (from VIDSEL_EMBEDDER)"``: a value and where it came from."""
        return f"{getattr(self, key)} (from {self.sources.get(key, '?')})"


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """The config file vidsel reads (whether or not it exists)."""
    env = os.environ if env is None else env
    if env.get("VIDSEL_CONFIG"):
        return Path(os.path.expanduser(env["VIDSEL_CONFIG"]))
    # os.path.expanduser, not Path's: no error where no home folder is known
    base = env.get("XDG_CONFIG_HOME") or os.path.expanduser(os.path.join("~", ".config"))
    return Path(base) / "vidsel" / "config.toml"


def _read_file(path: Path, *, required: bool = False) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path}: no such vidsel config file (named by VIDSEL_CONFIG; "
                              f"unset it or create the file)") from None
        return {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the vidsel config file ({e.strerror or e})") \
            from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    out: dict[str, str] = {}
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            logger.warning("%s: ignoring unknown key %r (known: %s)", path, key,
                           ", ".join(CONFIG_KEYS))
            continue
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: {key} = {value!r} must be a non-empty string")
        out[key] = value.strip()
    return out


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """The user defaults from the environment and the config file (see the module doc).

    Args:
        env: environment to read (default: ``os.environ``).

    Raises:
        ConfigError: the config file exists but is not valid, or ``VIDSEL_CONFIG`` names a
            file that does not exist.
    """
    env = os.environ if env is None else env
    path = config_path(env)
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for key, value in _read_file(path, required=bool(env.get("VIDSEL_CONFIG"))).items():
        values[key], sources[key] = value, str(path)
    for key, var in ENV_VARS.items():
        if env.get(var, "").strip():
            values[key], sources[key] = env[var].strip(), var
    return Config(embedder=values.get("embedder"), device=values.get("device"), sources=sources)
