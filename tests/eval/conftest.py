"""Tiny random-weight transformers VLMs for the eval tests, built offline once per session.

``tiny_hf_dirs`` maps a family (``config.model_type``) to a saved model folder: a 2-layer model
built from its config (random weights, d = 32), its processor with small frame limits, and a
byte-level tokenizer built here holding the models' special tokens, with a chat template in
the official layout of the family. ``HFAnswerer.from_pretrained(folder)`` loads these through
the real transformers path (AutoConfig / AutoProcessor / AutoModelForImageTextToText).
``frames_input`` / ``patches_input`` build the visual inputs the runner gives a model, here of
``video``, a short synthetic clip (test modules may override it).

Frame limits (what a 64 x 96 synthetic video becomes):

- ``qwen2_vl`` / ``qwen2_5_vl``: patch 14, merge 2, 4..16 tokens per frame (56 x 84 frames,
  2 x 3 tokens per temporal pair of frames);
- ``qwen3_vl``: patch 16, merge 2, the clip's pixels bounded as a whole (t x h x w <= 32 * 32 *
  64): up to 8 frames keep 64 x 96, more frames get smaller;
- ``llava_onevision``: a 56 x 56 SigLIP (4 x 4 patches, 16 image tokens), frames resized to
  56 x 56 and pooled to 2 x 2 tokens, multi-image canvases 17 tokens each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from vidsel.eval import VisualInput
from vidsel.io import VideoReader
from vidsel.methods import run_method
from vidsel.results import PatchConfig
from vidsel.synth import make_video

#: the tokenizer's special tokens (ids 256.. in this order, after the 256 byte symbols)
SPECIALS = ["<|im_end|>", "<|endoftext|>", "<|im_start|>", "<|vision_start|>", "<|vision_end|>",
            "<|video_pad|>", "<|image_pad|>", "<image>", "<video>"]
VOCAB = 320
HF_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_onevision")


@pytest.fixture(scope="session")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s, 96 x 64 clip of a moving box: 24 frames at 8 fps, a keyframe every 8."""
    path = tmp_path_factory.mktemp("box_video") / "box.mp4"
    make_video(path, scene="moving_box", num_frames=24, fps=8, width=96, height=64, gop=8)
    return path


def frames_input(path: Path, geometry: PatchConfig, budget: int) -> VisualInput:
    """What the runner gives a model: a uniform selection's frames at the model's frame size
    (resized where the video's differs), with their true times."""
    sel = run_method("uniform", path, budget=budget, geometry=geometry)
    with VideoReader(path) as reader:
        meta = reader.metadata
        frames = np.asarray(reader.get_frames([int(i) for i in sel.indices]))
    h, w = geometry.frame_size
    if frames.shape[1:3] != (h, w):
        frames = np.stack([np.asarray(Image.fromarray(f).resize((w, h))) for f in frames])
    return VisualInput(kind="frames", path=str(path), selection=sel,
                       timestamps_s=np.asarray(sel.timestamps_s),
                       frame_indices=np.asarray(sel.indices), source_fps=meta.fps,
                       num_frames=meta.num_frames, duration_s=meta.duration_s, frames=frames)


def patches_input(path: Path, geometry: PatchConfig, budget: int) -> VisualInput:
    """What the runner gives a model: a codec selection's patches with their source times."""
    sel = run_method("codec", path, budget=budget, geometry=geometry)
    with VideoReader(path) as reader:
        meta = reader.metadata
    return VisualInput(kind="patches", path=str(path), selection=sel,
                       timestamps_s=sel.source_timestamps_s, frame_indices=sel.source_frames,
                       source_fps=meta.fps, num_frames=meta.num_frames,
                       duration_s=meta.duration_s, patches=sel)

#: Qwen2-VL / Qwen2.5-VL / Qwen3-VL chat layout: items in order, vision wrapped in
#: <|vision_start|> ... <|vision_end|>.
QWEN_TEMPLATE = (
    "{%- for message in messages -%}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor -%}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif -%}"
)
#: LLaVA-OneVision's layout: every image first, then videos, then the text items.
LLAVA_OV_TEMPLATE = (
    "{%- for message in messages -%}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'image') %}<image>\n"
    "{% endfor %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'video') %}<video>\n"
    "{% endfor %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}{{ c['text'] }}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor -%}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif -%}"
)


