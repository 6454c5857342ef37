"""The built-in model backends of :data:`vidsel.eval.ANSWERERS` that live in vidsel:
``hf:DIR_OR_ID`` (transformers), ``vllm:DIR_OR_ID`` (vLLM's offline engine) and ``ovis:DIR``
(ovis_model, imported on demand as a plugin: it sits above vidsel). (``py:`` is registered next
to the registry, in ``_answerer``.)"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .._validate import unknown_keywords
from ..errors import InvalidArgumentError
from ..optional import require
from ._answerer import Answerer, AnswererSpec, register_answerer
from ._hf import HFAnswerer
from ._vllm import VLLMAnswerer

__all__ = ["check_device", "check_model", "check_options"]


def check_options(kind: str, loader: Callable[..., Any], options: Mapping[str, Any]) -> None:
    """Refuse backend options ``loader`` does not take (before any model is loaded).

    Raises:
        InvalidArgumentError: naming the unknown options and listing the accepted ones.
    """
    unknown, accepted = unknown_keywords(loader, options, skip=1)
    if unknown:
        raise InvalidArgumentError(f"the {kind} backend does not take the option(s) "
                                   f"{', '.join(unknown)}; it takes {', '.join(accepted)}")


def check_device(kind: str, options: Mapping[str, Any]) -> None:
    """Refuse ``device="cuda..."`` on a machine where torch sees no GPU, before loading.

    Raises:
        InvalidArgumentError: naming the device and what to use instead.
    """
    device = options.get("device")
    if not isinstance(device, str) or not device.startswith("cuda"):
        return
    torch = require("torch", f"the {kind} backend", extra="model")
    index = int(device.split(":", 1)[1]) if ":" in device and device.split(":", 1)[1].isdigit() \
        else 0
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        raise InvalidArgumentError(
            f"device={device!r}: torch sees {torch.cuda.device_count()} CUDA device(s) here; "
            f"use device=cpu (--model-option device=cpu, --replicas cpu,cpu) or run where the "
            f"GPU is")


@register_answerer("hf")
def _hf(target: str, **options: Any) -> Answerer:
    """``hf:DIR_OR_HUB_ID``: AutoProcessor + AutoModelForImageTextToText."""
    check_options("hf", HFAnswerer.from_pretrained, options)
    check_device("hf", options)
    return HFAnswerer.from_pretrained(target, **options)


@register_answerer("vllm")
def _vllm(target: str, **options: Any) -> Answerer:
    """``vllm:DIR_OR_HUB_ID``: offline generation with vLLM (extra ``vllm``)."""
    check_options("vllm", VLLMAnswerer.from_pretrained, options)
    return VLLMAnswerer.from_pretrained(target, **options)


@register_answerer("ovis")
def _ovis(target: str, **options: Any) -> Answerer:
    """``ovis:DIR``: an Ovis2.5-format checkpoint through ovis_model (extra ``model``)."""
    mod = require("ovis_model.answerer", f"the model spec ovis:{target}", extra="model",
                  needs="ovis_model (torch, transformers, safetensors)")
    check_options("ovis", mod.OvisAnswerer.from_pretrained, options)
    check_device("ovis", options)
    answerer: Answerer = mod.OvisAnswerer.from_pretrained(target, **options)
    return answerer


def check_model(spec: str, options: Mapping[str, Any]) -> None:
    """Check a model spec and its backend options without loading anything (the command
    line's usage checks): the backend exists, takes these options, and a CUDA device asked
    for is there.

    Raises:
        InvalidArgumentError: an unknown backend or option, a device that is not there.
    """
    parsed = AnswererSpec.parse(spec)
    if parsed.kind == "vllm" and "device" in options:
        raise InvalidArgumentError(
            f"device={options['device']!r}: the vllm answerer {spec} takes no device (vLLM "
            f"places the model itself); choose its GPUs with CUDA_VISIBLE_DEVICES and spread "
            f"it over several with tensor_parallel_size=N (vidsel eval: --model-option "
            f"tensor_parallel_size=N, or one replica per GPU with --replicas cuda:0,cuda:1; "
            f"lmms-eval: drop --device / model.device, set model.tensor_parallel_size=N)")
    loaders: dict[str, Callable[..., Any]] = {"hf": HFAnswerer.from_pretrained,
                                               "vllm": VLLMAnswerer.from_pretrained}
    if parsed.kind in loaders:
        check_options(parsed.kind, loaders[parsed.kind], options)
    check_device(parsed.kind, options)
