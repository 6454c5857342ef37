"""vidsel with vLLM: the client side (:func:`vidsel.selection.to_vllm`) and the server side (the
``"vidsel"`` video loader of :mod:`vidsel.integrations.vllm`).

vLLM is a CUDA build that cannot be installed here. The loader's logic lives in a module that
does not import vllm and is tested directly on generated videos; :func:`register` is tested
against a stand-in ``vllm.multimodal.video`` modelled on vLLM 0.33's classes
(``VideoLoaderRegistry`` / ``ExtensionManager``, ``VideoLoader``, ``create_hf_metadata``). The
one test of the real engine is marked ``gpu`` and needs vllm, CUDA and ``VIDSEL_VLLM_MODEL``
(a local Qwen-VL checkpoint folder).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import types
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vidsel.errors import CorruptVideoError, InvalidArgumentError, NotAVideoError
from vidsel.integrations import vllm as vidsel_vllm
from vidsel.integrations._vllm_loader import (
    LOADER_METHODS,
    VLLM_DECODING_OPTIONS,
    frame_budget,
    load_video_bytes,
    load_video_file,
)
from vidsel.io import VideoReader
from vidsel.methods import run_method
from vidsel.results import Selection
from vidsel.selection import DEFAULT_EVEN, EVEN_POLICIES, to_vllm, vllm_metadata

#: The keys (in order) of vLLM 0.33's ``VideoLoader.create_hf_metadata``.
HF_METADATA_KEYS = ["total_num_frames", "fps", "duration", "video_backend", "frames_indices",
                    "do_sample_frames"]
QUERY_AWARE = ["mdp3", "mdp3-reference", "topk", "dpp", "bolt", "aks"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 frames at 8 fps (3 s), 96 x 64, a keyframe every 4 frames (0, 4, ..., 20)."""
    from vidsel.synth import make_video

    path = tmp_path_factory.mktemp("vllm_loader") / "clip.mp4"
    make_video(path, scene="moving_box", num_frames=24, fps=8, width=96, height=64, gop=4)
    return path


@pytest.fixture(scope="module")
def data(clip: Path) -> bytes:
    return clip.read_bytes()


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The loader's temporary files go to a folder of this test only (to check clean-up)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def check_contract(frames: Any, meta: dict[str, Any], clip: Path) -> None:
    """What vLLM's multimodal processors expect of a loader's ``(frames, metadata)``."""
    assert isinstance(frames, np.ndarray) and frames.dtype == np.uint8
    assert frames.ndim == 4 and frames.shape[-1] == 3 and frames.flags.c_contiguous
    assert list(meta) == HF_METADATA_KEYS
    assert type(meta["total_num_frames"]) is int and type(meta["fps"]) is float
    assert type(meta["duration"]) is float and meta["video_backend"] == "vidsel"
    assert all(type(i) is int for i in meta["frames_indices"])
    assert meta["do_sample_frames"] is False
    assert len(meta["frames_indices"]) == len(frames)
    with VideoReader(clip) as r:
        assert meta["total_num_frames"] == len(r) and meta["fps"] == pytest.approx(r.metadata.fps)
        assert meta["duration"] == pytest.approx(r.metadata.duration_s)
        np.testing.assert_array_equal(frames, r.get_frames(meta["frames_indices"]))


# --- the loader, without vllm ---------------------------------------------------------------------

def test_uniform_frames_are_exact_and_true(data, clip, private_tmp):
    frames, meta = load_video_bytes(data, num_frames=8)
    check_contract(frames, meta, clip)
    assert meta["frames_indices"] == run_method("uniform", clip, budget=8).indices.tolist()
    assert meta["frames_indices"][0] == 0 and meta["frames_indices"][-1] == 23
    assert not list(private_tmp.iterdir())  # the temporary file is gone


@pytest.mark.parametrize("num_frames,fps,expected", [
    (-1, -1, 24), (8, -1, 8), (100, -1, 24), (0, -1, 24), (-1, 2, 6), (8, 2, 6), (4, 2, 4),
    (-1, 0.1, 1), (-1, 2.5, 7), (16, 30, 16),
])
def test_vllm_frame_count_rule(num_frames, fps, expected, data, clip):
    """min(num_frames, floor(duration * fps)), at least 1, as vLLM's VideoBackend counts."""
    def vllm_rule(total: int, duration: float) -> int:  # VideoBackend, vLLM 0.33
        n = total
        if num_frames > 0:
            n = min(num_frames, total)
        if fps > 0:
            n = min(n, math.floor(duration * fps))
        return max(1, n)

    assert frame_budget(24, 3.0, num_frames, fps) == vllm_rule(24, 3.0) == expected
    frames, meta = load_video_bytes(data, num_frames, fps, even=None)
    assert len(frames) == expected
    check_contract(frames, meta, clip)


