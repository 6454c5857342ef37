"""Checkpoint loading and saving: config.json + safetensors, official Ovis2.5 key names.

* Reads a single ``model.safetensors`` or a sharded ``model.safetensors.index.json``; never pickle
  (``*.bin`` / ``*.pt`` are refused) and never remote code.
* Keys map one to one onto the module tree (``llm.*``, ``visual_tokenizer.vit.*``,
  ``visual_tokenizer.head.{0,1}.*``, ``vte.weight``). Missing or unexpected keys raise; with tied
  word embeddings ``llm.lm_head.weight`` may be absent (it is the input embedding).
* The model is built on the ``meta`` device and the tensors are assigned, so no random init runs.
* A hub id resolves from the local Hugging Face cache; it is downloaded only when the user
  allowed downloads (``allow_download=True`` or ``VIDSEL_ALLOW_DOWNLOAD=1``, as vidsel's
  embedders) and the hub is not switched off (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``,
  read through ``huggingface_hub.constants`` and the environment); otherwise a hub id that is
  not cached raises :class:`~ovis_model.errors.ModelNotAvailableError` at once. Other failures (an unreadable cache, a
  permission error) keep their type and get a note naming the repository and the cache folder.
* A checkpoint that does not match its config (missing / unexpected keys, an unknown
  ``torch_dtype``, a malformed shard index or one naming files outside the directory) raises
  :class:`~ovis_model.errors.CheckpointError` naming the directory.

Layering: this module knows configs and ``nn.Module`` s, never :class:`~ovis_model.OvisModel`
itself; :mod:`ovis_model.modeling` imports it (``OvisModel.from_pretrained`` passes its class).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from vidsel.embed import ALLOW_DOWNLOAD_ENV, downloads_allowed, hub_offline_var

from ._optional import require
from .config import OvisConfig
from .errors import CheckpointError, ModelNotAvailableError

__all__ = [
    "CheckpointError",
    "PretrainedModel",
    "check_state_keys",
    "dtype_name",
    "load_pretrained",
    "load_state_dict",
    "materialise_buffers",
    "parse_torch_dtype",
    "resolve_checkpoint_dir",
    "save_pretrained",
    "saved_dtype",
    "write_safetensors",
]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
_TIED_KEY = "llm.lm_head.weight"
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
#: other spellings of the same dtypes (torch's own aliases)
_DTYPE_ALIASES = {"float": "float32", "half": "float16"}
_TRUE = ("1", "ON", "YES", "TRUE")
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.jinja", "tokenizer*"]



class PretrainedModel(Protocol):
    """What loading and saving need from a model (:class:`~ovis_model.OvisModel` fits).

    Its class is built as ``cls(config, attn_impl=..., llm_attn_impl=..., device=...,
    dtype=...)``; ``llm`` is a transformers causal LM.
    """

    config: OvisConfig
    llm: Any

    @property
    def dtype(self) -> torch.dtype: ...

    def state_dict(self) -> dict[str, Any]: ...


M = TypeVar("M", bound=nn.Module)


def parse_torch_dtype(value: Any, *, where: Path | str | None = None) -> torch.dtype:
    """A config's ``torch_dtype`` (``"bfloat16"``, ``"torch.bfloat16"``, ``"float32"``, ...)
    as a torch dtype.

    Raises:
        CheckpointError: any other value (instead of silently loading in float32).
    """
    if isinstance(value, torch.dtype) and value in _DTYPES.values():
        return value
    name = str(value).strip()
    name = name.removeprefix("torch.")
    name = _DTYPE_ALIASES.get(name, name)
    if name in _DTYPES:
        return _DTYPES[name]
    prefix = f"{where}: " if where is not None else ""
    raise CheckpointError(
        f"{prefix}config.json has torch_dtype={value!r}; expected one of "
        f"{sorted(_DTYPES)} (optionally spelled 'torch.<name>'); pass dtype= explicitly to "
        f"override it")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in _TRUE


def hub_offline() -> bool:
    """Offline mode: ``huggingface_hub.constants.HF_HUB_OFFLINE`` (read at its import), or
    ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` set in the environment now."""
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - guarded by the caller
        hub = False
    else:
        hub = bool(constants.HF_HUB_OFFLINE)
    return hub or _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def _offline_var() -> str:
    """The setting that switches the hub off here (for messages)."""
    name = hub_offline_var()
    if name:
        return f"{name}={os.environ[name]}"
    return "huggingface_hub.constants.HF_HUB_OFFLINE = True"


def resolve_checkpoint_dir(path_or_hub_id: str | Path, *,
                           allow_download: bool | None = None) -> Path:
    """A local directory holding config.json, or a hub id resolved to its local snapshot.

    Args:
        path_or_hub_id: a checkpoint directory or a hub id (``"AIDC-AI/Ovis2.5-2B"``).
        allow_download: fetch a hub id that is not in the local Hugging Face cache. None (the
            default): only when ``VIDSEL_ALLOW_DOWNLOAD=1``; without it nothing touches the
            network.

    Raises:
        ModelNotAvailableError: nothing local and downloads not allowed, or the hub cannot be
            reached (offline mode, no network, huggingface_hub missing, unknown repository).
    """
    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        if not (path / CONFIG_NAME).is_file():
            raise ModelNotAvailableError(f"{path}: no {CONFIG_NAME}; not a checkpoint directory")
        return path
    text = str(path_or_hub_id)
    if path.exists() or text.count("/") != 1 or text.startswith((".", "/", "~")):
        raise ModelNotAvailableError(f"{text}: not a checkpoint directory nor a hub id")
    try:
        from huggingface_hub import constants, snapshot_download
        from huggingface_hub.errors import (
            HfHubHTTPError,
            HFValidationError,
            LocalEntryNotFoundError,
            OfflineModeIsEnabled,
        )
    except ImportError as exc:
        raise ModelNotAvailableError(
            f"{text}: no local directory of that name, and huggingface_hub is not installed to "
            "download it") from exc
    where = f"while resolving {text!r} in the Hugging Face cache {constants.HF_HUB_CACHE}"
    by_hand = (f"or download it where the hub is reachable (`hf download {text} --local-dir "
               "DIR`) and pass that directory")
    try:
        return Path(snapshot_download(text, allow_patterns=_HUB_PATTERNS,
                                      local_files_only=True))
    except LocalEntryNotFoundError as exc:  # not cached (yet)
        if not downloads_allowed(allow_download):
            raise ModelNotAvailableError(
                f"{text}: not in the local Hugging Face cache ({constants.HF_HUB_CACHE}), and "
                f"weights are downloaded only when allowed: set {ALLOW_DOWNLOAD_ENV}=1 (Python: "
                f"allow_download=True) to fetch it, {by_hand}") from exc
        if hub_offline():
            raise ModelNotAvailableError(
                f"{text}: not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and "
                f"cannot be downloaded because the hub is switched off ({_offline_var()}): "
                f"turn that off to download it, {by_hand}") from exc
    except HFValidationError as exc:
        raise ModelNotAvailableError(f"{text}: not a valid hub repository id ({exc})") from exc
    except OSError as exc:  # permissions, a corrupt cache: keep the type, name the place
        exc.add_note(where)
        raise
    logger.info("%s: not cached; downloading from the Hugging Face hub (downloads allowed)",
                text)
    try:
        return Path(snapshot_download(text, allow_patterns=_HUB_PATTERNS))
    except (LocalEntryNotFoundError, HfHubHTTPError, OfflineModeIsEnabled) as exc:
        raise ModelNotAvailableError(
            f"{text}: could not download from the Hugging Face hub ({type(exc).__name__}: "
            f"{exc}); check the name and the network, {by_hand}") from exc
    except OSError as exc:
        exc.add_note(where)
        raise


