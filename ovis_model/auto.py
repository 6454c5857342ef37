"""Load any checkpoint family ovis_model runs, chosen by its ``config.json``'s ``model_type``.

* ``"ovis2_5"`` / ``"ovis"`` -> :class:`~ovis_model.OvisModel` + :class:`~ovis_model.OvisProcessor`
* ``"llava_onevision2"`` -> :class:`~ovis_model.LlavaOneVision2Model` +
  :class:`~ovis_model.LlavaOV2Processor`

Both pairs take the same calls: ``answer`` / ``ground``, the ``ovis:DIR`` answerer of
``vidsel eval``, ``model.generate(**processor(...).model_inputs())``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CONFIG_NAME, resolve_checkpoint_dir
from .errors import CheckpointError
from .llava_ov2 import MODEL_TYPE as LLAVA_OV2
from .llava_ov2 import LlavaOneVision2Model, LlavaOV2Processor
from .modeling import OvisModel
from .processor import OvisProcessor

__all__ = ["MODEL_TYPES", "checkpoint_model_type", "load_model", "load_processor"]

_OVIS = ("ovis2_5", "ovis")
#: the ``model_type`` values :func:`load_model` reads
MODEL_TYPES = (*_OVIS, LLAVA_OV2)


def checkpoint_model_type(path_or_hub_id: str | Path, *,
                          allow_download: bool | None = None) -> tuple[Path, str]:
    """(local folder, ``model_type``) of a checkpoint folder or hub id.

    Raises:
        ModelNotAvailableError: no such folder / a hub id not cached and not downloadable.
        CheckpointError: a ``model_type`` ovis_model does not run (the message lists them).
    """
    directory = resolve_checkpoint_dir(path_or_hub_id, allow_download=allow_download)
    try:
        with open(directory / CONFIG_NAME, encoding="utf-8") as fh:
            model_type = json.load(fh).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
        raise CheckpointError(f"{directory}: {CONFIG_NAME} is not a JSON object ({exc})") from exc
    if model_type not in MODEL_TYPES:
        raise CheckpointError(f"{directory}: model_type={model_type!r} is not one ovis_model "
                              f"runs; supported: {list(MODEL_TYPES)}")
    return directory, str(model_type)


def load_model(path_or_hub_id: str | Path, *, dtype: torch.dtype | None = None,
               device: torch.device | str = "cpu", attn_impl: str = "sdpa",
               llm_attn_impl: str = "sdpa",
               allow_download: bool | None = None) -> OvisModel | LlavaOneVision2Model:
    """The checkpoint's model class, loaded (arguments as
    :meth:`ovis_model.OvisModel.from_pretrained`)."""
    directory, model_type = checkpoint_model_type(path_or_hub_id, allow_download=allow_download)
    cls: Any = LlavaOneVision2Model if model_type == LLAVA_OV2 else OvisModel
    return cls.from_pretrained(directory, dtype=dtype, device=device,  # type: ignore[no-any-return]
                               attn_impl=attn_impl, llm_attn_impl=llm_attn_impl)


def load_processor(path_or_hub_id: str | Path, *, allow_download: bool | None = None,
                   **kwargs: Any) -> OvisProcessor | LlavaOV2Processor:
    """The checkpoint's processor (its tokenizer, preprocessor config and prompt format)."""
    directory, model_type = checkpoint_model_type(path_or_hub_id, allow_download=allow_download)
    if model_type == LLAVA_OV2:
        return LlavaOV2Processor.from_pretrained(directory, **kwargs)
    return OvisProcessor.from_pretrained(directory, **kwargs)
