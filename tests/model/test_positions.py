"""Positions, segments and rotary layouts: worked examples for images, frames, codec patches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ovis_model.positions import (
    apply_rotary,
    block_order_positions,
    layout_from_grids,
    rotary_frequencies,
    segments_from_positions,
    window_partition,
)


def test_block_order_worked_example():
    pos = block_order_positions(1, 4, 6, 2)
    hw = [tuple(r) for r in pos[:, 1:].tolist()]
    assert hw[:12] == [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (0, 3), (1, 2), (1, 3),
                       (0, 4), (0, 5), (1, 4), (1, 5)]
    assert hw[12:16] == [(2, 0), (2, 1), (3, 0), (3, 1)]
    assert set(pos[:, 0].tolist()) == {0}


def test_frames_carry_source_frame_index():
    pos = block_order_positions(3, 2, 2, 2, frame_ids=[0, 40, 80])
    assert pos[:, 0].tolist() == [0] * 4 + [40] * 4 + [80] * 4


def test_segments_worked_example():
    pos = torch.cat([block_order_positions(3, 2, 2, 2), block_order_positions(1, 2, 2, 2)])
    items = torch.tensor([0] * 12 + [1] * 4)
    assert segments_from_positions(pos, items, "frame").tolist() == [0, 4, 8, 12, 16]
    assert segments_from_positions(pos, items, "item").tolist() == [0, 12, 16]
    assert segments_from_positions(pos, items, "window", 2).tolist() == [0, 8, 12, 16]
    _, _, cu = layout_from_grids(torch.tensor([[1, 2, 2], [2, 2, 4]]), 2)
    assert cu.tolist() == [0, 4, 12, 20]


def _official_window_index(grid_thw, patch, stride, window_size):
    """Ovis2.5's get_window_index, transcribed for the comparison."""
    window_index, cu = [], [0]
    wid = 0
    ws = window_size // stride // patch
    for t, h, w in grid_thw:
        lh, lw = h // stride, w // stride
        index = torch.arange(t * lh * lw).reshape(t, lh, lw)
        ph, pw = ws - lh % ws, ws - lw % ws
        nh, nw = (lh + ph) // ws, (lw + pw) // ws
        padded = F.pad(index, (0, pw, 0, ph), "constant", -100)
        padded = padded.reshape(t, nh, ws, nw, ws).permute(0, 1, 3, 2, 4).reshape(t, nh * nw, ws, ws)
        seqlens = (padded != -100).sum([2, 3]).reshape(-1)
        flat = padded.reshape(-1)
        window_index.append(flat[flat != -100] + wid)
        cu.extend((seqlens.cumsum(0) * stride * stride + cu[-1]).tolist())
        wid += t * lh * lw
    return torch.cat(window_index), torch.unique_consecutive(torch.tensor(cu))


def test_window_partition_matches_official():
    grids = torch.tensor([[1, 10, 14], [2, 6, 8], [1, 4, 4]])
    pos, _, cu = layout_from_grids(grids, 2)
    perm, cu_win = window_partition(pos, cu, 2, 3)
    ref_idx, ref_cu = _official_window_index(grids.tolist(), 16, 2, 112)
    ref_perm = (ref_idx[:, None] * 4 + torch.arange(4)).reshape(-1)
    assert torch.equal(perm, ref_perm)
    assert cu_win.tolist() == ref_cu.tolist()


def test_rope3d_layout_and_relative_property():
    pos = torch.tensor([[3, 5, 7]])
    f = rotary_frequencies(pos, 32, "rope3d")  # half = 16 -> t 4, h 6, w 6
    assert f.shape == (1, 16)
    assert f[0, 0].item() == 3 and f[0, 4].item() == 5 and f[0, 10].item() == 7
    # navit2d ignores t and uses head_dim/4 frequencies per axis
    g = rotary_frequencies(pos, 32, "navit2d")
    assert g.shape == (1, 16) and g[0, 0].item() == 5 and g[0, 8].item() == 7
    # navit2d is a true 2-D RoPE: scores depend only on relative (h, w)
    torch.manual_seed(0)
    q, k = torch.randn(2, 1, 64), torch.randn(2, 1, 64)
    p = torch.tensor([[0, 1, 2], [40, 3, 5]])

    def scores(positions, scheme):
        e = rotary_frequencies(positions, 64, scheme)
        e = torch.cat([e, e], -1)
        qr = apply_rotary(q, e.cos(), e.sin(), scheme)
        kr = apply_rotary(k, e.cos(), e.sin(), scheme)
        return qr[0, 0] @ kr[1, 0]

    torch.testing.assert_close(scores(p, "navit2d"), scores(p + torch.tensor([7, 2, 3]),
                                                            "navit2d"), atol=1e-4, rtol=1e-4)


