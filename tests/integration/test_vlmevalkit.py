"""vidsel inside VLMEvalKit model wrappers, tested on the contracts (VLMEvalKit is not on PyPI
and cannot be imported here).

1. :class:`OvisFrameSelector` where VLMEvalKit's Ovis wrappers put the MDP3 plugin object: the
   wrapper extracts ``nframe`` frames uniformly (``int(i * n / (nframe + 1))``, saved as JPEG
   files), builds the query ``"<image>\\n" * frames + texts``, and the Ovis model's
   ``preprocess_inputs`` calls ``frame_selector(conversations=[{"from": "human", "value":
   query}], frames=images, clear_prompt=True)`` (Ovis2.5; Ovis2 passes its
   ``frame_selector_kwargs``, usually none).
2. :func:`select_from_message` on VLMEvalKit's message format (a Video-MME message built with
   ``video_llm=True``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from vidsel.embed import make_prompt_cleaner
from vidsel.errors import InvalidArgumentError, VideoNotFoundError, VidselError
from vidsel.integrations.vlmevalkit import (
    OvisFrameSelector,
    default_frames_dir,
    select_from_message,
)
from vidsel.io import VideoReader
from vidsel.methods import run_method
from vidsel.runs import OutputError
from vidsel.selection import FrameSelector

#: Video-MME's instruction around the question in VLMEvalKit (the frames template) and the
#: question layout of its build_prompt.
TEMPLATE = ("\nThese are the frames of a video. Select the best answer to the following "
            "multiple-choice question based on the video. Respond with only the letter (A, B, "
            "C, or D) of the correct option.\n")
QUESTION = "Question: where does the red box go\nA. left\nB. right\nC. up\nD. down\nAnswer: "
CLEANER = make_prompt_cleaner(heads=["Respond with only the letter (A, B, C, or D) of the "
                                     "correct option."], tails=["Answer: "])


@pytest.fixture(scope="module")
def video(make_synth: Any) -> str:
    """A 7 s, 96 x 64 clip in scenes (56 frames at 8 fps)."""
    return make_synth(scene="multi_scene", num_frames=56, fps=8, width=96, height=64,
                      gop=8).path


@pytest.fixture(scope="module")
def extracted(video: str, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """12 frames as VLMEvalKit's video datasets extract them (uniform, JPEG files)."""
    folder = tmp_path_factory.mktemp("vlmeval_frames")
    with VideoReader(video) as reader:
        n = reader.metadata.num_frames
        step = n / 13
        indices = [int(i * step) for i in range(1, 13)]
        frames = reader.get_frames(indices)
    paths = []
    for i, frame in zip(indices, frames):
        path = folder / f"frame-{i}-of-12.jpg"
        Image.fromarray(frame).save(path)
        paths.append(str(path))
    return paths


def ovis_video_query(message: list[dict[str, Any]]) -> str:
    """The query VLMEvalKit's Ovis2 wrapper builds for a video dataset: one placeholder per
    non-text item, then the non-empty texts, one per line."""
    chunks = ["<image>" for item in message if item["type"] != "text"]
    chunks += [item["value"].strip() for item in message
               if item["type"] == "text" and item["value"] != ""]
    return "\n".join(chunks)


def ovis_preprocess(query: str, images: list[Any], frame_selector: Any,
                    **kwargs: Any) -> tuple[list[dict[str, str]], list[Any]]:
    """What the Ovis model's ``preprocess_inputs`` does with a frame selector."""
    conversations = [{"from": "human", "value": query}]
    conversations, images = frame_selector(conversations=conversations, frames=images,
                                           **kwargs)
    return conversations, images


def frames_message(extracted: list[str]) -> list[dict[str, Any]]:
    return ([{"type": "text", "value": ""}] + [{"type": "image", "value": p} for p in extracted]
            + [{"type": "text", "value": TEMPLATE}, {"type": "text", "value": QUESTION}])


def video_message(video: str) -> list[dict[str, Any]]:
    return [{"type": "text", "value": ""}, {"type": "video", "value": video},
            {"type": "text", "value": TEMPLATE}, {"type": "text", "value": QUESTION}]


# -- 1. the Ovis wrappers' frame selector -------------------------------------------------------

