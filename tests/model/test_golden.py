"""Parity with the official Ovis2.5 implementation on the golden tiny checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

CASES = ["image", "video", "multi_image"]


def _load(golden_dir, case):
    from safetensors.torch import load_file

    return (load_file(str(golden_dir / f"inputs_{case}.safetensors")),
            load_file(str(golden_dir / f"expected_{case}.safetensors")))


def _maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_official(golden_dir, golden_model, case):
    inp, exp = _load(golden_dir, case)
    with torch.no_grad():
        vt = golden_model.encode_visual(inp["pixel_values"], inp["grid_thws"],
                                        output_hidden_states=True)
        embeds = golden_model.merge_multimodal(inp["input_ids"], vt.tokens)
        out = golden_model(inp["input_ids"], inp["attention_mask"], inp["pixel_values"],
                           inp["grid_thws"], output_hidden_states=True)
    assert _maxdiff(vt.vision.patch_embeds, exp["vit_patch_embeds"]) < 1e-5
    for mine, ref in zip(vt.vision.hidden_states, exp["vit_hidden_states"]):
        assert _maxdiff(mine, ref) < 1e-5
    post = vt.vision.post_layernorm(golden_model.visual_tokenizer.vit)
    assert _maxdiff(post, exp["vit_last_hidden_state_post_layernorm"]) < 1e-4
    assert _maxdiff(vt.features, exp["vit_features"]) < 1e-5
    assert _maxdiff(vt.head_logits, exp["visual_head_logits"]) < 1e-4
    assert _maxdiff(vt.tokens, exp["visual_tokens"]) < 1e-5
    assert _maxdiff(embeds, exp["inputs_embeds"]) < 1e-5
    torch.testing.assert_close(out.logits, exp["logits"], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(torch.stack(out.hidden_states), exp["llm_hidden_states"],
                               atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_preprocessing_matches_official(golden_dir, case):
    from ovis_model import ByteTokenizer, ImageProcessorConfig, OvisProcessor
    from ovis_model.config import OvisConfig

    inp, _ = _load(golden_dir, case)
    meta = json.loads((golden_dir / "manifest.json").read_text())["cases"][case]
    cfg = OvisConfig.from_json_file(golden_dir / "model" / "config.json")
    proc = OvisProcessor(ByteTokenizer(), cfg.vit_config,
                         image_config=ImageProcessorConfig.from_pretrained(golden_dir / "model"),
                         video_layout="ovis")
    lim = {"min_pixels": meta["min_pixels"], "max_pixels": meta["max_pixels"]}
    if case == "multi_image":
        images = [proc.pack_image(inp[f"raw_image{i}_uint8"].numpy(), **lim) for i in range(2)]
        video = None
    elif case == "image":
        images = [proc.pack_image(inp["raw_frames_uint8"].numpy()[0], **lim)]
        video = None
    else:
        images = []
        video = proc.pack_video(list(inp["raw_frames_uint8"].numpy()), **lim)
    packed = images + ([video] if video is not None else [])
    pixel_values = torch.cat([p.pixel_values for p in packed])
    assert torch.equal(pixel_values, inp["pixel_values"])  # bit-exact
    assert [list(p.grid_thw) for p in packed] == inp["grid_thws"].tolist()
    ids = proc.expand_placeholders(meta["raw_input_ids"], images, video)
    assert ids == inp["input_ids"][0].tolist() == meta["input_ids"]


def test_processor_positions_reproduce_official_layout(golden_dir, golden_model):
    """Explicit positions/segments from the processor path give the official result."""
    from ovis_model.positions import layout_from_grids

    inp, exp = _load(golden_dir, "video")
    pos, grids, cu = layout_from_grids(inp["grid_thws"], 2)
    assert cu.tolist() == [0, 24, 48, 72]  # one segment per frame
    with torch.no_grad():
        vt = golden_model.encode_visual(inp["pixel_values"], positions=pos, cu_seqlens=cu,
                                        frame_grids=grids)
    assert _maxdiff(vt.tokens, exp["visual_tokens"]) < 1e-5
