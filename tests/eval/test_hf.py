"""HFAnswerer on tiny random-weight Qwen2-VL, Qwen2.5-VL, Qwen3-VL and LLaVA-OneVision models
saved to folders (``tiny_hf_dirs``) and loaded through the real transformers path: frames with
their true times, codec patches as canvases, batching, token accounting, load errors.
With random weights the text is noise; the path is real."""

from __future__ import annotations

import copy
import pickle
import re
import shutil
import time
from types import SimpleNamespace

import numpy as np
import pytest

from tests.eval.conftest import LLAVA_OV_TEMPLATE, SPECIALS, _text_config, tiny_vlm_tokenizer
from vidsel.errors import InvalidArgumentError, ModelNotAvailableError
from vidsel.eval import (
    Generation,
    HFAnswerer,
    HFGeometry,
    Request,
    VisualInput,
    load_answerer,
)
from vidsel.eval._hf import processor_geometry
from vidsel.methods import run_method
from vidsel.results import PatchConfig, Selection

pytest.importorskip("transformers")
pytest.importorskip("torchvision")

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava_onevision")
H, W = 64, 96


@pytest.fixture(scope="module")
def video(make_synth):
    return make_synth(scene="moving_box", num_frames=24, fps=8, width=W, height=H).path


@pytest.fixture(scope="module")
def answerers(tiny_hf_dirs):
    return {f: HFAnswerer.from_pretrained(str(d), max_batch=4) for f, d in tiny_hf_dirs.items()}


def hand_selection(video, indices) -> Selection:
    idx = np.asarray(indices, np.int64)
    return Selection(indices=idx, timestamps_s=idx / 8.0, scores=None, method="hand",
                     source_fps=8.0, path=str(video), num_frames=24)


def frames_input(sel: Selection, geometry: HFGeometry) -> VisualInput:
    """What the runner builds: the selected frames at the model's frame size."""
    cfg = geometry(H, W, num_frames=len(sel))
    return VisualInput(kind="frames", path=str(sel.path), selection=sel,
                       timestamps_s=sel.timestamps_s, frame_indices=sel.indices,
                       source_fps=sel.source_fps, num_frames=24, duration_s=3.0,
                       frames=sel.load_frames(cfg.frame_size))


def patches_input(video, geometry: HFGeometry, budget: int = 2) -> VisualInput:
    ps = run_method("codec", video, budget=budget, geometry=geometry(H, W), pixels="decode")
    return VisualInput(kind="patches", path=str(video), selection=ps,
                       timestamps_s=ps.source_timestamps_s, frame_indices=ps.source_frames,
                       source_fps=8.0, num_frames=24, duration_s=3.0, patches=ps)


def prompt_text(answerer: HFAnswerer, request: Request) -> str:
    ids = answerer.inputs([request])["input_ids"][0]
    return str(answerer.processor.tokenizer.decode(ids))


@pytest.mark.parametrize("family", FAMILIES)
def test_frames_answer_with_the_tokens_the_geometry_predicts(family, answerers, video):
    a = answerers[family]
    assert a.family == family and a.kinds == ("frames", "patches")
    assert a.name.startswith("hf:") and a.describe()["family"] == family
    geo = a.geometry()
    assert pickle.loads(pickle.dumps(geo)) == geo
    for k in (3, 4):
        sel = run_method("uniform", video, budget=k)
        (g,) = a.generate([Request(frames_input(sel, geo), "What moves?", max_new_tokens=4)])
        assert isinstance(g, Generation) and isinstance(g.text, str)
        assert g.visual_tokens == geo.video_tokens(H, W, k)
        assert g.prompt_tokens > g.visual_tokens
        padded = family != "llava_onevision" and k % 2
        assert bool(g.notes) == bool(padded)
        if padded:
            assert g.notes[0].startswith(f"padded {k} frames to {k + 1}: ")


