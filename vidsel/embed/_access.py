"""What the embedders may do to get weights: download (off unless allowed) and unpickle (off
unless allowed).

- Downloads: ``allow_download=True`` or ``VIDSEL_ALLOW_DOWNLOAD=1``; otherwise a hub id or an
  open_clip tag is resolved from the local caches only (``local_files_only``), so a missing
  model fails at once instead of after the hub client's retries.
- Pickle-based weights (``pytorch_model.bin``, open_clip ``.pt`` / ``.bin``): ``allow_pickle=True``
  or ``VIDSEL_ALLOW_PICKLE=1``; otherwise only safetensors are loaded.

Both switches are read when a model is loaded (never at import). Messages are worded for the
Python API and the CLI alike: they name the environment variable and the keyword, and weights
as the embedder spec (``hf:DIR``) that ``--embedder`` and ``embedder=`` both take.
"""

from __future__ import annotations

import os

__all__ = [
    "ALLOW_DOWNLOAD_ENV",
    "ALLOW_PICKLE_ENV",
    "PICKLE_SUFFIXES",
    "cached_hub_file",
    "download_failure",
    "downloads_allowed",
    "hub_offline_var",
    "pickle_allowed",
    "pickle_refusal",
    "sentence",
]

ALLOW_DOWNLOAD_ENV = "VIDSEL_ALLOW_DOWNLOAD"
ALLOW_PICKLE_ENV = "VIDSEL_ALLOW_PICKLE"
#: weight files read with torch.load (pickle), never loaded without ``allow_pickle``
PICKLE_SUFFIXES: tuple[str, ...] = (".bin", ".pt", ".pth", ".ckpt")
_TRUE = ("1", "true", "yes", "on")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def downloads_allowed(allow_download: bool | None) -> bool:
    """``allow_download``, or (None) whether ``VIDSEL_ALLOW_DOWNLOAD`` is set to 1/true/yes/on."""
    return _env_true(ALLOW_DOWNLOAD_ENV) if allow_download is None else bool(allow_download)


def pickle_allowed(allow_pickle: bool | None) -> bool:
    """``allow_pickle``, or (None) whether ``VIDSEL_ALLOW_PICKLE`` is set to 1/true/yes/on."""
    return _env_true(ALLOW_PICKLE_ENV) if allow_pickle is None else bool(allow_pickle)


def hub_offline_var() -> str | None:
    """The variable that switches the Hugging Face hub off in this environment, if any."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if _env_true(name):
            return name
    return None


def cached_hub_file(repo_id: str, filename: str, revision: str | None) -> str | None:
    """Path of ``filename`` of ``repo_id`` in the local Hugging Face cache, or None; reads the
    cache folder only, never the network."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers and open_clip depend on it
        return None
    try:
        hit = try_to_load_from_cache(repo_id, filename, revision=revision)
    except (ValueError, OSError):  # malformed repo id, unreadable cache
        return None
    return hit if isinstance(hit, str) else None


def sentence(err: object) -> str:
    """``str(err)`` without its trailing full stop, to end a clause of a longer message."""
    return str(err).strip().rstrip(".")


def download_failure(what: str, *, allowed: bool, get_it: str, use_it: str,
                     err: object = None) -> str:
    """The message for weights that are not local.

    Args:
        what: e.g. ``"model 'google/siglip-so400m-patch14-384'"``.
        allowed: whether downloads were allowed.
        get_it: how to download by hand, e.g. ``"`hf download ID --local-dir DIR`"``.
        use_it: the spec that uses the local copy, e.g. ``"'hf:DIR'"``.
        err: the loader's error, when downloads were allowed and failed.
    """
    by_hand = (f"or download it where the hub is reachable ({get_it}) and use the embedder "
               f"spec {use_it}")
    if not allowed:
        return (f"{what} is not available locally, and vidsel downloads weights only when "
                f"allowed: set {ALLOW_DOWNLOAD_ENV}=1 (Python: allow_download=True) to fetch it, "
                f"{by_hand}")
    offline = hub_offline_var()
    if offline:
        return (f"{what} is not available locally and cannot be downloaded because {offline}="
                f"{os.environ.get(offline)} is set: unset {offline} to download it, {by_hand}")
    reason = f": {sentence(err)}" if err is not None else ""
    return f"could not download {what}{reason}. Check the name and the network, {by_hand}"


def pickle_refusal(what: str, files: str) -> str:
    """The message for weights that exist only in a pickle-based format."""
    return (f"{what} has only pickle-based weights ({files}); loading them can run arbitrary "
            f"code, so vidsel loads them only when allowed: set {ALLOW_PICKLE_ENV}=1 (Python: "
            f"allow_pickle=True) if you trust the file, or convert it to safetensors")
