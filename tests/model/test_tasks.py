"""Parser, metrics, generation on CPU, and answer / ground end to end on the tiny model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from ovis_model import (
    answer,
    extract_choice,
    ground,
    grounding_metrics,
    mcq_accuracy,
    parse_time_span,
    temporal_iou,
)


@pytest.mark.parametrize("text,span", [
    ("The event happens in 12.3 - 15.0 seconds.", (12.3, 15.0)),
    ("from 3 to 7.5", (3.0, 7.5)),
    ("between 2s and 5s", (2.0, 5.0)),
    ("00:01:05 - 00:01:12", (65.0, 72.0)),
    ("It starts at 1:05 and ends at 1:12", (65.0, 72.0)),
    ("9.0 to 4.5 seconds", (4.5, 9.0)),  # swapped ends
    ("at 4 seconds, until 8", (4.0, 8.0)),  # first two numbers
    ("no idea", None),
])
def test_parse_time_span(text, span):
    got = parse_time_span(text)
    if span is None:
        assert got is None
    else:
        assert got == pytest.approx(span)


def test_parse_time_span_clips_to_duration():
    assert parse_time_span("20 - 40 seconds", duration=30.0) == (20.0, 30.0)


@pytest.mark.parametrize("text,letter", [
    ("B", "B"), ("(C) a cat", "C"), ("The answer is D.", "D"), ("Answer: (a)", "A"),
    ("I think it is option B", "B"), ("a red car", "B"), ("nothing", None),
])
def test_extract_choice(text, letter):
    assert extract_choice(text, 4, ["a dog", "a red car", "a tree", "a house"]) == letter


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
                 options=["left", "right"], k=3, max_new_tokens=4)
    assert isinstance(res.text, str) and res.choice in (None, "A", "B")
    assert len(res.frame_times_s) == 3 and res.budget.visual_tokens > 0
    g = ground(tiny_model, tiny_processor, tiny_video, "the box moves", k=2, max_new_tokens=4)
    assert isinstance(g.text, str)
    assert (g.start_s is None) == (g.end_s is None)
    if g.span is not None:
        assert 0.0 <= g.start_s <= g.end_s <= 3.0


def test_answer_with_selector_callable_and_codec(tiny_model, tiny_processor, tiny_video,
                                                 monkeypatch, make_codec_sample):
    @dataclass
    class Sel:
        indices: np.ndarray
        timestamps_s: np.ndarray

    calls = []

    def selector(path, question, k):
        calls.append((question, k))
        return Sel(np.array([1, 20]), np.array([0.125, 2.5]))

    res = answer(tiny_model, tiny_processor, tiny_video, "q?", selector=selector, k=2,
                 max_new_tokens=2)
    assert calls == [("q?", 2)] and res.frame_times_s == [0.125, 2.5]

    import vidsel.codec

    seen = {}

    def fake_select_patches(path, *, budget_frames, patch_size, merge):
        seen.update(budget_frames=budget_frames, patch_size=patch_size, merge=merge)
        return make_codec_sample(patch_size)

    monkeypatch.setattr(vidsel.codec, "select_patches", fake_select_patches, raising=False)
    g = ground(tiny_model, tiny_processor, tiny_video, "event", codec_budget=2,
               max_new_tokens=2)
    assert seen == {"budget_frames": 2, "patch_size": 16, "merge": 2}
    assert g.frame_times_s == [1.0, 5.0] and g.budget.visual_tokens == 3


def test_onevision_variant_runs(tiny_processor):
    from ovis_model import ByteTokenizer, ImageProcessorConfig, OvisModel, OvisProcessor, preset

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
