"""LLaVA-OneVision-2 natively: released checkpoints without remote code.

OneVision-Encoder tower (:class:`~ovis_model.VisionEncoder`, 3-D rotary on explicit per-patch
``(t, h, w)``), the 2 x 2 patch merger, and the Qwen3 LLM from transformers; the released chat
prompt with ``<t seconds>`` tags per frame / per run of codec patches.

Modules: ``config`` (:class:`LlavaOV2Config`, presets) -> ``modeling``
(:class:`LlavaOneVision2Model`) and ``checkpoint`` (released key layout) -> ``processor``
(:class:`LlavaOV2Processor`).
"""

from __future__ import annotations

from .config import LLAVA_OV2_PRESETS, MODEL_TYPE, LlavaOV2Config, llava_ov2_preset
from .modeling import LlavaOneVision2Model, OV2VisualOutput, PatchMerger, window_cu_seqlens
from .processor import DEFAULT_SYSTEM, LlavaOV2Processor, ov2_image_config

__all__ = [
    "DEFAULT_SYSTEM",
    "LLAVA_OV2_PRESETS",
    "MODEL_TYPE",
    "LlavaOV2Config",
    "LlavaOV2Processor",
    "LlavaOneVision2Model",
    "OV2VisualOutput",
    "PatchMerger",
    "llava_ov2_preset",
    "ov2_image_config",
    "window_cu_seqlens",
]
