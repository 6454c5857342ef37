"""``vidsel.qwen``: the drop-in for qwen-vl-utils' ``process_vision_info``.

- parity: with no selector (or ``selector="uniform"``) frames, metadata and video kwargs equal
  qwen-vl-utils 0.0.14's on the same conversation (qwen-vl-utils reads with decord here; vidsel
  decodes with its exact reader, so only ``video_backend`` differs: ``"decord"`` vs
  ``"vidsel"``);
- images and frame lists as qwen-vl-utils' ``fetch_image`` / ``fetch_video`` return them; URLs
  refused unless downloads are allowed;
- other selectors (mdp3 with a tiny random SigLIP) return their frames with true metadata, also
  inside a ``video_start`` / ``video_end`` window;
- ``selector="codec"``: lmms-video-utils' output layout, every patch equal to its source pixels;
- bad input raises vidsel errors;
- the output fed to real transformers Qwen2.5-VL / Qwen3-VL processors built offline.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from io import BytesIO

import numpy as np
import pytest

from vidsel import VideoReader, VidselError, qwen
from vidsel.errors import (
    DownloadFailedError,
    DownloadNotAllowedError,
    InvalidArgumentError,
    NotAVideoError,
    VideoNotFoundError,
)
from vidsel.methods import run_method
from vidsel.results import Selection

torch = pytest.importorskip("torch")

CLIP = "clips/moviepy__1.mp4"  # 640x360 H.264 High with B-frames, 30000/1001 fps, 965 frames

#: Per-video options of qwen-vl-utils compared one by one.
COMBOS = [
    {},
    {"nframes": 8},
    {"fps": 1.0, "min_frames": 4, "max_frames": 10},
    {"fps": 4.0, "max_frames": 12},
    {"video_start": 1.0, "video_end": 3.5},
    {"video_start": 2.2, "nframes": 6},
    {"min_pixels": 100 * 28 * 28, "max_pixels": 300 * 28 * 28},
    {"total_pixels": 2000 * 28 * 28},
    {"resized_height": 200, "resized_width": 300},
]


def _conv(ele, text="where does the red box go"):
    return [{"role": "user", "content": [ele, {"type": "text", "text": text}]}]


def _video(path, **kw):
    return {"type": "video", "video": str(path), **kw}


@pytest.fixture(scope="module")
def box(make_synth):
    """5 s of a moving box, 30 fps, 320x240, GOP 30 with B-frames."""
    return str(make_synth(num_frames=150, fps=30, width=320, height=240).path)


@pytest.fixture(scope="module")
def qvu():
    q = pytest.importorskip("qwen_vl_utils")
    pytest.importorskip("decord")  # the reader qwen-vl-utils picks here (no torchcodec)
    return q


def _assert_same(ours, theirs, *, metadata: bool):
    """Equal outputs of the two process_vision_info calls (images, videos, video_kwargs)."""
    assert ours[2] == theirs[2]  # video kwargs: do_sample_frames and the sample fps
    assert (ours[0] is None) == (theirs[0] is None)
    for a, b in zip(ours[0] or [], theirs[0] or []):
        assert a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))
    assert len(ours[1]) == len(theirs[1])
    for a, b in zip(ours[1], theirs[1]):
        if metadata:
            (a, ma), (b, mb) = a, b
            assert ma["video_backend"] == "vidsel" and mb["video_backend"] == "decord"
            assert {k: v for k, v in ma.items() if k != "video_backend"} == \
                {k: v for k, v in mb.items() if k != "video_backend"}
        assert a.dtype == b.dtype == torch.float32
        assert a.shape == b.shape and torch.equal(a, b)


# -- parity with qwen-vl-utils ---------------------------------------------------------------

@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: ",".join(c) or "default")
@pytest.mark.parametrize("patch", [14, 16])
def test_uniform_equals_qwen_vl_utils(qvu, box, combo, patch):
    conv = _conv(_video(box, **combo))
    for metadata in (False, True):
        theirs = qvu.process_vision_info(conv, return_video_kwargs=True,
                                         return_video_metadata=metadata, image_patch_size=patch)
        ours = qwen.process_vision_info(conv, return_video_kwargs=True,
                                        return_video_metadata=metadata, image_patch_size=patch)
        _assert_same(ours, theirs, metadata=metadata)


def test_explicit_uniform_and_two_return_values(qvu, box):
    conv = _conv(_video(box, nframes=6))
    images, videos = qwen.process_vision_info(conv)
    assert images is None
    uniform = qwen.process_vision_info(_conv(_video(box, nframes=6, selector="uniform")))[1]
    assert torch.equal(videos[0], uniform[0])
    assert torch.equal(videos[0], qvu.process_vision_info(conv)[1][0])


def test_batch_of_conversations_and_several_videos(qvu, box, make_synth):
    other = str(make_synth(num_frames=61, fps=24, width=256, height=144, scene="pan").path)
    batch = [_conv(_video(box, nframes=4)), _conv(_video(other, fps=3.0), "what pans")]
    theirs = qvu.process_vision_info(batch, return_video_kwargs=True)
    ours = qwen.process_vision_info(batch, return_video_kwargs=True)
    _assert_same(ours, theirs, metadata=False)
    assert qwen.extract_vision_info(batch) == qvu.extract_vision_info(batch)


def test_variable_frame_rate_equals_qwen_vl_utils(qvu, make_synth):
    """Frame durations of 1 and 2 ticks: the declared average rate (decord's) is kept, as it
    agrees with the decoded timestamps to well within half a frame over the video."""
    vfr = str(make_synth(num_frames=90, fps=30, vfr=True).path)
    for combo in ({}, {"video_start": 0.5, "video_end": 2.0, "nframes": 6}):
        conv = _conv(_video(vfr, **combo))
        _assert_same(qwen.process_vision_info(conv, True, True),
                     qvu.process_vision_info(conv, True, True), metadata=True)


@pytest.mark.fixtures
@pytest.mark.parametrize("combo", [{}, {"nframes": 8, "video_start": 3.0, "video_end": 9.0},
                                   {"fps": 0.5, "max_pixels": 200 * 32 * 32}],
                         ids=["default", "window", "fps"])
def test_real_clip_equals_qwen_vl_utils(qvu, fixtures_dir, combo):
    conv = _conv(_video(fixtures_dir / CLIP, **combo))
    for metadata, patch in ((False, 14), (True, 16)):
        theirs = qvu.process_vision_info(conv, return_video_kwargs=True,
                                         return_video_metadata=metadata, image_patch_size=patch)
        ours = qwen.process_vision_info(conv, return_video_kwargs=True,
                                        return_video_metadata=metadata, image_patch_size=patch)
        _assert_same(ours, theirs, metadata=metadata)


def test_helpers_equal_qwen_vl_utils(qvu):
    for h, w, f in [(240, 320, 28), (1080, 1920, 32), (37, 5000, 28), (10, 10, 28)]:
        assert qwen.smart_resize(h, w, f) == qvu.smart_resize(h, w, f)
    for h, w, f in [(240, 320, 28), (1080, 1920, 32), (10, 10, 28)]:
        assert qwen.smart_resize(h, w, f, min_pixels=10_000, max_pixels=90_000) == \
            qvu.smart_resize(h, w, f, min_pixels=10_000, max_pixels=90_000)
    # where qwen-vl-utils returns a zero side (and fails later), vidsel says why
    assert 0 in qvu.smart_resize(37, 5000, 28, max_pixels=90_000)
    with pytest.raises(InvalidArgumentError, match="raise max_pixels"):
        qwen.smart_resize(37, 5000, 28, max_pixels=90_000)
    for ele in [{}, {"fps": 0.5}, {"nframes": 7}, {"fps": 8, "min_frames": 3, "max_frames": 41}]:
        assert qwen.smart_nframes(ele, 300, 29.97) == \
            qvu.vision_process.smart_nframes(ele, 300, 29.97)
    for ele in [{}, {"video_start": 1.3}, {"video_end": 4.4}, {"video_start": -2,
                                                                "video_end": 99}]:
        assert qwen.calculate_video_frame_range(ele, 150, 30.0) == \
            qvu.vision_process.calculate_video_frame_range(ele, 150, 30.0)


@pytest.mark.fixtures
def test_frames_are_exact_where_decord_is_not(fixtures_dir):
    """VP6F in FLV: decord's frames differ from a full sequential decode (by up to 54 levels
    here); vidsel's equal it."""
    import av

    path = fixtures_dir / "clips/moviepy__clip1024.flv"
    video, md = qwen.process_vision_info(_conv(_video(path, nframes=6)),
                                         return_video_metadata=True)[1][0]
    with av.open(str(path)) as c:
        seq = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    want = np.stack([seq[i] for i in md["frames_indices"]])
    resized = torch.nn.functional.interpolate(
        torch.from_numpy(want).permute(0, 3, 1, 2).float(), size=tuple(video.shape[-2:]),
        mode="bicubic", align_corners=False, antialias=True).clamp(0, 255).round()
    assert md["total_num_frames"] == len(seq) == 174
    assert torch.equal(video, resized)


