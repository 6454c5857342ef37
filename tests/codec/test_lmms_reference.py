"""The lmms-video-utils reference mode (``vidsel.codec._lmms``): parity with the real
``lmms_video_utils.fetch_codec_video`` when it is installed, and contracts that hold without it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vidsel.codec._lmms import LmmsCodecConfig, lmms_codec_video, lmms_method, register
from vidsel.codec._lmms_ops import BilinearResize, block_sums, topk_set
from vidsel.codec._lmms_pack import canvas_grid, uniform_groups
from vidsel.errors import InvalidArgumentError, VidselError
from vidsel.results import PatchConfig

FIELDS = ("canvases", "patch_positions", "gop_ids", "source_pts")

#: (name, make_video keywords): sizes, lengths (fewer frames than sampled, many more), cuts
GENERATED = {
    "pan_320x240_300": dict(scene="pan", num_frames=300, width=320, height=240),
    "cut_480x270_150": dict(scene="scene_cut", num_frames=150, width=480, height=270),
    "multiscene_640x360_400": dict(scene="multi_scene", num_frames=400, width=640,
                                   height=360, bframes=3),
    "box_256x256_60": dict(scene="moving_box", num_frames=60, width=256, height=256),
}

FIXTURES = ("clips/intelsamplevideos__bottle-detection.mp4", "clips/codecpatchstream__demo.mp4",
            "clips/moviepy__test_video.mp4", "derived/concat_multiscene_640x360_h264.mp4")


def _peer(path: Path, **kw: Any) -> Any:
    lvu = pytest.importorskip("lmms_video_utils")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lvu.fetch_codec_video(str(path), **kw)


def _assert_same(ours: Any, ref: Any) -> None:
    for name in FIELDS:
        a, b = getattr(ours, name), getattr(ref, name).numpy()
        assert a.shape == b.shape, name
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert ours.fps == ref.fps
    assert ours.n_groups == ref.n_groups


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_parity_generated(make_synth: Any, name: str) -> None:
    info = make_synth(**GENERATED[name])
    ours = lmms_codec_video(info.path)
    ref = _peer(info.path)
    if ours.tie_ambiguous:  # equal non-zero scores straddle the pick: torch's sort decides
        try:
            _assert_same(ours, ref)
        except AssertionError:
            pytest.skip("tie order of torch's unstable argsort differs (documented)")
    else:
        _assert_same(ours, ref)


def test_parity_options(make_synth: Any) -> None:
    info = make_synth(scene="pan", num_frames=240, width=400, height=224)
    kw = dict(target_canvas=12, group_size=15, images_per_group=3, max_pixels=60_000,
              start_time=1.0, end_time=7.0)
    _assert_same(lmms_codec_video(info.path, **kw), _peer(info.path, **kw))


@pytest.mark.fixtures
@pytest.mark.parametrize("rel", FIXTURES)
def test_parity_fixture_clips(fixture_file: Any, rel: str) -> None:
    path = fixture_file(rel)
    _assert_same(lmms_codec_video(path), _peer(path))


# -- without lmms-video-utils --------------------------------------------------------------------

def test_shapes_and_layout(make_synth: Any) -> None:
    info = make_synth(scene="pan", num_frames=300, width=320, height=240)
    out = lmms_codec_video(info.path, target_canvas=8)
    hb, wb = canvas_grid(150_000, 28, 240, 320)
    assert out.canvases.shape == (8, 3, hb * 28, wb * 28)
    assert out.canvases.dtype == np.uint8
    cells = (hb * 2) * (wb * 2)
    assert out.patch_positions.shape == (8 * cells, 3)
    np.testing.assert_array_equal(out.gop_ids, [0, 0, 0, 0, 1, 1, 1, 1])
    assert out.n_groups == 2 and out.source_pts.dtype == np.float32
    pos = out.patch_positions.reshape(8, hb * 2, wb * 2, 3)
    # I-canvas of group 1: every cell of its first sampled frame, row-major
    np.testing.assert_array_equal(pos[4, :, :, 0], out.sampled_frames[32])
    np.testing.assert_array_equal(pos[4, 3, :, 2], np.arange(wb * 2))
    # P-canvas cells: a used 2x2 block comes from one frame, rows/cols consecutive
    p = pos[1].reshape(hb, 2, wb, 2, 3)
    used = p[..., 0].min(axis=(1, 3)) >= 0
    assert used.any()
    blocks = p.transpose(0, 2, 1, 3, 4)[used]  # (k, 2, 2, 3)
    assert (blocks[..., 0] == blocks[:, :1, :1, 0]).all()
    assert (blocks[:, 1, :, 1] == blocks[:, 0, :, 1] + 1).all()
    assert out.source_pts[4] == pytest.approx(out.sampled_pts[32])


def test_patch_selection_view(make_synth: Any) -> None:
    info = make_synth(scene="pan", num_frames=300, width=320, height=240)
    out = lmms_codec_video(info.path, target_canvas=8)
    sel = out.patch_selection()
    assert sel.method == "codec-lmms"
    used = int((out.patch_positions[:, 0] >= 0).sum())
    assert sel.num_patches == used
    assert sel.is_anchor.sum() == 2 * out.canvases.shape[2] // 14 * out.canvases.shape[3] // 14
    # pixels are the canvases' cells
    first = sel.positions[0]
    img = out.canvases[0].transpose(1, 2, 0)
    np.testing.assert_array_equal(sel.pixels[0], img[first[1] * 14:(first[1] + 1) * 14,
                                                  first[2] * 14:(first[2] + 1) * 14])


def test_registry_method(make_synth: Any) -> None:
    from vidsel.methods import get_method, register_method, run_method

    register(register_method)
    register(register_method)  # replaces, no error
    assert get_method("codec-lmms").kind == "patches"
    info = make_synth(scene="pan", num_frames=300, width=320, height=240)
    sel = run_method("codec-lmms", info.path, budget=8)
    assert sel.kind == "patches" and sel.method == "codec-lmms"
    with pytest.raises(InvalidArgumentError, match="multiple of images_per_group"):
        lmms_method(info.path, question=None, budget=6, geometry=PatchConfig())


@pytest.mark.parametrize("kw, match", [
    (dict(target_canvas=30), "divisible by images_per_group"),
    (dict(group_size=30), "divisible by images_per_group"),
    (dict(target_canvas=0), "target_canvas"),
    (dict(score_mode="bitcost"), "score_mode"),
    (dict(min_group_frames=70), "min_group_frames"),
    (dict(start_time=3.0, end_time=2.0), "start_time"),
    (dict(max_frames=-1), "max_frames"),
])
def test_validation(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        LmmsCodecConfig(**kw)


def test_time_range_past_end(make_synth: Any) -> None:
    info = make_synth(scene="pan", num_frames=60, width=320, height=240)
    with pytest.raises(InvalidArgumentError, match="past the end"):
        lmms_codec_video(info.path, start_time=100.0)


def test_missing_and_damaged_files(tmp_path: Path) -> None:
    with pytest.raises(VidselError):
        lmms_codec_video(tmp_path / "nope.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(VidselError):
        lmms_codec_video(bad)
    with pytest.raises(InvalidArgumentError):
        lmms_codec_video(123)  # type: ignore[arg-type]


def test_too_short(make_synth: Any) -> None:
    info = make_synth(scene="pan", num_frames=1, width=320, height=240)
    with pytest.raises(VidselError, match="too short"):
        lmms_codec_video(info.path)


# -- kernels ---------------------------------------------------------------------------------

def test_uniform_groups_and_grid() -> None:
    assert uniform_groups(256, 8, 64) == [(32 * i, 32 * (i + 1)) for i in range(8)]
    assert uniform_groups(10, 4, 64) == [(0, 3), (3, 6), (6, 8), (8, 10)]
    assert uniform_groups(300, 2, 64) == [(0, 64), (64, 128)]  # clamped; the rest unused
    assert canvas_grid(150_000, 28, 360, 640) == (10, 18)


def test_topk_set_ties_follow_nth_element() -> None:
    v = np.zeros(1000, np.float32)
    v[[5, 500]] = 2.0
    got = topk_set(v, 10)
    assert 5 in got and 500 in got and len(got) == 10
    # without ties the set is the k largest
    w = np.arange(50, dtype=np.float32)[::-1].copy()
    np.testing.assert_array_equal(topk_set(w, 5), np.arange(5))


def test_kernels_match_torch() -> None:
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 90, 160, 3), dtype=np.uint8)
    if torch.get_num_threads() > 1:  # torch's single-thread path uses other weights
        ref = f.interpolate(torch.from_numpy(x).permute(0, 3, 1, 2).float(), size=(56, 112),
                            mode="bilinear", align_corners=False).clamp(0, 255).to(torch.uint8)
        ours = np.stack([BilinearResize((90, 160), (56, 112))(fr) for fr in x])
        np.testing.assert_array_equal(ours, ref.permute(0, 2, 3, 1).numpy())
    d = rng.random((3, 56, 84), dtype=np.float32) * 255
    ref_pool = (f.avg_pool2d(torch.from_numpy(d).unsqueeze(1), 28, 28) * 784).squeeze(1)
    np.testing.assert_array_equal(block_sums(d, 28), ref_pool.numpy())
    for n, k in ((2000, 180), (3000, 20)):  # nth_element and partial_sort paths
        v = rng.integers(0, 3, n).astype(np.float32)
        got = topk_set(v, k)
        want = np.sort(torch.topk(torch.from_numpy(v), k).indices.numpy())
        np.testing.assert_array_equal(got, want)


# -- score_mode="mvwarp" ---------------------------------------------------------------------

def test_mvwarp_kernels_match_lmms(make_synth: Any) -> None:
    """Given the same decoder output, every mvwarp stage equals lmms-video-utils' (its own
    metadata pass is not repeatable: frame-threaded decoding drops motion side data of random
    frames, so end to end only equal side data can give equal output)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("lmms_video_utils")
    from lmms_video_utils.codec_meta import CodecMetadataIndex, _densify_mv
    from lmms_video_utils.config import CodecConfig
    from lmms_video_utils.pipeline import _resize_stack
    from lmms_video_utils.score import mvwarp_score

    from vidsel.codec._lmms_motion import dense_field, mvwarp_scores, resize_field, scan_meta
    from vidsel.io import packet_table

    info = make_synth(scene="moving_box", num_frames=120, width=480, height=270, bframes=3)
    table = packet_table(info.path, stream=0)
    meta = scan_meta(table, np.arange(0, 40, 2))
    assert sum(m is not None for m in meta.motion) > 10
    h, w = meta.rgb.shape[1:3]

    class SideData:
        def __init__(self, rows: np.ndarray) -> None:
            self.rows = rows

        def to_ndarray(self) -> np.ndarray:
            return self.rows

    ours_f = [dense_field(m, h, w) for m in meta.motion]
    ref_f = [_densify_mv(SideData(m), h, w) if m is not None else np.zeros((h, w, 2), np.float32)
             for m in meta.motion]
    for a, b in zip(ours_f, ref_f):
        np.testing.assert_array_equal(a, b)
    out_hw = (196, 336)
    ours_rf = np.stack([resize_field(f, out_hw) for f in ours_f])
    ref_rf = np.stack([CodecMetadataIndex(info.path)._resize_field(f, *out_hw) for f in ref_f])
    np.testing.assert_array_equal(ours_rf, ref_rf)
    frames = _resize_stack(torch.from_numpy(meta.rgb).permute(0, 3, 1, 2).contiguous(), *out_hw)
    ref = mvwarp_score(frames, torch.from_numpy(ref_rf), CodecConfig(score_mode="mvwarp",
                                                                         device="cpu"),
                       bitcost_per_frame=torch.tensor(meta.packet_size.tolist(),
                                                      dtype=torch.float32))
    ours = mvwarp_scores(frames.permute(0, 2, 3, 1).numpy(), ours_rf, meta.packet_size, 28)
    np.testing.assert_array_equal(ours, ref.numpy())