def test_bad_limits_are_refused():
    with pytest.raises(InvalidArgumentError, match="num_frames='8' must be an integer"):
        frame_budget(24, 3.0, "8", -1)
    with pytest.raises(InvalidArgumentError, match="fps=nan must be a number"):
        frame_budget(24, 3.0, 8, float("nan"))


def test_even_policy(data, clip, caplog):
    assert DEFAULT_EVEN == "error" and EVEN_POLICIES == ("error", "pad", "drop", None)
    with pytest.raises(InvalidArgumentError, match=r"5 frames, an odd count.*even='pad'"):
        load_video_bytes(data, num_frames=5)  # the default: "error"
    with caplog.at_level(logging.INFO, logger="vidsel"):
        frames, meta = load_video_bytes(data, num_frames=5, even="pad")
    check_contract(frames, meta, clip)
    five = run_method("uniform", clip, budget=5).indices.tolist()
    assert meta["frames_indices"] == [*five, five[-1]]  # visible: the last index repeated
    np.testing.assert_array_equal(frames[-1], frames[-2])
    assert "repeated the last frame (even='pad')" in caplog.text
    frames, meta = load_video_bytes(data, num_frames=5, even="drop")
    # an odd budget is lowered first, so the spread still reaches the last frame
    assert meta["frames_indices"] == run_method("uniform", clip, budget=4).indices.tolist()
    assert meta["frames_indices"][-1] == 23
    frames, meta = load_video_bytes(data, num_frames=5, even=None)
    assert meta["frames_indices"] == five
    with pytest.raises(InvalidArgumentError, match="1 frame cannot be made even"):
        load_video_bytes(data, num_frames=1, even="drop")
    with pytest.raises(InvalidArgumentError, match="even='odd' is not allowed"):
        load_video_bytes(data, num_frames=4, even="odd")


def test_keyframes(data, clip, caplog):
    with VideoReader(clip) as r:
        keys = r.metadata.keyframe_indices.tolist()
    assert keys == [0, 4, 8, 12, 16, 20]
    frames, meta = load_video_bytes(data, num_frames=4, method="keyframes")
    check_contract(frames, meta, clip)
    assert meta["frames_indices"] == [0, 8, 12, 20]  # spread uniformly over the 6 keyframes
    with caplog.at_level(logging.INFO, logger="vidsel"):
        frames, meta = load_video_bytes(data, num_frames=8, method="keyframes")
    assert meta["frames_indices"] == keys  # fewer exist: all of them, and it is said
    assert "6 keyframes, fewer than the 8 frames asked" in caplog.text
    assert "video data (" in caplog.text  # named as data, not by the temporary file
    # the policy applies to what comes back: 7 asked, 6 keyframes exist -> even, no error
    assert len(load_video_bytes(data, num_frames=7, method="keyframes")[0]) == 6
    with pytest.raises(InvalidArgumentError, match=r"\(keyframes\): 5 frames, an odd count"):
        load_video_bytes(data, num_frames=5, method="keyframes", even="error")


def test_codec_as_frames(data, clip):
    """The frames carrying the most tokens of vidsel's codec selection at the same budget,
    in time order (ties: the earlier frame)."""
    frames, meta = load_video_bytes(data, num_frames=4, method="codec")
    check_contract(frames, meta, clip)
    patches = run_method("codec", clip, budget=4, pixels="none")
    tokens = patches.tokens_per_source_frame()
    expected = sorted(sorted(tokens, key=lambda f: (-tokens[f], f))[:4])
    assert meta["frames_indices"] == expected
    assert set(expected) <= set(patches.source_frames.tolist())
    assert len(frames) == 4


@pytest.mark.parametrize("method", QUERY_AWARE)
def test_question_aware_methods_are_refused(method, data, private_tmp):
    with pytest.raises(InvalidArgumentError,
                       match=rf"method='{method}'.*never sees the question.*to_vllm"):
        load_video_bytes(data, num_frames=4, method=method)
    assert not list(private_tmp.iterdir())


