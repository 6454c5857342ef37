"""ovis_model: an Ovis2.5-format video model with shared (t, h, w) patch positions.

Loads real Ovis2.5 checkpoints (config.json + safetensors, no remote code), runs the vision
encoder over packed patches of images, frames or codec samples with per-patch (t, h, w) positions
and a choice of attention backends, and answers / grounds questions about videos.

Heavy pieces (transformers, the LLM, optional kernels) load only when used.
"""

from __future__ import annotations

from .attention import ATTENTION_BACKENDS, available_attention_backends, resolve_attention_backend
from .checkpoint import CheckpointError
from .config import PRESETS, OvisConfig, VisionConfig, preset
from .constants import INDICATOR_IDS, VISUAL_ATOM_ID
from .metrics import grounding_metrics, mcq_accuracy, temporal_iou
from .modeling import OvisModel
from .parsing import extract_choice, parse_time_span
from .preprocessing import ImageProcessorConfig, smart_resize
from .processor import ByteTokenizer, HFTokenizer, OvisProcessor, ProcessorOutput, TokenBudget
from .tasks import AnswerResult, GroundingResult, answer, ground
from .vision import VisionEncoder

__all__ = [
    "ATTENTION_BACKENDS",
    "INDICATOR_IDS",
    "PRESETS",
    "VISUAL_ATOM_ID",
    "AnswerResult",
    "ByteTokenizer",
    "CheckpointError",
    "GroundingResult",
    "HFTokenizer",
    "ImageProcessorConfig",
    "OvisConfig",
    "OvisModel",
    "OvisProcessor",
    "ProcessorOutput",
    "TokenBudget",
    "VisionConfig",
    "VisionEncoder",
    "answer",
    "available_attention_backends",
    "extract_choice",
    "ground",
    "grounding_metrics",
    "mcq_accuracy",
    "parse_time_span",
    "preset",
    "resolve_attention_backend",
    "smart_resize",
    "temporal_iou",
]
