"""Parser, metrics, generation on CPU, and answer / ground end to end on the tiny model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from ovis_model import (
    ByteTokenizer,
    ImageProcessorConfig,
    InvalidArgumentError,
    OvisError,
    OvisModel,
    OvisProcessor,
    answer,
    extract_choice,
    ground,
    grounding_metrics,
    mcq_accuracy,
    parse_time_span,
    parsing,
    preset,
    temporal_iou,
)
from ovis_model.constants import VISUAL_ATOM_ID
from ovis_model.tasks import VisualSample, gather_visual
from vidsel import errors as vidsel_errors
from vidsel import eval as vidsel_eval
from vidsel.io import VideoReader
from vidsel.methods import METHODS, available_methods, get_method, register_method
from vidsel.results import Selection


def test_the_answer_parser_is_vidsels():
    """ovis_model's answer parsing is vidsel.eval's, tested in tests/eval/test_parsing.py."""
    assert parsing.extract_choice is vidsel_eval.extract_choice is extract_choice
    assert parsing.parse_time_span is vidsel_eval.parse_time_span is parse_time_span


def test_metrics_hand_made():
    assert temporal_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert temporal_iou(None, (0, 1)) == 0.0
    m = grounding_metrics([(0, 10), (0, 4), None, (2, 3)], [(0, 10), (0, 10), (0, 5), (0, 10)])
    # IoUs: 1.0, 0.4, 0, 0.1
    assert m["R1@0.3"] == 50.0 and m["R1@0.5"] == 25.0 and m["R1@0.7"] == 25.0
    assert m["mIoU"] == pytest.approx(100 * 1.5 / 4)
    assert mcq_accuracy(["A", "b", None, "D"], ["A", "B", "C", "C"]) == 50.0


def test_generation_runs_on_cpu(tiny_model, tiny_processor):
    frames = np.random.default_rng(0).integers(0, 255, (2, 48, 64, 3), dtype=np.uint8)
    inputs = tiny_processor("What happens?", video=frames, timestamps_s=[0.0, 2.5])
    with torch.no_grad():
        logits = tiny_model(**inputs.model_inputs()).logits
        ids = tiny_model.generate(**inputs.model_inputs(), max_new_tokens=5)
    assert logits.shape == (1, inputs.input_ids.shape[1], tiny_model.config.vocab_size)
    assert ids.shape[0] == 1 and 1 <= ids.shape[1] <= 5
    text = tiny_processor.tokenizer.decode(inputs.input_ids[0][inputs.input_ids[0] >= 0].tolist(),
                                           skip_special_tokens=False)
    assert text.startswith("<|im_start|>user\n<0.0 seconds>")
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_answer_and_ground_end_to_end(tiny_model, tiny_processor, tiny_video):
    res = answer(tiny_model, tiny_processor, tiny_video, "Where does the box go?",
                 options=["left", "right"], method="uniform", budget=3, max_new_tokens=4)
    assert isinstance(res.text, str) and res.choice in (None, "A", "B")
    assert len(res.timestamps_s) == 3 and res.budget.visual_tokens == 3 * 6
    with VideoReader(tiny_video) as reader:
        expected = reader.metadata.timestamps_s[reader.uniform_indices(3)]
    assert res.timestamps_s == pytest.approx(expected.tolist())
    g = ground(tiny_model, tiny_processor, tiny_video, "the box moves", budget=2,
               max_new_tokens=4)  # method defaults to "uniform"
    assert isinstance(g.text, str)
    assert len(g.timestamps_s) == 2 and g.budget.visual_tokens == 2 * 6
    assert (g.start_s is None) == (g.end_s is None)
    if g.span is not None:
        assert 0.0 <= g.start_s <= g.end_s <= 3.0


def test_answer_and_ground_with_codec_method(tiny_model, tiny_processor, tiny_video):
    """The real codec pass in the model's geometry: tiny preset, 16 px patches, stride 2, the
    processor's frame size for a 96 x 64 video (64 x 96 -> 6 tokens per frame)."""
    geometry = tiny_processor.patch_geometry(64, 96)
    assert (geometry.patch_size, geometry.merge, geometry.frame_size) == (16, 2, (64, 96))
    sample = gather_visual(tiny_video, "what moves?", method="codec", budget=2,
                           processor=tiny_processor)
    sel = sample.patches
    assert sel is sample.selection and sel.kind == "patches" and sample.frames is None
    assert sel.grid_hw == (4, 6) and sel.num_tokens <= 2 * 6
    g = ground(tiny_model, tiny_processor, tiny_video, "the box moves", method="codec",
               budget=2, max_new_tokens=2)
    assert g.budget.visual_tokens == sel.num_tokens
    frames = sel.source_frames.tolist()
    assert len(g.timestamps_s) == len(frames)
    assert g.timestamps_s == pytest.approx(sel.source_timestamps_s.tolist())
    res = answer(tiny_model, tiny_processor, tiny_video, "What moves?", method="codec",
                 budget=2, max_new_tokens=2)
    assert res.budget.visual_tokens == sel.num_tokens


