"""OneVision-Encoder checkpoints on generated tiny folders (no ../shared needed): config mapping
and refusals, strict keys, the pooling head, rms_norm, fused LLaVA-OneVision-2 keys, hub ids."""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from ovis_model import CheckpointError, VisionEncoder
from ovis_model.config import HIDDEN_ACTS
from ovis_model.onevision_encoder import (
    config_from_onevision,
    config_to_onevision,
    load_onevision_state_dict,
    to_onevision_state_dict,
)
from vidsel.errors import InvalidArgumentError, ModelNotAvailableError, VidselError


def _public_config(**over) -> dict:
    cfg = {"model_type": "onevision_encoder", "hidden_size": 64, "intermediate_size": 96,
           "num_hidden_layers": 2, "num_attention_heads": 2, "num_channels": 3,
           "image_size": 56, "patch_size": 14, "hidden_act": "gelu", "layer_norm_eps": 1e-6,
           "layer_norm_type": "layer_norm", "attention_dropout": 0.0, "rope_theta": 10000.0,
           "rope_temporal_size": None, "use_head": False, "initializer_range": 0.02,
           "architectures": ["OneVisionEncoderModel"]}
    cfg.update(over)
    return cfg


def _encoder(seed: int = 0, **over) -> VisionEncoder:
    """A random encoder whose norms and biases are not trivially 1 / 0."""
    torch.manual_seed(seed)
    enc = VisionEncoder(config_from_onevision(_public_config(**over)))
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return enc.eval()


