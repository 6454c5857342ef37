"""Attention backends agree; unavailable ones raise; the encoder gives the same result on each."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
import torch

from ovis_model.attention import make_segments, resolve_attention_backend
from vidsel.errors import InvalidArgumentError, MissingDependencyError

CPU_BACKENDS = ["sdpa", "sdpa_masked", "flex"]
gpu = pytest.mark.gpu
pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _reference(q, k, v, cu):
    out = torch.empty_like(q)
    for a, b in itertools.pairwise(cu):
        s = torch.einsum("qhd,khd->hqk", q[a:b].double(), k[a:b].double()) * q.shape[-1] ** -0.5
        out[a:b] = torch.einsum("hqk,khd->qhd", s.softmax(-1), v[a:b].double()).to(q.dtype)
    return out


def _qkv(total, device="cpu", dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(total, 4, 32, generator=g).to(device, dtype) for _ in range(3)]


# mixed lengths, repeated lengths (batched groups), and an empty segment
CU = [0, 7, 14, 14, 40, 47, 60, 67]


@pytest.mark.parametrize("name", CPU_BACKENDS)
def test_cpu_backends_match_reference(name):
    q, k, v = _qkv(CU[-1])
    backend = resolve_attention_backend(name, "cpu")
    out = backend(q, k, v, make_segments(CU, "cpu"), 32**-0.5)
    torch.testing.assert_close(out, _reference(q, k, v, CU), atol=2e-5, rtol=1e-4)


def test_unknown_and_unavailable_backends_raise():
    with pytest.raises(InvalidArgumentError, match="attn_impl='nope'"):
        resolve_attention_backend("nope")
    with pytest.raises(InvalidArgumentError, match="needs a CUDA device"):
        resolve_attention_backend("varlen", "cpu")
    with pytest.raises((InvalidArgumentError, MissingDependencyError)):
        resolve_attention_backend("flash", "cpu")
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="pip install"):
            resolve_attention_backend("flash", "cuda", torch.bfloat16)


def test_attention_registry():
    """One Registry: sorted names, overwrite guard, the unknown-name error lists the choices."""
    from ovis_model import ATTENTION_BACKENDS, OvisError, register_attention_backend
    from ovis_model.attention import AttentionSpec, _sdpa_masked

    assert ATTENTION_BACKENDS.names() == ("flash", "flex", "sdpa", "sdpa_masked", "varlen")
    assert isinstance(ATTENTION_BACKENDS.get("sdpa"), AttentionSpec)
    with pytest.raises(InvalidArgumentError, match=r"attn_impl='nope' is not registered; choose "
                                                   r"one of 'flash', 'flex', 'sdpa', "):
        resolve_attention_backend("nope")
    with pytest.raises(OvisError, match="'sdpa' is already registered; pass overwrite=True"):
        register_attention_backend("sdpa", lambda: _sdpa_masked)
    register_attention_backend("my_masked", lambda: _sdpa_masked, doc="test entry")
    try:
        assert "my_masked" in ovis_available()
        q, k, v = _qkv(CU[-1])
        out = resolve_attention_backend("my_masked", "cpu")(q, k, v, make_segments(CU, "cpu"),
                                                            32**-0.5)
        torch.testing.assert_close(out, _reference(q, k, v, CU), atol=2e-5, rtol=1e-4)
        register_attention_backend("my_masked", lambda: _sdpa_masked, overwrite=True)
    finally:
        ATTENTION_BACKENDS.unregister("my_masked")
    assert "my_masked" not in ATTENTION_BACKENDS


def ovis_available() -> list[str]:
    from ovis_model import available_attention_backends

    return available_attention_backends("cpu")


def test_bad_cu_seqlens():
    with pytest.raises(InvalidArgumentError, match="start at 0"):
        make_segments([1, 4], "cpu")
    with pytest.raises(InvalidArgumentError, match="non-decreasing"):
        make_segments([0, 4, 2], "cpu")


@pytest.mark.parametrize("name", ["sdpa_masked", "flex"])
def test_encoder_output_same_on_every_cpu_backend(golden_dir, golden_model, name):
    from safetensors.torch import load_file

    inp = load_file(str(golden_dir / "inputs_multi_image.safetensors"))
    vit = golden_model.visual_tokenizer.vit
    with torch.no_grad():
        ref = golden_model.encode_visual(inp["pixel_values"], inp["grid_thws"]).tokens
        try:
            vit.set_attn_impl(name, "cpu")
            other = golden_model.encode_visual(inp["pixel_values"], inp["grid_thws"]).tokens
        finally:
            vit.set_attn_impl("sdpa", "cpu")
    torch.testing.assert_close(other, ref, atol=1e-5, rtol=1e-5)


def test_window_attention_backends_agree():
    """A config with window attention (fullatt_block_indexes) runs and agrees across backends."""
    from ovis_model import VisionConfig, VisionEncoder
    from ovis_model.positions import layout_from_grids

    cfg = VisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                       num_attention_heads=4, image_size=64, window_size=64,
                       fullatt_block_indexes=(1,))
    torch.manual_seed(0)
    enc = VisionEncoder(cfg).eval()
    grids = torch.tensor([[2, 8, 12], [1, 4, 4]])
    pos, fg, cu = layout_from_grids(grids, 2)
    x = torch.randn(pos.shape[0], cfg.patch_dim)
    with torch.no_grad():
        a = enc(x, pos, cu, fg).last_hidden_state
        enc.set_attn_impl("sdpa_masked", "cpu")
        b = enc(x, pos, cu, fg).last_hidden_state
        full = VisionEncoder(VisionConfig(**{**cfg.__dict__, "fullatt_block_indexes": None,
                                             "extra": {}}))
        full.load_state_dict(enc.state_dict())
        c = full.eval()(x, pos, cu, fg).last_hidden_state
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert (a - c).abs().max() > 1e-3  # windows really restrict attention


def test_import_without_flash_attn():
    code = ("import sys; sys.modules['flash_attn'] = None\n"
            "import ovis_model\n"
            "assert 'transformers' not in sys.modules\n"
            "print(sorted(ovis_model.available_attention_backends('cpu')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert res.returncode == 0, res.stderr
    assert "'sdpa'" in res.stdout


@gpu
@needs_cuda
@pytest.mark.parametrize("name", ["sdpa", "flex", "varlen", "flash"])
def test_gpu_backends_agree(name):
    if name == "flash":
        pytest.importorskip("flash_attn")
    q, k, v = _qkv(CU[-1], "cuda", torch.bfloat16)
    backend = resolve_attention_backend(name, "cuda", torch.bfloat16)
    out = backend(q, k, v, make_segments(CU, "cuda"), 32**-0.5)
    ref = _reference(q.float(), k.float(), v.float(), CU)
    torch.testing.assert_close(out.float(), ref, atol=2e-2, rtol=2e-2)


@gpu
@needs_cuda
def test_gpu_golden_encoder_on_all_backends(golden_dir):
    from safetensors.torch import load_file

    from ovis_model import OvisModel, available_attention_backends

    inp = load_file(str(golden_dir / "inputs_video.safetensors"))
    exp = load_file(str(golden_dir / "expected_video.safetensors"))
    for name in available_attention_backends("cuda", torch.bfloat16):
        model = OvisModel.from_pretrained(golden_dir / "model", dtype=torch.bfloat16,
                                          device="cuda", attn_impl=name)
        with torch.no_grad():
            tokens = model.encode_visual(inp["pixel_values"].cuda(), inp["grid_thws"]).tokens
        torch.testing.assert_close(tokens.float().cpu(), exp["visual_tokens"], atol=2e-2,
                                   rtol=0)