def test_mvwarp_end_to_end(make_synth: Any) -> None:
    info = make_synth(scene="pan", num_frames=150, width=320, height=240)
    ours = lmms_codec_video(info.path, score_mode="mvwarp")
    # lmms-video-utils' frame-threaded pass can lose or mismatch motion side data, sometimes
    # at random (vidsel reads the vectors single-threaded): equal to one of its runs passes;
    # runs that disagree with each other, or a frame it lost, skip; anything else fails
    refs = []
    for _ in range(3):
        ref = _peer(info.path, score_mode="mvwarp")
        try:
            _assert_same(ours, ref)
            break
        except AssertionError:
            refs.append(ref)
    else:
        if any(not np.array_equal(np.asarray(r.canvases), np.asarray(refs[0].canvases))
               for r in refs[1:]):
            pytest.skip("lmms-video-utils' mvwarp output varies from run to run here")
        from lmms_video_utils.codec_meta import CodecMetadataIndex

        from vidsel.codec._lmms_motion import dense_field, scan_meta
        from vidsel.io import packet_table

        table = packet_table(info.path, stream=0)
        meta = scan_meta(table, ours.sampled_frames)
        index = CodecMetadataIndex(info.path)
        h, w = meta.rgb.shape[1:3]
        lost = [int(f) for f, m in zip(ours.sampled_frames, meta.motion)
                if not np.array_equal(dense_field(m, h, w), index.mv(int(f), h, w))]
        if lost:
            pytest.skip(f"lmms-video-utils' frame-threaded pass lost or mismatched the motion "
                        f"vectors of frames {lost[:5]}")
        _assert_same(ours, refs[0])
    off = lmms_codec_video(info.path, score_mode="mvwarp", bitcost_score_mode="off")
    assert off.canvases.shape == ours.canvases.shape
