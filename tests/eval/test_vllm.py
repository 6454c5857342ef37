"""``VLLMAnswerer`` (the ``vllm:DIR_OR_ID`` model spec) against a stand-in ``vllm`` module.

vLLM cannot run here (CUDA build), so a stand-in module takes its place in ``sys.modules``: its
``LLM`` records how it was built and every ``generate`` call, and does what vLLM's
multimodal front end does with a prompt -- the checkpoint's real transformers processor applied
to the prompt text and ``multi_modal_data`` (video metadata turned into a
``transformers.video_utils.VideoMetadata`` as vLLM's Qwen3-VL processor does) -- so the token
counts and Qwen3-VL's ``<t seconds>`` markers checked below come from the real processors. The
processors, tokenizer and chat templates are the tiny ones of ``tiny_hf_dirs``
(tests/eval/conftest.py); everything of vidsel is real.
"""

from __future__ import annotations

import pickle
import sys
import types
from typing import Any, ClassVar

import numpy as np
import pytest

from tests.eval.conftest import frames_input, patches_input
from vidsel.errors import InvalidArgumentError, MissingDependencyError, ModelNotAvailableError
from vidsel.eval import (
    Generation,
    HFAnswerer,
    HFGeometry,
    Request,
    VLLMAnswerer,
    load_answerer,
)
from vidsel.eval._hf import CANVAS_INTRO
from vidsel.eval._vllm import processor_geometry, video_metadata
from vidsel.results import PatchConfig

transformers = pytest.importorskip("transformers")
pytest.importorskip("torchvision")

QWEN_VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"
QWEN_IMAGE = "<|vision_start|><|image_pad|><|vision_end|>"


class SamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class LLM:
    """Records construction and ``generate`` calls; answers with the processed prompt's
    token ids (what vLLM reports as ``prompt_token_ids``) and a fixed text."""

    instances: ClassVar[list[LLM]] = []

    def __init__(self, model: str, **kwargs: Any) -> None:
        self.model, self.kwargs = model, kwargs
        self.calls: list[tuple[list[dict[str, Any]], Any, dict[str, Any]]] = []
        self.processor = transformers.AutoProcessor.from_pretrained(model)
        LLM.instances.append(self)

    def _prompt_ids(self, prompt: dict[str, Any]) -> list[int]:
        mm = prompt["multi_modal_data"]
        kwargs: dict[str, Any] = dict(prompt.get("mm_processor_kwargs", {}))
        if "video" in mm:
            ((frames, meta),) = mm["video"]
            md = transformers.video_utils.VideoMetadata(
                **{k: v for k, v in meta.items() if k != "do_sample_frames"})
            kwargs.update(videos=[frames], video_metadata=[md],
                          do_sample_frames=meta["do_sample_frames"])
        if "image" in mm:
            kwargs["images"] = list(mm["image"])
        out = self.processor(text=[prompt["prompt"]], return_tensors="np", **kwargs)
        return [int(i) for i in out["input_ids"][0]]

    def generate(self, prompts: list[dict[str, Any]], sampling_params: Any = None,
                 **kwargs: Any) -> list[Any]:
        self.calls.append((prompts, sampling_params, kwargs))
        return [types.SimpleNamespace(
            prompt_token_ids=self._prompt_ids(p),
            outputs=[types.SimpleNamespace(text=f"  answer {len(self.calls)}.{i} \n")])
            for i, p in enumerate(prompts)]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    mod = types.ModuleType("vllm")
    mod.LLM = LLM  # type: ignore[attr-defined]
    mod.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", mod)
    LLM.instances.clear()
    return mod


def user_turn(body: str) -> str:
    """The tiny Qwen chat template's rendering of one user turn + the generation prompt."""
    return f"<|im_start|>user\n{body}<|im_end|>\n<|im_start|>assistant\n"