def test_rope3d_matches_onevision_formula():
    """OneVision: [t|h|w] angles duplicated by concatenation, rotated in interleaved pairs.

    (Adjacent dims then carry different angles, so this is not a pure rotation; it is what the
    released encoder computes, and what real weights expect.)
    """
    torch.manual_seed(1)
    head_dim, unit = 64, 2
    pos = torch.tensor([[0, 0, 0], [5, 3, 9], [63, 27, 1]])
    x = torch.randn(3, 2, head_dim)

    def inv(n):
        return 1.0 / (10000.0 ** (torch.arange(n, dtype=torch.float32) / n))

    f = torch.cat([pos[:, 0:1].float() * inv(4 * unit), pos[:, 1:2].float() * inv(6 * unit),
                   pos[:, 2:3].float() * inv(6 * unit)], -1)
    emb = torch.cat([f, f], -1)[:, None]
    rot = torch.stack((-x[..., 1::2], x[..., ::2]), -1).flatten(-2)
    ref = x * emb.cos() + rot * emb.sin()
    mine = rotary_frequencies(pos, head_dim, "rope3d")
    mine = torch.cat([mine, mine], -1)
    torch.testing.assert_close(apply_rotary(x, mine.cos(), mine.sin(), "rope3d"), ref)


def test_codec_positions_and_prompt(tiny_processor, make_codec_sample):
    from ovis_model.constants import VIDEO_BEGIN_ID, VIDEO_END_ID, VISUAL_ATOM_ID

    sample = make_codec_sample()
    out = tiny_processor("What moves?", patches=sample)
    # regrouped by source frame, complete 2x2 blocks in merge-block order
    assert out.positions.tolist()[:4] == [[8, 0, 2], [8, 0, 3], [8, 1, 2], [8, 1, 3]]
    assert out.positions[4:, 0].tolist() == [40] * 8
    assert out.positions[4:8, 1:].tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert out.cu_seqlens.tolist() == [0, 4, 12]  # one segment per source frame
    ids = out.input_ids[0].tolist()
    text = tiny_processor.tokenizer.decode([i for i in ids if i >= 0])
    assert "<1.0 seconds>" in text and "<5.0 seconds>" in text
    assert ids.count(VISUAL_ATOM_ID) == 3 == out.budget.visual_tokens
    assert ids.count(VIDEO_BEGIN_ID) == ids.count(VIDEO_END_ID) == 2
    assert out.timestamps_s == [1.0, 5.0]
    # pixels follow the permutation: the frame-8 block's first patch is sample row 5 (0, 0)
    first = sample.pixels[5].astype(np.float32) / 255 * 2 - 1
    torch.testing.assert_close(out.pixel_values[0], torch.from_numpy(
        first.transpose(2, 0, 1).reshape(-1)), atol=1e-6, rtol=0)


def test_codec_rejects_incomplete_blocks(tiny_processor, make_codec_sample):
    from vidsel.errors import InvalidArgumentError

    sample = make_codec_sample()
    sample.positions = sample.positions.copy()
    sample.positions[0] = (40, 5, 5)
    with pytest.raises(InvalidArgumentError, match="complete 2x2 blocks"):
        tiny_processor("x", patches=sample)
    with pytest.raises(InvalidArgumentError, match="patch_size=16"):
        tiny_processor.pack_patches(type(sample)(sample.positions, sample.timestamps_s,
                                               sample.pixels[:, :14, :14], 3))