def test_codec_geometry_comes_from_the_model_config(tiny_video):
    """Issue 10 item 2: the Ovis2.5 preset's frame size is a multiple of 16 * 2 = 32 (never the
    392 of LLaVA-OneVision) and equals the size its uniform frames are resized to."""
    proc = OvisProcessor(ByteTokenizer(), preset("ovis2.5-2b").vit_config)
    geometry = proc.patch_geometry(64, 96)
    assert geometry.patch_size == 16 and geometry.merge == 2
    assert geometry.frame_size == (384, 576)  # smart resize up to 448 * 448 px
    assert all(side % 32 == 0 for side in geometry.frame_size)
    frames = np.zeros((1, 64, 96, 3), np.uint8)
    assert proc.pack_video(frames).grid_thw[1:] == geometry.grid
    sample = gather_visual(tiny_video, None, method="codec", budget=1, processor=proc,
                           method_options={"candidates_per_frame": 2})
    assert sample.patches.grid_hw == (24, 36) and sample.patches.num_tokens <= 216
    packed, _ = proc.pack_patches(sample.patches)
    assert packed.num_patches // 4 == sample.patches.num_tokens


def test_deprecated_keywords_still_work(tiny_model, tiny_processor, tiny_video):
    with pytest.warns(DeprecationWarning, match="codec_budget=N is deprecated"):
        old = gather_visual(tiny_video, "q", codec_budget=2, processor=tiny_processor)
    new = gather_visual(tiny_video, "q", method="codec", budget=2, processor=tiny_processor)
    np.testing.assert_array_equal(old.patches.positions, new.patches.positions)
    with pytest.warns(DeprecationWarning, match="selector= is deprecated"):
        old = gather_visual(tiny_video, "q", selector="uniform", budget=3)
    with pytest.warns(DeprecationWarning, match="k= is deprecated"):
        older = gather_visual(tiny_video, "q", k=3)
    assert old.frame_indices == older.frame_indices == [0, 12, 23]
    with pytest.warns(DeprecationWarning, match="codec_budget"):
        g = ground(tiny_model, tiny_processor, tiny_video, "event", codec_budget=2,
                   max_new_tokens=2)
    assert g.budget.visual_tokens == new.patches.num_tokens

    @dataclass
    class Sel:
        indices: np.ndarray
        timestamps_s: np.ndarray

    calls = []

    def selector(path, question, k):
        calls.append((question, k))
        return Sel(np.array([1, 20]), np.array([0.125, 2.5]))

    with pytest.warns(DeprecationWarning, match="selector="):
        res = answer(tiny_model, tiny_processor, tiny_video, "q?", selector=selector, budget=2,
                     max_new_tokens=2)
    assert calls == [("q?", 2)] and res.timestamps_s == [0.125, 2.5]