def test_token_accounting_per_family(answerers):
    """Qwen-VL: tokens per temporal pair of frames; LLaVA-OneVision: pooled frames + newline."""
    q2 = answerers["qwen2_vl"].geometry()
    assert q2(H, W) == PatchConfig(14, 2, (56, 84))  # 2 x 3 tokens per pair of frames
    assert q2.video_tokens(H, W, 3) == q2.video_tokens(H, W, 4) == 2 * 6
    ov = answerers["llava_onevision"].geometry()
    assert ov(H, W) == ov(720, 1280) == PatchConfig(14, 2, (56, 56))  # sqrt(16) / 2 = 2
    assert ov.video_tokens(H, W, 3) == 3 * 4 + 1
    q3 = answerers["qwen3_vl"].geometry()
    # Qwen3-VL bounds the whole clip (t x h x w <= 32 * 32 * 64): more frames, smaller frames
    assert q3(H, W, num_frames=2).frame_size == (64, 96)
    assert q3(H, W, num_frames=16).frame_size == (32, 64)
    assert q3.for_frames(16)(H, W) == q3(H, W, num_frames=16)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen3_vl"])
@pytest.mark.parametrize("cap", [False, True])
@pytest.mark.parametrize("size,k", [((64, 96), 2), ((360, 640), 4), ((1080, 1920), 16),
                                    ((50, 300), 6)])
def test_geometry_is_the_processors_resize(family, cap, size, k, answerers):
    """transformers' own resize, with the qwen-vl-utils per-frame cap on or off."""
    a = answerers[family]
    vp = copy.deepcopy(a.processor.video_processor)
    vp.cap_pixels_per_frame, vp.max_video_tokens = cap, 8
    geo = processor_geometry(SimpleNamespace(video_processor=vp), a.model.config)
    assert geo.cap_pixels_per_frame is cap
    frames = np.zeros((k, *size, 3), np.uint8)
    out = vp(videos=[frames], do_sample_frames=False, return_tensors="pt")
    t, gh, gw = out["video_grid_thw"][0].tolist()
    assert geo(*size, num_frames=k).frame_size == (gh * geo.patch_size, gw * geo.patch_size)
    assert geo.video_tokens(*size, k) == t * gh * gw // geo.merge ** 2


def test_qwen3_markers_are_the_frames_true_times(answerers, video):
    """Qwen3-VL writes one ``<t seconds>`` marker per temporal pair (the mean of its two
    frames' times) from frames_indices / fps: the selection's real times, not 24 fps ones."""
    a = answerers["qwen3_vl"]
    sel = hand_selection(video, [1, 5, 6, 20, 22])  # odd and uneven: padded with frame 22
    text = prompt_text(a, Request(frames_input(sel, a.geometry()), "When does it stop?"))
    got = [float(x) for x in re.findall(r"<([\d.]+) seconds>", text)]
    ts = [1 / 8, 5 / 8, 6 / 8, 20 / 8, 22 / 8, 22 / 8]
    want = [round((ts[i] + ts[i + 1]) / 2, 1) for i in range(0, 6, 2)]
    assert got == pytest.approx(want, abs=0.051)
    assert want == pytest.approx([0.4, 1.6, 2.8], abs=0.051)
    assert "When does it stop?" in text


def test_marker_drift_is_noted(answerers, video):
    """A stream whose presentation times are not frame_index / fps gets a note."""
    a = answerers["qwen3_vl"]
    sel = hand_selection(video, [2, 10])
    vi = frames_input(sel, a.geometry())
    shifted = VisualInput(kind="frames", path=vi.path, selection=sel,
                          timestamps_s=vi.timestamps_s + 1.0, frame_indices=vi.frame_indices,
                          source_fps=8.0, num_frames=24, duration_s=3.0, frames=vi.frames)
    (g,) = a.generate([Request(shifted, "Where?", max_new_tokens=2)])
    assert len(g.notes) == 1 and "1.00s off" in g.notes[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_patches_go_in_as_canvases_with_their_times(family, answerers, video):
    a = answerers[family]
    vi = patches_input(video, a.geometry())
    canvases = vi.patches.canvases()
    request = Request(vi, "What moves?", max_new_tokens=3, item_id="p1")
    text = prompt_text(a, request)
    for c in range(len(canvases)):
        times = np.unique(canvases.timestamps_s[c][canvases.valid[c]])
        line = f"Canvas {c + 1}: patches from " + ", ".join(f"{t:.1f}s" for t in times)
        assert line in text
    (g,) = a.generate([request])
    if family == "llava_onevision":  # several images: num_image_tokens + 1 each
        assert len(canvases) > 1 and g.visual_tokens == len(canvases) * 17
        (one,) = a.generate([Request(patches_input(video, a.geometry(), budget=1), "Q?",
                                     max_new_tokens=1)])
        assert one.notes and "anyres" in one.notes[0]
    else:  # each canvas its full token grid
        side = canvases.images.shape[1] // (a.geometry().patch_size * 2)
        assert g.visual_tokens == len(canvases) * side * side


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "llava_onevision"])
def test_batching_equals_one_by_one(family, answerers, video):
    a = answerers[family]
    geo = a.geometry()
    reqs = [Request(frames_input(run_method("uniform", video, budget=4), geo), "What moves?",
                    max_new_tokens=3, item_id="u4"),
            Request(patches_input(video, geo), "Where does the red box go in the end?",
                    max_new_tokens=3, item_id="codec"),
            Request(frames_input(hand_selection(video, [0, 3, 9, 23]), geo),
                    "Which way does the box move, left or right?", max_new_tokens=4,
                    item_id="hand"),
            Request(frames_input(run_method("uniform", video, budget=2), geo), "Is it red?",
                    max_new_tokens=3, item_id="u2")]
    batched = a.generate(reqs)
    single = HFAnswerer(a.model, a.processor, max_batch=1)
    alone = [single.generate([r])[0] for r in reqs]
    assert batched == alone
    assert len({g.text for g in batched}) > 1  # the random model's answers depend on the input


