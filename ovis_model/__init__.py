"""ovis_model: video models with shared (t, h, w) patch positions, natively.

Loads real Ovis2.5 and LLaVA-OneVision-2 checkpoints and public OneVision-Encoder towers
(config.json + safetensors, no remote code; :func:`load_model` / :func:`load_processor` pick the
class from ``model_type``), runs the vision encoder over packed patches of images, frames or codec
samples with per-patch (t, h, w) positions and a choice of attention backends, and answers /
grounds questions about videos.

Needs the ``model`` extra (``pip install 'vidsel[model]'``: torch, transformers, safetensors);
transformers, safetensors and optional kernels load only when used. Every error raised on
purpose is an :class:`OvisError` (:mod:`ovis_model.errors`).

Modules, bottom to top: ``errors``, ``constants``, ``config`` -> ``positions``, ``attention``,
``preprocessing`` -> ``checkpoint`` -> ``onevision_encoder`` -> ``vision`` -> ``visual_tokenizer``
-> ``modeling``; ``tokenizers``, ``budget`` -> ``processor`` -> ``llava_ov2`` (config, modeling,
checkpoint, processor) -> ``auto`` -> ``tasks`` (which calls :mod:`vidsel.methods`).
"""

from __future__ import annotations

from .errors import (
    CheckpointError,
    InvalidArgumentError,
    MissingDependencyError,
    ModelNotAvailableError,
    OvisError,
)

try:
    import torch as _torch  # noqa: F401
except ImportError as _exc:  # pragma: no cover - depends on the install
    raise MissingDependencyError("ovis_model needs torch: pip install 'vidsel[model]'") from _exc

from .answerer import OvisAnswerer
from .attention import (
    ATTENTION_BACKENDS,
    available_attention_backends,
    register_attention_backend,
    resolve_attention_backend,
)
from .auto import load_model, load_processor
from .budget import TokenBudget
from .config import PRESETS, OvisConfig, VisionConfig, preset
from .constants import INDICATOR_IDS, VISUAL_ATOM_ID
from .llava_ov2 import (
    LLAVA_OV2_PRESETS,
    LlavaOneVision2Model,
    LlavaOV2Config,
    LlavaOV2Processor,
    llava_ov2_preset,
)
from .metrics import grounding_metrics, mcq_accuracy, temporal_iou
from .modeling import OvisModel
from .parsing import extract_choice, parse_time_span
from .preprocessing import ImageProcessorConfig, smart_resize
from .processor import OvisProcessor, ProcessorOutput
from .tasks import AnswerResult, GroundingResult, answer, gather_visual, ground
from .tokenizers import ByteTokenizer, HFTokenizer, TextTokenizer
from .vision import VisionEncoder

__all__ = [
    "ATTENTION_BACKENDS",
    "INDICATOR_IDS",
    "LLAVA_OV2_PRESETS",
    "PRESETS",
    "VISUAL_ATOM_ID",
    "AnswerResult",
    "ByteTokenizer",
    "CheckpointError",
    "GroundingResult",
    "HFTokenizer",
    "ImageProcessorConfig",
    "InvalidArgumentError",
    "LlavaOV2Config",
    "LlavaOV2Processor",
    "LlavaOneVision2Model",
    "MissingDependencyError",
    "ModelNotAvailableError",
    "OvisAnswerer",
    "OvisConfig",
    "OvisError",
    "OvisModel",
    "OvisProcessor",
    "ProcessorOutput",
    "TextTokenizer",
    "TokenBudget",
    "VisionConfig",
    "VisionEncoder",
    "answer",
    "available_attention_backends",
    "extract_choice",
    "gather_visual",
    "ground",
    "grounding_metrics",
    "llava_ov2_preset",
    "load_model",
    "load_processor",
    "mcq_accuracy",
    "parse_time_span",
    "preset",
    "register_attention_backend",
    "resolve_attention_backend",
    "smart_resize",
    "temporal_iou",
]