def test_task_argument_errors(tiny_model, tiny_processor, tiny_video):
    with pytest.raises(InvalidArgumentError, match="needs embedder="):
        answer(tiny_model, tiny_processor, tiny_video, "q", method="mdp3")
    with pytest.raises(InvalidArgumentError, match="method='nope' is not registered; choose one "
                                                   "of .*'codec'.*'uniform'"):
        answer(tiny_model, tiny_processor, tiny_video, "q", method="nope")
    with pytest.raises(InvalidArgumentError, match="budget=0 must be an int >= 1"):
        ground(tiny_model, tiny_processor, tiny_video, "q", budget=0)
    with pytest.raises(InvalidArgumentError, match="give method= only"):
        gather_visual(tiny_video, "q", method="uniform", selector="uniform")
    with pytest.raises(InvalidArgumentError, match="do not combine it"):
        gather_visual(tiny_video, "q", method="codec", codec_budget=2)
    with pytest.raises(OvisError):
        gather_visual(None, "q")


def test_the_needs_no_embedder_list_comes_from_the_method_registry(tiny_video):
    """A method registered by a user that needs no embedder is listed as one of them."""
    def free(path, *, question, budget, geometry):  # pragma: no cover - never run
        raise NotImplementedError

    register_method("test-free-method", free, description="test only")
    try:
        with pytest.raises(InvalidArgumentError, match="needs embedder=") as info:
            gather_visual(tiny_video, "q", method="mdp3")
        free_names = [n for n in available_methods() if not get_method(n).needs_embedder]
    finally:
        METHODS.unregister("test-free-method")
    assert "'test-free-method'" in str(info.value)
    assert all(repr(n) in str(info.value) for n in free_names)


@pytest.mark.parametrize("bad", [[1], "uniform", {1: 2}])
def test_bad_method_options_are_argument_errors(tiny_video, bad):
    with pytest.raises(InvalidArgumentError, match="method_options=.* must be a mapping"):
        gather_visual(tiny_video, "q", method_options=bad)
    with pytest.raises(vidsel_errors.InvalidArgumentError):  # the vidsel tree catches it too
        gather_visual(tiny_video, "q", method_options=bad)


def test_renamed_task_names_keep_deprecated_aliases(tiny_model, tiny_processor, tiny_video):
    """``video=`` -> ``path=``, ``frame_times_s`` -> ``timestamps_s``, ``VisualSample.codec`` ->
    ``.patches``, ``processor(codec=)`` -> ``patches=``, ``pack_codec`` -> ``pack_patches``."""
    new = gather_visual(path=tiny_video, question="q", budget=2)
    with pytest.warns(DeprecationWarning, match=r"gather_visual.*video.*deprecated.*path"):
        old = gather_visual(video=tiny_video, question="q", budget=2)
    assert old.frame_indices == new.frame_indices
    with pytest.raises(vidsel_errors.InvalidArgumentError, match="give path= only"):
        gather_visual(path=tiny_video, video=tiny_video, question="q")
    res = answer(tiny_model, tiny_processor, path=tiny_video, question="q", budget=2,
                 max_new_tokens=2)
    with pytest.warns(DeprecationWarning, match="frame_times_s is deprecated"):
        assert res.frame_times_s == res.timestamps_s and len(res.timestamps_s) == 2
    with pytest.warns(DeprecationWarning, match=r"ground.*video.*deprecated.*path"):
        g = ground(tiny_model, tiny_processor, video=tiny_video, query="q", budget=2,
                   max_new_tokens=2)
    with pytest.warns(DeprecationWarning, match="GroundingResult.frame_times_s"):
        assert g.frame_times_s == g.timestamps_s
    patches = gather_visual(tiny_video, "q", method="codec", budget=2, processor=tiny_processor)
    with pytest.warns(DeprecationWarning, match="VisualSample.codec is deprecated"):
        assert patches.codec is patches.patches
    with pytest.warns(DeprecationWarning, match="VisualSample.codec"):
        assert VisualSample(codec=patches.patches).patches is patches.patches
    out = tiny_processor("What moves?", patches=patches.patches)
    with pytest.warns(DeprecationWarning, match="codec is deprecated"):
        out_old = tiny_processor("What moves?", codec=patches.patches)
    assert torch.equal(out.input_ids, out_old.input_ids)
    with pytest.warns(DeprecationWarning, match="ProcessorOutput.frame_times_s"):
        assert out_old.frame_times_s == out.timestamps_s
    with pytest.warns(DeprecationWarning, match="OvisProcessor.pack_codec is deprecated"):
        packed, _ = tiny_processor.pack_codec(patches.patches)
    assert packed.num_patches == tiny_processor.pack_patches(patches.patches)[0].num_patches
    with pytest.raises(InvalidArgumentError, match="give patches= only"):
        tiny_processor("x", patches=patches.patches, codec=patches.patches)


