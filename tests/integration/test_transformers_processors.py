"""A vidsel ``Selection`` fed to the real transformers processors of Qwen2-VL, Qwen2.5-VL,
Qwen3-VL and LLaVA-OneVision, built locally (default image / video processor settings and a
byte-level tokenizer with the models' special tokens; no hub).

What works (issue 10 item 4, transformers 5): decoded frames + ``video_metadata`` with
``do_sample_frames=False`` -- the one documented way is
``processor(text=..., **to_transformers(sel, processor))`` (``to_qwen`` underneath) --, or
transformers' own ``load_video(..., sample_indices_fn=sample_indices_fn(sel))`` whose output goes
in the same way. A processor called with ``videos=path, sample_indices_fn=...`` does not apply
the selection.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from vidsel.errors import InvalidArgumentError
from vidsel.io import VideoReader
from vidsel.methods import run_method
from vidsel.selection import (
    indices_for,
    qwen_video_metadata,
    sample_indices_fn,
    to_qwen,
    to_transformers,
)

transformers = pytest.importorskip("transformers")
pytest.importorskip("torchvision")

SPECIALS = ["<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|image_pad|>", "<image>",
            "<video>"]
QWEN_VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"


@pytest.fixture(scope="module")
def tokenizer():
    """Byte-level BPE without merges: any text round-trips, the specials are single tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<video>",
                                                additional_special_tokens=SPECIALS)


def _qwen2(tok):
    return transformers.Qwen2VLProcessor(image_processor=transformers.Qwen2VLImageProcessor(),
                                         tokenizer=tok,
                                         video_processor=transformers.Qwen2VLVideoProcessor())


def _qwen25(tok):
    return transformers.Qwen2_5_VLProcessor(
        image_processor=transformers.Qwen2VLImageProcessor(), tokenizer=tok,
        video_processor=transformers.Qwen2VLVideoProcessor())


def _qwen3(tok):
    return transformers.Qwen3VLProcessor(image_processor=transformers.Qwen2VLImageProcessor(),
                                         tokenizer=tok,
                                         video_processor=transformers.Qwen3VLVideoProcessor())


def _llava_ov(tok):
    return transformers.LlavaOnevisionProcessor(
        image_processor=transformers.LlavaOnevisionImageProcessor(), tokenizer=tok,
        video_processor=transformers.LlavaOnevisionVideoProcessor(), num_image_tokens=729,
        vision_feature_select_strategy="full")


QWEN = {"qwen2-vl": _qwen2, "qwen2.5-vl": _qwen25, "qwen3-vl": _qwen3}
ALL = {**QWEN, "llava-onevision": _llava_ov}
#: The video placeholder each family's prompt carries.
PLACEHOLDER = {**{name: QWEN_VIDEO for name in QWEN}, "llava-onevision": "<video>"}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from vidsel.synth import make_video

    path = tmp_path_factory.mktemp("hf_processors") / "box.mp4"
    make_video(path, scene="moving_box", num_frames=24, fps=8, width=96, height=64, gop=8)
    return path


@pytest.fixture(scope="module")
def selection(video, tiny_siglip_dir):
    """Three text-relevant frames (an odd count: Qwen pads it to a temporal pair)."""
    sel = run_method("mdp3", video, question="the red box", budget=3,
                     embedder=f"hf:{tiny_siglip_dir}", candidates=12)
    assert len(sel) == 3
    return sel


def _video_tokens(proc, out) -> int:
    ids = out["input_ids"][0].tolist()
    return ids.count(proc.tokenizer.convert_tokens_to_ids(proc.video_token))


@pytest.mark.parametrize("name", sorted(QWEN))
def test_qwen_processors_take_the_selected_frames(name, tokenizer, selection):
    proc = QWEN[name](tokenizer)
    frames, md = to_qwen(selection, size=64)
    assert md.frames_indices == [*selection.indices.tolist(), int(selection.indices[-1])]
    out = proc(text=[QWEN_VIDEO + "What moves?"], videos=[frames], video_metadata=[md],
               do_sample_frames=False, return_tensors="pt")
    t, h, w = out["video_grid_thw"][0].tolist()
    assert t == 2  # 3 selected frames + 1 repeated = 2 temporal patches, no frame resampled
    merge = proc.video_processor.merge_size
    assert _video_tokens(proc, out) == t * h * w // merge**2
    assert out["pixel_values_videos"].shape[0] == t * h * w

    # the same pixels as frames decoded by hand through vidsel
    manual = proc.video_processor(videos=[np.concatenate([selection.load_frames(64),
                                                          selection.load_frames(64)[-1:]])],
                                  do_sample_frames=False, return_tensors="pt")
    assert np.array_equal(manual["pixel_values_videos"].numpy(),
                          out["pixel_values_videos"].numpy())