@pytest.mark.parametrize("method", ["uniform", "mdp3"])
def test_ovis_frame_selector_in_the_ovis_call(extracted, tiny_siglip_dir, method):
    message = frames_message(extracted)
    query = ovis_video_query(message)
    images = [Image.open(p) for p in extracted]
    embedder = None if method == "uniform" else f"hf:{tiny_siglip_dir}"
    selector = OvisFrameSelector(5, method=method, embedder=embedder, prompt_cleaner=CLEANER)
    convs, kept = ovis_preprocess(query, images, selector, clear_prompt=True)
    # the same frames vidsel's FrameSelector keeps for the cleaned question
    plain = FrameSelector(5, method=method, embedder=embedder)
    keep = plain.select(CLEANER(query), images)
    assert len(kept) == 5 and [images.index(im) for im in kept] == [int(i) for i in keep]
    text = convs[0]["value"]
    assert text.count("<image>") == 5 and text == "<image>\n" * 5 + query.split("<image>\n")[-1]
    assert convs[0]["from"] == "human"
    # Ovis2 passes no keyword: the MDP3 plugin's default (clean) applies
    _, again = ovis_preprocess(query, images, selector)
    assert [images.index(im) for im in again] == [int(i) for i in keep]


def test_clear_prompt_false_embeds_the_prompt_as_is(extracted, tiny_siglip_dir):
    query = ovis_video_query(frames_message(extracted))
    images = [Image.open(p) for p in extracted]
    emb = f"hf:{tiny_siglip_dir}"
    selector = OvisFrameSelector(4, method="topk", embedder=emb, prompt_cleaner=CLEANER,
                                 return_indices=True)
    _, _, raw = selector(conversations=[{"from": "human", "value": query}], frames=images,
                         clear_prompt=False)
    _, _, clean = selector(conversations=[{"from": "human", "value": query}], frames=images,
                           clear_prompt=True)
    plain = FrameSelector(4, method="topk", embedder=emb)
    np.testing.assert_array_equal(raw, plain.select(query, images))
    np.testing.assert_array_equal(clean, plain.select(CLEANER(query), images))


def test_ovis_frame_selector_refuses_what_the_plugin_would_not_take(extracted):
    selector = OvisFrameSelector(3, method="uniform")
    images = [Image.open(p) for p in extracted]
    query = ovis_video_query(frames_message(extracted))
    with pytest.raises(InvalidArgumentError, match="n_selection"):
        ovis_preprocess(query, images, selector, n_selection=3)
    with pytest.raises(InvalidArgumentError, match="placeholders"):
        ovis_preprocess("<image>\nonly one", images, selector)
    with pytest.raises(InvalidArgumentError, match="prompt_cleaner"):
        OvisFrameSelector(3, method="uniform", prompt_cleaner="Answer:")
    # why the subclass: the plain selector does not take the Ovis2.5 keyword
    with pytest.raises(TypeError):
        ovis_preprocess(query, images, FrameSelector(3, method="uniform"), clear_prompt=True)


def test_few_frames_are_kept_as_they_are(extracted):
    images = [Image.open(p) for p in extracted[:3]]
    query = "<image>\n<image>\n<image>\nwhat moves"
    convs, kept = ovis_preprocess(query, images, OvisFrameSelector(5, method="uniform"),
                                  clear_prompt=True)
    assert kept == images and convs[0]["value"] == query


# -- 2. selecting from the video itself -------------------------------------------------------

def test_select_from_message_replaces_the_video(video, tmp_path):
    message = video_message(video)
    before = [dict(m) for m in message]
    out, sel = select_from_message(message, method="uniform", budget=4, frames_dir=tmp_path)
    assert message == before  # the input is not changed
    ref = run_method("uniform", video, budget=4)
    np.testing.assert_array_equal(sel.indices, ref.indices)
    # the video item became the timestamp text and 4 images, in place; the rest is kept
    assert out[0] == message[0] and out[-2:] == message[-2:]
    middle = out[1:-2]
    assert [m["type"] for m in middle] == ["text"] + ["image"] * 4
    with VideoReader(video) as reader:
        times = reader.metadata.timestamps_s[sel.indices] - reader.metadata.start_time_s
        frames = reader.get_frames(sel.indices)
        duration = reader.metadata.duration_s
    assert middle[0]["value"] == (f"The video lasts {duration:.1f} seconds; these 4 frames "
                                  f"were taken at " + ", ".join(f"{t:.1f}s" for t in times)
                                  + ".")
    for item, frame in zip(middle[1:], frames):
        path = Path(item["value"])
        assert path.is_file() and path.suffix == ".jpg" and tmp_path in path.parents
        img = np.asarray(Image.open(path).convert("RGB"))
        assert img.shape == frame.shape  # the video's own size
        assert np.abs(img.astype(int) - frame.astype(int)).mean() < 6  # JPEG, quality 95
    # the files are reused by the next question
    stamp = [os.stat(m["value"]).st_mtime_ns for m in middle[1:]]
    again, _ = select_from_message(message, method="uniform", budget=4, frames_dir=tmp_path)
    assert again == out and [os.stat(m["value"]).st_mtime_ns for m in middle[1:]] == stamp