def test_embedder_reaches_the_method(tiny_model, tiny_processor, tiny_video, tiny_siglip_dir):
    """Issue 10 item 3: ``embedder=`` is forwarded to the text selector (never to generate)."""
    res = answer(tiny_model, tiny_processor, tiny_video, "where does the box go", method="mdp3",
                 budget=3, embedder=f"hf:{tiny_siglip_dir}",
                 method_options={"candidates": 12}, max_new_tokens=2)
    assert len(res.timestamps_s) == 3 and res.budget.visual_tokens == 3 * 6
    sample = gather_visual(tiny_video, "the red box", method="topk", budget=2,
                           embedder=f"hf:{tiny_siglip_dir}", method_options={"candidates": 8},
                           processor=tiny_processor)
    assert sample.selection.method == "topk" and sample.selection.scores is not None
    assert len(sample.frames) == 2


def test_a_registered_method_runs_through_the_tasks(tiny_model, tiny_processor, tiny_video):
    """A third-party method registered with vidsel.methods.register_method is a task method."""
    seen = {}

    def first_frames(path, *, question, budget, geometry):
        seen.update(path=path, question=question, budget=budget, geometry=geometry)
        with VideoReader(path) as reader:
            idx = np.arange(budget)
            return Selection(indices=idx, timestamps_s=reader.metadata.timestamps_s[idx],
                             scores=None, method="first-frames", source_fps=reader.metadata.fps,
                             path=reader.path, num_frames=len(reader),
                             tokens_per_frame=geometry.tokens_per_frame)

    register_method("test-first-frames", first_frames)
    try:
        res = answer(tiny_model, tiny_processor, tiny_video, "what is in the video",
                     method="test-first-frames", budget=2, max_new_tokens=2)
    finally:
        METHODS.unregister("test-first-frames")
    assert seen["path"] == str(tiny_video) and seen["question"] == "what is in the video"
    assert seen["budget"] == 2 and seen["geometry"] == tiny_processor.patch_geometry(64, 96)
    assert res.timestamps_s == [0.0, 0.125] and res.budget.visual_tokens == 2 * 6


def test_onevision_variant_runs(tiny_processor):
    model = OvisModel.from_config(preset("tiny-onevision"), seed=0)
    proc = OvisProcessor(ByteTokenizer(), model.config.vit_config,
                         image_config=ImageProcessorConfig(video_min_pixels=32 * 32,
                                                           video_max_pixels=32 * 32))
    frames = np.random.default_rng(1).integers(0, 255, (6, 32, 32, 3), dtype=np.uint8)
    inputs = proc("Describe.", video=frames, timestamps_s=[float(i) for i in range(6)],
                  frame_indices=[0, 10, 20, 30, 40, 50])
    assert inputs.cu_seqlens.tolist() == [0, 16, 24]  # windows of 4 source frames
    with torch.no_grad():
        logits = model(**inputs.model_inputs()).logits
    assert torch.isfinite(logits).all()


def test_visual_atoms_without_visual_tokens_are_an_argument_error(tiny_model):
    """Atom placeholders but no visual tokens (python -O must not change the answer)."""
    ids = torch.tensor([[5, VISUAL_ATOM_ID, VISUAL_ATOM_ID, 6]])
    with pytest.raises(InvalidArgumentError, match="2 visual atoms .* give 0 visual tokens"):
        tiny_model.merge_multimodal(ids, None)