def test_engine_options_and_identity(fake_vllm, tiny_hf_dirs):
    folder = tiny_hf_dirs["qwen3_vl"]
    ans = VLLMAnswerer.from_pretrained(folder, max_batch=4, max_model_len=8192,
                                       gpu_memory_utilization=0.8,
                                       limit_mm_per_prompt={"video": 1, "image": 4},
                                       dtype="bfloat16", enforce_eager=True)
    (llm,) = LLM.instances
    assert llm.model == str(folder)
    assert llm.kwargs == {"max_model_len": 8192, "gpu_memory_utilization": 0.8,
                          "limit_mm_per_prompt": {"video": 1, "image": 4},
                          "dtype": "bfloat16", "enforce_eager": True}
    assert ans.name == f"vllm:{folder}" and ans.max_batch == 4
    assert ans.model_type == "qwen3_vl" and ans.temporal_patch_size == 2
    assert ans.describe() == {"name": f"vllm:{folder}", "backend": "vllm", "dtype": "bfloat16"}
    VLLMAnswerer.from_pretrained(folder)  # vLLM's own defaults: nothing passed
    assert LLM.instances[1].kwargs == {}
    ans.close()
    with pytest.raises(InvalidArgumentError, match="closed"):
        ans.generate([])


def test_the_vllm_model_spec(fake_vllm, tiny_hf_dirs):
    folder = tiny_hf_dirs["qwen2_vl"]
    ans = load_answerer(f"vllm:{folder}", max_batch=3, enforce_eager=True)
    assert isinstance(ans, VLLMAnswerer) and ans.name == f"vllm:{folder}"
    assert ans.max_batch == 3 and LLM.instances[0].kwargs == {"enforce_eager": True}


def test_qwen3_frames_prompt_metadata_and_true_time_markers(fake_vllm, tiny_hf_dirs, video):
    ans = VLLMAnswerer.from_pretrained(tiny_hf_dirs["qwen3_vl"])
    geometry = ans.geometry()(64, 96)
    assert geometry == PatchConfig(16, 2, (64, 96))
    visual = frames_input(video, geometry, budget=3)  # odd: padded to a temporal pair
    request = Request(visual, "Where does the box go?", max_new_tokens=7, item_id="q1")
    (gen,) = ans.generate([request])

    ((prompts, params, kwargs),) = LLM.instances[0].calls
    assert kwargs == {"use_tqdm": False}
    assert [p.kwargs for p in params] == [{"temperature": 0.0, "max_tokens": 7}]
    (prompt,) = prompts
    assert set(prompt) == {"prompt", "multi_modal_data"}  # no processor kwargs for Qwen3-VL
    assert prompt["prompt"] == user_turn(QWEN_VIDEO + "Where does the box go?")
    ((frames, meta),) = prompt["multi_modal_data"]["video"]
    assert set(prompt["multi_modal_data"]) == {"video"}
    idx = [int(i) for i in visual.frame_indices]
    assert meta == {"fps": pytest.approx(8.0), "total_num_frames": 24,
                    "frames_indices": [*idx, idx[-1]], "duration": pytest.approx(3.0),
                    "video_backend": "vidsel", "do_sample_frames": False}
    assert frames.dtype == np.uint8 and frames.shape == (4, 64, 96, 3)
    np.testing.assert_array_equal(frames[:3], visual.frames)
    np.testing.assert_array_equal(frames[3], visual.frames[-1])

    assert isinstance(gen, Generation) and gen.text == "answer 1.0"
    assert gen.notes == ("padded 3 frames to 4: Qwen3-VL merges frames in pairs (the last "
                         "frame repeated)",)
    assert gen.visual_tokens == 2 * geometry.tokens_per_frame  # 2 temporal pairs x 6 tokens
    assert gen.prompt_tokens == len(LLM.instances[0]._prompt_ids(prompt))
    # Qwen3-VL's markers: the true time of each pair (mean of its two frames' times)
    text = ans.processor.tokenizer.decode(LLM.instances[0]._prompt_ids(prompt))
    times = [i / 8.0 for i in [*idx, idx[-1]]]
    for a, b in ((0, 1), (2, 3)):
        assert f"<{(times[a] + times[b]) / 2:.1f} seconds>" in text
    assert "<0.0 seconds>" not in text  # not the 24-fps default of a processor left to guess