def tiny_vlm_tokenizer() -> Any:
    """Byte-level BPE without merges (any text round-trips) plus the VLM special tokens;
    pads on the left, ends turns with ``<|im_end|>``."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=SPECIALS[2:], padding_side="left")


def _text_config(ids: dict[str, int], **extra: Any) -> dict[str, Any]:
    cfg = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
               pad_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
               bos_token_id=None, initializer_range=0.5)
    cfg.update(extra)
    return cfg


def _qwen_ids(ids: dict[str, int]) -> dict[str, int]:
    return {"image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"],
            "vision_start_token_id": ids["<|vision_start|>"],
            "vision_end_token_id": ids["<|vision_end|>"]}


def _build(family: str, tok: Any) -> tuple[Any, Any]:
    """(model, processor) of a tiny ``family``."""
    import transformers as tf

    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    mrope = {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0}
    if family in ("qwen2_vl", "qwen2_5_vl"):
        if family == "qwen2_vl":
            config_cls, proc_cls = tf.Qwen2VLConfig, tf.Qwen2VLProcessor
            vision = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2)
        else:
            config_cls, proc_cls = tf.Qwen2_5_VLConfig, tf.Qwen2_5_VLProcessor
            vision = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2,
                          out_hidden_size=32, window_size=56, fullatt_block_indexes=[1],
                          tokens_per_second=2)
        vision.update(patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
                      initializer_range=0.5)
        config = config_cls(text_config=_text_config(ids, rope_parameters=mrope),
                            vision_config=vision, **_qwen_ids(ids))
        processor = proc_cls(
            image_processor=tf.Qwen2VLImageProcessor(min_pixels=28 * 28 * 4,
                                                     max_pixels=28 * 28 * 64),
            video_processor=tf.Qwen2VLVideoProcessor(min_pixels=28 * 28 * 4,
                                                     max_pixels=28 * 28 * 16),
            tokenizer=tok, chat_template=QWEN_TEMPLATE)
    elif family == "qwen3_vl":
        config = tf.Qwen3VLConfig(
            text_config=_text_config(ids, head_dim=16,
                                     rope_parameters={**mrope, "mrope_interleaved": True}),
            vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2,
                               patch_size=16, spatial_merge_size=2, temporal_patch_size=2,
                               out_hidden_size=32, num_position_embeddings=64,
                               deepstack_visual_indexes=[1], initializer_range=0.5),
            **_qwen_ids(ids))
        processor = tf.Qwen3VLProcessor(
            image_processor=tf.Qwen2VLImageProcessor(patch_size=16, min_pixels=32 * 32 * 4,
                                                     max_pixels=32 * 32 * 64),
            video_processor=tf.Qwen3VLVideoProcessor(
                size={"shortest_edge": 32 * 32 * 8, "longest_edge": 32 * 32 * 64}),
            tokenizer=tok, chat_template=QWEN_TEMPLATE)
    elif family == "llava_onevision":
        pinpoints = [[56, 56], [56, 112], [112, 56], [112, 112]]
        config = tf.LlavaOnevisionConfig(
            text_config=dict(model_type="qwen2", **_text_config(ids)),
            vision_config=dict(model_type="siglip_vision_model", hidden_size=32,
                               intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                               image_size=56, patch_size=14, vision_use_head=False),
            image_token_index=ids["<image>"], video_token_index=ids["<video>"],
            image_grid_pinpoints=pinpoints, vision_feature_layer=-1)
        processor = tf.LlavaOnevisionProcessor(
            image_processor=tf.LlavaOnevisionImageProcessor(size={"height": 56, "width": 56},
                                                            image_grid_pinpoints=pinpoints),
            video_processor=tf.LlavaOnevisionVideoProcessor(size={"height": 56, "width": 56}),
            tokenizer=tok, num_image_tokens=16, vision_feature_select_strategy="full",
            chat_template=LLAVA_OV_TEMPLATE)
    else:  # pragma: no cover - test set-up
        raise KeyError(family)
    return tf.AutoModelForImageTextToText.from_config(config), processor


def build_tiny_vlm(family: str, folder: Path, *, seed: int = 0) -> Path:
    """Save a tiny random ``family`` model, its processor and tokenizer to ``folder``."""
    import torch

    torch.manual_seed(seed)
    model, processor = _build(family, tiny_vlm_tokenizer())
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_hf_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{family: folder}`` for ``qwen2_vl``, ``qwen2_5_vl``, ``qwen3_vl`` and
    ``llava_onevision``: each a saved tiny random-weight model for
    ``HFAnswerer.from_pretrained(folder)`` (or the ``hf:FOLDER`` model spec)."""
    pytest.importorskip("transformers")
    pytest.importorskip("torchvision")
    root = tmp_path_factory.mktemp("tiny_hf")
    return {family: build_tiny_vlm(family, root / family) for family in HF_FAMILIES}
