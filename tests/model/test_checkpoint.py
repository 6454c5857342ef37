"""Config round trip and refusals; save -> load round trip; strict, pickle-free, offline loading."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from ovis_model import OvisConfig, OvisModel, VisionConfig, preset
from vidsel.errors import InvalidArgumentError, ModelNotAvailableError


def test_golden_config_round_trip(golden_dir):
    raw = json.loads((golden_dir / "model" / "config.json").read_text())
    cfg = OvisConfig.from_dict(raw)
    assert cfg.model_type == "ovis" and cfg.head_vocab_size == 508
    assert cfg.vit_config == preset("tiny").vit_config
    back = cfg.to_dict()
    for key in ("hidden_size", "visual_vocab_size", "llm_config"):
        assert back[key] == raw[key]
    for key, value in raw["vit_config"].items():
        assert back["vit_config"][key] == value
    assert OvisConfig.from_dict(back) == cfg


@pytest.mark.parametrize("name", ["ovis2.5-2b", "ovis2.5-9b", "onevision-2b", "tiny",
                                  "tiny-onevision"])
def test_presets_validate_and_round_trip(name):
    cfg = preset(name)
    assert OvisConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_preset_shapes():
    two = preset("ovis2.5-2b")
    assert two.vit_config.num_hidden_layers == 27 and two.vit_config.hidden_size == 1152
    assert two.llm_config["num_hidden_layers"] == 28 and two.tie_word_embeddings
    assert preset("ovis2.5-9b").hidden_size == 4096
    ov = preset("onevision-2b").vit_config
    assert ov.position_scheme == "rope3d" and ov.patch_size == 14 and not ov.preserve_original_pe


def test_refusals():
    with pytest.raises(InvalidArgumentError, match="preset='x'"):
        preset("x")
    with pytest.raises(InvalidArgumentError, match="temporal_patch_size=2"):
        VisionConfig(temporal_patch_size=2)
    with pytest.raises(InvalidArgumentError, match="fullatt_block_indexes"):
        VisionConfig(num_hidden_layers=2, fullatt_block_indexes=(5,))
    with pytest.raises(InvalidArgumentError, match="window_size"):
        VisionConfig(window_size=16, fullatt_block_indexes=(0,))
    with pytest.raises(InvalidArgumentError, match="4:6:6"):
        VisionConfig(hidden_size=64, num_attention_heads=4, position_scheme="rope3d")
    tiny = preset("tiny").to_dict()
    with pytest.raises(InvalidArgumentError, match=r"llm_config\.model_type"):
        OvisConfig.from_dict({**tiny, "llm_config": {**tiny["llm_config"], "model_type": "gpt2"}})
    with pytest.raises(InvalidArgumentError, match="hidden_size"):
        OvisConfig.from_dict({**tiny, "hidden_size": 32})
    with pytest.raises(InvalidArgumentError, match="Ovis2"):
        OvisConfig.from_dict({**tiny, "visual_tokenizer_config": {}})
    vit = {**tiny["vit_config"], "fullatt_block_indexes": "0|1"}
    assert OvisConfig.from_dict({**tiny, "vit_config": vit}).vit_config.fullatt_block_indexes \
        == (0, 1)


def test_save_load_round_trip(tmp_path, tiny_model):
    ids = torch.tensor([[5, -301, -300, -302, 7]])
    pv = torch.randn(4, tiny_model.config.vit_config.patch_dim)
    grid = torch.tensor([[1, 2, 2]])
    with torch.no_grad():
        ref = tiny_model(ids, None, pv, grid).logits
    tiny_model.save_pretrained(tmp_path / "one")
    tiny_model.save_pretrained(tmp_path / "sharded", max_shard_size=100_000)
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    for sub in ("one", "sharded"):
        loaded = OvisModel.from_pretrained(tmp_path / sub, dtype=torch.float32)
        a, b = loaded.state_dict(), tiny_model.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        with torch.no_grad():
            torch.testing.assert_close(loaded(ids, None, pv, grid).logits, ref, atol=1e-5,
                                       rtol=1e-5)


def test_tied_embeddings_round_trip(tmp_path):
    cfg = preset("tiny")
    cfg = cfg.replace(llm_config={**cfg.llm_config, "tie_word_embeddings": True})
    model = OvisModel.from_config(cfg, seed=1)
    model.save_pretrained(tmp_path)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), "pt") as fh:
        assert "llm.lm_head.weight" not in set(fh.keys())
    loaded = OvisModel.from_pretrained(tmp_path)
    llm = loaded.llm
    assert llm.get_output_embeddings().weight is llm.get_input_embeddings().weight
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=1e-5, rtol=1e-5)


def test_strict_keys_and_no_pickle(tmp_path, golden_dir):
    from safetensors.torch import load_file, save_file

    src = golden_dir / "model"
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(src / "config.json", bad / "config.json")
    state = load_file(str(src / "model.safetensors"))
    state.pop("vte.weight")
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(InvalidArgumentError, match=r"missing keys \['vte.weight'\].*extra"):
        OvisModel.from_pretrained(bad)
    (bad / "model.safetensors").unlink()
    torch.save({}, bad / "pytorch_model.bin")
    with pytest.raises(ModelNotAvailableError, match="pickle"):
        OvisModel.from_pretrained(bad)


def test_offline_hub_id_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE"):
        OvisModel.from_pretrained("AIDC-AI/Ovis2.5-2B")
    with pytest.raises(ModelNotAvailableError, match="not a checkpoint"):
        OvisModel.from_pretrained(tmp_path / "missing" / "dir")