def test_select_from_message_timestamp_modes_and_size(video, tmp_path):
    out, sel = select_from_message(video_message(video), method="uniform", budget=3,
                                   frames_dir=tmp_path, timestamps="interleave", size=32)
    middle = out[1:-2]
    assert [m["type"] for m in middle] == ["text", "image"] * 3
    assert middle[0]["value"] == f"[{sel.timestamps_s[0]:.1f}s]"
    assert Image.open(middle[1]["value"]).size == (48, 32)
    out, _ = select_from_message(video_message(video), method="uniform", budget=3,
                                 frames_dir=tmp_path, timestamps="none")
    assert [m["type"] for m in out[1:-2]] == ["image"] * 3


def test_select_from_message_question_aware(video, tmp_path, tiny_siglip_dir):
    """The query is the message's text (cleaned when asked), as run_method selects for it."""
    emb = f"hf:{tiny_siglip_dir}"
    message = video_message(video)
    _, sel = select_from_message(message, method="mdp3", budget=4, embedder=emb,
                                 frames_dir=tmp_path, prompt_cleaner=CLEANER, candidates=24)
    question = CLEANER("\n".join(m["value"].strip() for m in message
                                 if m["type"] == "text" and m["value"].strip()))
    assert "where does the red box go" in question and "Respond" not in question
    ref = run_method("mdp3", video, question=question, budget=4, embedder=emb, candidates=24)
    np.testing.assert_array_equal(sel.indices, ref.indices)
    _, own = select_from_message(message, method="mdp3", budget=4, embedder=emb,
                                 frames_dir=tmp_path, query="a red box", candidates=24)
    ref = run_method("mdp3", video, question="a red box", budget=4, embedder=emb,
                     candidates=24)
    np.testing.assert_array_equal(own.indices, ref.indices)


@pytest.mark.parametrize(("change", "error", "match"), [
    ("no-video", InvalidArgumentError, "0 video items"),
    ("two-videos", InvalidArgumentError, "2 video items"),
    ("not-a-list", InvalidArgumentError, "message format"),
    ("bad-item", InvalidArgumentError, "'type' and 'value'"),
    ("codec", InvalidArgumentError, "not frames"),
    ("no-embedder", InvalidArgumentError, "embedder"),
    ("missing", VideoNotFoundError, "gone.mp4"),
    ("timestamps", InvalidArgumentError, "timestamps"),
    ("frames-dir-type", InvalidArgumentError, "frames_dir=3 must be a folder path"),
    ("query-type", InvalidArgumentError, "query=.* must be text"),
    ("cleaner-type", InvalidArgumentError, "prompt_cleaner=.* must be a function"),
])
def test_select_from_message_errors(video, tmp_path, change, error, match):
    message: Any = video_message(video)
    kwargs: dict[str, Any] = {"method": "uniform", "budget": 2, "frames_dir": tmp_path}
    if change == "no-video":
        message = [m for m in message if m["type"] != "video"]
    elif change == "two-videos":
        message = [*message, {"type": "video", "value": video}]
    elif change == "not-a-list":
        message = "a prompt"
    elif change == "bad-item":
        message = [*message, {"value": "x"}]
    elif change == "codec":
        kwargs["method"] = "codec"
    elif change == "no-embedder":
        kwargs["method"] = "mdp3"
    elif change == "missing":
        message[1] = {"type": "video", "value": str(tmp_path / "gone.mp4")}
    elif change == "timestamps":
        kwargs["timestamps"] = "srt"
    elif change == "frames-dir-type":
        kwargs["frames_dir"] = 3
    elif change == "query-type":
        kwargs["query"] = ["what", "moves"]
    elif change == "cleaner-type":
        kwargs["prompt_cleaner"] = "Answer: "
    with pytest.raises(error, match=match):
        select_from_message(message, **kwargs)