def test_qwen3_markers_are_the_selection_times(tokenizer, selection):
    """Qwen3-VL writes one ``<t seconds>`` marker per temporal pair: the mean of its two frame
    times, from ``frames_indices / fps``; without metadata it would invent 24 fps times."""
    proc = _qwen3(tokenizer)
    frames, md = to_qwen(selection, size=64)
    out = proc(text=[QWEN_VIDEO], videos=[frames], video_metadata=[md], do_sample_frames=False)
    text = proc.tokenizer.decode(out["input_ids"][0])
    got = [float(x) for x in re.findall(r"<([\d.]+) seconds>", text)]
    ts = selection.timestamps_s
    pairs = [(ts[0] + ts[1]) / 2, (ts[2] + ts[2]) / 2]
    assert got == pytest.approx([round(p, 1) for p in pairs], abs=0.051)
    blind = proc(text=[QWEN_VIDEO], videos=[frames], do_sample_frames=False)
    assert re.findall(r"<([\d.]+) seconds>", proc.tokenizer.decode(blind["input_ids"][0])) != \
        re.findall(r"<([\d.]+) seconds>", text)


def test_qwen25_time_step_comes_from_the_metadata(tokenizer, selection):
    proc = _qwen25(tokenizer)
    frames, md = to_qwen(selection, size=64)
    out = proc(text=[QWEN_VIDEO], videos=[frames], video_metadata=[md], do_sample_frames=False)
    # temporal_patch_size / sampled_fps, sampled_fps = 4 frames over 24 at 8 fps
    assert out["second_per_grid_ts"] == pytest.approx([2 / (4 / 24 * 8)])


def test_llava_onevision_takes_the_selected_frames(tokenizer, selection):
    proc = _llava_ov(tokenizer)
    frames, md = to_qwen(selection, size=64, temporal_patch_size=1)
    assert len(frames) == 3 and md.frames_indices == selection.indices.tolist()
    out = proc(text=["<video>What moves?"], videos=[frames], video_metadata=[md],
               do_sample_frames=False, return_tensors="pt")
    assert tuple(out["pixel_values_videos"].shape[:3]) == (1, 3, 3)
    assert _video_tokens(proc, out) > 0


@pytest.mark.parametrize("backend,suffix", [("pyav", ".mp4"), ("pyav", ".mkv"), ("pyav", ".ts"),
                                            ("decord", ".mp4"), ("decord", ".mkv")])
def test_sample_indices_fn_through_transformers_load_video(backend, suffix, make_synth,
                                                           tokenizer):
    """The hook in transformers' own decoder, then a processor: the frames vidsel selected.
    PyAV reports no frame count for MKV and MPEG-TS (0): vidsel's indices are kept, not an
    error. (decord numbers this MPEG-TS file's frames 8 later than a sequential decode, so the
    docs recommend ``backend="pyav"``.)"""
    pytest.importorskip({"pyav": "av"}.get(backend, backend))
    from transformers.video_utils import load_video

    path = make_synth(suffix=suffix, num_frames=24, fps=8, width=96, height=64, gop=8).path
    sel = run_method("uniform", path, budget=4)
    frames, md = load_video(str(path), backend=backend, sample_indices_fn=sample_indices_fn(sel))
    assert [int(i) for i in md.frames_indices] == sel.indices.tolist()
    np.testing.assert_array_equal(frames, sel.load_frames())
    proc = _qwen3(tokenizer)
    out = proc(text=[QWEN_VIDEO], videos=[frames], video_metadata=[md], do_sample_frames=False,
               return_tensors="pt")
    assert out["video_grid_thw"][0, 0].item() == 2
    mine = proc(text=[QWEN_VIDEO], videos=[sel.load_frames()],
                video_metadata=[qwen_video_metadata(sel)], do_sample_frames=False,
                return_tensors="pt")
    assert out["input_ids"].tolist() == mine["input_ids"].tolist()