@pytest.mark.fixtures
def test_edit_list_metadata_comes_from_the_frames(fixtures_dir):
    """An MP4 edit list (86 packets, 77 frames shown): the declared 28.03 fps is wrong, the
    timestamps give 29.98; decord reports 86 frames at 28.03 fps."""
    path = fixtures_dir / "clips/androidxmedia__sample_edit_list.mp4"
    video, md = qwen.process_vision_info(_conv(_video(path, nframes=4)),
                                         return_video_metadata=True)[1][0]
    with VideoReader(path) as r:
        assert md["fps"] == r.metadata.fps == pytest.approx(29.98, abs=0.01)
        assert md["total_num_frames"] == r.metadata.num_frames == 77
    assert md["frames_indices"] == [0, 25, 51, 76] and video.shape[0] == 4


# -- images and frame lists -------------------------------------------------------------------

@pytest.fixture(scope="module")
def picture(tmp_path_factory):
    from PIL import Image

    rng = np.random.default_rng(0)
    d = tmp_path_factory.mktemp("qwen_images")
    rgb = Image.fromarray(rng.integers(0, 256, (150, 230, 3), dtype=np.uint8))
    rgb.save(d / "a.png")
    rgba = Image.fromarray(rng.integers(0, 256, (90, 60, 4), dtype=np.uint8), "RGBA")
    rgba.save(d / "b.png")
    buf = BytesIO()
    rgb.save(buf, format="PNG")
    uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {"path": str(d / "a.png"), "rgba": str(d / "b.png"), "uri": uri, "pil": rgb}


def test_images_equal_qwen_vl_utils(qvu, picture):
    content = [
        {"type": "image", "image": picture["path"]},
        {"type": "image", "image": "file://" + picture["rgba"]},
        {"type": "image_url", "image_url": picture["uri"]},
        {"type": "image", "image": picture["pil"], "min_pixels": 300 * 28 * 28},
        {"type": "image", "image": picture["path"], "max_pixels": 20 * 28 * 28},
        {"type": "image", "image": picture["path"], "resized_height": 100,
         "resized_width": 60},
        {"type": "text", "text": "describe"},
    ]
    conv = [{"role": "user", "content": content}]
    for patch in (14, 16):
        theirs = qvu.process_vision_info(conv, return_video_kwargs=True, image_patch_size=patch)
        ours = qwen.process_vision_info(conv, return_video_kwargs=True, image_patch_size=patch)
        assert ours[1] is None and theirs[1] is None and ours[2] == theirs[2]
        assert len(ours[0]) == 6
        for a, b in zip(ours[0], theirs[0]):
            assert a.mode == "RGB" and a.size == b.size
            assert np.array_equal(np.asarray(a), np.asarray(b))