def test_frames_dir_is_created_with_its_parents(video, tmp_path):
    folder = tmp_path / "not" / "yet" / "there"
    out, _ = select_from_message(video_message(video), method="uniform", budget=2,
                                 frames_dir=folder)
    images = [Path(m["value"]) for m in out if m["type"] == "image"]
    assert len(images) == 2 and all(p.is_file() and folder in p.parents for p in images)


def test_frames_dir_that_is_a_file(video, tmp_path):
    """A file where the frames folder (or a folder above it) goes: an InvalidArgumentError
    naming it, before any frame is selected."""
    file = tmp_path / "frames.txt"
    file.write_text("not a folder")
    for frames_dir in (file, file / "below"):
        with pytest.raises(InvalidArgumentError, match=r"frames\.txt.* is a file"):
            select_from_message(video_message(video), method="uniform", budget=2,
                                frames_dir=frames_dir)
    assert file.read_text() == "not a folder"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_frames_dir_that_cannot_be_created(video):
    """No folder can be made under /proc (not even by root): an OutputError, which is a
    VidselError and an OSError, naming the folder."""
    with pytest.raises(OutputError, match=r"/proc/vidsel-frames-test") as info:
        select_from_message(video_message(video), method="uniform", budget=2,
                            frames_dir="/proc/vidsel-frames-test/frames")
    assert isinstance(info.value, VidselError) and isinstance(info.value, OSError)


#: Saves a message's frames with a file-size limit (RLIMIT_FSIZE) far below one JPEG: the
#: operating system refuses the write part-way (EFBIG), as a full disk would.
SAVE_UNDER_LIMIT = """
import json, resource, signal, sys
from vidsel.integrations.vlmevalkit import select_from_message
from vidsel.errors import VidselError

video, folder = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
resource.setrlimit(resource.RLIMIT_FSIZE, (200, resource.RLIM_INFINITY))
message = [{"type": "video", "value": video}, {"type": "text", "value": "what moves"}]
try:
    select_from_message(message, method="uniform", budget=2, frames_dir=folder)
except Exception as e:
    print(json.dumps({"type": type(e).__name__, "vidsel": isinstance(e, VidselError),
                      "os": isinstance(e, OSError), "message": str(e)}))
else:
    print(json.dumps({"type": None, "message": "no error: the frames were saved truncated"}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs RLIMIT_FSIZE")
def test_a_failed_frame_save_leaves_no_temporary_file(video, tmp_path):
    folder = tmp_path / "frames"
    done = subprocess.run([sys.executable, "-c", SAVE_UNDER_LIMIT, video, str(folder)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout.strip().splitlines()[-1])
    assert error["type"] == "OutputError" and error["vidsel"] and error["os"], error
    assert "frame-" in error["message"] and str(folder) in error["message"]
    left = [p.name for p in folder.rglob("*") if p.is_file()]
    assert left == [], left  # no .tmp file, no half frame


def test_default_frames_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("VIDSEL_CACHE_DIR", str(tmp_path))
    assert default_frames_dir() == tmp_path / "frames"


def test_select_from_message_takes_a_file_url(video, tmp_path):
    """``file:///abs/clip.mp4`` is the same video as the path (it was read as 'file:/abs...')."""
    url = Path(video).resolve().as_uri()
    out, sel = select_from_message(video_message(url), method="uniform", budget=4,
                                   frames_dir=tmp_path)
    ref, _ = select_from_message(video_message(video), method="uniform", budget=4,
                                 frames_dir=tmp_path)
    assert out == ref and sel.path == str(Path(video).resolve())


def test_a_truncated_video_is_opened_and_warned_about_once(make_synth, tmp_path, caplog):
    """One reader for the selection, the frames and the times: one truncation warning."""
    from tests.reader.test_damaged_files import faststart_copy

    mp4 = make_synth(num_frames=48, fps=8, width=96, height=64, gop=8).path
    fast = faststart_copy(mp4, tmp_path / "fast.mp4")  # moov first: the cut file opens
    cut = tmp_path / "cut.mp4"
    data = fast.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.7)])
    with caplog.at_level(logging.WARNING, logger="vidsel"):
        _, sel = select_from_message(video_message(str(cut)), method="uniform", budget=4,
                                     frames_dir=tmp_path / "frames")
    assert len(sel) == 4
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("truncated" in m for m in warned)
    assert len(warned) == len(set(warned)), warned  # each said once