def test_qwen25_gets_its_time_step_and_even_frames_no_note(fake_vllm, tiny_hf_dirs, video):
    ans = VLLMAnswerer.from_pretrained(tiny_hf_dirs["qwen2_5_vl"])
    geometry = ans.geometry()(64, 96)
    assert geometry == PatchConfig(14, 2, (56, 84))
    (gen,) = ans.generate([Request(frames_input(video, geometry, 4), "What moves?")])
    ((prompt,), _, _) = LLM.instances[0].calls[0]
    # transformers' VideoMetadata.sampled_fps: 4 of 24 frames at 8 fps
    assert prompt["mm_processor_kwargs"] == {"fps": pytest.approx(4 / 24 * 8.0)}
    assert len(prompt["multi_modal_data"]["video"][0][0]) == 4
    assert gen.notes == () and gen.visual_tokens == 2 * geometry.tokens_per_frame


def test_codec_patches_as_canvases_with_their_times(fake_vllm, tiny_hf_dirs, video):
    ans = VLLMAnswerer.from_pretrained(tiny_hf_dirs["qwen2_vl"])
    visual = patches_input(video, ans.geometry()(64, 96), budget=2)
    canvases = visual.patches.canvases()
    (gen,) = ans.generate([Request(visual, "When does the box move?")])
    ((prompt,), _, _) = LLM.instances[0].calls[0]
    images = prompt["multi_modal_data"]["image"]
    assert set(prompt["multi_modal_data"]) == {"image"} and len(images) == len(canvases) >= 1
    for got, want in zip(images, canvases.images):
        np.testing.assert_array_equal(got, want)
    lines = [CANVAS_INTRO.format(n=len(canvases)) + "\n"]
    for i in range(len(canvases)):
        ts = np.unique(canvases.timestamps_s[i][canvases.valid[i]])
        lines.append(f"Canvas {i + 1}: patches from " + ", ".join(f"{t:.1f}s" for t in ts)
                     + "\n" + QWEN_IMAGE)
    assert prompt["prompt"] == user_turn("".join(lines) + "When does the box move?")
    # every canvas is one 84 x 84 image (the larger side of the 56 x 84 frame): 3 x 3 tokens
    assert canvases.images.shape[1:] == (84, 84, 3)
    assert gen.visual_tokens == 9 * len(canvases) and gen.notes == ()


def test_llava_onevision_frames(fake_vllm, tiny_hf_dirs, video):
    ans = VLLMAnswerer.from_pretrained(tiny_hf_dirs["llava_onevision"])
    geometry = ans.geometry()(64, 96)
    assert geometry == PatchConfig(14, 2, (56, 56)) and geometry.tokens_per_frame == 4
    (gen,) = ans.generate([Request(frames_input(video, geometry, 3), "What moves?")])
    ((prompt,), _, _) = LLM.instances[0].calls[0]
    assert prompt["prompt"] == user_turn("<video>\nWhat moves?")
    assert len(prompt["multi_modal_data"]["video"][0][0]) == 3  # no temporal pairs: no pad
    # 3 frames pooled to 2 x 2 tokens, plus the video's newline token
    assert gen.notes == () and gen.visual_tokens == ans.geometry().video_tokens(64, 96, 3) == 13


def test_batches_of_max_batch_in_order(fake_vllm, tiny_hf_dirs, video):
    ans = VLLMAnswerer.from_pretrained(tiny_hf_dirs["qwen3_vl"], max_batch=2)
    geometry = ans.geometry()(64, 96)
    requests = [Request(frames_input(video, geometry, b), f"q{b}", max_new_tokens=b)
                for b in (2, 4, 6)]
    gens = ans.generate(requests)
    calls = LLM.instances[0].calls
    assert [len(c[0]) for c in calls] == [2, 1]
    assert [p.kwargs["max_tokens"] for c in calls for p in c[1]] == [2, 4, 6]
    assert [g.text for g in gens] == ["answer 1.0", "answer 1.1", "answer 2.0"]
    assert [g.visual_tokens for g in gens] == [6, 12, 18]


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_onevision"])
def test_geometry_is_the_hf_backends(family, tiny_hf_dirs):
    """vLLM runs the checkpoint's own transformers processor: the geometry is the one the
    ``hf`` backend gives the same checkpoint (so both select at the same visual tokens)."""
    folder = tiny_hf_dirs[family]
    processor = transformers.AutoProcessor.from_pretrained(folder)
    config = transformers.AutoConfig.from_pretrained(folder)
    geometry = processor_geometry(processor, config)
    assert isinstance(geometry, HFGeometry)
    assert geometry == HFAnswerer.from_pretrained(str(folder), device="cpu").geometry()
    assert pickle.loads(pickle.dumps(geometry)) == geometry
    for h, w in ((64, 96), (360, 640)):
        assert geometry(h, w) == pickle.loads(pickle.dumps(geometry))(h, w)


