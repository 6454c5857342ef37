"""``answer`` / ``ground`` end to end on the tiny preset: every registered method (uniform, each
text selector with a tiny local embedder, the codec pass), nothing of vidsel or ovis_model
replaced. Only the weights are random (built from the ``tiny`` config)."""

from __future__ import annotations

import numpy as np
import pytest

from ovis_model import (
    ByteTokenizer,
    OvisProcessor,
    answer,
    gather_visual,
    ground,
    preset,
)
from vidsel.methods import available_methods, get_method, run_method

TEXT_METHODS = [n for n in available_methods()
                if get_method(n).needs_embedder and get_method(n).kind == "frames"]
FREE_METHODS = [n for n in available_methods() if not get_method(n).needs_embedder]


def test_every_text_selector_is_covered():
    """The parametrisations below follow the registry; the built-in text selectors are in it."""
    assert {"topk", "dpp", "mdp3", "bolt", "aks"} <= set(TEXT_METHODS)
    assert {"uniform", "codec"} <= set(FREE_METHODS)


@pytest.mark.parametrize("method", TEXT_METHODS)
def test_text_selector_through_answer_and_ground(method, tiny_model, tiny_processor, box_video,
                                                 tiny_siglip_dir):
    """The embedder reaches the selector (issue 10 item 3): the frames the model is shown are
    the ones ``run_method`` picks for the same question with the same embedder."""
    embedder = f"hf:{tiny_siglip_dir}"
    options = {"candidates": 8}
    question = "where does the red box go"
    geometry = tiny_processor.patch_geometry(64, 96)
    expected = run_method(method, box_video, question=question, budget=3, geometry=geometry,
                          embedder=embedder, **options)
    assert expected.scores is not None and len(expected) == 3

    res = answer(tiny_model, tiny_processor, box_video, question, method=method, budget=3,
                 embedder=embedder, method_options=options, max_new_tokens=2)
    assert res.timestamps_s == pytest.approx(expected.timestamps_s.tolist())
    assert res.budget.visual_tokens == 3 * geometry.tokens_per_frame
    assert isinstance(res.text, str) and res.choice is None

    mcq = answer(tiny_model, tiny_processor, box_video, question, options=["left", "right"],
                 method=method, budget=3, embedder=embedder, method_options=options,
                 max_new_tokens=2)
    assert mcq.timestamps_s == res.timestamps_s and mcq.choice in (None, "A", "B")

    g = ground(tiny_model, tiny_processor, box_video, "the red box moves", method=method,
               budget=3, embedder=embedder, method_options=options, max_new_tokens=4)
    assert len(g.timestamps_s) == 3 and g.budget.visual_tokens == 3 * geometry.tokens_per_frame
    if g.span is not None:
        assert 0.0 <= g.start_s <= g.end_s <= 3.0


def test_deprecated_selector_keyword_reaches_the_selector(tiny_model, tiny_processor, box_video,
                                                          tiny_siglip_dir):
    """Issue 10 item 3 as reported: ``answer(..., selector="mdp3", embedder=...)`` put the
    embedder in the generate kwargs and called the selector without one."""
    embedder = f"hf:{tiny_siglip_dir}"
    with pytest.warns(DeprecationWarning, match="selector= is deprecated"):
        res = answer(tiny_model, tiny_processor, box_video, "what moves", selector="mdp3",
                     budget=3, embedder=embedder, method_options={"candidates": 8},
                     max_new_tokens=2)
    new = answer(tiny_model, tiny_processor, box_video, "what moves", method="mdp3", budget=3,
                 embedder=embedder, method_options={"candidates": 8}, max_new_tokens=2)
    assert res.timestamps_s == new.timestamps_s and len(res.timestamps_s) == 3


def test_uniform_through_answer_and_ground(tiny_model, tiny_processor, box_video):
    sample = gather_visual(box_video, "q", method="uniform", budget=4, processor=tiny_processor)
    res = answer(tiny_model, tiny_processor, box_video, "What moves?", budget=4,
                 max_new_tokens=2)
    assert res.timestamps_s == pytest.approx(sample.timestamps_s)
    assert sample.frame_indices == [0, 8, 15, 23]
    g = ground(tiny_model, tiny_processor, box_video, "the box moves", method="uniform",
               budget=4, max_new_tokens=4)
    assert g.timestamps_s == res.timestamps_s and g.budget.visual_tokens == 4 * 6