def test_unknown_method_and_options(data, private_tmp):
    with pytest.raises(InvalidArgumentError, match="choose one of 'uniform', 'keyframes', 'codec'"):
        load_video_bytes(data, method="random")
    # a typo is refused, with the valid keys, even next to vLLM's own options
    with pytest.raises(InvalidArgumentError,
                       match=r"does not take 'methd', 'question'; it takes num_frames, fps and "
                             r"'method', 'even', 'size' .*ignores vLLM's decoding options "
                             r"'backend', 'device'"):
        load_video_bytes(data, backend="opencv", methd="keyframes", question="what?")
    assert not list(private_tmp.iterdir())
    assert LOADER_METHODS == ("uniform", "keyframes", "codec")


#: What vLLM 0.33 itself may put in media_io_kwargs["video"]: an EPD encode-only instance adds
#: backend/device (VllmConfig._resolve_mm_video_decode_device); VideoBackend.load_bytes takes
#: max_duration / frame_recovery and the codec options of vllm.multimodal.video_decoders.
VLLM_OWN = {"backend": "torchcodec", "device": "cuda", "frame_recovery": True,
            "max_duration": 300, "num_ffmpeg_threads": 0, "seek_mode": "exact",
            "hw_decoders": 2, "max_width": 1920, "max_height": 1080, "pool_size": 4,
            "timeout_sec": 120.0}


def test_vllms_own_decoding_options_are_ignored(data, clip, private_tmp):
    assert sorted(VLLM_DECODING_OPTIONS) == sorted(VLLM_OWN)
    plain = load_video_bytes(data, num_frames=4, method="keyframes")
    for key, value in VLLM_OWN.items():  # each one alone, as vLLM may add any of them
        frames, meta = load_video_bytes(data, num_frames=4, method="keyframes", **{key: value})
        assert meta == plain[1], key
        np.testing.assert_array_equal(frames, plain[0])
    frames, meta = load_video_bytes(data, 4, -1, **VLLM_OWN)  # the EPD case and then some
    check_contract(frames, meta, clip)
    assert not list(private_tmp.iterdir())


def test_ignored_options_are_said_once_per_process(data, clip, run_without):
    res = run_without((), f"""
        import logging
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record)
        logging.getLogger("vidsel").addHandler(Keep())
        logging.getLogger("vidsel").setLevel(logging.INFO)
        from vidsel.integrations.vllm import load_video_bytes
        data = open({str(clip)!r}, "rb").read()
        load_video_bytes(data, num_frames=2)
        assert not [r for r in records if "ignores" in r.getMessage()]
        for _ in range(3):
            load_video_bytes(data, num_frames=2, backend="torchcodec", device="cuda")
        said = [r for r in records if "ignores vLLM's decoding options" in r.getMessage()]
        assert len(said) == 1, said
        assert said[0].levelno == logging.INFO
        print(said[0].getMessage())
    """)
    assert res.returncode == 0, res.stderr
    assert "backend='torchcodec', device='cuda'" in res.stdout
    assert "its own exact reader on the CPU" in res.stdout


def test_size(data, clip):
    frames, _ = load_video_bytes(data, num_frames=2, size=32)
    assert frames.shape == (2, 32, 48, 3)
    frames, _ = load_video_bytes(data, num_frames=2, size=[32, 40])  # JSON has no tuples
    assert frames.shape == (2, 32, 40, 3)
    with pytest.raises(InvalidArgumentError, match="size='big'"):
        load_video_bytes(data, size="big")


