"""Patch-level relevance: the question says *where* in a frame, through the real select_frames /
embedding path and the embedder's patch features. A deterministic colour embedder with patch
features is registered through the embedder registry (no real SigLIP weights exist offline);
the SigLIP / SigLIP2 patch features themselves are checked on tiny random models built from
config."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.codec.test_query import ColourEmbedder, colour_shares  # noqa: E402
from vidsel import run_method  # noqa: E402
from vidsel.codec import select_patches  # noqa: E402
from vidsel.codec._relevance import area_weights, nearest_rows  # noqa: E402
from vidsel.embed import load_embedder, register_embedder  # noqa: E402
from vidsel.errors import InvalidArgumentError, UnsupportedRequestError  # noqa: E402
from vidsel.io import VideoReader, write_video  # noqa: E402
from vidsel.results import PatchConfig  # noqa: E402

GEOM = dict(patch_size=14, merge=2, frame_size=224)  # 8 x 8 = 64 tokens per frame
BUDGET = 4  # 256 tokens: 1 anchor frame + 192 motion tokens
BAR = 32  # black bars above and below the 224 x 160 picture


class PatchColourEmbedder(ColourEmbedder):
    """:class:`ColourEmbedder` whose patches are the cells of an 8 x 8 grid over the frame,
    each embedded by its own colour shares."""

    kind = "toypatch"
    supports_patches = True
    grid = 8

    @property
    def name(self) -> str:
        return "toypatch:rgb"

    def _encode_patch_pixels(self, frames: list) -> object:
        out = []
        for f in frames:
            f = np.asarray(f)
            ys = np.linspace(0, f.shape[0], self.grid + 1).astype(int)
            xs = np.linspace(0, f.shape[1], self.grid + 1).astype(int)
            out.append([[colour_shares(f[ys[i]:ys[i + 1], xs[j]:xs[j + 1]])
                         for j in range(self.grid)] for i in range(self.grid)])
        return torch.tensor(out, dtype=torch.float32)


class FrameOnlyEmbedder(PatchColourEmbedder):
    kind = "toyframe"
    supports_patches = False

    @property
    def name(self) -> str:
        return "toyframe:rgb"


@pytest.fixture(scope="module", autouse=True)
def _embedders() -> None:
    register_embedder("toypatch", lambda target, **kw: PatchColourEmbedder(**kw),
                      overwrite=True)
    register_embedder("toyframe", lambda target, **kw: FrameOnlyEmbedder(**kw), overwrite=True)


@pytest.fixture(scope="module")
def two_boxes(tmp_path_factory: pytest.TempPathFactory) -> str:
    """120 frames, 224 x 224 with black bars (32 px) above and below a textured picture: a red
    box moving in its left half and a blue box moving the same way in its right half. Every
    frame shows both, so frame relevance cannot tell them apart; patch relevance can."""
    rng = np.random.default_rng(1)
    tex = np.kron(rng.integers(60, 140, (20, 28)), np.ones((8, 8))).astype(np.uint8)
    bg = np.repeat(tex[..., None], 3, axis=2)  # (160, 224, 3)
    frames = []
    for i in range(120):
        pic = bg.copy()
        y = 40 + int(30 * np.sin(i / 7))
        x = 8 + (i % 40) * 2
        pic[y:y + 40, x:x + 40] = (220, 30, 30)
        pic[y:y + 40, 112 + x:112 + x + 40] = (30, 30, 220)
        img = np.zeros((224, 224, 3), np.uint8)
        img[BAR:224 - BAR] = pic
        frames.append(img)
    path = tmp_path_factory.mktemp("patchrel") / "two_boxes.mp4"
    write_video(path, frames, fps=30, gop=30)
    return str(path)


def left_share(sel, *, motion_only: bool = True) -> float:
    """Share of the (motion) tokens in the left half of the token grid (the red box's)."""
    m2 = sel.merge ** 2
    pos = sel.positions[::m2]
    if motion_only:
        pos = pos[~sel.is_anchor[::m2]]
    tw = sel.config.token_grid[1]
    return float((pos[:, 2] // sel.merge < tw // 2).mean())


def test_tokens_follow_the_region_the_question_names(two_boxes: str) -> None:
    kw = dict(budget_frames=BUDGET, embedder="toypatch:rgb", relevance_share=1.0,
              anchors="adaptive", **GEOM)
    frame_level = select_patches(two_boxes, question="the red box", **kw)
    red = select_patches(two_boxes, question="the red box", patch_relevance=True, **kw)
    blue = select_patches(two_boxes, question="the blue box", patch_relevance=True, **kw)
    assert red.crop == blue.crop == (BAR, BAR, 0, 0)  # the maps cover the active picture
    assert red.num_tokens == frame_level.num_tokens == BUDGET * 64  # the budget is exact
    # every frame shows both boxes: frame relevance splits the tokens between them ...
    assert 0.3 <= left_share(frame_level) <= 0.7
    # ... patch relevance sends them to the box the question names
    assert left_share(red) >= 0.8, left_share(red)
    assert left_share(blue) <= 0.2, left_share(blue)
    assert red.params["patch_relevance"] is True and "patch_relevance" not in frame_level.params
    assert red.timings_s["relevance_patches"] > 0


def test_patch_relevance_keeps_the_contracts(two_boxes: str) -> None:
    kw = dict(budget_frames=BUDGET, question="red", embedder="toypatch:rgb",
              patch_relevance=True, **GEOM)
    dec = select_patches(two_boxes, **kw)
    ref = select_patches(two_boxes, pixels="reader", **kw)
    np.testing.assert_array_equal(dec.positions, ref.positions)
    np.testing.assert_array_equal(dec.pixels, ref.pixels)
    # the codec method passes the option through (one call path)
    via = run_method("codec", two_boxes, question="red", budget=BUDGET,
                     geometry=PatchConfig.make(**GEOM), embedder="toypatch:rgb",
                     patch_relevance=True)
    assert via == dec


def test_patch_relevance_half_share_keeps_motion_elsewhere(two_boxes: str) -> None:
    sel = select_patches(two_boxes, budget_frames=BUDGET, question="red",
                         embedder="toypatch:rgb", relevance_share=0.5, patch_relevance=True,
                         anchors="adaptive", **GEOM)
    # half the motion tokens go to the red box by relevance; the other half by motion,
    # among the tokens not taken: mostly the blue box, which keeps its coverage
    share = left_share(sel)
    assert 0.25 < share < 0.75, share


@pytest.mark.parametrize(("kw", "error", "match"), [
    (dict(patch_relevance=True), InvalidArgumentError, "needs a question"),
    (dict(question="red", embedder="toypatch:rgb", relevance_share=0.0, patch_relevance=True),
     InvalidArgumentError, "relevance_share > 0"),
    (dict(question="red", embedder="toypatch:rgb", patch_relevance="yes"),
     InvalidArgumentError, "True or False"),
    (dict(question="red", embedder="toyframe:rgb", patch_relevance=True),
     UnsupportedRequestError, "gives no patch features|needs an embedder that gives patch"),
])
def test_bad_patch_options_are_clear(two_boxes: str, kw: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        select_patches(two_boxes, budget_frames=BUDGET, **GEOM, **kw)


def test_area_weights_and_nearest_rows() -> None:
    w = area_weights(8, 3)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    np.testing.assert_allclose(area_weights(4, 4), np.eye(4))
    np.testing.assert_allclose(area_weights(2, 4), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    assert nearest_rows(np.array([0.0, 1.0, 3.0]), np.array([-1, 0.4, 0.6, 2.0, 2.1, 9])
                        ).tolist() == [0, 0, 1, 1, 2, 2]
    assert nearest_rows(np.array([5.0]), np.array([0.0, 9.0])).tolist() == [0, 0]


def test_siglip_patches_lie_in_the_image_embedding_space(tmp_path) -> None:
    """A picture of one patch: its patch feature is its image embedding exactly (the pooling
    head with one key is the per-patch head); larger pictures give the (gh, gw) grid."""
    from transformers import (
        Siglip2Config,
        Siglip2ImageProcessor,
        Siglip2Model,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
    )

    from vidsel.embed import HFEmbedder

    frames = np.random.default_rng(0).integers(0, 255, (3, 40, 56, 3), dtype=np.uint8)
    text = {"vocab_size": 10, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 16}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 2, "patch_size": 8}
    torch.manual_seed(0)
    for side, grid in ((8, (1, 1)), (32, (4, 4))):
        model = SiglipModel(SiglipConfig(text_config=text,
                                         vision_config={**vision, "image_size": side}))
        emb = HFEmbedder(model, None, SiglipImageProcessor(size={"height": side, "width": side}),
                         source="tiny")
        assert emb.supports_patches
        patches = emb.embed_patches(frames)
        assert patches.shape == (3, *grid, 32)
        np.testing.assert_allclose(np.linalg.norm(patches, axis=-1), 1.0, atol=1e-5)
        if grid == (1, 1):
            np.testing.assert_allclose(patches[:, 0, 0], emb.embed_images(frames), atol=1e-5)
    model2 = Siglip2Model(Siglip2Config(text_config=text,
                                        vision_config={**vision, "num_patches": 16}))
    for most, grid in ((1, (1, 1)), (16, (3, 5))):  # NaFlex keeps the aspect ratio
        emb2 = HFEmbedder(model2, None, Siglip2ImageProcessor(patch_size=8,
                                                              max_num_patches=most),
                          source="tiny2")
        patches = emb2.embed_patches(frames)
        assert patches.shape == (3, *grid, 32)
        if grid == (1, 1):
            np.testing.assert_allclose(patches[:, 0, 0], emb2.embed_images(frames), atol=1e-5)


def test_embedders_without_patch_features_say_so(tiny_clip_dir, tiny_siglip_dir) -> None:
    clip = load_embedder(f"hf:{tiny_clip_dir}")
    assert not clip.supports_patches
    with pytest.raises(UnsupportedRequestError, match="no patch features"):
        clip.embed_patches(np.zeros((1, 32, 32, 3), np.uint8))
    siglip = load_embedder(f"hf:{tiny_siglip_dir}")  # the path users take
    assert siglip.supports_patches
    assert siglip.embed_patches(np.zeros((2, 48, 64, 3), np.uint8)).shape == (2, 4, 4, 32)


def test_patch_maps_read_the_frames_the_tokens_see(two_boxes: str) -> None:
    """The maps come from the active picture at the token geometry: the red box's tokens
    score highest where the reader shows it."""
    from vidsel.codec._relevance import patch_maps

    cfg = PatchConfig.make(**GEOM)
    crop = (BAR, BAR, 0, 0)
    frames = np.array([0, 50, 100])
    maps = patch_maps(two_boxes, frames, "red", PatchColourEmbedder(), cfg, crop, None,
                      "BILINEAR").reshape(3, 8, 8)
    assert maps.min() == 0.0 and maps.max() == 1.0
    with VideoReader(two_boxes, crop=crop) as r:
        imgs = r.get_frames(frames, size=cfg.frame_size)
    again = patch_maps(two_boxes, np.array([0, 0, 50]), "red", PatchColourEmbedder(), cfg,
                       crop, None, "BILINEAR").reshape(3, 8, 8)  # a frame scored twice
    np.testing.assert_array_equal(again[0], again[1])
    for m, img in zip(maps, imgs, strict=True):
        red = (img[..., 0] > 150) & (img[..., 1] < 90)
        ry, rx = np.argwhere(red).mean(axis=0) // 28  # the box's token
        assert m[int(ry), int(rx)] >= 0.5
        assert m[:, 4:].max() < 0.2  # no red on the right half


def test_cli_passes_patch_relevance(two_boxes: str, tmp_path, capsys) -> None:
    """``vidsel select --method codec -p patch_relevance=true``: the same selection as the
    call."""
    import json

    from vidsel.cli import main

    out = tmp_path / "sel.json"
    rc = main(["select", two_boxes, "--method", "codec", "-Q", "red", "--embedder",
               "toypatch:rgb", "-p", "patch_relevance=true", "--budget", str(BUDGET),
               "--frame-size", "224", "--patch-size", "14", "--merge", "2", "--json",
               "--output", str(out)])
    assert rc == 0
    got = json.loads(out.read_text())
    want = select_patches(two_boxes, budget_frames=BUDGET, question="red",
                          embedder="toypatch:rgb", patch_relevance=True, **GEOM)
    def find(d, key):
        if isinstance(d, dict):
            if key in d:
                return d[key]
            for v in d.values():
                hit = find(v, key)
                if hit is not None:
                    return hit
        return None

    assert find(got, "patch_relevance") is True
    assert find(got, "anchor_frames") == want.anchor_frames.tolist()
    assert find(got, "num_motion_patches") == want.num_motion_patches