def _shard_names(directory: Path) -> list[str]:
    """Shard file names of ``model.safetensors.index.json``, confined to ``directory``.

    Raises:
        CheckpointError: the index is not JSON, has no ``weight_map`` object of strings, or
            names a file outside the checkpoint directory (``../x``, an absolute path).
    """
    index = directory / INDEX_NAME
    try:
        with open(index, encoding="utf-8") as fh:
            weight_map = json.load(fh)["weight_map"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{directory}: {INDEX_NAME} is malformed ({type(exc).__name__}: "
                              f"{exc}); it needs a 'weight_map' object") from exc
    if not isinstance(weight_map, dict) or not all(
            isinstance(v, str) and v for v in weight_map.values()):
        raise CheckpointError(f"{directory}: {INDEX_NAME} 'weight_map' must map tensor names "
                              "to shard file names")
    root = directory.resolve()
    files = sorted(set(weight_map.values()))
    outside = [f for f in files
               if Path(f).is_absolute() or not (root / f).resolve().is_relative_to(root)]
    if outside:
        raise CheckpointError(f"{directory}: {INDEX_NAME} names shards outside the checkpoint "
                              f"directory: {outside[:5]}")
    return files


def _weight_files(directory: Path) -> list[Path]:
    index = directory / INDEX_NAME
    if index.is_file():
        files = _shard_names(directory)
        missing = [f for f in files if not (directory / f).is_file()]
        if missing:
            raise ModelNotAvailableError(f"{directory}: shards listed in {INDEX_NAME} are "
                                         f"missing: {missing[:5]}")
        return [directory / f for f in files]
    single = directory / WEIGHTS_NAME
    if single.is_file():
        return [single]
    pickles = [p.name for p in directory.glob("*.bin")] + [p.name for p in directory.glob("*.pt")]
    if pickles:
        raise ModelNotAvailableError(
            f"{directory}: only pickle weights ({pickles[:3]}); convert them to safetensors - "
            "pickle files are never loaded")
    raise ModelNotAvailableError(f"{directory}: no {WEIGHTS_NAME} or {INDEX_NAME}")


def load_state_dict(directory: Path, *, device: torch.device | str = "cpu",
                    dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint, floating ones cast to ``dtype``.

    Raises:
        CheckpointError: a weight file that safetensors cannot read (truncated, not
            safetensors), naming the file.
    """
    safetensors = require("safetensors", "loading a checkpoint")
    bad_file = getattr(safetensors, "SafetensorError", OSError)
    out: dict[str, torch.Tensor] = {}
    for file in _weight_files(directory):
        try:
            with safetensors.safe_open(str(file), framework="pt", device=str(device)) as fh:
                for key in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
                    t = fh.get_tensor(key)
                    if dtype is not None and t.is_floating_point():
                        t = t.to(dtype)
                    out[key] = t
        except (bad_file, OSError, ValueError) as exc:
            raise CheckpointError(f"{file}: not a readable safetensors file "
                                  f"({type(exc).__name__}: {exc})") from exc
    return out


def saved_dtype(extra: Mapping[str, Any], directory: Path) -> torch.dtype:
    """The dtype a checkpoint was saved in: its config's ``torch_dtype`` (or transformers 5's
    ``dtype``), float32 when it names none (:func:`parse_torch_dtype` for the spellings)."""
    saved = extra.get("torch_dtype", extra.get("dtype"))
    return torch.float32 if saved is None else parse_torch_dtype(saved, where=directory)


def check_state_keys(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], *,
                     what: str, where: Path | str, optional: Iterable[str] = (),
                     unknown: Iterable[str] = (), hint: str = "") -> None:
    """Strict key check before ``load_state_dict(..., assign=True)``.

    Raises:
        CheckpointError: missing keys (``expected`` - ``found`` - ``optional``), unexpected
            keys (``found`` - ``expected``, plus ``unknown``) or wrong shapes, all listed.
    """
    missing = sorted(set(expected) - set(found) - set(optional))
    unexpected = sorted(set(unknown) | (set(found) - set(expected)))
    shapes = sorted(f"{k}: {tuple(t.shape)} (expected {tuple(expected[k].shape)})"
                    for k, t in found.items() if k in expected and t.shape != expected[k].shape)
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{where}: {what} weights do not match the config: {len(missing)} missing keys "
            f"{missing[:8]}, {len(unexpected)} unexpected keys {unexpected[:8]}, "
            f"{len(shapes)} wrong shapes {shapes[:4]}{hint}")


def _check_keys(expected: Iterable[str], found: Iterable[str], *, tied: bool,
                where: Path) -> None:
    exp, got = set(expected), set(found)
    optional = {_TIED_KEY} if tied else set()
    missing = sorted(exp - got - optional)
    unexpected = sorted(got - exp - optional)
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: checkpoint does not match the config: {len(missing)} missing keys "
            f"{missing[:8]}, {len(unexpected)} unexpected keys {unexpected[:8]}")


def materialise_buffers(model: nn.Module, device: torch.device | str) -> None:
    """Rebuild non-persistent buffers left on ``meta`` (the LLM's rotary tables)."""
    for name, module in list(model.named_modules()):
        if not any(b.is_meta for b in module.buffers(recurse=False)):
            continue
        cfg = getattr(module, "config", None)
        if cfg is None or "Rotary" not in type(module).__name__:
            raise CheckpointError(f"module {name} ({type(module).__name__}) has buffers that are "
                                  "not in the checkpoint and cannot be rebuilt")
        with torch.device(device):
            fresh = type(module)(config=cfg)  # type: ignore[call-arg]
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, fresh)


def load_pretrained(cls: Callable[..., M], path_or_hub_id: str | Path, *,
                    dtype: torch.dtype | None = None, device: torch.device | str = "cpu",
                    attn_impl: str = "sdpa", llm_attn_impl: str = "sdpa",
                    allow_download: bool | None = None) -> M:
    """Load a checkpoint into ``cls`` (:class:`~ovis_model.modeling.OvisModel` or a subclass;
    any :class:`PretrainedModel`).

    Args:
        dtype: parameter dtype. None (the default) = the dtype the checkpoint was saved in:
            ``torch_dtype`` (or transformers 5's ``dtype``) of its config.json, float32 when
            neither is present; an unknown value raises :class:`CheckpointError`. Pass e.g.
            ``torch.float32`` to load in another precision.
        device: where the weights go.
        attn_impl: vision attention backend, resolved for ``device``.
        llm_attn_impl: transformers attention for the LLM.
        allow_download: fetch a hub id that is not cached (None: only when
            ``VIDSEL_ALLOW_DOWNLOAD=1``); see :func:`resolve_checkpoint_dir`.
    """
    directory = resolve_checkpoint_dir(path_or_hub_id, allow_download=allow_download)
    config = OvisConfig.from_json_file(directory / CONFIG_NAME)
    if dtype is None:
        dtype = saved_dtype(config.extra, directory)
    with torch.device("meta"):
        model = cls(config, attn_impl=attn_impl, llm_attn_impl=llm_attn_impl, device=device,
                    dtype=dtype)
    state = load_state_dict(directory, device=device, dtype=dtype)
    tied = config.tie_word_embeddings
    expected = model.state_dict().keys()
    _check_keys(expected, state.keys(), tied=tied, where=directory)
    if tied:
        state.pop(_TIED_KEY, None)
    result = model.load_state_dict(state, strict=False, assign=True)
    leftover = [k for k in result.missing_keys if not (tied and k == _TIED_KEY)]
    if leftover or result.unexpected_keys:
        raise CheckpointError(f"{directory}: keys did not load: {leftover[:8]} "
                                   f"{result.unexpected_keys[:8]}")
    if tied:
        llm: Any = model.llm
        llm.get_output_embeddings().weight = llm.get_input_embeddings().weight
    materialise_buffers(model, device)
    meta = [n for n, p in model.named_parameters() if p.is_meta]
    if meta:
        raise CheckpointError(f"{directory}: parameters left unloaded: {meta[:8]}")
    logger.info("loaded %s (%s, %s, vision attention %s, llm attention %s)", directory, dtype,
                device, attn_impl, llm_attn_impl)
    return model.eval()


def dtype_name(dtype: torch.dtype) -> str:
    """The config.json spelling of a parameter dtype (``"bfloat16"``; float32 for others)."""
    return {v: k for k, v in _DTYPES.items()}.get(dtype, "float32")


def write_safetensors(state: dict[str, torch.Tensor], directory: Path, *,
                      max_shard_size: int = 5 * 2**30) -> int:
    """Write ``state`` as ``model.safetensors``, or as shards plus ``model.safetensors.index.json``
    above ``max_shard_size`` bytes (a stale index is removed); returns the number of files."""
    save_file = require("safetensors.torch", "saving a checkpoint").save_file
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(state):
        nbytes = state[key].numel() * state[key].element_size()
        if shards[-1] and size + nbytes > max_shard_size:
            shards.append({})
            size = 0
        shards[-1][key] = state[key]
        size += nbytes
    meta = {"format": "pt"}
    if len(shards) == 1:
        save_file(shards[0], str(directory / WEIGHTS_NAME), metadata=meta)
        (directory / INDEX_NAME).unlink(missing_ok=True)
        return 1
    weight_map = {}
    total = 0
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(directory / name), metadata=meta)
        for key, t in shard.items():
            weight_map[key] = name
            total += t.numel() * t.element_size()
    with open(directory / INDEX_NAME, "w", encoding="utf-8") as fh:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, fh,
                  indent=2, sort_keys=True)
    return len(shards)


def save_pretrained(model: PretrainedModel, directory: str | Path, *,
                    max_shard_size: int = 5 * 2**30) -> Path:
    """Write ``config.json`` and safetensors (sharded above ``max_shard_size`` bytes)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = model.config
    config.replace(extra={**config.extra, "torch_dtype": dtype_name(model.dtype)}).to_json_file(
        out / CONFIG_NAME)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:
        state.pop(_TIED_KEY, None)
    files = write_safetensors(state, out, max_shard_size=max_shard_size)
    logger.info("saved %s in %d file(s) to %s", type(model).__name__, files, out)
    return out
