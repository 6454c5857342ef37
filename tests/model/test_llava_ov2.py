"""LLaVA-OneVision-2 natively: config, released checkpoint layout, merger, processor, and
``answer`` / ``ground`` / the ``ovis:DIR`` answerer end to end with uniform frames and codec
patches on a tiny random model (built from the ``tiny-llava-ov2`` preset; only the weights are
random)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ovis_model import ByteTokenizer, answer, ground, load_model, load_processor
from ovis_model.errors import CheckpointError
from ovis_model.llava_ov2 import (
    LlavaOneVision2Model,
    LlavaOV2Config,
    LlavaOV2Processor,
    llava_ov2_preset,
    ov2_image_config,
    window_cu_seqlens,
)
from vidsel.errors import InvalidArgumentError, ModelNotAvailableError
from vidsel.eval import Request, load_answerer
from vidsel.methods import run_method

GOLDEN_CONFIG = Path(__file__).parent / "golden" / "llava_onevision2_tiny" / "model" / "config.json"
SMALL_FRAMES = {"video_min_pixels": 28 * 28, "video_max_pixels": 56 * 84}


@pytest.fixture(scope="module")
def tiny() -> LlavaOneVision2Model:
    return LlavaOneVision2Model.from_config(llava_ov2_preset("tiny-llava-ov2"), seed=0)


@pytest.fixture(scope="module")
def tiny_proc(tiny) -> LlavaOV2Processor:
    return LlavaOV2Processor(ByteTokenizer(), tiny.config,
                             image_config=ov2_image_config(**SMALL_FRAMES))


@pytest.fixture(scope="module")
def tiny_dir(tiny_llava_ov2_dir) -> Path:
    """The ``tiny`` model (same seed) saved in the released layout (tests/conftest.py)."""
    return tiny_llava_ov2_dir


# config ---------------------------------------------------------------------------------------
def test_config_round_trips_the_released_file():
    raw = json.loads(GOLDEN_CONFIG.read_text())
    cfg = LlavaOV2Config.from_dict(raw)
    again = LlavaOV2Config.from_dict(cfg.to_dict())
    assert again == cfg
    out = cfg.to_dict()
    assert out["model_type"] == "llava_onevision2" and "auto_map" not in out
    assert out["vision_config"]["spatial_merge_size"] == 2
    assert out["vision_config"]["frame_windows_size"] == 4
    assert out["text_config"] == raw["text_config"]


@pytest.mark.parametrize(("change", "match"), [
    ({"text_config": {"model_type": "llama", "hidden_size": 64}}, "text_config.model_type"),
    ({"vision_config": {"out_hidden_size": 32}}, "out_hidden_size=32 must equal"),
    ({"vision_config": {"spatial_merge_size": 0}}, "spatial_merge_size"),
    ({"vision_config": {"use_head": True}}, "use_head=true is not supported"),
    ({"vision_config": {"hidden_act": "prelu"}}, "hidden_act"),
    ({"vision_config": {"patch_position_encoding_type": "rope"}}, "patch_position_encoding"),
    ({"image_token_id": 241}, "must differ"),
    ({"vision_config": {"temporal_patch_size": 2}}, "temporal_patch_size"),
])
def test_bad_configs_are_refused_naming_the_field(change, match):
    raw = json.loads(GOLDEN_CONFIG.read_text())
    for key, value in change.items():
        if isinstance(value, dict) and key in raw and key != "text_config":
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    with pytest.raises(InvalidArgumentError, match=match):
        LlavaOV2Config.from_dict(raw)


def test_a_non_llava_config_is_a_checkpoint_error():
    with pytest.raises(CheckpointError, match="not a LLaVA-OneVision-2 config"):
        LlavaOV2Config.from_dict({"model_type": "ovis2_5"})
    with pytest.raises(InvalidArgumentError, match="preset"):
        llava_ov2_preset("nope")


def test_8b_preset_has_the_released_shapes():
    cfg = llava_ov2_preset("llava-ov2-8b")
    with torch.device("meta"):
        model = LlavaOneVision2Model(cfg)
    vision = sum(p.numel() for p in model.visual.parameters())
    merger = sum(p.numel() for p in model.merger.parameters())
    llm = sum(p.numel() for p in model.llm.parameters())
    assert 300e6 < vision < 310e6  # OneVision-Encoder-L, 24 x 1024
    assert merger == 4096 * 4096 * 2 + 4096 * 2 + 1024 * 2
    assert 8.1e9 < llm < 8.3e9  # Qwen3-8B, untied head


# windows / merger -----------------------------------------------------------------------------
def test_window_rule_of_the_released_model():
    assert window_cu_seqlens(torch.tensor([[6, 2, 4], [1, 4, 6]]), 4).tolist() == [0, 32, 48, 72]
    assert window_cu_seqlens(torch.tensor([[8, 2, 2]]), 4).tolist() == [0, 16, 32]
    assert window_cu_seqlens(torch.tensor([[4, 2, 2], [1, 2, 2]]), 4).tolist() == [0, 16, 20]
    with pytest.raises(InvalidArgumentError):
        window_cu_seqlens(torch.tensor([[0, 2, 2]]), 4)


def test_tokens_never_mix_frames_or_blocks(tiny):
    pos = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 0], [5, 1, 1]])  # one token, two frames
    with pytest.raises(InvalidArgumentError, match="must share t and fill one aligned"):
        tiny.encode_visual(torch.zeros(4, 588), positions=pos,
                           cu_seqlens=torch.tensor([0, 4], dtype=torch.int32))
    with pytest.raises(InvalidArgumentError, match="whole visual tokens"):
        tiny.encode_visual(torch.zeros(3, 588), positions=pos[:3],
                           cu_seqlens=torch.tensor([0, 3], dtype=torch.int32))
    with pytest.raises(InvalidArgumentError, match="needs positions"):
        tiny.encode_visual(torch.zeros(4, 588), torch.tensor([[1, 2, 2]]))


def test_merger_position_tables_add_the_first_patch_block():
    cfg = llava_ov2_preset("tiny-llava-ov2").replace(use_patch_position_encoding=True,
                                                     max_position_embeddings=16)
    model = LlavaOneVision2Model.from_config(cfg, seed=1)
    plain = LlavaOneVision2Model.from_config(cfg.replace(use_patch_position_encoding=False),
                                             seed=1)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "pos_emb" not in k})
    pos = torch.tensor([[3, 4, 6], [3, 4, 7], [3, 5, 6], [3, 5, 7]])
    pixels = torch.randn(4, 588)
    cu = torch.tensor([0, 4], dtype=torch.int32)
    with torch.no_grad():
        got = model.encode_visual(pixels, positions=pos, cu_seqlens=cu).tokens
        base = plain.encode_visual(pixels, positions=pos, cu_seqlens=cu).tokens
        want = base + model.merger.pos_emb_h.weight[2] + model.merger.pos_emb_w.weight[3]
    torch.testing.assert_close(got, want)
    with pytest.raises(InvalidArgumentError, match="position tables"):
        model.encode_visual(pixels, positions=pos + torch.tensor([0, 40, 0]), cu_seqlens=cu)


# checkpoints ----------------------------------------------------------------------------------
def _logits(model, proc, video):
    out = proc("what moves", video=video, timestamps_s=[0.0, 0.5], frame_indices=[0, 4])
    with torch.no_grad():
        return model(**out.model_inputs()).logits


def test_save_load_round_trip_in_the_released_layout(tiny, tiny_proc, tiny_dir, tmp_path):
    from safetensors import safe_open

    with safe_open(str(tiny_dir / "model.safetensors"), framework="pt") as fh:
        keys = set(fh.keys())
    assert "lm_head.weight" in keys
    assert "model.visual.encoder.layers.0.self_attn.qkv.weight" in keys
    assert "model.visual.merger.mlp.2.weight" in keys
    assert "model.language_model.embed_tokens.weight" in keys
    assert not any(k.startswith(("llm.", "visual.vision_model")) for k in keys)
    loaded = LlavaOneVision2Model.from_pretrained(tiny_dir)
    video = np.random.default_rng(0).integers(0, 255, (2, 56, 84, 3), dtype=np.uint8)
    torch.testing.assert_close(_logits(loaded, tiny_proc, video), _logits(tiny, tiny_proc, video),
                               atol=0, rtol=0)
    # sharded, then the older layout (visual.* / model.* / lm_head.weight)
    tiny.save_pretrained(tmp_path / "sharded", max_shard_size=200_000)
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    sharded = LlavaOneVision2Model.from_pretrained(tmp_path / "sharded")
    torch.testing.assert_close(_logits(sharded, tiny_proc, video),
                               _logits(tiny, tiny_proc, video), atol=0, rtol=0)


def _rewrite(src: Path, dst: Path, edit) -> Path:
    from safetensors.torch import load_file, save_file

    shutil.copytree(src, dst)
    state = load_file(str(dst / "model.safetensors"))
    save_file(edit(dict(state)), str(dst / "model.safetensors"))
    return dst


def test_older_key_layout_loads(tiny_dir, tmp_path, tiny):
    def legacy(state):
        out = {}
        for k, v in state.items():
            if k.startswith("model.visual."):
                out["visual." + k[len("model.visual."):]] = v
            elif k.startswith("model.language_model."):
                out["model." + k[len("model.language_model."):]] = v
            else:
                out[k] = v
        return out

    old = LlavaOneVision2Model.from_pretrained(_rewrite(tiny_dir, tmp_path / "old", legacy))
    for (name, a), (_, b) in zip(old.state_dict().items(), tiny.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(("edit", "match"), [
    (lambda s: {k: v for k, v in s.items() if k != "model.visual.merger.ln_q.bias"},
     r"merger weights do not match.*1 missing"),
    (lambda s: {**s, "model.visual.extra.weight": torch.zeros(1)}, "1 unexpected"),
    (lambda s: {k: v for k, v in s.items() if "layers.1.self_attn.qkv.weight" not in k},
     "OneVision-Encoder weights do not match"),
    (lambda s: {**s, "model.language_model.norm.weight": torch.zeros(3)}, "wrong shapes"),
    (lambda s: {k: v for k, v in s.items() if k != "lm_head.weight"}, r"LLM weights.*missing"),
    (lambda s: {**s, "something.else": torch.zeros(1)}, "belong to no part"),
])
def test_checkpoints_load_strictly(tiny_dir, tmp_path, edit, match):
    bad = _rewrite(tiny_dir, tmp_path / "bad", edit)
    with pytest.raises(CheckpointError, match=match):
        LlavaOneVision2Model.from_pretrained(bad)


def test_offline_hub_id_not_cached_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("VIDSEL_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(ModelNotAvailableError, match="VIDSEL_ALLOW_DOWNLOAD=1"):
        LlavaOneVision2Model.from_pretrained("lmms-lab-encoder/LLaVA-OneVision-2-8B-Instruct")
    with pytest.raises(ModelNotAvailableError, match="switched off"):
        load_model("lmms-lab-encoder/LLaVA-OneVision-2-8B-Instruct", allow_download=True)


def test_load_model_picks_the_class_from_model_type(tiny_dir, tiny_ovis_dir):
    from ovis_model import OvisModel, OvisProcessor

    assert isinstance(load_model(tiny_dir), LlavaOneVision2Model)
    assert isinstance(load_processor(tiny_dir), LlavaOV2Processor)
    assert isinstance(load_model(tiny_ovis_dir), OvisModel)
    assert isinstance(load_processor(tiny_ovis_dir), OvisProcessor)


# processor ------------------------------------------------------------------------------------
def _selection(path, proc, budget):
    from vidsel.io import VideoReader

    with VideoReader(path) as reader:
        meta = reader.metadata
    geometry = proc.patch_geometry(meta.height, meta.width)
    return run_method("codec", path, budget=budget, geometry=geometry)


def test_codec_prompt_runs_and_windows(tiny_proc, tiny_video):
    sel = _selection(tiny_video, tiny_proc, budget=8)
    assert sel.kind == "patches" and sel.patch_size == 14
    out = tiny_proc("where does the box go", patches=sel)
    cfg = tiny_proc.config
    ids = out.input_ids[0].tolist()
    assert ids.count(cfg.image_token_id) == sel.num_tokens == out.budget.visual_tokens
    runs = sorted(set(int(f) for f in np.asarray(sel.positions)[:, 0]))
    assert ids.count(cfg.vision_start_token_id) == len(runs) == out.budget.source_frames
    # every run ends with <|vision_end|> then a newline, and carries its time tag
    ends = [i for i, t in enumerate(ids) if t == cfg.vision_end_token_id]
    assert all(ids[i + 1] == ord("\n") for i in ends)
    assert out.timestamps_s == pytest.approx(sorted(set(sel.source_timestamps_s.tolist())))
    text = bytes(t for t in ids if t < 256).decode()
    for ts in out.timestamps_s:
        assert f"<{ts:.1f} seconds>" in text
    # positions keep the source frame index; windows of 4 frames' worth of patches, the rest
    assert sorted(set(out.positions[:, 0].tolist())) == runs
    h, w = sel.grid_hw
    n = out.pixel_values.shape[0]
    window = 4 * h * w
    assert n > window  # the selection spans more than one window: the rule is exercised
    sizes = torch.diff(out.cu_seqlens).tolist()
    assert sizes == [window] * (n // window) + ([n % window] if n % window else [])
    assert out.grid_thws.tolist() == [[len(runs), h, w]]


def test_processor_refuses_bad_frames(tiny_proc):
    frames = np.zeros((3, 56, 56, 3), np.uint8)
    with pytest.raises(InvalidArgumentError, match="repeats a source frame"):
        tiny_proc("hi", video=frames, timestamps_s=[0, 0, 1], frame_indices=[0, 0, 8])
    with pytest.raises(InvalidArgumentError, match="finite seconds"):
        tiny_proc("hi", video=frames, timestamps_s=[0, float("nan"), 1])
    with pytest.raises(InvalidArgumentError, match="finite seconds"):
        tiny_proc("hi", video=frames, timestamps_s=[0, -1, 1])


def test_processor_refuses_ovis_only_options(tiny_proc):
    with pytest.raises(InvalidArgumentError, match="Ovis-only"):
        tiny_proc("hi", enable_thinking=True)
    with pytest.raises(InvalidArgumentError, match="timestamps_s"):
        tiny_proc("hi", video=np.zeros((2, 56, 56, 3), np.uint8))


# tasks and the answerer -----------------------------------------------------------------------
def test_answer_and_ground_run_end_to_end(tiny, tiny_proc, tiny_video):
    res = answer(tiny, tiny_proc, tiny_video, "what moves", options=["left", "right"],
                 method="uniform", budget=3, max_new_tokens=4)
    geometry = tiny_proc.patch_geometry(64, 96)
    assert res.budget.visual_tokens == 3 * geometry.tokens_per_frame
    assert len(res.timestamps_s) == 3
    g = ground(tiny, tiny_proc, tiny_video, "the box moves", method="codec", budget=2,
               max_new_tokens=6)
    assert 0 < g.budget.visual_tokens <= 2 * geometry.tokens_per_frame
    assert g.budget.source_frames == len(g.timestamps_s) >= 1
    # the codec run went through the model: a different budget changes the prompt
    g3 = ground(tiny, tiny_proc, tiny_video, "the box moves", method="codec", budget=3,
                max_new_tokens=6)
    assert g3.budget.visual_tokens > g.budget.visual_tokens


def test_ovis_spec_answerer_runs_llava_ov2(tiny_dir, tiny_video):
    answerer = load_answerer(f"ovis:{tiny_dir}", device="cpu", dtype="float32")
    from tests.eval.conftest import frames_input, patches_input

    geometry = answerer.geometry()(64, 96)
    assert geometry.patch_size == 14 and geometry.merge == 2
    reqs = [Request(frames_input(tiny_video, geometry, 2), "what moves", max_new_tokens=3),
            Request(patches_input(tiny_video, geometry, 2), "where does the box go",
                    max_new_tokens=3)]
    single = answerer.generate(reqs)
    assert [g.visual_tokens for g in single] == [2 * geometry.tokens_per_frame,
                                                 reqs[1].visual.patches.num_tokens]
    batched = type(answerer)(answerer.model, answerer.processor, max_batch=2)
    assert [g.text for g in batched.generate(reqs)] == [g.text for g in single]
    assert answerer.describe()["model_type"] == "llava_onevision2"


def test_prompt_follows_the_shipped_chat_template(tiny_dir, tmp_path):
    """No template file: the released system turn. A Qwen3-style template without a default
    system turn: none, and the empty think block that template adds with thinking off."""
    proc = load_processor(tiny_dir)
    assert proc.system == "You are a helpful assistant." and not proc.think_block
    qwen3 = tmp_path / "qwen3_style"
    shutil.copytree(tiny_dir, qwen3)
    cfg = json.loads((qwen3 / "tokenizer_config.json").read_text())
    cfg["chat_template"] = ("{%- if enable_thinking is defined and enable_thinking is false %}"
                            "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}")
    (qwen3 / "tokenizer_config.json").write_text(json.dumps(cfg))
    proc3 = LlavaOV2Processor.from_pretrained(qwen3)
    assert proc3.system is None and proc3.think_block
    ids = proc3("the box").input_ids[0].tolist()
    tok = proc3.tokenizer
    assert ids[:len(tok.encode("<|im_start|>user\n"))] == tok.encode("<|im_start|>user\n")
    tail = tok.encode("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert ids[-len(tail):] == tail
    head = tok.encode("<|im_start|>system\nYou are a helpful assistant.<|im_end|>")
    assert proc("the box").input_ids[0].tolist()[:len(head)] == head


def test_a_stored_head_that_differs_is_used_untied(tiny_dir, tmp_path, tiny, caplog):
    """tie_word_embeddings true but the file stores another lm_head: transformers uses the
    stored head (untied); so do we, with a warning."""
    def keep(state):
        return state

    d = _rewrite(tiny_dir, tmp_path / "tied", keep)
    cfg = json.loads((d / "config.json").read_text())
    cfg["tie_word_embeddings"] = True
    (d / "config.json").write_text(json.dumps(cfg))
    with caplog.at_level("WARNING"):
        model = LlavaOneVision2Model.from_pretrained(d)
    assert "using the stored lm_head" in caplog.text
    head = model.llm.get_output_embeddings().weight
    assert torch.equal(head, tiny.llm.get_output_embeddings().weight)
    assert not torch.equal(head, model.llm.get_input_embeddings().weight)


def test_released_batched_positions_are_accepted(tiny):
    pos = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]])
    cu = torch.tensor([0, 4], dtype=torch.int32)
    pixels = torch.randn(4, 588)
    with torch.no_grad():
        a = tiny.encode_visual(pixels, positions=pos, cu_seqlens=cu).tokens
        b = tiny.encode_visual(pixels, positions=pos[None], cu_seqlens=cu).tokens
    assert torch.equal(a, b)
    with pytest.raises(InvalidArgumentError, match=r"must be integer \(N, 3\)"):
        tiny.encode_visual(pixels, positions=pos[:, :2], cu_seqlens=cu)


def test_merge_order_inside_a_token_is_checked(tiny):
    pixels = torch.randn(4, 588)
    cu = torch.tensor([0, 4], dtype=torch.int32)
    good = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]])
    tiny.encode_visual(pixels, positions=good, cu_seqlens=cu)
    for bad in (good.flip(0), good[[0, 0, 0, 0]]):
        with pytest.raises(InvalidArgumentError, match="row by row"):
            tiny.encode_visual(pixels, positions=bad, cu_seqlens=cu)
    with pytest.raises(InvalidArgumentError, match="integer"):
        tiny.encode_visual(pixels, positions=good.float(), cu_seqlens=cu)
    with pytest.raises(InvalidArgumentError, match="rows for"):
        tiny.encode_visual(pixels[:3], positions=good, cu_seqlens=cu)
    with pytest.raises(InvalidArgumentError, match="window"):
        window_cu_seqlens(torch.tensor([[1, 2, 2]]), 0)
    with pytest.raises(InvalidArgumentError, match=r"\(n, 3\)"):
        window_cu_seqlens(torch.tensor([[1, 2]]), 4)


def test_corrupt_weights_and_bad_text_configs_are_project_errors(tiny_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        LlavaOneVision2Model.from_pretrained(broken)
    raw = json.loads(GOLDEN_CONFIG.read_text())
    raw["text_config"] = {**raw["text_config"], "vocab_size": "300"}
    with pytest.raises(InvalidArgumentError, match="vocab_size"):
        LlavaOV2Config.from_dict(raw)
    raw["text_config"]["vocab_size"] = 200  # the golden's token ids are 240..246
    with pytest.raises(InvalidArgumentError, match="outside the vocabulary"):
        LlavaOV2Config.from_dict(raw)
    raw["text_config"] = {**raw["text_config"], "vocab_size": 256, "num_hidden_layers": "x"}
    cfg = LlavaOV2Config.from_dict(raw)
    with pytest.raises(InvalidArgumentError, match="LLM config"):
        LlavaOneVision2Model(cfg)
    with pytest.raises(ModelNotAvailableError, match="no such config"):
        LlavaOV2Config.from_json_file(tmp_path / "none.json")


@pytest.mark.parametrize(("field", "value"), [
    ("image_mean", 5), ("image_mean", [0.5, 0.5]), ("image_std", [0.5, 0.0, 0.5]),
    ("min_pixels", "a"), ("max_pixels", 0), ("resample", 99),
    ("video_min_pixels", 10**9),
])
def test_bad_preprocessor_configs_name_the_field(tiny_dir, tmp_path, field, value):
    d = tmp_path / "pre"
    shutil.copytree(tiny_dir, d)
    raw = json.loads((d / "preprocessor_config.json").read_text())
    raw[field] = value
    (d / "preprocessor_config.json").write_text(json.dumps(raw))
    with pytest.raises(InvalidArgumentError, match=field):
        LlavaOV2Processor.from_pretrained(d)


def test_max_new_tokens_must_be_positive(tiny, tiny_proc, tiny_video):
    with pytest.raises(InvalidArgumentError, match="max_new_tokens"):
        answer(tiny, tiny_proc, tiny_video, "what moves", budget=1, max_new_tokens=0)


def test_the_processors_template_wins_over_the_tokenizers(tiny_dir, tmp_path):
    d = tmp_path / "both"
    shutil.copytree(tiny_dir, d)
    (d / "chat_template.jinja").write_text(
        "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>' }}")
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["chat_template"] = "{%- if enable_thinking is defined %}{%- endif %}"
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    proc = LlavaOV2Processor.from_pretrained(d)
    assert proc.system == "You are a helpful assistant." and not proc.think_block


def test_an_older_transformers_reading_another_rope_base_is_refused():
    """transformers 4.x ignores 5.x's ``rope_parameters`` and builds Qwen3 with base 10000:
    the model refuses to run rather than give wrong logits (an old transformers cannot be
    installed next to this one, so its config is stood in for)."""
    from types import SimpleNamespace

    from ovis_model.errors import MissingDependencyError
    from ovis_model.llava_ov2.modeling import _check_rope_theta

    text = {"rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}}
    _check_rope_theta(text, SimpleNamespace(rope_parameters={"rope_theta": 1e6}))
    with pytest.raises(MissingDependencyError, match="transformers >= 5"):
        _check_rope_theta(text, SimpleNamespace(rope_theta=10000.0))