def test_codec_budget_with_the_tiny_preset_defaults(tiny_model, box_video):
    """Issue 10 item 2 as reported: ``ground(..., codec_budget=8)`` with the preset's processor
    at its default frame area failed (``frame_size=(392, 392)`` is no multiple of 32); the codec
    geometry now comes from the model's config and costs at most what 8 uniform frames cost."""
    proc = OvisProcessor(ByteTokenizer(), tiny_model.config.vit_config)
    geometry = proc.patch_geometry(64, 96)
    assert geometry.frame_size == (384, 576) and geometry.tokens_per_frame == 216
    with pytest.warns(DeprecationWarning, match="codec_budget"):
        g = ground(tiny_model, proc, box_video, "the door opens", codec_budget=8,
                   max_new_tokens=4)
    assert 0 < g.budget.visual_tokens <= 8 * 216 and g.budget.tokens_per_frame == 216
    assert len(g.timestamps_s) == g.budget.source_frames >= 1


def test_codec_budget_with_the_ovis25_processor(tiny_model, box_video):
    """Item 2 for the Ovis2.5 preset: its processor's geometry (16 px patches, 2 x 2 merge,
    448 x 448 px frames) drives the codec pass. The tiny model shares that vision geometry, so it
    stands in for the 2B weights."""
    ovis = preset("ovis2.5-2b").vit_config
    assert (ovis.patch_size, ovis.hidden_stride) == (tiny_model.config.vit_config.patch_size,
                                                     tiny_model.config.vit_config.hidden_stride)
    proc = OvisProcessor(ByteTokenizer(), ovis)
    assert proc.patch_geometry(64, 96).frame_size == (384, 576)
    with pytest.warns(DeprecationWarning, match="codec_budget"):
        a = answer(tiny_model, proc, box_video, "what moves?", codec_budget=2, max_new_tokens=2)
    assert 0 < a.budget.visual_tokens <= 2 * 216 and a.budget.tokens_per_frame == 216


@pytest.mark.parametrize("method", ["codec"])
def test_patch_method_through_answer_and_ground(method, tiny_model, tiny_processor, box_video):
    sample = gather_visual(box_video, "q", method=method, budget=2, processor=tiny_processor)
    g = ground(tiny_model, tiny_processor, box_video, "the box moves", method=method, budget=2,
               max_new_tokens=4)
    assert g.budget.visual_tokens == sample.patches.num_tokens <= 2 * 6
    np.testing.assert_allclose(g.timestamps_s, sample.patches.source_timestamps_s)


def test_one_loaded_embedder_and_a_cache_serve_many_questions(tiny_model, tiny_processor,
                                                              box_video, tiny_siglip_dir,
                                                              tmp_path):
    """The documented way to ask many questions: load the embedder once, pass the object, cache
    the frame embeddings; the second task reads the cache instead of embedding again."""
    from vidsel.embed import load_embedder

    emb = load_embedder(f"hf:{tiny_siglip_dir}")
    options = {"candidates": 8, "cache_dir": tmp_path}
    first = answer(tiny_model, tiny_processor, box_video, "where does the box go",
                   method="mdp3", budget=2, embedder=emb, method_options=options,
                   max_new_tokens=2)
    entries = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(entries) == 1
    stamp = entries[0].stat().st_mtime_ns
    g = ground(tiny_model, tiny_processor, box_video, "the red box", method="topk", budget=2,
               embedder=emb, method_options=options, max_new_tokens=4)
    assert sorted(p for p in tmp_path.rglob("*") if p.is_file()) == entries
    assert entries[0].stat().st_mtime_ns == stamp
    assert len(first.timestamps_s) == len(g.timestamps_s) == 2
    spec = answer(tiny_model, tiny_processor, box_video, "where does the box go",
                  method="mdp3", budget=2, embedder=f"hf:{tiny_siglip_dir}",
                  method_options={"candidates": 8}, max_new_tokens=2)
    assert spec.timestamps_s == first.timestamps_s