@pytest.mark.parametrize("name", sorted(ALL))
def test_to_transformers_with_each_processor(name, tokenizer, selection):
    """``processor(text=..., **to_transformers(sel, processor))``: the selected frames reach
    the processor as they are (no resampling), padded to its own temporal patch size."""
    proc = ALL[name](tokenizer)
    kwargs = to_transformers(selection, proc, size=64)
    assert sorted(kwargs) == ["do_sample_frames", "video_metadata", "videos"]
    assert kwargs["do_sample_frames"] is False
    ((frames,), (md,)) = kwargs["videos"], kwargs["video_metadata"]
    assert isinstance(md, transformers.video_utils.VideoMetadata)
    tps = getattr(proc.video_processor, "temporal_patch_size", 1)
    assert tps == (1 if name == "llava-onevision" else 2)
    idx = selection.indices.tolist()
    assert md.frames_indices == idx + idx[-1:] * (-len(idx) % tps)
    assert md.fps == selection.source_fps and md.total_num_frames == selection.num_frames
    expected = selection.load_frames(64)
    expected = np.concatenate([expected, expected[-1:].repeat(-len(idx) % tps, axis=0)])
    np.testing.assert_array_equal(frames, expected)

    out = proc(text=[PLACEHOLDER[name] + "What moves?"], **kwargs, return_tensors="pt")
    manual = proc.video_processor(videos=[expected], do_sample_frames=False, return_tensors="pt")
    np.testing.assert_array_equal(out["pixel_values_videos"].numpy(),
                                  manual["pixel_values_videos"].numpy())
    if name in QWEN:
        assert out["video_grid_thw"][0, 0].item() == 2  # 4 frames / 2 = 2 temporal patches
    else:
        assert tuple(out["pixel_values_videos"].shape[:2]) == (1, 3)  # 3 frames, none merged
    assert _video_tokens(proc, out) > 0


def test_to_transformers_gives_qwen3_the_true_times(tokenizer, selection):
    proc = _qwen3(tokenizer)
    out = proc(text=[QWEN_VIDEO], **to_transformers(selection, proc, size=64))
    got = [float(x) for x in re.findall(r"<([\d.]+) seconds>",
                                        proc.tokenizer.decode(out["input_ids"][0]))]
    ts = selection.timestamps_s  # one marker per temporal pair: the mean of its two times
    assert got == pytest.approx([round((ts[0] + ts[1]) / 2, 1), round(float(ts[2]), 1)],
                                abs=0.051)
    # Qwen3-VL samples by default: the same frames without vidsel's keywords get other times
    frames = to_transformers(selection, proc, size=64)["videos"]
    sampled = proc(text=[QWEN_VIDEO], videos=frames)
    assert re.findall(r"<([\d.]+) seconds>", proc.tokenizer.decode(sampled["input_ids"][0])) \
        != [f"{g:.1f}" for g in got]


def test_to_transformers_without_a_processor_or_with_a_video_processor(selection):
    plain = to_transformers(selection, size=32)
    assert len(plain["videos"][0]) == 3  # no temporal patch: no padding
    assert plain["video_metadata"][0].frames_indices == selection.indices.tolist()
    vp = to_transformers(selection, transformers.Qwen3VLVideoProcessor(), size=32)
    assert len(vp["videos"][0]) == 4


@pytest.mark.parametrize("tps", ["two", "2", 1.5, 0, -2, True, None])
def test_to_transformers_refuses_a_bad_temporal_patch_size(tps, selection):
    """A processor whose ``temporal_patch_size`` is not a positive integer (a hand-edited
    config...) is refused by name instead of a ValueError or a silent truncation (1.5 -> 1)."""
    vp = transformers.Qwen3VLVideoProcessor()
    vp.temporal_patch_size = tps
    if tps is None:  # no temporal patch: no padding, as without a processor
        assert len(to_transformers(selection, vp, size=32)["videos"][0]) == 3
        return
    with pytest.raises(InvalidArgumentError,
                       match=rf"Qwen3VLVideoProcessor\.temporal_patch_size={re.escape(repr(tps))} "
                             rf"must be .*positive integer"):
        to_transformers(selection, vp, size=32)
    vp.temporal_patch_size = 2.0  # integral: taken as 2
    assert len(to_transformers(selection, vp, size=32)["videos"][0]) == 4