def test_video_metadata_pads_the_indices(video):
    visual = frames_input(video, PatchConfig(16, 2, (64, 96)), budget=3)
    meta = video_metadata(visual, pad_to_multiple=4)
    assert meta["frames_indices"] == [int(i) for i in visual.frame_indices] + [
        int(visual.frame_indices[-1])]
    assert video_metadata(visual)["frames_indices"] == [int(i) for i in visual.frame_indices]


def test_unknown_family_needs_a_geometry(fake_vllm, tiny_siglip_dir):
    with pytest.raises(InvalidArgumentError, match="model_type='siglip'.*qwen3_vl.*geometry="):
        VLLMAnswerer.from_pretrained(tiny_siglip_dir)
    with pytest.raises(InvalidArgumentError, match="no chat template"):
        VLLMAnswerer.from_pretrained(tiny_siglip_dir, geometry=PatchConfig(16, 2, (64, 64)))
    assert not LLM.instances  # failed before the engine started
    processor = transformers.AutoProcessor.from_pretrained(tiny_siglip_dir)
    ans = VLLMAnswerer(None, processor, model_type="siglip",
                       geometry=PatchConfig(16, 2, (64, 64)))
    assert ans.geometry()(480, 640) == PatchConfig(16, 2, (64, 64))
    with pytest.raises(InvalidArgumentError, match="geometry="):
        VLLMAnswerer(None, processor, model_type="siglip", geometry="qwen")  # type: ignore


def test_missing_model_fails_fast(fake_vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("VIDSEL_ALLOW_DOWNLOAD", raising=False)
    with pytest.raises(ModelNotAvailableError, match="vllm:.*: no model directory"):
        VLLMAnswerer.from_pretrained(tmp_path / "nope")
    with pytest.raises(ModelNotAvailableError, match="has no config.json"):
        VLLMAnswerer.from_pretrained(tmp_path)
    with pytest.raises(ModelNotAvailableError, match="VIDSEL_ALLOW_DOWNLOAD=1.*vllm:DIR"):
        VLLMAnswerer.from_pretrained("nobody-here/not-cached-vlm")
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE=1 is set"):
        VLLMAnswerer.from_pretrained("nobody-here/not-cached-vlm", allow_download=True)
    assert not LLM.instances


def test_missing_vllm_names_the_extra(run_without, tiny_hf_dirs):
    res = run_without(("vllm",), f"""
        from vidsel.errors import MissingDependencyError
        from vidsel.eval import VLLMAnswerer
        try:
            VLLMAnswerer.from_pretrained({str(tiny_hf_dirs["qwen2_vl"])!r})
        except MissingDependencyError as e:
            print("ERR", e)
    """)
    assert res.returncode == 0, res.stderr
    assert "ERR the vllm answerer (vllm:MODEL) needs vllm: pip install 'vidsel[vllm]'" in \
        res.stdout
    assert issubclass(MissingDependencyError, ImportError)


def test_a_device_for_vllm_is_a_usage_error():
    """vLLM places the model itself (its engine takes no device): said before anything loads."""
    from vidsel.eval import check_model

    with pytest.raises(InvalidArgumentError, match="takes no device.*CUDA_VISIBLE_DEVICES"):
        check_model("vllm:/models/qwen", {"device": "cuda:0"})
