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
    from ovis_model import CheckpointError

    with pytest.raises(CheckpointError, match=r"bad: checkpoint does not match the config: "
                                              r"1 missing keys \['vte.weight'\].*extra"):
        OvisModel.from_pretrained(bad)
    (bad / "model.safetensors").unlink()
    torch.save({}, bad / "pytorch_model.bin")
    with pytest.raises(ModelNotAvailableError, match="pickle"):
        OvisModel.from_pretrained(bad)


def test_shard_index_is_checked_and_confined(tmp_path):
    """Issue 10: a malformed index is a CheckpointError; shards outside the folder are refused."""
    from ovis_model import CheckpointError, OvisError

    model = OvisModel.from_config(preset("tiny"), seed=0)
    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt)
    (ckpt / "model.safetensors").rename(tmp_path / "elsewhere.safetensors")
    index = ckpt / "model.safetensors.index.json"
    keys = list(model.state_dict())
    for weight_map in ({k: "../elsewhere.safetensors" for k in keys},
                       {k: str(tmp_path / "elsewhere.safetensors") for k in keys}):
        index.write_text(json.dumps({"weight_map": weight_map}))
        with pytest.raises(CheckpointError, match="names shards outside the checkpoint "
                                                  "directory"):
            OvisModel.from_pretrained(ckpt)
    index.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"ckpt: model.safetensors.index.json is "
                                              r"malformed \(JSONDecodeError"):
        OvisModel.from_pretrained(ckpt)
    index.write_text(json.dumps({"metadata": {}}))
    with pytest.raises(OvisError, match="malformed .*KeyError"):
        OvisModel.from_pretrained(ckpt)
    index.write_text(json.dumps({"weight_map": {"a": 3}}))
    with pytest.raises(ValueError, match="'weight_map' must map tensor names"):
        OvisModel.from_pretrained(ckpt)


def test_offline_hub_id_raises(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("VIDSEL_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(ModelNotAvailableError, match="VIDSEL_ALLOW_DOWNLOAD=1"):
        OvisModel.from_pretrained("AIDC-AI/Ovis2.5-2B")
    with pytest.raises(ModelNotAvailableError, match=r"switched off \(HF_HUB_OFFLINE=1\)"):
        OvisModel.from_pretrained("AIDC-AI/Ovis2.5-2B", allow_download=True)
    with pytest.raises(ModelNotAvailableError, match="not a checkpoint"):
        OvisModel.from_pretrained(tmp_path / "missing" / "dir")


def test_from_config_seed_leaves_the_global_rng_alone():
    torch.manual_seed(1234)
    state = torch.random.get_rng_state()
    a = OvisModel.from_config(preset("tiny"), seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)  # caller's RNG not reseeded
    b = OvisModel.from_config(preset("tiny"), seed=0)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                  b.state_dict().values()))
    c = OvisModel.from_config(preset("tiny"), seed=1)
    assert not torch.equal(a.vte.weight, c.vte.weight)


@pytest.mark.parametrize("spelling,want", [
    ("float32", torch.float32), ("bfloat16", torch.bfloat16), ("float16", torch.float16),
    ("torch.bfloat16", torch.bfloat16), ("torch.float16", torch.float16), ("half", torch.float16),
    (torch.bfloat16, torch.bfloat16),
])
def test_torch_dtype_spellings(spelling, want):
    from ovis_model.checkpoint import parse_torch_dtype

    assert parse_torch_dtype(spelling) == want


def test_dtype_none_uses_the_checkpoint_dtype_and_unknown_names_raise(tmp_path):
    import json

    from ovis_model import CheckpointError

    model = OvisModel.from_config(preset("tiny"), seed=0)
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    cfg_path = tmp_path / "bf16" / "config.json"
    assert json.loads(cfg_path.read_text())["torch_dtype"] == "bfloat16"
    assert OvisModel.from_pretrained(tmp_path / "bf16").dtype == torch.bfloat16  # None: saved
    loaded = OvisModel.from_pretrained(tmp_path / "bf16", dtype=torch.float32, attn_impl="sdpa")
    assert loaded.dtype == torch.float32 and loaded.attn_impl == "sdpa"
    cfg = json.loads(cfg_path.read_text())
    cfg["torch_dtype"] = "torch.bfloat16"  # the spelling some exporters write
    cfg_path.write_text(json.dumps(cfg))
    assert OvisModel.from_pretrained(tmp_path / "bf16").dtype == torch.bfloat16
    cfg["torch_dtype"] = "bf16"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"bf16: config.json has torch_dtype='bf16'; "
                                              r"expected one of \['bfloat16', 'float16'"):
        OvisModel.from_pretrained(tmp_path / "bf16")
    # an explicit dtype does not read the config's at all
    assert OvisModel.from_pretrained(tmp_path / "bf16", dtype=torch.float32).dtype == \
        torch.float32
    del cfg["torch_dtype"]
    cfg["dtype"] = "float16"  # transformers 5 writes "dtype"
    cfg_path.write_text(json.dumps(cfg))
    assert OvisModel.from_pretrained(tmp_path / "bf16").dtype == torch.float16
    del cfg["dtype"]
    cfg_path.write_text(json.dumps(cfg))
    assert OvisModel.from_pretrained(tmp_path / "bf16").dtype == torch.float32  # none named


