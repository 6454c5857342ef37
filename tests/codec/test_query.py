"""Query-aware codec input: the question's relevance steers part of the motion budget and the
anchors, through the real select_frames / embedding-cache path, with a deterministic colour
embedder registered through the embedder registry (the only stand-in: no real CLIP/SigLIP
weights exist offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vidsel import run_method  # noqa: E402
from vidsel.codec import compare, select_patches  # noqa: E402
from vidsel.embed import Embedder, register_embedder  # noqa: E402
from vidsel.errors import InvalidArgumentError  # noqa: E402
from vidsel.io import write_video  # noqa: E402
from vidsel.results import PatchConfig, PatchSelection  # noqa: E402
from vidsel.selection import select_frames  # noqa: E402

SEG = 60  # frames per segment; three segments: white, red, blue moving box
COLOURS = {"white": (235, 235, 235), "red": (220, 30, 30), "blue": (30, 30, 220)}
GEOM = dict(patch_size=14, merge=2, frame_size=112)  # 4 x 4 = 16 tokens per frame
BUDGET = 4  # 64 tokens: 1 anchor frame + 48 motion tokens


def colour_shares(picture: np.ndarray) -> list[float]:
    """Share of red, green and blue (dominant-channel) pixels of an (H, W, 3) picture, and a
    small constant (so that no embedding is all zeros)."""
    a = np.asarray(picture, np.int16)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    return [float(((r > 150) & (g < 90) & (b < 90)).mean()),
            float(((g > 150) & (r < 90) & (b < 90)).mean()),
            float(((b > 150) & (r < 90) & (g < 90)).mean()), 0.002]


class ColourEmbedder(Embedder):
    """Frame -> :func:`colour_shares`; text -> the colours it names. Deterministic, so
    relevance is known: a red box is relevant to "red"."""

    kind = "toycolour"

    @property
    def name(self) -> str:
        return "toycolour:rgb"

    @property
    def dim(self) -> int:
        return 4

    def _encode_pixels(self, frames: list) -> object:
        return torch.tensor([colour_shares(f) for f in frames], dtype=torch.float32)

    def _encode_text(self, text: str) -> object:
        t = text.lower()
        v = [float("red" in t), float("green" in t), float("blue" in t), 0.0]
        return torch.tensor([v if any(v) else [0.0, 0.0, 0.0, 1.0]], dtype=torch.float32)


@pytest.fixture(scope="module", autouse=True)
def _colour_embedder() -> None:
    register_embedder("toycolour", lambda target, **kw: ColourEmbedder(**kw), overwrite=True)


@pytest.fixture(scope="module")
def three_boxes(tmp_path_factory: pytest.TempPathFactory) -> str:
    """180 frames, 224x224: a textured background and a moving box, white in frames 0-59,
    red in 60-119, blue in 120-179 (the same motion in every segment)."""
    rng = np.random.default_rng(0)
    tex = np.kron(rng.integers(60, 140, (28, 28)), np.ones((8, 8))).astype(np.uint8)
    bg = np.repeat(tex[..., None], 3, axis=2)
    frames = []
    for i in range(3 * SEG):
        img = bg.copy()
        colour = list(COLOURS.values())[i // SEG]
        x = 10 + (i % SEG) * 2
        y = 60 + int(40 * np.sin(i / 9))
        img[y:y + 48, x:x + 48] = colour
        frames.append(img)
    path = tmp_path_factory.mktemp("query") / "three_boxes.mp4"
    write_video(path, frames, fps=30, gop=30)
    return str(path)


def segment_of(frames: np.ndarray) -> np.ndarray:
    return np.asarray(frames) // SEG


def motion_token_share(sel: PatchSelection, segment: int) -> float:
    m2 = sel.merge ** 2
    motion = sel.positions[::m2][~sel.is_anchor[::m2]]
    return float((segment_of(motion[:, 0]) == segment).mean())


def motion_tokens_per_segment(sel: PatchSelection) -> list[int]:
    m2 = sel.merge ** 2
    motion = sel.positions[::m2][~sel.is_anchor[::m2]]
    return [int((segment_of(motion[:, 0]) == s).sum()) for s in range(3)]


def test_share_zero_is_the_motion_only_selection(three_boxes: str) -> None:
    base = select_patches(three_boxes, budget_frames=BUDGET, **GEOM)
    same = select_patches(three_boxes, budget_frames=BUDGET, question="the red box",
                          embedder="toycolour:rgb", relevance_share=0.0, **GEOM)
    assert same == base  # positions, scores, pixels, anchors, candidates: every field
    assert same.question is None and same.params == {}
    assert "relevance" not in same.timings_s  # the question was not even embedded


def test_tokens_concentrate_where_the_question_points(three_boxes: str) -> None:
    base = select_patches(three_boxes, budget_frames=BUDGET, **GEOM)
    red = select_patches(three_boxes, budget_frames=BUDGET, question="the red box",
                         embedder="toycolour:rgb", **GEOM)
    assert red.num_tokens == base.num_tokens == BUDGET * 16  # the budget stays exact
    # motion only spreads the motion tokens over the three equal segments
    assert motion_token_share(base, 1) < 0.5
    # half the motion budget (relevance_share=0.5) goes by relevance: the red segment
    assert motion_token_share(red, 1) >= 0.5
    assert motion_token_share(red, 1) >= motion_token_share(base, 1) + 0.25
    # ... and motion elsewhere keeps coverage
    per = motion_tokens_per_segment(red)
    assert per[0] > 0 and per[2] > 0, per
    # the anchor (mdp3 over the relevance candidates) is a red frame
    assert segment_of(red.anchor_frames).tolist() == [1]
    assert red.question == "the red box"
    assert red.params["anchors"] == "mdp3" and red.params["relevance_share"] == 0.5
    assert red.relevance_frames is not None and red.relevance_scores is not None
    assert len(red.relevance_frames) == 128
    # another question, another segment
    blue = select_patches(three_boxes, budget_frames=BUDGET, question="a blue square",
                          embedder="toycolour:rgb", **GEOM)
    assert motion_token_share(blue, 2) >= 0.5
    assert segment_of(blue.anchor_frames).tolist() == [2]


def test_share_one_spends_the_motion_budget_by_relevance(three_boxes: str) -> None:
    sel = select_patches(three_boxes, budget_frames=BUDGET, question="red",
                         embedder="toycolour:rgb", relevance_share=1.0, **GEOM)
    assert motion_tokens_per_segment(sel)[1] == sel.num_motion_patches // 4


def test_the_knob_moves_tokens_monotonically(three_boxes: str) -> None:
    shares = [motion_token_share(select_patches(
        three_boxes, budget_frames=BUDGET, question="red", embedder="toycolour:rgb",
        relevance_share=w, anchors="adaptive", **GEOM), 1) for w in (0.0, 0.25, 0.5, 1.0)]
    assert shares == sorted(shares) and shares[-1] > shares[0], shares


def test_pixels_positions_and_times_keep_their_contracts(three_boxes: str) -> None:
    kw = dict(budget_frames=BUDGET, question="red", embedder="toycolour:rgb", **GEOM)
    dec = select_patches(three_boxes, **kw)
    ref = select_patches(three_boxes, pixels="reader", **kw)
    np.testing.assert_array_equal(dec.positions, ref.positions)
    np.testing.assert_array_equal(dec.pixels, ref.pixels)  # the reader's own crops
    np.testing.assert_allclose(dec.timestamps_s, dec.positions[:, 0] / 30.0, atol=1e-6)
    back = PatchSelection.from_dict(dec.to_dict())
    assert back.question == dec.question and back.params == dec.params
    np.testing.assert_array_equal(back.relevance_frames, dec.relevance_frames)
    np.testing.assert_array_equal(back.relevance_scores, dec.relevance_scores)
    assert dec.summary()["question"] == "red"


def test_shares_select_frames_embedding_cache(three_boxes: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    frames = select_frames(three_boxes, "red", 4, embedder="toycolour:rgb", cache_dir=cache)
    sel = select_patches(three_boxes, budget_frames=BUDGET, question="red",
                         embedder="toycolour:rgb", cache_dir=cache, **GEOM)
    assert "relevance_decode" not in sel.timings_s  # embeddings came from the cache
    np.testing.assert_allclose(sel.relevance_scores, frames.candidate_scores, atol=1e-6)
    fresh = select_patches(three_boxes, budget_frames=BUDGET, question="red",
                           embedder="toycolour:rgb", **GEOM)
    assert "relevance_decode" in fresh.timings_s
    assert sel == fresh


def test_method_presets_are_the_same_call(three_boxes: str) -> None:
    geometry = PatchConfig.make(**GEOM)
    a = run_method("codec+mdp3", three_boxes, question="red", budget=BUDGET,
                   geometry=geometry, embedder="toycolour:rgb")
    b = select_patches(three_boxes, budget_frames=BUDGET, question="red",
                       embedder="toycolour:rgb", anchors="mdp3", **GEOM)
    assert a == b
    c = run_method("codec", three_boxes, question="red", budget=BUDGET, geometry=geometry,
                   embedder="toycolour:rgb", relevance_share=0.3, anchors="dpp")
    assert c.params["anchors"] == "dpp" and c.params["relevance_share"] == 0.3
    d = run_method("codec+dpp", three_boxes, question="red", budget=BUDGET,
                   geometry=geometry, embedder="toycolour:rgb", relevance_share=0.3)
    assert c == d
    # without an embedder the codec method stays motion-only, as before
    e = run_method("codec", three_boxes, question="red", budget=BUDGET, geometry=geometry)
    assert e == select_patches(three_boxes, budget_frames=BUDGET, **GEOM)


def test_compare_has_a_question_row(three_boxes: str) -> None:
    cmp = compare(three_boxes, budgets=(BUDGET,), eval_frames=30, question="red",
                  embedder="toycolour:rgb", **GEOM)
    assert [r.method for r in cmp.rows] == ["uniform", "codec", "codec+mdp3"]
    rows = {r.method: r for r in cmp.rows}
    assert rows["codec+mdp3"].num_tokens == rows["codec"].num_tokens == BUDGET * 16
    with pytest.raises(InvalidArgumentError, match="question"):
        compare(three_boxes, budgets=(BUDGET,), embedder="toycolour:rgb", **GEOM)


@pytest.mark.parametrize(("kw", "match"), [
    (dict(question="red", embedder="toycolour:rgb", relevance_share=1.5), "in \\[0, 1\\]"),
    (dict(question="red", embedder="toycolour:rgb", relevance_share=float("nan")), "in \\[0"),
    (dict(question="red", embedder="toycolour:rgb", relevance_share="half"), "a number"),
    (dict(question="red"), "needs an embedder"),
    (dict(question="  "), "non-empty str"),
    (dict(embedder="toycolour:rgb"), "needs question="),
    (dict(relevance_share=0.5), "needs a question"),
    (dict(anchors="mdp3"), "needs a question"),
    (dict(anchors="nope"), "anchors='nope'"),
    (dict(cache_dir="x"), "only used with a question"),
    (dict(anchor_params={"lam": 0.2}), "only used with a question"),
    (dict(question="red", embedder="toycolour:rgb", anchors="uniform-ish"), "anchors="),
    (dict(question="red", embedder="toycolour:rgb", anchor_params={"lam": -1}), "lam"),
])
def test_bad_question_options_are_clear(three_boxes: str, kw: dict, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        select_patches(three_boxes, budget_frames=BUDGET, **GEOM, **kw)