def test_frame_list_equals_qwen_vl_utils(qvu, picture):
    frames = [picture["path"], picture["pil"], picture["uri"]]  # odd: padded to 4
    for ele in ({}, {"sample_fps": 1.0, "raw_fps": 30.0},
                {"min_pixels": 32 * 28 * 28, "max_pixels": 64 * 28 * 28}):
        conv = _conv({"type": "video", "video": frames, **ele})
        for metadata in (False, True):
            theirs = qvu.process_vision_info(conv, return_video_kwargs=True,
                                             return_video_metadata=metadata)
            ours = qwen.process_vision_info(conv, return_video_kwargs=True,
                                            return_video_metadata=metadata)
            assert ours[2] == theirs[2]
            a, b = ours[1][0], theirs[1][0]
            if metadata:
                (a, ma), (b, mb) = a, b
                assert ma == mb
            assert a.shape[0] == 4 and torch.equal(a, b)
    # where qwen-vl-utils asserts (max_pixels under the default video min_pixels), a clear error
    conv = _conv({"type": "video", "video": frames, "max_pixels": 64 * 28 * 28})
    with pytest.raises(AssertionError):
        qvu.process_vision_info(conv)
    with pytest.raises(InvalidArgumentError, match="max_pixels=50176 .* is below the default min_pixels"):
        qwen.process_vision_info(conv)


def test_frame_list_with_a_selector_is_refused(picture):
    conv = _conv({"type": "video", "video": [picture["path"]] * 4, "selector": "mdp3"})
    with pytest.raises(InvalidArgumentError, match="list of 4 images, used as given"):
        qwen.process_vision_info(conv)


def test_urls_are_not_fetched_unless_allowed(monkeypatch, box):
    monkeypatch.delenv("VIDSEL_ALLOW_DOWNLOAD", raising=False)
    for ele in ({"type": "image", "image": "https://example.invalid/a.png"},
                {"type": "image_url", "image_url": "http://example.invalid/a.png"},
                {"type": "video", "video": "https://example.invalid/v.mp4"}):
        with pytest.raises(qwen.DownloadNotAllowedError, match="VIDSEL_ALLOW_DOWNLOAD=1"):
            qwen.process_vision_info(_conv(ele))
    with pytest.raises(VidselError, match="allow_download=True"):
        qwen.fetch_image({"image": "https://example.invalid/a.png"})


@pytest.mark.parametrize("key, value", [("sample_fps", "x"), ("raw_fps", "x"),
                                        ("sample_fps", 0), ("raw_fps", -30.0),
                                        ("raw_fps", float("nan")), ("sample_fps", None)])
def test_frame_list_rates_are_checked(picture, key, value):
    conv = _conv({"type": "video", "video": [picture["path"]] * 2, key: value})
    with pytest.raises(InvalidArgumentError, match=f"{key}="):
        qwen.process_vision_info(conv)


@pytest.fixture
def http_server(tmp_path, box, picture, monkeypatch):
    """(base URL, paths requested): a local http.server on 127.0.0.1 serving ``v.mp4`` (the
    box video), ``a.png`` and ``notes.mp4`` (text), in a thread; no proxy in between."""
    import functools
    import http.server
    import shutil
    import threading

    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(box, root / "v.mp4")
    shutil.copy(picture["path"], root / "a.png")
    (root / "notes.mp4").write_text("not a video")
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("VIDSEL_ALLOW_DOWNLOAD", raising=False)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_allowed_downloads_are_read_and_removed(http_server, box, picture, tmp_path,
                                                monkeypatch):
    import tempfile

    base, requested = http_server
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # where the download is spooled
    local = qwen.process_vision_info(
        _conv(_video(box, nframes=4)) + _conv({"type": "image", "image": picture["path"]}),
        return_video_metadata=True)
    for video_ele in ({"type": "video", "video": f"{base}/v.mp4", "nframes": 4},
                      {"type": "video_url", "video_url": {"url": f"{base}/v.mp4"},
                       "nframes": 4}):
        conv = _conv(video_ele) + _conv({"type": "image", "image": f"{base}/a.png"})
        images, videos = qwen.process_vision_info(conv, return_video_metadata=True,
                                                  allow_download=True)
        (video, md), (want, want_md) = videos[0], local[1][0]
        assert torch.equal(video, want) and md == want_md
        assert np.array_equal(np.asarray(images[0]), np.asarray(local[0][0]))
        assert list(tmp.iterdir()) == []  # the temporary video file is gone
    assert requested == ["/v.mp4", "/a.png"] * 2
    # also when the downloaded file is no video
    with pytest.raises(NotAVideoError):
        qwen.fetch_video({"video": f"{base}/notes.mp4"}, allow_download=True)
    assert list(tmp.iterdir()) == []
    monkeypatch.setenv("VIDSEL_ALLOW_DOWNLOAD", "1")  # the environment allows it too
    assert qwen.fetch_image({"image": f"{base}/a.png"}).size == local[0][0].size