def test_image_and_frame_positions(tiny_processor):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    frames = rng.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    out = tiny_processor("Describe.", images=[img], video=frames, timestamps_s=[0.0, 1.5, 3.0],
                         frame_indices=[0, 12, 24])
    assert out.grid_thws[0, 0] == 1
    n_img = int(out.grid_thws[0].prod())
    assert set(out.positions[:n_img, 0].tolist()) == {0}  # images: t = 0
    per = int(out.grid_thws[1, 1] * out.grid_thws[1, 2])
    assert out.positions[n_img:, 0].tolist() == [0] * per + [12] * per + [24] * per
    assert out.cu_seqlens.tolist() == [0, n_img, n_img + per, n_img + 2 * per, n_img + 3 * per]
    assert out.timestamps_s == [None, 0.0, 1.5, 3.0]
    assert out.budget.frame_equivalents == pytest.approx(
        (n_img + 3 * per) / 4 / (per / 4))


def test_codec_grid_comes_from_the_sample_never_from_the_positions(tiny_processor,
                                                                   make_codec_sample):
    from dataclasses import replace

    from vidsel.errors import InvalidArgumentError

    sample = make_codec_sample()  # grid_hw (4, 6)
    packed, _ = tiny_processor.pack_patches(sample)
    assert packed.grid_thw[1:] == (4, 6)  # the positions only reach column 3
    assert packed.frame_grids[0].tolist() == [4, 6]
    packed, _ = tiny_processor.pack_patches(replace(sample, grid_hw=(8, 8)))
    assert packed.grid_thw[1:] == (8, 8)

    @dataclass
    class NoGrid:
        positions: np.ndarray
        timestamps_s: np.ndarray
        pixels: np.ndarray
        num_tokens: int

    with pytest.raises(InvalidArgumentError, match=r"NoGrid has no \.grid_hw; expected a "
                                                   r"vidsel\.results\.PatchSelection or an "
                                                   r"object with .*\.grid_hw \(rows, cols"):
        tiny_processor.pack_patches(NoGrid(sample.positions, sample.timestamps_s, sample.pixels, 3))
    with pytest.raises(InvalidArgumentError, match=r"codec positions exceed grid_hw=\(2, 2\)"):
        tiny_processor.pack_patches(replace(sample, grid_hw=(2, 2)))
    with pytest.raises(InvalidArgumentError, match="multiples of hidden_stride=2"):
        tiny_processor.pack_patches(replace(sample, grid_hw=(5, 6)))
    with pytest.raises(InvalidArgumentError, match=r"grid_hw=None must be \(rows, cols\)"):
        tiny_processor.pack_patches(replace(sample, grid_hw=None))


def test_codec_reads_only_the_canonical_field_names(tiny_processor, make_codec_sample):
    """``.timestamps_s`` / ``.pixels`` / ``.grid_hw`` only: the old spellings (``.timestamps``,
    ``.patches``, ``.frame_size`` + ``.patch_size``) are not read."""
    from vidsel.errors import InvalidArgumentError

    sample = make_codec_sample()

    @dataclass
    class OldNames:
        positions: np.ndarray
        timestamps: np.ndarray
        patches: np.ndarray
        num_tokens: int
        frame_size: tuple = (64, 96)
        patch_size: int = 16

    with pytest.raises(InvalidArgumentError,
                       match=r"OldNames has no \.pixels, \.timestamps_s, \.grid_hw; expected a "
                             r"vidsel\.results\.PatchSelection or an object with \.pixels "
                             r"\(N, p, p, 3\) uint8.*names before vidsel 0\.2, which are not "
                             r"read: \.timestamps \(now \.timestamps_s\), \.patches \(now "
                             r"\.pixels\), \.frame_size \(now \.grid_hw\)"):
        tiny_processor.pack_patches(OldNames(sample.positions, sample.timestamps_s, sample.pixels,
                                           3))
    from dataclasses import replace

    with pytest.raises(InvalidArgumentError, match="holds no pixels; select the patches with "
                                                   "pixels='decode'"):
        tiny_processor.pack_patches(replace(sample, pixels=None))
    packed, times = tiny_processor.pack_patches(replace(sample, num_tokens=None))  # unchecked
    assert packed.num_patches == 12 and times == [1.0, 5.0]


def test_codec_num_tokens_mismatch_raises(tiny_processor, make_codec_sample):
    from dataclasses import replace

    from vidsel.errors import InvalidArgumentError

    sample = replace(make_codec_sample(), num_tokens=5)  # the patches make 3 tokens
    with pytest.raises(InvalidArgumentError, match=r"num_tokens=5 but its 12 patches pack "
                                                   r"into 3 visual tokens"):
        tiny_processor.pack_patches(sample)