def test_offline_detection_uses_hub_constants_and_transformers_offline(monkeypatch):
    import huggingface_hub.constants as hf_constants

    from ovis_model.checkpoint import hub_offline

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    assert not hub_offline()
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # set programmatically
    assert hub_offline()
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert hub_offline()


def test_cache_errors_other_than_not_cached_surface_with_the_place(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    from ovis_model.checkpoint import resolve_checkpoint_dir

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", "/hf/cache/models--org--m/refs/main")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", denied)
    with pytest.raises(PermissionError, match="Permission denied") as info:
        resolve_checkpoint_dir("org/m")
    assert any("'org/m'" in n and "Hugging Face cache" in n for n in info.value.__notes__)

    def not_cached(*a, **k):
        raise LocalEntryNotFoundError("not in cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_cached)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="org/m: not in the local Hugging Face cache"):
        resolve_checkpoint_dir("org/m")


def test_presets_are_a_registry():
    from ovis_model import PRESETS
    from vidsel.registry import Registry

    assert isinstance(PRESETS, Registry)
    assert PRESETS.names() == ("onevision-2b", "ovis2.5-2b", "ovis2.5-9b", "tiny",
                               "tiny-onevision")
    assert PRESETS["tiny"]() == preset("tiny")
    with pytest.raises(InvalidArgumentError, match="preset='x' is not registered; choose one "
                                                   "of 'onevision-2b'"):
        preset("x")


@pytest.mark.parametrize("data,match", [
    ({"hidden_size": "x"}, "vit_config.hidden_size='x' must be an integer"),
    ({"num_attention_heads": 0}, "num_attention_heads=0"),
    ({"use_rope": "yes"}, "use_rope='yes' must be true or false"),
    ({"layer_norm_eps": "1e-6"}, "layer_norm_eps='1e-6' must be a number"),
    ({"fullatt_block_indexes": "a|b"}, "fullatt_block_indexes='a|b' must be layer indices"),
])
def test_config_values_of_the_wrong_type_are_argument_errors(data, match):
    import ovis_model

    with pytest.raises(ovis_model.InvalidArgumentError, match=match):  # also vidsel's
        VisionConfig.from_dict(data)
    bad = preset("tiny").to_dict()
    bad["vit_config"].update(data)
    with pytest.raises(InvalidArgumentError, match=match):
        OvisConfig.from_dict(bad)


def test_config_blocks_of_the_wrong_shape_are_argument_errors():
    good = preset("tiny").to_dict()
    with pytest.raises(InvalidArgumentError, match="visual_vocab_size='9' must be an integer"):
        OvisConfig.from_dict({**good, "visual_vocab_size": "9"})
    with pytest.raises(InvalidArgumentError, match="llm_config must be a JSON object"):
        OvisConfig.from_dict({**good, "llm_config": [1]})
    with pytest.raises(InvalidArgumentError, match="vit_config must be a JSON object"):
        OvisConfig.from_dict({**good, "vit_config": "x"})
    with pytest.raises(InvalidArgumentError, match="config must be a JSON object"):
        OvisConfig.from_dict([1])


def test_hub_ids_are_downloaded_only_when_allowed(tmp_path, monkeypatch):
    """Like vidsel's embedders (issue 10 item 10): a hub id that is not cached fails at once
    unless downloads are allowed (``allow_download=True`` / ``VIDSEL_ALLOW_DOWNLOAD=1``); the
    hub client is faked (the network), the loader is the real one."""
    import huggingface_hub
    import huggingface_hub.constants as hf_constants
    from huggingface_hub.errors import LocalEntryNotFoundError

    from ovis_model import ByteTokenizer, OvisProcessor

    ckpt = tmp_path / "snapshot"
    OvisModel.from_config(preset("tiny"), seed=0).save_pretrained(ckpt)
    calls: list[dict] = []

    def hub(repo_id, **kwargs):
        calls.append(kwargs)
        if kwargs.get("local_files_only"):
            raise LocalEntryNotFoundError("not in cache")
        return str(ckpt)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "VIDSEL_ALLOW_DOWNLOAD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ModelNotAvailableError, match=r"org/ovis: not in the local Hugging Face "
                                                     r"cache .*set VIDSEL_ALLOW_DOWNLOAD=1 "
                                                     r"\(Python: allow_download=True\)"):
        OvisModel.from_pretrained("org/ovis")
    with pytest.raises(ModelNotAvailableError, match="VIDSEL_ALLOW_DOWNLOAD"):
        OvisProcessor.from_pretrained("org/ovis", tokenizer=ByteTokenizer())
    assert calls == [{"allow_patterns": calls[0]["allow_patterns"], "local_files_only": True}] * 2

    calls.clear()
    model = OvisModel.from_pretrained("org/ovis", allow_download=True, dtype=torch.float32)
    assert model.config.vit_config == preset("tiny").vit_config
    assert [c.get("local_files_only", False) for c in calls] == [True, False]
    monkeypatch.setenv("VIDSEL_ALLOW_DOWNLOAD", "1")
    proc = OvisProcessor.from_pretrained("org/ovis", tokenizer=ByteTokenizer())
    assert proc.vit_config == preset("tiny").vit_config
    with pytest.raises(ModelNotAvailableError, match="VIDSEL_ALLOW_DOWNLOAD"):
        OvisModel.from_pretrained("org/ovis", allow_download=False)  # the keyword wins
