"""``OvisAnswerer`` (the ``ovis:DIR`` model spec) on a tiny random checkpoint saved to disk:
frames and codec patches through the real processor and model, the same answers as
``ovis_model.answer`` / ``ground``, batching equal to one-by-one, ``load_answerer`` end to end
and the errors. Only the weights are random (built from the ``tiny`` preset)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from ovis_model import (
    ImageProcessorConfig,
    OvisAnswerer,
    OvisModel,
    answer,
    ground,
    preset,
)
from ovis_model.answerer import OvisGeometry
from ovis_model.tasks import grounding_prompt
from tests.eval.conftest import frames_input, patches_input
from vidsel.errors import InvalidArgumentError, ModelNotAvailableError
from vidsel.eval import Answerer, Generation, Request, load_answerer
from vidsel.results import PatchConfig


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random ``tiny``-preset checkpoint folder with a ChatML word-level tokenizer and small
    video pixel limits (a 64 x 96 frame stays 64 x 96: 2 x 3 = 6 visual tokens)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("tiny_ovis_answerer")
    OvisModel.from_config(preset("tiny"), dtype=torch.float32, seed=0).save_pretrained(d)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "[UNK]"]
    words = ["user", "assistant", "what", "is", "seconds", "A", "B", "box", "moves", "left",
             "right", "the", "where", "does", "go", "start", "end", "event"]
    # every id of the LLM's 1024-entry vocabulary decodes to a word: the random model's answers
    # are visible text, so comparing them compares the generated ids
    words += [f"w{i}" for i in range(1024 - len(specials) - len(words))]
    vocab = {w: i for i, w in enumerate(specials + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="<|endoftext|>",
                            eos_token="<|im_end|>",
                            additional_special_tokens=specials[1:5]).save_pretrained(d)
    ImageProcessorConfig(video_min_pixels=32 * 32, video_max_pixels=64 * 96).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def answerer(ckpt: Path) -> OvisAnswerer:
    return OvisAnswerer.from_pretrained(ckpt, device="cpu", dtype="float32")


def test_geometry_is_the_processors_and_picklable(answerer):
    geometry = answerer.geometry()
    assert isinstance(geometry, OvisGeometry)
    assert geometry(64, 96) == answerer.processor.patch_geometry(64, 96) == PatchConfig(
        16, 2, (64, 96))
    assert geometry(64, 96).tokens_per_frame == 6
    clone = pickle.loads(pickle.dumps(geometry))
    assert clone == geometry and clone(480, 640) == geometry(480, 640)
    small = OvisAnswerer(answerer.model, answerer.processor, max_pixels=32 * 48)
    assert small.geometry()(64, 96) == answerer.processor.patch_geometry(
        64, 96, max_pixels=32 * 48)
    assert small.geometry()(64, 96).frame_size == (32, 32)


def test_frames_answer_equals_ovis_answer(answerer, video):
    """The same prompt and frames give the same greedy text and token count as
    ``ovis_model.answer`` (the answerer adds nothing of its own to the prompt)."""
    visual = frames_input(video, answerer.geometry()(64, 96), budget=3)
    (gen,) = answerer.generate([Request(visual, "where does the box go", max_new_tokens=5)])
    assert isinstance(gen, Generation) and gen.text  # random words, but some
    assert gen.visual_tokens == 3 * 6 and gen.prompt_tokens > gen.visual_tokens
    ref = answer(answerer.model, answerer.processor, video, "where does the box go",
                 method="uniform", budget=3, max_new_tokens=5)
    assert gen.text == ref.text
    assert ref.budget.visual_tokens == gen.visual_tokens
    assert ref.budget.total == gen.prompt_tokens
    # every frame is preceded by its true time
    inputs = answerer.process(Request(visual, "where does the box go"))
    assert inputs.timestamps_s == pytest.approx(visual.timestamps_s.tolist())


def test_patches_answer_equals_ovis_ground(answerer, video):
    geometry = answerer.geometry()(64, 96)
    visual = patches_input(video, geometry, budget=2)
    assert visual.num_tokens <= 2 * geometry.tokens_per_frame
    prompt = grounding_prompt("the box moves", visual.duration_s)
    (gen,) = answerer.generate([Request(visual, prompt, max_new_tokens=6)])
    assert gen.visual_tokens == visual.patches.num_tokens and gen.text
    ref = ground(answerer.model, answerer.processor, video, "the box moves", method="codec",
                 budget=2, max_new_tokens=6)
    assert gen.text == ref.text and ref.budget.visual_tokens == gen.visual_tokens
    np.testing.assert_allclose(answerer.process(Request(visual, prompt)).timestamps_s,
                               visual.patches.source_timestamps_s)


def test_batched_equals_one_by_one(ckpt, answerer, video):
    geometry = answerer.geometry()(64, 96)
    requests = [Request(frames_input(video, geometry, 2), "what moves", max_new_tokens=4),
                Request(patches_input(video, geometry, 2), "where does the box go",
                        max_new_tokens=6),
                Request(frames_input(video, geometry, 4), "is the box left or right",
                        max_new_tokens=3)]
    single = answerer.generate(requests)
    assert all(g.text for g in single)  # non-empty: the comparison below means something
    batched = OvisAnswerer(answerer.model, answerer.processor, max_batch=3)
    together = batched.generate(requests)
    assert [g.text for g in together] == [g.text for g in single]
    assert [g.visual_tokens for g in together] == [g.visual_tokens for g in single] == [
        12, requests[1].visual.patches.num_tokens, 24]
    assert [g.prompt_tokens for g in together] == [g.prompt_tokens for g in single]
    # two per call: the batch of 3 is split, answers in order
    pairs = OvisAnswerer(answerer.model, answerer.processor, max_batch=2).generate(requests)
    assert [g.text for g in pairs] == [g.text for g in single]


def test_load_answerer_spec_end_to_end(ckpt, video):
    ans = load_answerer(f"ovis:{ckpt}", device="cpu", dtype="float32", max_batch=2)
    assert isinstance(ans, OvisAnswerer) and isinstance(ans, Answerer)
    assert ans.name == f"ovis:{ckpt}" and ans.max_batch == 2
    assert ans.kinds == ("frames", "patches")
    assert ans.describe() == {"name": f"ovis:{ckpt}", "backend": "ovis",
                              "model_type": "ovis2_5", "dtype": "float32", "attention": "sdpa"}
    visual = frames_input(video, ans.geometry()(64, 96), budget=2)
    gens = ans.generate([Request(visual, "what moves", max_new_tokens=2)] * 3)
    assert len(gens) == 3 and len({g.text for g in gens}) == 1
    with ans:
        pass
    assert ans.model is None
    with pytest.raises(InvalidArgumentError, match="closed"):
        ans.generate([Request(visual, "what moves")])


def test_missing_checkpoint_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("VIDSEL_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(ModelNotAvailableError, match="not a checkpoint directory"):
        load_answerer(f"ovis:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailableError, match="no config.json"):
        load_answerer(f"ovis:{tmp_path / 'empty'}")
    with pytest.raises(ModelNotAvailableError, match="VIDSEL_ALLOW_DOWNLOAD"):
        load_answerer("ovis:nobody-here/not-cached-ovis")


def test_bad_arguments(ckpt, answerer):
    with pytest.raises(InvalidArgumentError, match="dtype='float8'"):
        OvisAnswerer.from_pretrained(ckpt, device="cpu", dtype="float8")
    with pytest.raises(InvalidArgumentError, match="attn_impl='nope'|'nope'"):
        OvisAnswerer.from_pretrained(ckpt, device="cpu", attention="nope")
    with pytest.raises(InvalidArgumentError, match="max_batch=0"):
        OvisAnswerer(answerer.model, answerer.processor, max_batch=0)
    with pytest.raises(InvalidArgumentError, match="OvisModel"):
        OvisAnswerer(object(), answerer.processor)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="max_pixels"):
        OvisAnswerer(answerer.model, answerer.processor, max_pixels=-1)