def test_failed_downloads_are_download_failed_errors(http_server, monkeypatch):
    import socket

    base, requested = http_server
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v.mp4"
    for url in (f"{base}/missing.mp4", "http://[abc/x.mp4", closed):
        for ele in ({"type": "video", "video": url}, {"type": "image", "image": url}):
            with pytest.raises(DownloadFailedError, match=re.escape(url)) as info:
                qwen.process_vision_info(_conv(ele), allow_download=True)
            assert isinstance(info.value, OSError) and isinstance(info.value, VidselError)
    assert requested == ["/missing.mp4"] * 2
    # not allowed: refused before any connection (argument, or the environment unset)
    assert qwen.DownloadNotAllowedError is DownloadNotAllowedError
    assert qwen.DownloadFailedError is DownloadFailedError
    monkeypatch.setenv("VIDSEL_ALLOW_DOWNLOAD", "1")
    for ele in ({"type": "video", "video": f"{base}/v.mp4"},
                {"type": "video_url", "video_url": f"{base}/v.mp4"},
                {"type": "image", "image": f"{base}/a.png"}):
        with pytest.raises(DownloadNotAllowedError, match="allow_download=True"):
            qwen.process_vision_info(_conv(ele), allow_download=False)
    monkeypatch.delenv("VIDSEL_ALLOW_DOWNLOAD")
    with pytest.raises(DownloadNotAllowedError):
        qwen.fetch_video({"video": f"{base}/v.mp4"})
    assert requested == ["/missing.mp4"] * 2


def test_video_url_elements_are_read(qvu, box):
    """OpenAI / vLLM style: qwen-vl-utils drops the video; vidsel reads it."""
    want, want_md = qwen.process_vision_info(_conv(_video(box, nframes=4)),
                                             return_video_metadata=True)[1][0]
    for url in (box, "file://" + box, {"url": box}, {"url": "file://" + box}):
        ele = {"type": "video_url", "video_url": url, "nframes": 4}
        assert qvu.process_vision_info(_conv(ele))[1] is None
        assert qwen.extract_vision_info(_conv(ele)) == [ele]
        video, md = qwen.process_vision_info(_conv(ele), return_video_metadata=True)[1][0]
        assert torch.equal(video, want) and md == want_md
        assert torch.equal(qwen.fetch_video(ele), want)
    for bad, match in (({"path": box}, "'url' key"), (3, "video_url=3")):
        with pytest.raises(InvalidArgumentError, match=match):
            qwen.process_vision_info(_conv({"type": "video_url", "video_url": bad}))
    with pytest.raises(InvalidArgumentError, match="'video_url'"):
        qwen.process_vision_info(_conv({"type": "video_url"}))


# -- other selectors ---------------------------------------------------------------------------

def test_text_selector_returns_its_frames_with_true_metadata(box, tiny_siglip_dir):
    emb = f"hf:{tiny_siglip_dir}"
    question = "where does the red box go"
    conv = _conv(_video(box, nframes=8, selector="mdp3", embedder=emb), question)
    _, videos, kwargs = qwen.process_vision_info(conv, return_video_kwargs=True,
                                                 return_video_metadata=True)
    video, md = videos[0]
    sel = run_method("mdp3", box, question=question, budget=8, embedder=emb, candidates=128)
    assert md == {"fps": sel.source_fps, "frames_indices": sel.indices.tolist(),
                  "total_num_frames": 150, "video_backend": "vidsel"}
    assert kwargs == {"do_sample_frames": False}
    assert md["frames_indices"] != qwen.process_vision_info(
        _conv(_video(box, nframes=8)), return_video_metadata=True)[1][0][1]["frames_indices"]
    # the pixels are the chosen source frames, resized as the uniform path resizes
    with VideoReader(box) as r:
        want = r.get_frames(md["frames_indices"])
    assert video.shape == (8, 3, 280, 392)
    torch_want = torch.nn.functional.interpolate(
        torch.from_numpy(want).permute(0, 3, 1, 2).float(), size=(280, 392), mode="bicubic",
        align_corners=False, antialias=True).clamp(0, 255).round()
    assert torch.equal(video, torch_want)

    # the question defaults to the conversation's user text; an explicit one wins
    other = _conv(_video(box, nframes=8, selector="mdp3", embedder=emb,
                         question="the blue cat"), question)
    md2 = qwen.process_vision_info(other, return_video_metadata=True)[1][0][1]
    sel2 = run_method("mdp3", box, question="the blue cat", budget=8, embedder=emb)
    assert md2["frames_indices"] == sel2.indices.tolist()


def test_text_selector_in_a_window(box, tiny_siglip_dir):
    from vidsel.selection import select_in_window

    emb = f"hf:{tiny_siglip_dir}"
    conv = _conv(_video(box, nframes=6, selector="topk", embedder=emb, video_start=1.0,
                        video_end=2.5))
    kwargs = qwen.process_vision_info(conv, return_video_kwargs=True)[2]
    md = qwen.process_vision_info(conv, return_video_metadata=True)[1][0][1]
    idx = md["frames_indices"]
    assert len(idx) == 6 and all(30 <= i <= 75 for i in idx) and idx == sorted(idx)
    assert md["total_num_frames"] == 46 and md["fps"] == 30.0
    assert kwargs["fps"] == [pytest.approx(6 / 46 * 30)]
    # the window's selection is vidsel.selection.select_in_window's (all 46 frames are
    # candidates: the pool is 128 evenly spread frames, at most the window)
    sel = select_in_window(box, "topk", 6, start_frame=30, end_frame=75,
                           question="where does the red box go", embedder=emb)
    assert sel.num_candidates == 46 and idx == sel.indices.tolist()
    # the window path over the whole video is the registry's own selection
    whole = select_in_window(box, "mdp3", 8, question="the red box", embedder=emb)
    via_registry = run_method("mdp3", box, question="the red box", budget=8, embedder=emb,
                              candidates=128)
    assert whole.indices.tolist() == via_registry.indices.tolist()