def test_unknown_frame_count_keeps_the_indices(selection):
    assert indices_for(selection, 0, 8.0).tolist() == selection.indices.tolist()
    assert indices_for(selection, None).tolist() == selection.indices.tolist()


def test_processors_take_no_sample_indices_fn(tokenizer, selection, video):
    """Pinned so the docs are revisited when transformers changes: a video processor refuses
    the keyword, so ``processor(videos=path, sample_indices_fn=...)`` is not the way."""
    with pytest.raises(TypeError, match="sample_indices_fn"):
        transformers.Qwen2VLVideoProcessor()(videos=str(video),
                                             sample_indices_fn=sample_indices_fn(selection))


@pytest.mark.fixtures
@pytest.mark.parametrize("name", ["edge/androidxmedia__sample.avi",
                                  "clips/androidxmedia__sample_edit_list.mp4"])
def test_load_video_pyav_gets_the_selected_frames_when_the_container_miscounts(name,
                                                                               fixtures_dir):
    """The container declares more frames than decode (98 for 96; 86 for 77): transformers'
    PyAV reader still numbers frames as a sequential decode does, so the selection's own
    indices are the right ones (a timestamp mapping through the declared count picked other
    frames and one past the end)."""
    pytest.importorskip("av")
    from transformers.video_utils import load_video

    path = fixtures_dir / name
    sel = run_method("uniform", path, budget=8)
    frames, md = load_video(str(path), backend="pyav", sample_indices_fn=sample_indices_fn(sel))
    assert [int(i) for i in md.frames_indices] == sel.indices.tolist()
    assert len(frames) == len(sel)
    mine = sel.load_frames()
    rotation = VideoReader(path).metadata.rotation  # transformers does not autorotate
    if rotation:
        frames = np.rot90(frames, k=rotation // 90, axes=(1, 2))
    # the same frames: equal pixels, up to rounding of the 10-bit clip's conversion
    diff = np.abs(frames.astype(np.int16) - mine.astype(np.int16))
    assert frames.shape == mine.shape and diff.mean() < 1.0, diff.mean()


@pytest.mark.parametrize("processor", ["qwen", 3, {"temporal_patch_size": 2}])
def test_to_transformers_refuses_what_is_not_a_processor(processor, selection):
    """A name or a dict is not a processor: said, instead of silently not padding."""
    with pytest.raises(InvalidArgumentError, match="must be a transformers processor"):
        to_transformers(selection, processor)


@pytest.mark.fixtures
def test_load_video_opencv_numbers_frames_as_a_sequential_decode(fixtures_dir):
    """opencv reads frames in decode order too: the AVI that declares 98 frames where 96 decode
    gets exactly the selected frames; a frame past the declared count is an error, not a
    substitute (the FLV declares 173 frames where 174 decode)."""
    pytest.importorskip("cv2")
    from transformers.video_utils import load_video

    avi = fixtures_dir / "edge" / "androidxmedia__sample.avi"
    sel = run_method("uniform", avi, budget=8)
    frames, md = load_video(str(avi), backend="opencv", sample_indices_fn=sample_indices_fn(sel))
    assert [int(i) for i in md.frames_indices] == sel.indices.tolist() and len(frames) == 8
    diff = np.abs(frames.astype(np.int16) - sel.load_frames().astype(np.int16))
    assert diff.mean() < 1.0, diff.mean()
    flv = fixtures_dir / "clips" / "moviepy__clip1024.flv"
    last = run_method("uniform", flv, budget=8)
    with pytest.raises(InvalidArgumentError, match="opencv stops at the 173 frames"):
        load_video(str(flv), backend="opencv", sample_indices_fn=sample_indices_fn(last))


@pytest.mark.fixtures
def test_load_video_decord_with_another_frame_count_is_an_error(fixtures_dir):
    """decord counts 86 frames in the edit-list MP4 where 77 decode: its numbers may name other
    frames (hidden VP9 frames, MPEG-TS starts), so the hand-over refuses and says what works."""
    pytest.importorskip("decord")
    from transformers.video_utils import load_video

    path = fixtures_dir / "clips" / "androidxmedia__sample_edit_list.mp4"
    sel = run_method("uniform", path, budget=8)
    with pytest.raises(InvalidArgumentError, match="decord counts 86 frames.*backend='pyav'"):
        load_video(str(path), backend="decord", sample_indices_fn=sample_indices_fn(sel))