def test_bad_bytes(data, private_tmp):
    with pytest.raises(NotAVideoError, match=r"video data \(0 bytes\): empty"):
        load_video_bytes(b"")
    with pytest.raises(NotAVideoError, match=r"video data \(4096 bytes\): not a video"):
        load_video_bytes(bytes(range(256)) * 16, num_frames=4)
    half = data[: len(data) // 2]
    with pytest.raises(CorruptVideoError, match=rf"video data \({len(half)} bytes\): .*truncated"):
        load_video_bytes(half, num_frames=4)
    with pytest.raises(InvalidArgumentError, match="data must be bytes"):
        load_video_bytes("clip.mp4")  # type: ignore[arg-type]
    assert not list(private_tmp.iterdir())  # cleaned up after every failure
    try:
        load_video_bytes(half)
    except CorruptVideoError as exc:
        assert str(private_tmp) not in str(exc)  # messages name the data, not the temp file


def test_a_file_works_like_its_bytes(data, clip):
    a = load_video_file(clip, num_frames=4, method="keyframes")
    b = load_video_bytes(data, num_frames=4, method="keyframes")
    assert a[1] == b[1]
    np.testing.assert_array_equal(a[0], b[0])


# --- register() with a stand-in vllm ----------------------------------------------------------

class ExtensionManager:
    """vllm.utils.registry.ExtensionManager (0.33)."""

    def __init__(self) -> None:
        self.name2class: dict[str, type] = {}

    def load(self, cls_name: str, *args: Any, **kwargs: Any) -> Any:
        cls = self.name2class.get(cls_name)
        assert cls is not None, f"Extension class {cls_name} not found"
        return cls(*args, **kwargs)


class VideoLoaderRegistry(ExtensionManager):
    """vllm.multimodal.video.VideoLoaderRegistry (0.33)."""

    def __init__(self) -> None:
        super().__init__()
        self.processor2backend: dict[str, str] = {}
        self._requires_gpu: dict[str, bool] = {}

    def register(self, name: str, *, video_processor: Any = None,
                 requires_gpu: bool = False) -> Any:
        def wrap(cls_to_register: type) -> type:
            self.name2class[name] = cls_to_register
            self._requires_gpu[name] = requires_gpu
            for processor_name in (video_processor,) if video_processor else ():
                self.processor2backend[processor_name] = name
            return cls_to_register

        return wrap


class VideoLoader:
    """vllm.multimodal.video.VideoLoader (0.33), the parts a loader uses."""

    @classmethod
    def load_bytes(cls, data: bytes, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        raise NotImplementedError

    @classmethod
    def create_hf_metadata(cls, source: Any, valid_frame_indices: list[int],
                           video_backend: str) -> dict[str, Any]:
        return {"total_num_frames": source.total_frames_num, "fps": source.original_fps,
                "duration": source.duration, "video_backend": video_backend,
                "frames_indices": valid_frame_indices,
                "do_sample_frames": len(valid_frame_indices) == source.total_frames_num}


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    video = types.ModuleType("vllm.multimodal.video")
    video.VIDEO_LOADER_REGISTRY = VideoLoaderRegistry()  # type: ignore[attr-defined]
    video.VideoLoader = VideoLoader  # type: ignore[attr-defined]
    video.VIDEO_LOADER_REGISTRY.register("opencv")(  # type: ignore[attr-defined]
        type("VideoBackend", (VideoLoader,), {}))
    multimodal = types.ModuleType("vllm.multimodal")
    multimodal.video = video  # type: ignore[attr-defined]
    vllm = types.ModuleType("vllm")
    vllm.multimodal = multimodal  # type: ignore[attr-defined]
    for name, mod in (("vllm", vllm), ("vllm.multimodal", multimodal),
                      ("vllm.multimodal.video", video)):
        monkeypatch.setitem(sys.modules, name, mod)
    return video


def test_register_adds_the_loader_once(fake_vllm, data, clip):
    registry = fake_vllm.VIDEO_LOADER_REGISTRY
    vidsel_vllm.register()
    cls = registry.name2class["vidsel"]
    for _ in range(3):  # vLLM loads general plugins in every process, maybe several times
        vidsel_vllm.register()
    assert registry.name2class["vidsel"] is cls and issubclass(cls, VideoLoader)
    assert sorted(registry.name2class) == ["opencv", "vidsel"]
    loader = registry.load("vidsel")  # what VideoMediaIO does with video_backend="vidsel"
    # VideoMediaIO.load_bytes: load_bytes(data, num_frames=self.num_frames, **media_io_kwargs)
    frames, meta = loader.load_bytes(data, num_frames=32, method="keyframes", even="pad")
    check_contract(frames, meta, clip)
    assert meta["frames_indices"] == [0, 4, 8, 12, 16, 20]
    source = types.SimpleNamespace(total_frames_num=24, original_fps=8.0, duration=3.0)
    assert list(meta) == list(VideoLoader.create_hf_metadata(source, [0], "x"))
    frames, meta = cls.load_bytes(data, 4, 2, method="codec")  # positional, as a classmethod
    assert len(frames) == 4
    with pytest.raises(InvalidArgumentError, match="never sees the question"):
        loader.load_bytes(data, num_frames=8, method="mdp3")


def test_register_replaces_a_foreign_loader_of_that_name(fake_vllm, caplog):
    fake_vllm.VIDEO_LOADER_REGISTRY.register("vidsel")(type("Other", (VideoLoader,), {}))
    with caplog.at_level(logging.WARNING, logger="vidsel"):
        vidsel_vllm.register()
    assert fake_vllm.VIDEO_LOADER_REGISTRY.name2class["vidsel"] is vidsel_vllm.loader_class(
        VideoLoader)
    assert "replacing vLLM's video loader 'vidsel'" in caplog.text


def test_register_without_vllm_is_a_no_op(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with caplog.at_level(logging.DEBUG, logger="vidsel"):
        assert vidsel_vllm.register() is None
    assert "vllm is not importable" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_register_with_another_vllm_warns_and_lets_it_start(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setitem(sys.modules, "vllm.multimodal", types.ModuleType("vllm.multimodal"))
    monkeypatch.setitem(sys.modules, "vllm.multimodal.video",
                        types.ModuleType("vllm.multimodal.video"))
    with caplog.at_level(logging.WARNING, logger="vidsel"):
        vidsel_vllm.register()
    assert "is not registered" in caplog.text


def test_the_entry_point_is_register():
    (ep,) = [e for e in entry_points(group="vllm.general_plugins")
             if e.name == "vidsel_video_loader"]
    assert ep.value == "vidsel.integrations.vllm:register"
    assert ep.load() is vidsel_vllm.register


def test_importing_the_integration_needs_no_vllm(run_without):
    res = run_without(("vllm",), """
        import sys
        import vidsel.integrations.vllm as v
        v.register()
        assert "vllm" not in sys.modules
        print("ok")
    """)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


# --- to_vllm: the client side, any method ---------------------------------------------------

def test_to_vllm_true_indices_fps_duration(clip):
    sel = run_method("uniform", clip, budget=4)
    frames, meta = to_vllm(sel)
    check_contract(frames, meta, clip)
    assert meta["frames_indices"] == sel.indices.tolist()
    assert meta["fps"] == sel.source_fps and meta["total_num_frames"] == sel.num_frames == 24
    assert meta["duration"] == pytest.approx(24 / sel.source_fps)
    assert meta == vllm_metadata(sel.indices, fps=sel.source_fps, total_num_frames=24)
    np.testing.assert_array_equal(frames, sel.load_frames())
    small, _ = to_vllm(sel, size=32)
    assert small.shape == (4, 32, 48, 3)


@pytest.mark.parametrize("kwargs,message", [
    ({"fps": None}, r"fps=None must be a finite number"),
    ({"fps": "x"}, r"fps='x' must be a finite number"),
    ({"fps": float("inf")}, r"fps=inf must be a finite number"),
    ({"fps": True}, r"fps=True must be a finite number"),
    ({"fps": 0}, r"fps=0 must be > 0"),
    ({"total_num_frames": None}, r"total_num_frames=None must be an integer"),
    ({"total_num_frames": 3.7}, r"total_num_frames=3.7 must be an integer \(got a fraction"),
    ({"total_num_frames": "24"}, r"total_num_frames='24' must be an integer"),
    ({"total_num_frames": -1}, r"total_num_frames=-1 must be >= 0"),
    ({"frames_indices": ["a"]}, r"frames_indices\[0\]='a' must be an integer"),
    ({"frames_indices": [0, 1.7]}, r"frames_indices\[1\]=1.7 must be an integer"),
    ({"frames_indices": 1.7}, r"frames_indices=1.7 must be a sequence"),
    ({"frames_indices": [[0, 1], [2, 3]]}, r"must be a sequence \(T,\)"),
    ({"frames_indices": [0, None]}, r"frames_indices\[1\]=None must be an integer"),
    ({"frames_indices": [0, 24]}, r"24 is not a frame of the video \(total_num_frames=24: "
                                  r"indices must be \[0, 24\)\)"),
    ({"frames_indices": [-1, 3]}, r"-1 is not a frame"),
    ({"total_num_frames": 0, "frames_indices": [-2]}, r"-2 is not a frame.*must be >= 0"),
    ({"duration": "x"}, r"duration='x' must be a finite number"),
    ({"duration": float("nan")}, r"duration=nan must be a finite number"),
    ({"duration": -1.0}, r"duration=-1.0 must be >= 0"),
])
def test_vllm_metadata_validates_every_argument(kwargs, message):
    args: dict[str, Any] = {"frames_indices": [0, 5, 23], "fps": 8.0, "total_num_frames": 24,
                            **kwargs}
    with pytest.raises(InvalidArgumentError, match=message):
        vllm_metadata(args.pop("frames_indices"), **args)


def test_vllm_metadata_takes_integral_numbers_of_any_kind():
    meta = vllm_metadata(np.array([0.0, 5.0, 23.0]), fps=np.float32(8), total_num_frames=24.0,
                         duration=np.float64(3))
    assert meta["frames_indices"] == [0, 5, 23] and meta["total_num_frames"] == 24
    assert type(meta["total_num_frames"]) is int and type(meta["fps"]) is float
    assert type(meta["duration"]) is float and meta["duration"] == 3.0
    assert all(type(i) is int for i in meta["frames_indices"])
    unknown = vllm_metadata((np.int64(40), 41), fps=25, total_num_frames=0)  # 0: unknown
    assert unknown["frames_indices"] == [40, 41] and unknown["duration"] == 0.0


def test_to_vllm_with_a_question_aware_method(clip, tiny_siglip_dir):
    sel = run_method("mdp3", clip, question="the red box", budget=4,
                     embedder=f"hf:{tiny_siglip_dir}", candidates=12)
    frames, meta = to_vllm(sel)
    assert meta["frames_indices"] == sel.indices.tolist()
    # Qwen3-VL's times, frames_indices / fps, are the frames' true times (the clip starts at 0)
    np.testing.assert_allclose(np.asarray(meta["frames_indices"]) / meta["fps"],
                               sel.timestamps_s, atol=1e-6)
    check_contract(frames, meta, clip)


def test_to_vllm_even_policies(clip, caplog):
    sel = run_method("uniform", clip, budget=3)
    with pytest.raises(InvalidArgumentError, match="3 frames, an odd count"):
        to_vllm(sel)  # default even="error"
    with caplog.at_level(logging.INFO, logger="vidsel"):
        frames, meta = to_vllm(sel, even="pad")
    assert meta["frames_indices"] == [*sel.indices.tolist(), int(sel.indices[-1])]
    assert len(frames) == 4 and "even='pad'" in caplog.text
    frames, meta = to_vllm(sel, even="drop")
    assert meta["frames_indices"] == sel.indices[:2].tolist() and len(frames) == 2
    frames, meta = to_vllm(sel, even=None)
    assert meta["frames_indices"] == sel.indices.tolist() and len(frames) == 3
    with pytest.raises(InvalidArgumentError, match="even='yes' is not allowed"):
        to_vllm(sel, even="yes")  # type: ignore[arg-type]


def test_to_vllm_refuses_an_empty_selection_and_patches(clip):
    empty = Selection(indices=np.zeros(0, np.int64), timestamps_s=np.zeros(0), scores=None,
                      method="uniform", source_fps=8.0, path=str(clip), num_frames=24)
    with pytest.raises(InvalidArgumentError, match="the selection is empty"):
        to_vllm(empty)
    patches = run_method("codec", clip, budget=2, pixels="none")
    with pytest.raises(InvalidArgumentError, match="takes a vidsel.results.Selection.*canvases"):
        to_vllm(patches)  # type: ignore[arg-type]


# --- the real engine ----------------------------------------------------------------------------

@pytest.mark.gpu
def test_real_vllm_engine(clip):
    """to_vllm through ``LLM.generate`` and the registered loader through ``LLM.chat`` with a
    local video URL, on a small Qwen-VL checkpoint (``VIDSEL_VLLM_MODEL``)."""
    vllm = pytest.importorskip("vllm")
    model = os.environ.get("VIDSEL_VLLM_MODEL")
    if not model:
        pytest.skip("VIDSEL_VLLM_MODEL (a local Qwen-VL checkpoint folder) is not set")
    from transformers import AutoProcessor

    vidsel_vllm.register()
    from vllm.multimodal.video import VIDEO_LOADER_REGISTRY

    assert "vidsel" in VIDEO_LOADER_REGISTRY.name2class
    llm = vllm.LLM(model=model, max_model_len=4096, limit_mm_per_prompt={"video": 1},
                   gpu_memory_utilization=0.5, enforce_eager=True,
                   allowed_local_media_path=str(clip.parent),
                   media_io_kwargs={"video": {"video_backend": "vidsel", "method": "keyframes",
                                              "even": "pad"}})
    params = vllm.SamplingParams(temperature=0.0, max_tokens=8)
    processor = AutoProcessor.from_pretrained(model)
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moves?"}]}],
        tokenize=False, add_generation_prompt=True)
    sel = run_method("uniform", clip, budget=4)
    (out,) = llm.generate({"prompt": prompt, "multi_modal_data": {"video": [to_vllm(sel)]}},
                          params)
    assert isinstance(out.outputs[0].text, str) and out.prompt_token_ids
    (chat,) = llm.chat([{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": clip.as_uri()}},
        {"type": "text", "text": "What moves?"}]}], params)
    assert isinstance(chat.outputs[0].text, str)