def test_batch_loads_the_embedder_once(box, make_synth, tiny_siglip_dir, caplog):
    emb = f"hf:{tiny_siglip_dir}"
    other = str(make_synth(num_frames=61, fps=24, width=256, height=144, scene="pan").path)
    batch = [_conv(_video(box, nframes=4, selector="topk", embedder=emb), "the red box"),
             _conv(_video(other, nframes=4, selector="topk", embedder=emb), "camera pans")]
    with caplog.at_level("INFO", logger="vidsel.embed"):
        videos = qwen.process_vision_info(batch, return_video_metadata=True)[1]
        # at most once (an earlier test of this process may have loaded it already)
        assert sum("loaded" in r.getMessage() for r in caplog.records) <= 1
        caplog.clear()
        qwen.process_vision_info(batch)  # a second call loads nothing
        assert not any("loaded" in r.getMessage() for r in caplog.records)
    for (_, md), (path, question) in zip(videos, [(box, "the red box"),
                                                 (other, "camera pans")]):
        sel = run_method("topk", path, question=question, budget=4, embedder=emb)
        assert md["frames_indices"] == sel.indices.tolist()


@pytest.fixture
def plugin_method():
    """register_method for the test; every method registered is unregistered after it."""
    from vidsel.methods import METHODS, register_method

    names: list[str] = []

    def register(name, fn, **kwargs):
        names.append(name)
        return register_method(name, fn, **kwargs)

    yield register
    for name in names:
        METHODS.unregister(name)


def _first_frames(path, count, method, geometry):
    """A Selection of the first ``count`` frames of ``path`` (a plugin's result)."""
    with VideoReader(path) as r:
        idx = np.arange(min(count, len(r)))
        return Selection(indices=idx, timestamps_s=r.metadata.timestamps_s[idx], scores=None,
                         method=method, source_fps=r.metadata.fps, path=r.path,
                         num_frames=len(r), tokens_per_frame=geometry.tokens_per_frame)


def test_plugin_method_without_a_candidate_pool(box, plugin_method):
    """The register_method docstring's kind of plugin: it takes no ``candidates`` option (the
    qwen path passes one only to methods that take it); an odd count is padded."""

    def first_frames(path, *, question, budget, geometry):  # budget - 1 frames: odd for 4
        return _first_frames(path, budget - 1, "test-first-frames", geometry)

    method = plugin_method("test-first-frames", first_frames)
    assert method.options == frozenset()
    ele = _video(box, nframes=4, selector="test-first-frames")
    video, md = qwen.process_vision_info(_conv(ele), return_video_metadata=True)[1][0]
    assert md["frames_indices"] == [0, 1, 2, 2] and md["total_num_frames"] == 150
    assert video.shape[0] == 4 and torch.equal(video[3], video[2])
    uniform = qwen.process_vision_info(_conv(_video(box, nframes=4)))[1][0]
    assert video.shape == uniform.shape
    with pytest.raises(InvalidArgumentError, match="plugin method that cannot be restricted"):
        qwen.process_vision_info(_conv({**ele, "video_start": 1.0}))
    with pytest.raises(InvalidArgumentError, match="does not take option"):
        qwen.process_vision_info(_conv({**ele, "params": {"lam": 0.5}}))


def test_embedder_spec_is_loaded_once_per_process(box, tiny_siglip_dir, plugin_method):
    """A spec becomes vidsel.embed.shared_embedder(spec): every call (process_vision_info and
    fetch_video alike) hands the method the same object; an Embedder passes through."""
    from vidsel.embed import Embedder, load_embedder, shared_embedder

    seen = []

    def scored(path, *, question, budget, geometry, embedder):
        seen.append(embedder)
        return _first_frames(path, budget, "test-scored", geometry)

    plugin_method("test-scored", scored, needs_embedder=True)
    spec = f"hf:{tiny_siglip_dir}"
    conv = _conv(_video(box, nframes=4, selector="test-scored", embedder=spec))
    qwen.process_vision_info(conv)
    qwen.process_vision_info(conv)
    qwen.fetch_video(_video(box, nframes=4, selector="test-scored", embedder=spec))
    assert len(seen) == 3 and all(isinstance(e, Embedder) for e in seen)
    assert all(e is shared_embedder(spec) for e in seen)
    ready = load_embedder(spec)
    qwen.fetch_video(_video(box, nframes=4, selector="test-scored", embedder=ready))
    assert seen[-1] is ready and ready is not shared_embedder(spec)
    with pytest.raises(InvalidArgumentError, match="embedder=42"):
        qwen.fetch_video(_video(box, nframes=4, selector="test-scored", embedder=42))


def test_selector_parameters_and_errors(box, tiny_siglip_dir):
    emb = f"hf:{tiny_siglip_dir}"
    with pytest.raises(InvalidArgumentError, match="needs an embedder"):
        qwen.process_vision_info(_conv(_video(box, nframes=4, selector="mdp3")))
    with pytest.raises(InvalidArgumentError, match="not-a-method"):
        qwen.process_vision_info(_conv(_video(box, selector="not-a-method")))
    with pytest.raises(InvalidArgumentError, match="params"):
        qwen.process_vision_info(_conv(_video(box, nframes=4, selector="dpp", embedder=emb,
                                              params=[1, 2])))
    with pytest.raises(InvalidArgumentError, match="question"):
        qwen.process_vision_info([{"role": "user", "content": [
            _video(box, nframes=4, selector="topk", embedder=emb)]}])
    conv = _conv(_video(box, nframes=4, selector="dpp", embedder=emb, params={"lam": 0.5}))
    md = qwen.process_vision_info(conv, return_video_metadata=True)[1][0][1]
    assert len(md["frames_indices"]) == 4