def test_inputs_of_one_batch(answerers, video):
    """``inputs`` is one processor batch: frames and patches cannot share it (``generate``
    splits them into separate calls, see test_batching_equals_one_by_one)."""
    a = answerers["llava_onevision"]
    vi = frames_input(run_method("uniform", video, budget=2), a.geometry())
    with pytest.raises(InvalidArgumentError, match="cannot share a batch"):
        a.inputs([Request(vi, "a"), Request(patches_input(video, a.geometry()), "b")])


def test_pixel_limits_change_the_geometry(tiny_hf_dirs, answerers, video):
    small = HFAnswerer.from_pretrained(str(tiny_hf_dirs["qwen2_vl"]), min_pixels=28 * 28,
                                       max_pixels=28 * 28 * 3, dtype="float32", device="cpu")
    geo = small.geometry()
    assert geo(H, W) == PatchConfig(14, 2, (28, 56)) != answerers["qwen2_vl"].geometry()(H, W)
    assert small.describe()["pixels"] == [28 * 28, 28 * 28 * 3]
    sel = run_method("uniform", video, budget=2)
    (g,) = small.generate([Request(frames_input(sel, geo), "What?", max_new_tokens=1)])
    assert g.visual_tokens == geo.video_tokens(H, W, 2) == 2
    with pytest.raises(InvalidArgumentError, match="fixed frame sizes"):
        HFAnswerer.from_pretrained(str(tiny_hf_dirs["llava_onevision"]), max_pixels=1000)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "llava_onevision"])
def test_bfloat16_weights_take_bfloat16_pixels(family, tiny_hf_dirs, video):
    import torch

    a = HFAnswerer.from_pretrained(str(tiny_hf_dirs[family]), dtype="bfloat16")
    assert a.describe()["dtype"] == "bfloat16"
    request = Request(frames_input(run_method("uniform", video, budget=4), a.geometry()), "Q?",
                      max_new_tokens=2)
    inputs = a.inputs([request])
    assert inputs["pixel_values_videos"].dtype == torch.bfloat16
    if family == "qwen2_5_vl":  # temporal positions are rounded from it: kept in float32
        assert inputs["second_per_grid_ts"].dtype == torch.float32
    (g,) = a.generate([request])
    assert g.visual_tokens == a.geometry().video_tokens(H, W, 4)


def test_max_new_tokens_and_close(answerers, tiny_hf_dirs, video):
    a = HFAnswerer.from_pretrained(str(tiny_hf_dirs["qwen2_vl"]))
    vi = frames_input(run_method("uniform", video, budget=2), a.geometry())
    long, short = a.generate([Request(vi, "What?", max_new_tokens=8),
                              Request(vi, "What?", max_new_tokens=2)])
    # greedy: the short answer is the long one cut (a cut inside a UTF-8 character decodes
    # to U+FFFD)
    assert long.text.startswith(short.text.rstrip("\ufffd"))
    a.close()
    a.close()
    with pytest.raises(InvalidArgumentError, match="closed"):
        a.generate([Request(vi, "What?")])


