"""Parity with the public OneVision-Encoder on ../shared/golden/onevision_encoder_tiny.

The golden folder (README there) holds a tiny random checkpoint in the public format and the
public implementation's outputs for an image, a dense video and codec-style sparse patches whose
``t`` is the source frame index. The packed encoder must reproduce ``last_hidden_state`` and
every ``hidden_states.{i}`` row for row (float32, 1e-5), in the golden order and in any packed
order, with every attention backend available here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ovis_model import VisionEncoder, available_attention_backends

pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")

CASES = ["image", "video", "codec"]
TOL = 1e-5
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
BACKENDS = [(dev, name) for dev in DEVICES
            for name in available_attention_backends(dev, torch.float32)]


@pytest.fixture(scope="module")
def ov_golden(shared: Path) -> Path:
    golden = shared / "golden" / "onevision_encoder_tiny"
    if not (golden / "model" / "config.json").is_file():
        pytest.skip(f"golden folder {golden} is absent")
    return golden


def _patch_rows(pixel_values: torch.Tensor, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1, C, H, W)`` or ``(1, C, T, H, W)`` -> rows ``(T*h*w, C*p*p)`` laid out (C, p, p) and
    positions ``(T*h*w, 3)`` (t = frame ordinal, h, w), frame-major raster like the public
    model."""
    x = pixel_values[0]
    if x.dim() == 3:
        x = x[:, None]
    c, t, h, w = x.shape
    rows = (x.reshape(c, t, h // p, p, w // p, p)  # (C, T, h, p, w, p)
            .permute(1, 2, 4, 0, 3, 5)  # (T, h, w, C, p, p)
            .reshape(t * (h // p) * (w // p), c * p * p))
    tt, hh, ww = torch.meshgrid(torch.arange(t), torch.arange(h // p), torch.arange(w // p),
                                indexing="ij")
    return rows, torch.stack([tt.reshape(-1), hh.reshape(-1), ww.reshape(-1)], dim=1)


@pytest.fixture(scope="module")
def cases(ov_golden: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor, dict]]:
    """case -> (rows (N, C*p*p), positions (N, 3), expected tensors (batch dim dropped))."""
    from safetensors.torch import load_file

    out = {}
    for case in CASES:
        inp = load_file(str(ov_golden / f"inputs_{case}.safetensors"))
        exp = {k: v[0] for k, v in load_file(str(ov_golden / f"expected_{case}.safetensors")).items()}
        rows, pos = _patch_rows(inp["pixel_values"], 14)
        if "visible_indices" in inp:  # codec: picked patches, t = source frame index
            rows = rows[inp["visible_indices"][0]]
            pos = inp["patch_positions"][0].long()
        assert rows.shape[0] == exp["last_hidden_state"].shape[0]
        out[case] = (rows, pos, exp)
    return out


def _maxdiff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.detach().float().cpu() - b.float()).abs().max().item()


def _check_all(encoder, out, exp, order=None):
    """Compare every golden tensor; ``order`` maps packed row i -> golden row order[i]."""
    def back(t):
        if order is None:
            return t
        restored = torch.empty_like(t)
        restored[order] = t
        return restored

    vm = encoder.vision_model
    diffs = {"last_hidden_state": _maxdiff(back(out.last_hidden_state), exp["last_hidden_state"]),
             "hidden_states.0": _maxdiff(back(vm.pre_layernorm(out.patch_embeds)),
                                         exp["hidden_states.0"])}
    for i, h in enumerate(out.hidden_states, 1):
        diffs[f"hidden_states.{i}"] = _maxdiff(back(h), exp[f"hidden_states.{i}"])
    assert len(out.hidden_states) + 1 == sum(k.startswith("hidden_states.") for k in exp)
    assert max(diffs.values()) < TOL, diffs
    return diffs


def test_golden_config_maps_onto_the_packed_encoder(ov_golden):
    enc = VisionEncoder.from_pretrained(ov_golden / "model")
    cfg = enc.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.patch_size) == \
        (64, 2, 2, 14)
    assert cfg.position_scheme == "rope3d" and cfg.pre_layernorm and not cfg.patch_bias
    assert not cfg.preserve_original_pe and not cfg.use_head and not cfg.post_layernorm
    assert cfg.extra["rope_temporal_size"] is None
    assert next(enc.parameters()).dtype == torch.float32  # the config's dtype


@pytest.mark.parametrize(("device", "attn_impl"), BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_golden_order_matches_public_outputs(ov_golden, cases, case, device, attn_impl):
    enc = VisionEncoder.from_pretrained(ov_golden / "model", dtype=torch.float32, device=device,
                                        attn_impl=attn_impl)
    rows, pos, exp = cases[case]
    with torch.no_grad():
        out = enc(rows.to(device), pos.to(device), torch.tensor([0, rows.shape[0]]),
                  output_hidden_states=True)
    _check_all(enc, out, exp)


def _merge_block_order(pos: torch.Tensor) -> torch.Tensor:
    """Permutation putting each frame's 2x2 merge blocks together: sort by (t, h//2, w//2,
    h%2, w%2)."""
    t, h, w = pos.unbind(1)
    key = ((t * 4096 + h // 2) * 4096 + w // 2) * 4 + (h % 2) * 2 + w % 2
    return torch.argsort(key)


@pytest.mark.parametrize(("device", "attn_impl"), BACKENDS)
@pytest.mark.parametrize("layout", ["merge_block", "shuffled"])
def test_packed_together_in_any_order_matches_public_outputs(ov_golden, cases, device,
                                                             attn_impl, layout):
    """The three cases in ONE packed call (one attention segment each, cases reordered), rows
    permuted inside each segment; mapped back, every row matches the public output."""
    enc = VisionEncoder.from_pretrained(ov_golden / "model", dtype=torch.float32, device=device,
                                        attn_impl=attn_impl)
    g = torch.Generator().manual_seed(7)
    order_of_cases = ["codec", "image", "video"]
    rows, pos, perms, cu = [], [], [], [0]
    for case in order_of_cases:
        r, p, _ = cases[case]
        perm = (_merge_block_order(p) if layout == "merge_block"
                else torch.randperm(r.shape[0], generator=g))
        assert not torch.equal(perm, torch.arange(r.shape[0]))  # really reordered
        rows.append(r[perm])
        pos.append(p[perm])
        perms.append(perm)
        cu.append(cu[-1] + r.shape[0])
    with torch.no_grad():
        out = enc(torch.cat(rows).to(device), torch.cat(pos).to(device), torch.tensor(cu),
                  output_hidden_states=True)
    for i, case in enumerate(order_of_cases):
        sl = slice(cu[i], cu[i + 1])
        part = type(out)(last_hidden_state=out.last_hidden_state[sl],
                         patch_embeds=out.patch_embeds[sl],
                         hidden_states=tuple(h[sl] for h in out.hidden_states))
        _check_all(enc, part, cases[case][2], order=perms[i])


def test_round_trip_of_the_golden_checkpoint_is_byte_identical(ov_golden, tmp_path):
    """save_pretrained writes the public names: the tensors come back identical and the
    config keeps every public field."""
    import json

    from safetensors.torch import load_file

    enc = VisionEncoder.from_pretrained(ov_golden / "model")
    enc.save_pretrained(tmp_path)
    ref = load_file(str(ov_golden / "model" / "model.safetensors"))
    mine = load_file(str(tmp_path / "model.safetensors"))
    assert sorted(ref) == sorted(mine)
    assert all(torch.equal(ref[k], mine[k]) for k in ref)
    raw = json.loads((ov_golden / "model" / "config.json").read_text())
    back = json.loads((tmp_path / "config.json").read_text())
    assert {k: v for k, v in back.items() if k != "torch_dtype"} == raw


@pytest.mark.gpu
@pytest.mark.parametrize("attn_impl", ["sdpa", "varlen", "flash"])
def test_golden_in_bfloat16_on_cuda(ov_golden, cases, attn_impl):
    """The half-precision CUDA backends on the golden inputs, all three cases packed together:
    within bfloat16 rounding of the public float32 outputs."""
    if attn_impl not in available_attention_backends("cuda", torch.bfloat16):
        pytest.skip(f"attention backend {attn_impl!r} is not available here")
    enc = VisionEncoder.from_pretrained(ov_golden / "model", dtype=torch.bfloat16,
                                        device="cuda", attn_impl=attn_impl)
    rows = torch.cat([cases[c][0] for c in CASES]).to("cuda", torch.bfloat16)
    pos = torch.cat([cases[c][1] for c in CASES]).to("cuda")
    cu = torch.tensor([0, *torch.tensor([cases[c][0].shape[0] for c in CASES]).cumsum(0)])
    with torch.no_grad():
        out = enc(rows, pos, cu).last_hidden_state.float().cpu()
    want = torch.cat([cases[c][2]["last_hidden_state"] for c in CASES])
    scale = want.abs().max().item()
    assert _maxdiff(out, want) < 0.05 * scale