def test_odd_selection_is_padded(box, tiny_siglip_dir):
    """A selector returning an odd count: the last frame is repeated, metadata alike."""
    from vidsel.selection import select_in_window

    # only 3 candidate frames in a 3-frame window -> 3 picks
    idx = select_in_window(box, "topk", 4, start_frame=60, end_frame=62, question="red",
                           embedder=f"hf:{tiny_siglip_dir}").indices
    assert idx.tolist() == [60, 61, 62]
    conv = _conv(_video(box, nframes=2, selector="topk", embedder=f"hf:{tiny_siglip_dir}",
                        video_start=2.0, video_end=2.07))
    video, md = qwen.process_vision_info(conv, return_video_metadata=True)[1][0]
    assert len(md["frames_indices"]) == video.shape[0] == 2


# -- codec -------------------------------------------------------------------------------------

def test_codec_layout_and_pixels(box):
    ele = _video(box, nframes=8, selector="codec", resized_height=112, resized_width=168)
    _, videos, kwargs = qwen.process_vision_info(_conv(ele), return_video_kwargs=True,
                                                 return_video_metadata=True)
    out, md = videos[0]
    assert isinstance(out, qwen.CodecVideoOutput)
    n, c, h, w = out.canvases.shape
    p = 14
    assert c == 3 and out.canvases.dtype == torch.uint8 and (h, w) == (168, 168)
    assert out.patch_positions.dtype == torch.long
    assert out.patch_positions.shape == (n * (h // p) * (w // p), 3)
    assert out.gop_ids.shape == (n,) and out.gop_ids.dtype == torch.long
    assert out.source_pts.shape == (n,) and out.source_pts.dtype == torch.float32
    assert out.n_groups == int(out.gop_ids.max()) + 1 and out.fps == 30.0
    assert set(out.as_dict()) == {f.name for f in dataclasses.fields(out)}
    assert md["fps"] == 30.0 and md["total_num_frames"] == 150 and len(md["frames_indices"]) == n
    assert kwargs == {"do_sample_frames": False}

    # every used cell holds its source frame's patch (frames resized to 112x168 as vidsel's
    # codec does: the reader's default interpolation)
    pos = out.patch_positions.view(n, h // p, w // p, 3).numpy()
    frames = np.unique(pos[..., 0][pos[..., 0] >= 0])
    with VideoReader(box) as r:
        src = dict(zip(frames.tolist(), r.get_frames(frames, size=(112, 168))))
    canv = out.canvases.permute(0, 2, 3, 1).numpy()
    used = 0
    for ci in range(n):
        for gy in range(h // p):
            for gx in range(w // p):
                t, py, px = pos[ci, gy, gx]
                cell = canv[ci, gy * p:(gy + 1) * p, gx * p:(gx + 1) * p]
                if t < 0:
                    assert (pos[ci, gy, gx] == -1).all() and not cell.any()
                    continue
                used += 1
                assert np.array_equal(cell, src[t][py * p:(py + 1) * p, px * p:(px + 1) * p])
    assert used == 8 * (112 // p) * (168 // p)  # exactly the budget of 8 frames
    # a group's time is the time of its first canvas's first frame (frame i at i / 30 s)
    gop = out.gop_ids.numpy()
    for g in range(out.n_groups):
        first = int(np.flatnonzero(gop == g)[0])
        assert out.source_pts[gop == g].tolist() == \
            pytest.approx([md["frames_indices"][first] / 30.0] * int((gop == g).sum()))


@pytest.mark.filterwarnings("ignore:decode_uniform:UserWarning")  # lmms: 256 > 150 frames
def test_codec_fields_match_lmms_video_utils(box):
    """Field names, dtypes and shape relations of lmms-video-utils' own output on the same
    video (its selection, not ours)."""
    lmms = pytest.importorskip("lmms_video_utils")
    ours = qwen.process_vision_info(_conv(_video(box, nframes=4, selector="codec")))[1][0]
    theirs = lmms.fetch_codec_video(box)  # its own defaults: 14 px patches, 2 x 2 blocks
    assert [f.name for f in dataclasses.fields(ours)] == \
        [f.name for f in dataclasses.fields(lmms.CodecVideoOutput)]
    p = 14
    for out in (ours, theirs):
        n, c, h, w = out.canvases.shape
        assert c == 3 and h % p == 0 and w % p == 0
        assert out.patch_positions.shape == (n * (h // p) * (w // p), 3)
        assert out.gop_ids.shape == out.source_pts.shape == (n,)
        assert isinstance(out.fps, float) and isinstance(out.n_groups, int)
        pos = out.patch_positions
        empty = (pos == -1).all(dim=1)
        assert ((pos >= 0).all(dim=1) | empty).all()  # a cell is used or all -1
        assert int(pos[~empty, 0].max()) < 150  # t is a source frame index
    for name in ("canvases", "patch_positions", "gop_ids", "source_pts"):
        assert getattr(ours, name).dtype == getattr(theirs, name).dtype, name
    assert set(ours.as_dict()) == set(theirs.as_dict())
    assert lmms.CodecVideoOutput(**ours.as_dict()).n_groups == ours.n_groups


def test_codec_follows_the_question_with_an_embedder(box, tiny_siglip_dir):
    """With an embedder the codec patches are query-aware (the conversation's question);
    relevance_share=0 in params gives the motion-only patches; codec+mdp3 needs the embedder."""
    from vidsel.codec import select_patches

    emb = f"hf:{tiny_siglip_dir}"
    conv = [{"role": "user", "content": [
        _video(box, nframes=4, selector="codec+mdp3", embedder=emb, resized_height=112,
               resized_width=112), {"type": "text", "text": "where does the box go"}]}]
    out = qwen.process_vision_info(conv)[1][0]
    sel = select_patches(box, budget_frames=4, frame_size=112, question="where does the box go",
                         embedder=emb, anchors="mdp3")
    pos = out.patch_positions
    used = pos[(pos >= 0).all(dim=1)].numpy()
    assert sorted(map(tuple, used.tolist())) == sorted(map(tuple, sel.positions.tolist()))
    motion = qwen.process_vision_info(_conv(_video(
        box, nframes=4, selector="codec", embedder=emb, question="where does the box go",
        params={"relevance_share": 0.0}, resized_height=112, resized_width=112)))[1][0]
    plain = qwen.process_vision_info(_conv(_video(
        box, nframes=4, selector="codec", resized_height=112, resized_width=112)))[1][0]
    assert torch.equal(motion.patch_positions, plain.patch_positions)
    with pytest.raises(InvalidArgumentError, match="needs an embedder"):
        qwen.process_vision_info(_conv(_video(box, nframes=4, selector="codec+mdp3",
                                              question="where")))


def test_codec_refuses_a_window(box):
    with pytest.raises(InvalidArgumentError, match="video_start / video_end"):
        qwen.process_vision_info(_conv(_video(box, nframes=4, selector="codec",
                                              video_start=1.0)))


# -- bad input ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def zero_frames(tmp_path_factory):
    """An MKV header with a video stream and no frame."""
    import av

    path = tmp_path_factory.mktemp("qwen_bad") / "zero.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        c.start_encoding()
    return str(path)


@pytest.mark.parametrize("ele, error, match", [
    ({"nframes": 4, "fps": 2.0}, InvalidArgumentError, "either fps"),
    ({"nframes": 0}, InvalidArgumentError, "nframes=0"),
    ({"nframes": 1000}, InvalidArgumentError, "must lie in"),
    ({"fps": -1.0}, InvalidArgumentError, "fps=-1.0"),
    ({"fps": float("nan")}, InvalidArgumentError, "finite"),
    ({"max_frames": "many"}, InvalidArgumentError, "max_frames"),
    ({"video_start": 3.0, "video_end": 2.0}, InvalidArgumentError, "at least two frames"),
    ({"video_start": 99.0}, InvalidArgumentError, "at least two frames"),
    ({"min_pixels": 10**9, "max_pixels": 10}, InvalidArgumentError, "max_pixels"),
    ({"total_pixels": 0}, InvalidArgumentError, "total_pixels"),
    ({"resized_height": 0, "resized_width": 20}, InvalidArgumentError, "height"),
    ({"resized_height": 28, "resized_width": 28 * 300}, InvalidArgumentError,
     "aspect ratio"),
    ({"selector": 3}, InvalidArgumentError, "selector"),
    ({"params": {"lam": 0.5}}, InvalidArgumentError, "lam"),
])
def test_bad_options(box, ele, error, match):
    with pytest.raises(error, match=match):
        qwen.process_vision_info(_conv(_video(box, **ele)))


def test_bad_files(tmp_path, zero_frames, make_synth):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    one = str(make_synth(num_frames=1, fps=10, width=64, height=64).path)
    cases = [(str(tmp_path / "missing.mp4"), VideoNotFoundError, "no such file"),
             ("file://" + str(tmp_path / "missing.mp4"), VideoNotFoundError, "no such file"),
             (str(text), NotAVideoError, "not a video"),
             (zero_frames, VidselError, "zero.mkv"),
             (one, InvalidArgumentError, "1 frames")]
    for path, error, match in cases:
        with pytest.raises(error, match=match):
            qwen.process_vision_info(_conv(_video(path)))
    with pytest.raises(VideoNotFoundError, match="no such file"):
        qwen.process_vision_info(_conv({"type": "image", "image": str(tmp_path / "x.png")}))
    with pytest.raises(InvalidArgumentError, match="not an image"):
        qwen.process_vision_info(_conv({"type": "image", "image": str(text)}))


def test_bad_conversations(box):
    cases = [("a string", "list of messages"),
             ([{"role": "user"}], "'role' and 'content'"),
             ([{"role": "user", "content": [{"type": "video"}]}], "no 'image'"),
             (_conv({"type": "video", "video": 42}), "video=42"),
             (_conv({"type": "video", "video": []}), "at least one image"),
             (_conv({"type": "image", "image": 3.5}), "image=3.5")]
    for conv, match in cases:
        with pytest.raises(InvalidArgumentError, match=match):
            qwen.process_vision_info(conv)
    with pytest.raises(InvalidArgumentError, match="image_patch_size"):
        qwen.process_vision_info(_conv(_video(box)), image_patch_size=0)
    assert qwen.process_vision_info([]) == (None, None)


# -- real transformers processors --------------------------------------------------------------

QWEN_VIDEO = "<|vision_start|><|video_pad|><|vision_end|>"


@pytest.fixture(scope="module")
def tokenizer():
    """Byte-level BPE without merges; the Qwen specials are single tokens."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|image_pad|>"]
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|image_pad|>",
                                                additional_special_tokens=specials)


def test_qwen3_processor_gets_the_true_times(box, tiny_siglip_dir, tokenizer):
    transformers = pytest.importorskip("transformers")
    proc = transformers.Qwen3VLProcessor(
        image_processor=transformers.Qwen2VLImageProcessor(), tokenizer=tokenizer,
        video_processor=transformers.Qwen3VLVideoProcessor())
    conv = _conv(_video(box, nframes=6, selector="mdp3", embedder=f"hf:{tiny_siglip_dir}",
                        min_pixels=32 * 32 * 32, max_pixels=64 * 32 * 32))
    _, videos, kwargs = qwen.process_vision_info(conv, return_video_kwargs=True,
                                                 return_video_metadata=True,
                                                 image_patch_size=16)
    frames, md = zip(*videos)
    out = proc(text=[QWEN_VIDEO + "where"], videos=list(frames), video_metadata=list(md),
               return_tensors="pt", **kwargs)
    text = proc.tokenizer.decode(out["input_ids"][0])
    got = [float(x) for x in re.findall(r"<([\d.]+) seconds>", text)]
    idx = np.asarray(md[0]["frames_indices"])
    with VideoReader(box) as r:
        ts = r.metadata.timestamps_s[idx] - r.metadata.timestamps_s[0]
    want = [(ts[i] + ts[i + 1]) / 2 for i in range(0, len(ts), 2)]  # one marker per pair
    assert got == pytest.approx([round(x, 1) for x in want], abs=0.051)
    assert out["video_grid_thw"][0][0].item() == 3  # 6 frames, none resampled


def test_qwen25_processor_takes_the_metadata(qvu, box, tokenizer):
    """Qwen2.5-VL's time step comes from the metadata (transformers 5 refuses the ``fps`` list
    qwen-vl-utils returns without metadata, with qwen-vl-utils' own output alike)."""
    transformers = pytest.importorskip("transformers")
    proc = transformers.Qwen2_5_VLProcessor(
        image_processor=transformers.Qwen2VLImageProcessor(), tokenizer=tokenizer,
        video_processor=transformers.Qwen2VLVideoProcessor())
    conv = _conv(_video(box, fps=1.0, video_start=0.5, min_pixels=32 * 28 * 28,
                        max_pixels=64 * 28 * 28))
    outs = []
    for impl in (qwen, qvu):
        _, videos, kwargs = impl.process_vision_info(conv, return_video_kwargs=True,
                                                     return_video_metadata=True)
        frames, md = zip(*videos)
        outs.append(proc(text=[QWEN_VIDEO], videos=list(frames), video_metadata=list(md),
                         return_tensors="pt", **kwargs))
    ours, theirs = outs
    assert torch.equal(ours["pixel_values_videos"], theirs["pixel_values_videos"])
    # temporal_patch_size / sample fps: 4 frames (1 fps, min 4) over the 135-frame window
    assert ours["second_per_grid_ts"] == pytest.approx([2 / (4 / 135 * 30)])
    assert ours["second_per_grid_ts"] == theirs["second_per_grid_ts"]


def test_import_without_torch_and_a_clear_error(run_without, box):
    res = run_without(("torch", "torchvision", "transformers"), f"""
        import vidsel
        import vidsel.qwen as q
        try:
            q.process_vision_info([{{"role": "user", "content": [
                {{"type": "video", "video": {box!r}}}]}}])
        except vidsel.VidselError as exc:
            print(type(exc).__name__, exc)
    """)
    assert res.returncode == 0, res.stderr
    assert "MissingDependencyError vidsel.qwen needs torch: pip install 'vidsel[embed]'" in \
        res.stdout


def test_a_large_budget_still_leaves_the_selector_a_choice(box, tiny_siglip_dir):
    """140 of 150 frames: the pool is every frame, not a 140-frame grid the selector would
    have to keep whole (qwen's fps=2 asks 128+ frames of any video over a minute)."""
    from vidsel.io import VideoReader
    from vidsel.selection import candidate_indices

    conv = _conv(_video(box, nframes=140, selector="topk", embedder=f"hf:{tiny_siglip_dir}"))
    md = qwen.process_vision_info(conv, return_video_metadata=True)[1][0][1]
    with VideoReader(box) as reader:
        grid = candidate_indices(reader, 140)
    assert len(md["frames_indices"]) == 140
    assert md["frames_indices"] != grid.tolist()


def test_params_carry_the_candidate_pool(box, tiny_siglip_dir):
    """``params`` may set the method's pool options next to selector parameters."""
    from vidsel.io import VideoReader
    from vidsel.selection import candidate_indices

    conv = _conv(_video(box, nframes=4, selector="dpp", embedder=f"hf:{tiny_siglip_dir}",
                        params={"candidates": 16, "lam": 0.5}))
    md = qwen.process_vision_info(conv, return_video_metadata=True)[1][0][1]
    with VideoReader(box) as reader:
        pool = set(candidate_indices(reader, 16).tolist())
    assert len(md["frames_indices"]) == 4 and set(md["frames_indices"]) <= pool
    window = _conv(_video(box, nframes=4, selector="dpp", embedder=f"hf:{tiny_siglip_dir}",
                          video_start=1.0, video_end=4.0, params={"candidates": "all"}))
    md = qwen.process_vision_info(window, return_video_metadata=True)[1][0][1]
    assert all(30 <= i <= 120 for i in md["frames_indices"])


@pytest.fixture
def firstn():
    """A selector (and its method) whose own parameter is called ``candidates``."""
    from vidsel.methods import METHODS, frame_method, register_method
    from vidsel.select import SELECTORS, register_selector

    def fn(inputs, k, candidates=5):
        return np.arange(min(k, candidates))

    register_selector("firstn", fn, needs="none", params=["candidates"],
                      defaults={"candidates": 5})
    register_method("firstn", frame_method("firstn"), needs_embedder=False)
    yield "firstn"
    METHODS.unregister("firstn")
    SELECTORS.unregister("firstn")


def test_a_pool_option_that_is_also_a_selector_parameter_is_refused(box, firstn):
    """``params={"candidates": 3}`` could mean the pool or the selector's own parameter: said,
    never guessed (it was silently taken as the pool)."""
    for extra in ({}, {"video_start": 1.0, "video_end": 4.0}):
        conv = _conv(_video(box, nframes=4, selector=firstn, params={"candidates": 3}, **extra))
        with pytest.raises(InvalidArgumentError, match="candidate-pool option.*rename"):
            qwen.process_vision_info(conv)