def test_offline_missing_model_fails_fast(monkeypatch):
    monkeypatch.delenv("VIDSEL_ALLOW_DOWNLOAD", raising=False)
    t0 = time.perf_counter()
    with pytest.raises(ModelNotAvailableError, match="not available locally.*VIDSEL_ALLOW_DOWNLOAD"
                       r".*hf download nobody/no-such-vlm"):
        HFAnswerer.from_pretrained("nobody/no-such-vlm")
    assert time.perf_counter() - t0 < 2.0
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match="hf:nobody/no-such-vlm is not available "
                       "locally, and cannot be downloaded because HF_HUB_OFFLINE=1 is set"):
        HFAnswerer.from_pretrained("nobody/no-such-vlm", allow_download=True)


def test_bad_folders(tmp_path, tiny_hf_dirs):
    with pytest.raises(ModelNotAvailableError, match="no model directory"):
        HFAnswerer.from_pretrained(str(tmp_path / "missing"))
    with pytest.raises(ModelNotAvailableError, match="has no config.json"):
        HFAnswerer.from_pretrained(str(tmp_path))
    from transformers import BertConfig

    BertConfig(num_hidden_layers=1).save_pretrained(tmp_path / "bert")
    with pytest.raises(InvalidArgumentError, match="not an image-text-to-text model.*qwen2_vl"):
        HFAnswerer.from_pretrained(str(tmp_path / "bert"))
    bare = shutil.copytree(tiny_hf_dirs["qwen2_vl"], tmp_path / "bare")
    (bare / "chat_template.jinja").unlink()
    with pytest.raises(InvalidArgumentError, match="no chat template"):
        HFAnswerer.from_pretrained(str(bare))
    with pytest.raises(InvalidArgumentError, match="dtype"):
        HFAnswerer.from_pretrained(str(tiny_hf_dirs["qwen2_vl"]), dtype="int8")


@pytest.fixture(scope="module")
def tiny_llava_dir(tmp_path_factory):
    """A tiny LLaVA-1.5-style model (CLIP 28 px, 2 x 2 patches): images only."""
    import torch
    import transformers as tf

    tok = tiny_vlm_tokenizer()
    ids = {s: tok.convert_tokens_to_ids(s) for s in SPECIALS}
    config = tf.LlavaConfig(
        text_config=dict(model_type="qwen2", **_text_config(ids)),
        vision_config=dict(model_type="clip_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2, image_size=28,
                           patch_size=14, projection_dim=32),
        image_token_index=ids["<image>"], vision_feature_select_strategy="full",
        vision_feature_layer=-1)
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny_llava")
    tf.AutoModelForImageTextToText.from_config(config).save_pretrained(d)
    tf.LlavaProcessor(image_processor=tf.CLIPImageProcessor(
        size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}), tokenizer=tok,
        patch_size=14, vision_feature_select_strategy="full", num_additional_image_tokens=1,
        chat_template=LLAVA_OV_TEMPLATE).save_pretrained(d)
    return d


def test_image_only_models_take_patches_only(tiny_llava_dir, answerers, video):
    a = HFAnswerer.from_pretrained(str(tiny_llava_dir))
    assert a.family == "llava" and a.kinds == ("patches",)
    assert a.geometry()(H, W) == PatchConfig(14, 1, (28, 28))
    vi = patches_input(video, a.geometry())
    (g,) = a.generate([Request(vi, "What moves?", max_new_tokens=2)])
    assert g.visual_tokens == len(vi.patches.canvases()) * (4 + 1)  # 2 x 2 patches + CLS
    frames = frames_input(run_method("uniform", video, budget=2), answerers["qwen2_vl"].geometry())
    with pytest.raises(InvalidArgumentError, match="takes patches inputs, not frames"):
        a.generate([Request(frames, "What moves?")])


def test_hf_model_spec(tiny_hf_dirs):
    a = load_answerer(f"hf:{tiny_hf_dirs['qwen3_vl']}", max_batch=2, dtype="float32")
    assert isinstance(a, HFAnswerer) and a.max_batch == 2 and a.family == "qwen3_vl"
    assert a.name == f"hf:{tiny_hf_dirs['qwen3_vl'].resolve()}"