def _inputs(n_frames: int = 3, h: int = 4, w: int = 4, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    t, hh, ww = torch.meshgrid(torch.arange(n_frames) * 9, torch.arange(h), torch.arange(w),
                               indexing="ij")
    pos = torch.stack([t.reshape(-1), hh.reshape(-1), ww.reshape(-1)], dim=1)  # (N, 3)
    return torch.randn(pos.shape[0], 3 * 14 * 14, generator=g), pos


def _save(enc: VisionEncoder, path: Path) -> Path:
    enc.save_pretrained(path)
    return path


def test_use_head_round_trip_public_names_and_pooling(tmp_path):
    enc = _encoder(use_head=True)
    _save(enc, tmp_path)
    keys = set(load_file(str(tmp_path / "model.safetensors")))
    assert {"head.probe", "head.attention.in_proj_weight", "head.attention.in_proj_bias",
            "head.attention.out_proj.weight", "head.norm.weight", "head.mlp.fc1.weight",
            "layernorm_post.weight", "layernorm_pre.bias", "embeddings.patch_embedding.weight",
            "encoder.layers.1.self_attn.q_proj.weight"} <= keys
    assert "embeddings.patch_embedding.bias" not in keys
    assert not any(k.startswith("vision_model") for k in keys)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "onevision_encoder" and cfg["use_head"] is True
    assert cfg["architectures"] == ["OneVisionEncoderModel"] and cfg["torch_dtype"] == "float32"

    back = VisionEncoder.from_pretrained(tmp_path)
    assert back.config == enc.config
    x, pos = _inputs()
    cu = torch.tensor([0, 16, 48])  # two items: frame 0 alone, frames 9 and 18 together
    with torch.no_grad():
        a, b = enc(x, pos, cu), back(x, pos, cu)
        assert torch.equal(a.last_hidden_state, b.last_hidden_state)
        pooled = back.pool(b.last_hidden_state, cu)
        assert pooled.shape == (2, 64)
        assert torch.equal(pooled, enc.pool(a.last_hidden_state, cu))
        post = b.post_layernorm(back)
        norm = back.vision_model.post_layernorm
        assert norm is not None and torch.equal(post, norm(b.last_hidden_state))


def test_pooling_head_matches_torch_multihead_attention():
    """The head's math against torch's own nn.MultiheadAttention + nn.RMSNorm on each item."""
    enc = _encoder(use_head=True, hidden_act="gelu_pytorch_tanh")
    head = enc.vision_model.head
    assert head is not None
    mha = torch.nn.MultiheadAttention(64, 2, batch_first=True)
    mha.load_state_dict(head.attention.state_dict())
    norm = torch.nn.RMSNorm(64, eps=1e-6)
    norm.load_state_dict(head.norm.state_dict())
    x, pos = _inputs()
    cu = [0, 16, 20, 48]
    with torch.no_grad():
        last = enc(x, pos, cu).last_hidden_state
        pooled = enc.pool(last, cu)
        post = enc.post_norm(last)
        for i, (a, b) in enumerate(itertools.pairwise(cu)):
            attn, _ = mha(head.probe, post[None, a:b], post[None, a:b])  # (1, 1, D)
            want = attn + torch.nn.functional.linear(
                torch.nn.functional.gelu(head.mlp.fc1(norm(attn)), approximate="tanh"),
                head.mlp.fc2.weight, head.mlp.fc2.bias)
            torch.testing.assert_close(pooled[i], want[0, 0], atol=1e-5, rtol=1e-5)


def test_pool_refusals():
    enc = _encoder()
    x, pos = _inputs(1)
    with torch.no_grad():
        last = enc(x, pos, [0, 16]).last_hidden_state
    with pytest.raises(InvalidArgumentError, match="no pooling head"):
        enc.pool(last, [0, 16])
    with pytest.raises(InvalidArgumentError, match="no final norm"):
        enc.post_norm(last)
    headed = _encoder(use_head=True)
    with pytest.raises(InvalidArgumentError, match="cu_seqlens must rise strictly"):
        headed.pool(last, [0, 8, 8, 16])
    with pytest.raises(InvalidArgumentError, match="cu_seqlens must rise strictly"):
        headed.pool(last, [0, 12])


def test_rms_norm_variant_has_no_norm_biases_and_round_trips(tmp_path):
    enc = _encoder(layer_norm_type="rms_norm", use_head=True)
    _save(enc, tmp_path)
    keys = set(load_file(str(tmp_path / "model.safetensors")))
    assert "layernorm_pre.weight" in keys and "layernorm_pre.bias" not in keys
    assert "encoder.layers.0.layer_norm1.bias" not in keys and "layernorm_post.bias" not in keys
    back = VisionEncoder.from_pretrained(tmp_path)
    assert isinstance(back.vision_model.pre_layernorm, torch.nn.RMSNorm)
    x, pos = _inputs()
    with torch.no_grad():
        assert torch.equal(enc(x, pos, [0, 48]).last_hidden_state,
                           back(x, pos, [0, 48]).last_hidden_state)


def test_sharded_save_round_trips(tmp_path):
    enc = _encoder()
    enc.save_pretrained(tmp_path, max_shard_size=20_000)
    assert (tmp_path / "model.safetensors.index.json").is_file()
    back = VisionEncoder.from_pretrained(tmp_path)
    for k, v in enc.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k


def _rewrite(path: Path, edit) -> None:
    state = load_file(str(path / "model.safetensors"))
    edit(state)
    save_file(state, str(path / "model.safetensors"))


def test_strict_keys_missing_unexpected_and_wrong_shape(tmp_path):
    base = _save(_encoder(), tmp_path / "base")

    def case(name, edit):
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text((base / "config.json").read_text())
        (d / "model.safetensors").write_bytes((base / "model.safetensors").read_bytes())
        _rewrite(d, edit)
        return d

    missing = case("missing", lambda s: s.pop("encoder.layers.1.mlp.fc2.bias"))
    with pytest.raises(CheckpointError, match=r"1 missing keys \['vision_model\.encoder\.layers"
                                              r"\.1\.mlp\.fc2\.bias'\]"):
        VisionEncoder.from_pretrained(missing)
    extra = case("unexpected", lambda s: s.update({"encoder.layers.0.extra.weight":
                                                   torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"1 unexpected keys"):
        VisionEncoder.from_pretrained(extra)
    stray = case("stray", lambda s: s.update({"pooler.weight": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"unexpected keys \['pooler\.weight'\]"):
        VisionEncoder.from_pretrained(stray)
    # head weights in a checkpoint whose config says use_head=false
    headed = _save(_encoder(use_head=True), tmp_path / "headed")
    cfg = json.loads((headed / "config.json").read_text())
    (headed / "config.json").write_text(json.dumps({**cfg, "use_head": False}))
    with pytest.raises(CheckpointError, match=r"unexpected keys .*head\."):
        VisionEncoder.from_pretrained(headed)
    shape = case("shape", lambda s: s.update({"layernorm_pre.weight": torch.ones(32)}))
    with pytest.raises(CheckpointError, match=r"wrong shapes \['vision_model\.pre_layernorm\."
                                              r"weight: \(32,\) \(expected \(64,\)\)'\]"):
        VisionEncoder.from_pretrained(shape)
    with pytest.raises(CheckpointError, match=str(shape)):
        VisionEncoder.from_pretrained(shape)


def test_rotary_tables_in_a_checkpoint_are_checked_then_dropped():
    """``video_rope.inv_freq_*`` are derived (non-persistent in the public code): accepted when
    they equal the config's tables, refused when they do not."""
    enc = _encoder()
    state = to_onevision_state_dict(enc, prefix="visual.")
    # head_dim 32 -> 16 angles split 4:6:6 -> t 4, h 6, w 6 frequencies theta^(-i/n)
    for axis, n in (("t", 4), ("h", 6), ("w", 6)):
        state[f"visual.video_rope.inv_freq_{axis}"] = 1.0 / 10000.0 ** (torch.arange(n) / n)
    fresh = _encoder(seed=3)
    load_onevision_state_dict(fresh, state, prefix="visual.")
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in enc.state_dict().items())
    state["visual.video_rope.inv_freq_h"] = 1.0 / 500.0 ** (torch.arange(6) / 6)
    with pytest.raises(CheckpointError, match=r"video_rope\.inv_freq_h .* rope_theta=10000"):
        load_onevision_state_dict(fresh, state, prefix="visual.")


@pytest.mark.parametrize(("over", "exc", "match"), [
    ({"hidden_size": "64"}, InvalidArgumentError, "hidden_size='64' must be an integer"),
    ({"num_hidden_layers": True}, InvalidArgumentError, "num_hidden_layers=True must be an int"),
    ({"layer_norm_eps": "1e-6"}, InvalidArgumentError, "layer_norm_eps='1e-6' must be a number"),
    ({"use_head": "yes"}, InvalidArgumentError, "use_head='yes' must be true or false"),
    ({"layer_norm_type": "batch_norm"}, InvalidArgumentError,
     r"layer_norm_type='batch_norm' must be one of \['layer_norm', 'rms_norm'\]"),
    ({"hidden_act": "prelu"}, InvalidArgumentError, "hidden_act='prelu'.*learned parameters"),
    ({"hidden_act": "swiglu"}, InvalidArgumentError, "hidden_act='swiglu'"),
    ({"rope_temporal_size": 0}, InvalidArgumentError, "rope_temporal_size=0"),
    ({"num_attention_heads": 4}, InvalidArgumentError, "4:6:6 3-D rotary needs head_dim/2"),
    ({"num_attention_heads": 3}, InvalidArgumentError, "hidden_size=64 is not divisible"),
    ({"patch_size": 0}, InvalidArgumentError, "patch_size=0"),
    ({"rope_theta": -1.0}, InvalidArgumentError, "rope_theta=-1.0"),
    ({"model_type": "ovis2_5"}, CheckpointError, "OvisModel.from_pretrained"),
    ({"model_type": None}, CheckpointError, "not a OneVision-Encoder config"),
    ({"torch_dtype": "int8"}, CheckpointError, "torch_dtype='int8'"),
])
def test_bad_config_values_name_the_field(tmp_path, over, exc, match):
    _save(_encoder(), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg.update(over)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(exc, match=match) as info:
        VisionEncoder.from_pretrained(tmp_path)
    assert isinstance(info.value, VidselError)
    assert "config.json" in str(info.value) or "torch_dtype" in str(info.value)


def test_defaults_unknown_fields_and_dtype(tmp_path, caplog):
    """Missing fields take the public defaults (use_head true, rope_temporal_size 64); unknown
    ones are kept, logged and written back; dtype= overrides the saved dtype."""
    cfg = config_from_onevision({"model_type": "onevision_encoder"})
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.patch_size, cfg.use_head) == \
        (1024, 24, 14, True)
    assert cfg.post_layernorm and "rope_temporal_size" not in config_to_onevision(cfg)
    assert config_to_onevision(config_from_onevision(_public_config()))["rope_temporal_size"] \
        is None
    llava = config_from_onevision({"model_type": "onevision_encoder"},
                                  defaults={"use_head": False})
    assert not llava.use_head and not llava.post_layernorm
    with pytest.raises(InvalidArgumentError, match="spatial_merge_size"):
        config_from_onevision({"model_type": "onevision_encoder"},
                              defaults={"spatial_merge_size": 2})
    with caplog.at_level(logging.WARNING, logger="ovis_model.onevision_encoder"):
        cfg = config_from_onevision(_public_config(frame_windows_size=4))
    assert "frame_windows_size" in caplog.text
    assert config_to_onevision(cfg)["frame_windows_size"] == 4
    enc = _encoder().to(torch.bfloat16)
    _save(enc, tmp_path)
    key = "vision_model.pre_layernorm.weight"
    assert VisionEncoder.from_pretrained(tmp_path).state_dict()[key].dtype == torch.bfloat16
    f32 = VisionEncoder.from_pretrained(tmp_path, dtype=torch.float32)
    assert f32.state_dict()[key].dtype == torch.float32


def test_only_onevision_architectures_are_written():
    from ovis_model import preset

    with pytest.raises(InvalidArgumentError, match="position_scheme='navit2d'"):
        config_to_onevision(preset("tiny").vit_config)
    with pytest.raises(InvalidArgumentError, match="post_layernorm=True with use_head=False"):
        config_to_onevision(preset("tiny-onevision").vit_config)


def test_fused_qkv_layout_under_a_prefix_loads_the_same_weights():
    """LLaVA-OneVision-2 stores the tower under ``model.visual.`` with fused ``qkv`` / ``proj``
    next to the merger and the LLM; those are left to the caller (``skip``, other prefixes)."""
    enc = _encoder(use_head=True)
    state = to_onevision_state_dict(enc, prefix="model.visual.", fused=True)
    assert "model.visual.encoder.layers.0.self_attn.qkv.weight" in state
    assert state["model.visual.encoder.layers.0.self_attn.qkv.weight"].shape == (192, 64)
    assert not any("q_proj" in k for k in state)
    state["model.visual.merger.ln_q.weight"] = torch.ones(64)
    state["model.language_model.embed_tokens.weight"] = torch.zeros(10, 8)
    fresh = _encoder(seed=5, use_head=True)
    with pytest.raises(CheckpointError, match=r"unexpected keys \['model\.visual\.merger"):
        load_onevision_state_dict(fresh, state, prefix="model.visual.")
    load_onevision_state_dict(fresh, state, prefix="model.visual.", skip=("merger.",))
    for k, v in enc.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k
    # separate q/k/v names without a prefix give the same mapping
    other = _encoder(seed=6, use_head=True)
    load_onevision_state_dict(other, to_onevision_state_dict(enc))
    x, pos = _inputs()
    with torch.no_grad():
        assert torch.equal(enc(x, pos, [0, 48]).last_hidden_state,
                           other(x, pos, [0, 48]).last_hidden_state)
    bad = dict(state)
    bad["model.visual.encoder.layers.0.self_attn.qkv.bias"] = torch.zeros(100)
    with pytest.raises(CheckpointError, match="does not split into three"):
        load_onevision_state_dict(fresh, bad, prefix="model.visual.", skip=("merger.",))


@pytest.mark.parametrize("name", HIDDEN_ACTS)
def test_every_hidden_act_matches_transformers(name):
    activations = pytest.importorskip("transformers.activations")
    from ovis_model.vision import _ACTIVATIONS

    assert set(_ACTIVATIONS) == set(HIDDEN_ACTS)
    x = torch.linspace(-12, 12, 1001)
    torch.testing.assert_close(_ACTIVATIONS[name](x), activations.ACT2FN[name](x),
                               atol=1e-6, rtol=1e-6)


def _hub_cache(root: Path, repo: str, enc: VisionEncoder) -> None:
    """A Hugging Face cache folder holding ``repo`` (the layout huggingface_hub reads)."""
    snap = root / f"models--{repo.replace('/', '--')}" / "snapshots" / "0123abcd"
    enc.save_pretrained(snap)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("0123abcd")


def test_hub_id_resolves_offline_from_the_cache_or_says_how_to_get_it(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("VIDSEL_ALLOW_DOWNLOAD", raising=False)
    enc = _encoder()
    _hub_cache(tmp_path / "hub", "org/ov-encoder-tiny", enc)
    back = VisionEncoder.from_pretrained("org/ov-encoder-tiny")
    key = "vision_model.pre_layernorm.weight"
    assert torch.equal(back.state_dict()[key], enc.state_dict()[key])
    with pytest.raises(ModelNotAvailableError, match=r"org/missing: not in the local Hugging "
                                                     r"Face cache .*VIDSEL_ALLOW_DOWNLOAD=1"):
        VisionEncoder.from_pretrained("org/missing")
    with pytest.raises(ModelNotAvailableError, match=r"switched off \(HF_HUB_OFFLINE=1\)"):
        VisionEncoder.from_pretrained("org/missing", allow_download=True)
    with pytest.raises(ModelNotAvailableError, match="not a checkpoint"):
        VisionEncoder.from_pretrained(tmp_path / "nowhere" / "dir")
