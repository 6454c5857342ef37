"""LLaVA-OneVision-2 natively against the public implementation's recorded outputs.

``tests/model/golden/llava_onevision2_tiny`` (README there) holds a tiny random checkpoint in the
released format and what the public Hugging Face remote code computed on it (float32, eager):
vision features, merged vision tokens and full-sequence logits for an image, four uniform frames
and codec canvases. Our loader, encoder, merger, LLM wiring and processor must reproduce them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from ovis_model import available_attention_backends
from ovis_model.llava_ov2 import (
    LlavaOneVision2Model,
    LlavaOV2Config,
    LlavaOV2Processor,
    ov2_image_config,
    window_cu_seqlens,
)

GOLDEN = Path(__file__).parent / "golden" / "llava_onevision2_tiny"
CASES = ("image", "video", "codec")
#: the golden's toy tokenizer: these specials by id, every other character by its code point
SPECIALS = {"<|vision_start|>": 240, "<|vision_end|>": 241, "<|image_pad|>": 242,
            "<|video_pad|>": 243, "<|im_start|>": 244, "<|im_end|>": 245, "<|endoftext|>": 246}


class CharTokenizer:
    """The golden's tokenizer: specials by id, any other character as ``ord(c)``."""

    eos_token_id: int | None = 245
    pad_token_id: int | None = 246

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        i = 0
        while i < len(text):
            for tok, tid in SPECIALS.items():
                if text.startswith(tok, i):
                    ids.append(tid)
                    i += len(tok)
                    break
            else:
                ids.append(ord(text[i]))
                i += 1
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids if i < 240)


