"""Methods meet every model at equal visual tokens of that model: ``run_eval`` with the real
tiny transformers VLMs and Ovis, uniform frames vs codec patches.

- whole frames cost what the model's processor counts (Qwen-VL merges frames in pairs;
  Qwen3-VL's frame size depends on the frame count; LLaVA-OneVision pools each frame);
- codec on a model that merges frames in pairs gets half the frame-equivalents of patches, so
  its patches cost what the frames cost (the canvases' padding cells aside, which the record's
  ``model_visual_tokens`` shows).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from vidsel.eval import EvalItem, frame_geometry, frame_tokens, load_answerer, run_eval


@pytest.fixture(scope="module")
def item(tmp_path_factory: pytest.TempPathFactory) -> EvalItem:
    from vidsel.synth import make_video

    path = tmp_path_factory.mktemp("eqtok") / "v.mp4"
    make_video(path, scene="moving_box", num_frames=48, fps=8, width=160, height=96, gop=8)
    return EvalItem("q", "toy", str(path), "What moves?", "mcq", options=("a box", "a cat"),
                    answer="A")


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_onevision"])
def test_frames_cost_what_the_model_counts(family: str, item: EvalItem,
                                           tiny_hf_dirs: dict[str, Path]) -> None:
    s = run_eval([item], f"hf:{tiny_hf_dirs[family]}", methods=["uniform", "codec"],
                 budgets=[2, 3, 8], cache_dir=None, max_new_tokens=2,
                 model_options={"device": "cpu"})
    recs = {(r["method"], r["budget"]): r for r in s.records}
    assert all(r["status"] == "ok" for r in recs.values())
    for b in (2, 3, 8):
        uni, cod = recs[("uniform", b)], recs[("codec", b)]
        assert uni["model_visual_tokens"] == uni["visual_tokens"]
        assert len(uni["selection"]["source_frames"]) == b
        if family == "llava_onevision":
            continue  # codec canvases go in as images, unpooled: see the next test
        # the patches were asked for what the frames cost this model
        assert cod["visual_tokens"] == uni["visual_tokens"], (b, cod, uni)
        assert cod["model_visual_tokens"] >= cod["visual_tokens"]  # + canvas padding
    if family.startswith("qwen"):
        # frames merge in pairs: 3 frames cost what 4 do (one repeated, noted)
        assert recs[("uniform", 3)]["visual_tokens"] == 2 * recs[("uniform", 2)]["visual_tokens"]
        assert any("padded 3 frames to 4" in n for n in recs[("uniform", 3)]["notes"])


def test_qwen3_frame_size_follows_the_frame_count(item: EvalItem,
                                                   tiny_hf_dirs: dict[str, Path]) -> None:
    answerer = load_answerer(f"hf:{tiny_hf_dirs['qwen3_vl']}", device="cpu")
    geometry = answerer.geometry()
    few = frame_geometry(geometry, 96, 160, num_frames=2)
    many = frame_geometry(geometry, 96, 160, num_frames=64)
    assert few.frame_size[0] * few.frame_size[1] > many.frame_size[0] * many.frame_size[1]
    assert frame_tokens(geometry, 96, 160, 64, many) == math.ceil(64 / 2) * many.tokens_per_frame
    answerer.close()


def test_llava_onevision_codec_canvases_fit_the_frames_budget(
        item: EvalItem, tiny_hf_dirs: dict[str, Path]) -> None:
    """LLaVA-OneVision takes canvases as unpooled images (``canvas_tokens`` each): codec gets
    as many canvases as the frames' tokens pay for. One canvas goes through the single-image
    (anyres) mode, which costs more, and the record's notes say so."""
    s = run_eval([item], f"hf:{tiny_hf_dirs['llava_onevision']}", methods=["uniform", "codec"],
                 budgets=[2, 16], cache_dir=None, max_new_tokens=2,
                 model_options={"device": "cpu"})
    recs = {(r["method"], r["budget"]): r for r in s.records}
    assert recs[("codec", 16)]["model_visual_tokens"] <= recs[("uniform", 16)]["model_visual_tokens"]
    assert any("single-image" in n for n in recs[("codec", 2)]["notes"])


def test_query_aware_codec_runs_at_equal_tokens(item: EvalItem, tiny_hf_dirs: dict[str, Path],
                                                tiny_siglip_dir: Path, tmp_path: Path) -> None:
    """``codec+mdp3`` (the question steers the codec patches) through the real evaluation
    path: the embedder and the frame-embedding cache of the run, the same token budget."""
    s = run_eval([item], f"hf:{tiny_hf_dirs['qwen2_vl']}",
                 methods=["codec", "codec+mdp3"], budgets=[4], embedder=f"hf:{tiny_siglip_dir}",
                 cache_dir=tmp_path / "cache", max_new_tokens=2,
                 model_options={"device": "cpu"})
    recs = {r["method"]: r for r in s.records}
    assert all(r["status"] == "ok" for r in recs.values()), recs
    assert recs["codec+mdp3"]["visual_tokens"] == recs["codec"]["visual_tokens"]
    assert (tmp_path / "cache" / "embeddings").is_dir()  # relevance used the run's cache