def _load(case: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    return (load_file(str(GOLDEN / f"inputs_{case}.safetensors")),
            load_file(str(GOLDEN / f"expected_{case}.safetensors")))


@pytest.fixture(scope="module")
def model() -> LlavaOneVision2Model:
    return LlavaOneVision2Model.from_pretrained(GOLDEN / "model", dtype=torch.float32,
                                                llm_attn_impl="eager")


@pytest.fixture(scope="module")
def processor() -> LlavaOV2Processor:
    config = LlavaOV2Config.from_json_file(GOLDEN / "model" / "config.json")
    # the golden's frames are multiples of 28: no resize at these limits
    return LlavaOV2Processor(CharTokenizer(), config,
                             image_config=ov2_image_config(min_pixels=28 * 28,
                                                           max_pixels=56 * 84,
                                                           video_min_pixels=28 * 28,
                                                           video_max_pixels=56 * 56))


def test_config_reads_the_released_fields(model):
    cfg = model.config
    assert cfg.spatial_merge_size == 2 and cfg.frame_windows_size == 4
    assert (cfg.image_token_id, cfg.video_token_id) == (242, 243)
    assert (cfg.vision_start_token_id, cfg.vision_end_token_id) == (240, 241)
    assert cfg.vision.position_scheme == "rope3d" and cfg.vision.pre_layernorm
    assert not cfg.vision.patch_bias and not cfg.vision.use_head
    assert cfg.out_hidden_size == 64 and not cfg.tie_word_embeddings


@pytest.mark.parametrize("backend", available_attention_backends("cpu", torch.float32))
@pytest.mark.parametrize("case", CASES)
def test_vision_tokens_match_public_code(model, case, backend):
    inputs, expected = _load(case)
    model.visual.set_attn_impl(backend, "cpu", torch.float32)
    try:
        with torch.no_grad():
            out = model.encode_visual(inputs["pixel_values"], inputs["image_grid_thw"],
                                      positions=inputs["patch_positions"])
    finally:
        model.visual.set_attn_impl("sdpa", "cpu", torch.float32)
    torch.testing.assert_close(out.features, expected["vision_features_pre_merger"],
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(out.tokens, expected["vision_tokens"], atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def model_sdpa_llm() -> LlavaOneVision2Model:
    return LlavaOneVision2Model.from_pretrained(GOLDEN / "model", dtype=torch.float32,
                                                llm_attn_impl="sdpa")


@pytest.mark.parametrize("llm_attn", ["eager", "sdpa"])
@pytest.mark.parametrize("case", CASES)
def test_logits_match_public_code(model, model_sdpa_llm, case, llm_attn):
    inputs, expected = _load(case)
    ids = inputs["input_ids"]
    m = model if llm_attn == "eager" else model_sdpa_llm
    with torch.no_grad():
        logits = m(ids, torch.ones_like(ids), inputs["pixel_values"],
                   inputs["image_grid_thw"], positions=inputs["patch_positions"]).logits[0]
    torch.testing.assert_close(logits, expected["logits"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_any_packed_order_gives_the_same_tokens(model, case):
    """Segments in reverse order and visual tokens reversed inside each segment: every
    token's value is unchanged once mapped back (positions travel with their patches)."""
    inputs, expected = _load(case)
    cu = window_cu_seqlens(inputs["image_grid_thw"], 4).tolist()
    unit = 4
    order: list[int] = []  # new token order, as old token indices
    new_cu = [0]
    for a, b in reversed(list(itertools.pairwise(cu))):
        order += list(range(b // unit - 1, a // unit - 1, -1))
        new_cu.append(new_cu[-1] + b - a)
    rows = torch.tensor([t * unit + j for t in order for j in range(unit)])
    with torch.no_grad():
        out = model.encode_visual(inputs["pixel_values"][rows],
                                  positions=inputs["patch_positions"][rows],
                                  cu_seqlens=torch.tensor(new_cu, dtype=torch.int32))
    torch.testing.assert_close(out.tokens, expected["vision_tokens"][torch.tensor(order)],
                               atol=1e-5, rtol=0)


def test_segmentation_is_really_checked(model):
    """The codec canvases as six separate segments (not windows of four) move the tokens:
    the comparisons above would catch a wrong window rule."""
    inputs, expected = _load("codec")
    per_canvas = torch.arange(0, 49, 8, dtype=torch.int32)
    with torch.no_grad():
        out = model.encode_visual(inputs["pixel_values"], positions=inputs["patch_positions"],
                                  cu_seqlens=per_canvas)
    assert (out.tokens - expected["vision_tokens"]).abs().max() > 1e-2


def test_processor_builds_the_public_image_prompt_and_pixels(model, processor):
    inputs, expected = _load("image")
    out = processor("What is this?", images=[inputs["raw_pixels_uint8"][0].numpy()])
    assert out.input_ids.tolist() == inputs["input_ids"].tolist()
    torch.testing.assert_close(out.pixel_values, inputs["pixel_values"], atol=1e-6, rtol=0)
    assert torch.equal(out.positions, inputs["patch_positions"])
    assert out.cu_seqlens.tolist() == [0, 24]
    assert out.budget.visual_tokens == 6 and out.budget.indicator_tokens == 2
    with torch.no_grad():
        logits = model(**out.model_inputs()).logits[0]
    torch.testing.assert_close(logits, expected["logits"], atol=1e-4, rtol=0)


def test_processor_builds_the_public_video_prompt(model, processor):
    """Four uniform frames with their source indices and times: the released per-frame prompt
    (``<t seconds>`` + block, no separator), per-frame attention, t = source frame index."""
    inputs, expected = _load("video")
    out = processor("Describe the video.", video=inputs["raw_pixels_uint8"].numpy(),
                    timestamps_s=inputs["frame_seconds"].tolist(),
                    frame_indices=inputs["frame_indices"].tolist())
    assert out.input_ids.tolist() == inputs["input_ids"].tolist()
    torch.testing.assert_close(out.pixel_values, inputs["pixel_values"], atol=1e-6, rtol=0)
    assert torch.equal(out.positions, inputs["patch_positions"])
    assert out.cu_seqlens.tolist() == [0, 16, 32, 48, 64]
    # one [1, h, w] row per frame, as the released processor: its window rule gives the same
    assert out.grid_thws.tolist() == inputs["image_grid_thw"].tolist()
    assert window_cu_seqlens(out.grid_thws, 4).tolist() == out.cu_seqlens.tolist()
    assert out.timestamps_s == pytest.approx(inputs["frame_seconds"].tolist())
    assert out.budget.visual_tokens == 16 and out.budget.source_frames == 4
    with torch.no_grad():
        logits = model(**out.model_inputs()).logits[0]
    torch.testing.assert_close(logits, expected["logits"], atol=1e-4, rtol=0)
