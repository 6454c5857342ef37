"""The lmms-eval model ``vidsel`` and :class:`VidselSampler`, through lmms-eval's own API.

lmms-eval 0.7.3 is installed without its dependencies (it pins av<16); its model API
(``lmms``, ``Instance``, the entry-point registry) imports with loguru and pytz. Requests are
hand-built ``Instance`` s over generated videos, as lmms-eval's evaluator builds them for a
video task (``doc_to_visual`` returning ``[path]``). The answerers are a recording Python
answerer (``py:`` spec, a module written here) and the tiny random Ovis checkpoint.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("lmms_eval")

from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms

from vidsel.errors import (
    InvalidArgumentError,
    MissingDependencyError,
    ModelNotAvailableError,
    VideoNotFoundError,
    VidselError,
)
from vidsel.eval import EvalItem, run_eval
from vidsel.integrations.lmms_eval import (
    MODEL_CLASS_PATH,
    UnsupportedRequestError,
    VidselSampler,
    manifest,
)
from vidsel.io import VideoReader
from vidsel.methods import run_method

#: The recording answerers: their answer is a JSON record of what they were given, followed
#: by a stop string and more words (for ``until``); every request is also kept in CALLS.
RECORDER = '''
import json
from vidsel.eval import CallableAnswerer
from vidsel.results import PatchConfig

CALLS = []
BATCHES = []


def record(request):
    CALLS.append(request)
    v = request.visual
    rec = {"kind": v.kind, "idx": [int(i) for i in v.frame_indices],
           "ts": [float(t) for t in v.timestamps_s], "tokens": v.num_tokens,
           "shape": None if v.frames is None else list(v.frames.shape),
           "prompt": request.prompt, "max_new_tokens": request.max_new_tokens,
           "video": v.path}
    return json.dumps(rec) + "\\nEND\\nmore words"


def record_batch(requests):
    BATCHES.append(len(requests))
    return [record(r) for r in requests]


# 96 x 64 frames stay 96 x 64 (the synthetic videos' own size): 3 x 2 tokens a frame
GEOMETRY = PatchConfig(16, 2, (64, 96))
ANSWERER = CallableAnswerer(record, geometry=GEOMETRY, name="recorder")
BATCHED = CallableAnswerer(record_batch, geometry=GEOMETRY, name="recorder-batched",
                           batched=True, max_batch=8)
'''


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The recording answerer module (importable by name, as ``py:`` specs need)."""
    d = tmp_path_factory.mktemp("lmms_recorder")
    (d / "vidsel_lmms_recorder.py").write_text(textwrap.dedent(RECORDER))
    sys.path.insert(0, str(d))
    module = importlib.import_module("vidsel_lmms_recorder")
    yield module
    sys.path.remove(str(d))


@pytest.fixture
def calls(recorder: Any) -> list[Any]:
    recorder.CALLS.clear()
    recorder.BATCHES.clear()
    return recorder.CALLS


@pytest.fixture(scope="module")
def videos(make_synth: Any) -> dict[str, str]:
    """Two short 96 x 64 clips of different lengths (8 fps)."""
    return {"a": make_synth(scene="moving_box", num_frames=40, fps=8, width=96, height=64,
                            gop=8).path,
            "b": make_synth(scene="multi_scene", num_frames=56, fps=8, width=96, height=64,
                            gop=8).path}


def model(args: str, batch_size: Any = 1, device: str | None = None) -> Any:
    """The model as lmms-eval's evaluator builds it (``--model vidsel --model_args ARGS
    --batch_size N [--device D]``)."""
    import lmms_eval.models

    cls = lmms_eval.models.get_model("vidsel")
    return cls.create_from_arg_string(args, {"batch_size": batch_size, "max_batch_size": None,
                                             "device": device})


def instances(lm: Any, docs: list[dict[str, Any]], gen_kwargs: dict[str, Any] | None = None,
              task: str = "vtask", split: str = "test") -> list[Instance]:
    """Requests over ``docs`` (``{"video": ..., "question": ...}``) as lmms-eval builds them,
    with the model's task_dict filled as its evaluator does."""
    lm.task_dict = {task: {split: docs}}

    def doc_to_visual(doc: dict[str, Any]) -> Any:
        return doc["visual"] if "visual" in doc else [doc["video"]]

    return [Instance(request_type="generate_until",
                     arguments=(doc.get("context", f"<image>\n{doc['question']}"),
                                dict({"until": ["\nEND"]} if gen_kwargs is None
                                     else gen_kwargs), doc_to_visual, i, task, split),
                     idx=0, metadata={"task": task, "doc_id": i, "repeats": 1})
            for i, doc in enumerate(docs)]


def records(outputs: list[str]) -> list[dict[str, Any]]:
    return [json.loads(o) for o in outputs]


def eval_selection(video: str, question: str, method: str, budget: int, answerer: Any,
                   embedder: str | None = None) -> dict[str, Any]:
    """What ``vidsel eval`` selects for the same video, question, method and budget."""
    item = EvalItem(item_id="q", dataset="t", video=video, question=question, task="open")
    summary = run_eval([item], answerer, methods=[method], budgets=[budget],
                       embedder=embedder)
    (rec,) = summary.records
    assert rec["status"] == "ok", rec
    return rec


# -- discovery -------------------------------------------------------------------------------

def test_entry_point_names_the_model_class():
    import lmms_eval.models
    from lmms_eval.models.registry_v2 import ModelManifest

    from vidsel.integrations._lmms_model import VidselLMM

    m = manifest()
    assert isinstance(m, ModelManifest)
    assert (m.model_id, m.simple_class_path, m.chat_class_path) == ("vidsel", MODEL_CLASS_PATH,
                                                                    None)
    (ep,) = [ep for ep in entry_points(group="lmms_eval.models") if ep.name == "vidsel"]
    assert ep.load() is manifest
    assert "vidsel" in lmms_eval.models.list_available_models()
    cls = lmms_eval.models.get_model("vidsel")
    assert cls is VidselLMM and issubclass(cls, lmms) and cls.is_simple


def test_import_does_not_import_lmms_eval():
    code = ("import sys, vidsel.integrations.lmms_eval as m; "
            "assert 'lmms_eval' not in sys.modules, 'imported'; print(m.VidselSampler)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


# -- construction ------------------------------------------------------------------------------

def test_arg_string_values_are_parsed(recorder):
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=4,"
               "max_new_tokens=9,param.candidates=all,on_error=empty")
    assert lm.budget == 4 and lm.default_max_new_tokens == 9 and lm.on_error == "empty"
    assert lm.options == {"candidates": "all"}
    assert lm.answerer is recorder.ANSWERER and lm.batch_size == 1
    assert (lm.rank, lm.world_size) == (0, 1)


def test_model_is_required():
    with pytest.raises(InvalidArgumentError, match=r"needs model=SPEC.*ovis:DIR.*vllm:"):
        model("method=uniform,budget=4")


def test_vllm_model_takes_no_device(tiny_siglip_dir):
    """``--device`` (or ``model.device``) with a ``vllm:`` answerer is refused before anything
    loads (vllm is not installed here: loading would be a MissingDependencyError), pointing to
    vLLM's own ways of choosing GPUs; without a device the spec passes the check."""
    args = f"model=vllm:/models/qwen,method=mdp3,budget=4,embedder=hf:{tiny_siglip_dir}"
    for extra, device in (("", "cuda:0"), ("", "cpu"), (",model.device=cuda:1", None)):
        with pytest.raises(InvalidArgumentError,
                           match=r"takes no device.*CUDA_VISIBLE_DEVICES.*tensor_parallel_size"):
            model(args + extra, device=device)
    with pytest.raises(VidselError) as info:  # here: vllm is not installed
        model("model=vllm:/models/qwen,method=uniform,budget=4", batch_size="4")
    assert isinstance(info.value, (MissingDependencyError, ModelNotAvailableError))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_missing_cuda_device_is_refused_before_loading(tiny_siglip_dir, tmp_path):
    """``--device cuda:N`` that torch does not see fails on the spec check (vidsel eval's
    own), before the embedder or the model loads (neither folder exists)."""
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(InvalidArgumentError, match=rf"cuda:{n}.*{n} CUDA device"):
        model(f"model=hf:{tmp_path / 'no-model'},method=mdp3,budget=4,"
              f"embedder=hf:{tmp_path / 'no-siglip'}", device=f"cuda:{n}")
    with pytest.raises(InvalidArgumentError, match=r"does not take the option\(s\) bogus"):
        model(f"model=hf:{tmp_path / 'no-model'},method=mdp3,budget=4,model.bogus=1,"
              f"embedder=hf:{tmp_path / 'no-siglip'}")


@pytest.mark.parametrize("world", ["2", "8"])
def test_multi_process_runs_are_refused(recorder, monkeypatch, world):
    """Under ``accelerate launch`` / ``torchrun`` with several processes the model refuses
    to start, instead of every rank loading on one device and the evaluator's gather failing
    later."""
    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(InvalidArgumentError, match=rf"WORLD_SIZE={world}.*multi-process.*"
                                                   r"--batch_size.*--replicas"):
        model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=4")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(InvalidArgumentError, match="WORLD_SIZE"):
        model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=4")


def test_one_process_run_is_rank_zero(recorder, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=4")
    assert (lm.rank, lm.world_size) == (0, 1)


@pytest.mark.parametrize(("args", "batch", "match"), [
    ("budget=2.5", 1, r"budget=2\.5 must be an integer"),
    ("budget=true", 1, r"budget=True"),
    ("max_new_tokens=-1", 1, r"max_new_tokens=-1 must be >= 1"),
    ("budget=4", "three", r"batch_size='three'.*'auto'"),
    ("budget=4", 0, r"batch_size=0"),
])
def test_bad_numbers(recorder, args, batch, match):
    with pytest.raises(InvalidArgumentError, match=match):
        model(f"model=py:vidsel_lmms_recorder:ANSWERER,{args}", batch_size=batch)


def test_whole_numbers_in_any_form(recorder):
    lm = model("model=py:vidsel_lmms_recorder:BATCHED,budget=4.0,max_new_tokens=7",
               batch_size=" 2 ")
    assert (lm.budget, lm.default_max_new_tokens, lm.batch_size) == (4, 7, 2)


@pytest.mark.parametrize(("args", "match"), [
    ("budget=4,bogus=1", r"does not take bogus=1"),
    ("budget=0", r"budget"),
    ("budget=4,on_error=skip", r"on_error"),
    ("budget=4,method=nope", r"nope"),
    ("budget=4,param.lam=0.2", r"lam"),  # uniform takes no lam: a typo must not pass
    ("budget=4,method=mdp3", r"embedder"),
])
def test_bad_model_args(recorder, args, match):
    with pytest.raises(InvalidArgumentError, match=match):
        model(f"model=py:vidsel_lmms_recorder:ANSWERER,{args}")


# -- generate_until ----------------------------------------------------------------------------

def test_uniform_frames_true_times_and_request_order(recorder, calls, videos):
    """Each answer is the answerer's, in request order; it saw exactly the frames ``vidsel
    eval`` selects for that video (pixels and true times), and the task's context as the
    prompt (``<image>`` removed)."""
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=4")
    docs = [{"video": videos["a"], "question": "what moves"},
            {"video": videos["b"], "question": "what is in the scene"},
            {"video": videos["a"], "question": "where does the box go"}]
    out = records(lm.generate_until(instances(lm, docs)))
    assert [r["video"] for r in out] == [d["video"] for d in docs]
    assert [r["prompt"] for r in out] == [d["question"] for d in docs]
    by_prompt = {c.prompt: c for c in calls}
    for doc, rec in zip(docs, out):
        ref = eval_selection(doc["video"], doc["question"], "uniform", 4, recorder.ANSWERER)
        assert rec["idx"] == ref["selection"]["source_frames"]
        assert rec["tokens"] == ref["visual_tokens"] == 4 * 6
        with VideoReader(doc["video"]) as reader:
            np.testing.assert_allclose(rec["ts"], reader.metadata.timestamps_s[rec["idx"]])
            np.testing.assert_array_equal(by_prompt[doc["question"]].visual.frames,
                                          reader.get_frames(rec["idx"]))
        assert rec["shape"] == [4, 64, 96, 3]


def test_mdp3_with_an_embedder_selects_as_vidsel_eval(recorder, calls, videos,
                                                       tiny_siglip_dir):
    """A question-aware method: the request's context is the query, and the frames are the
    ones ``vidsel eval`` selects for that question with the same embedder."""
    emb = f"hf:{tiny_siglip_dir}"
    lm = model(f"model=py:vidsel_lmms_recorder:ANSWERER,method=mdp3,budget=3,embedder={emb},"
               f"param.candidates=16")
    docs = [{"video": videos["b"], "question": q}
            for q in ("what is in the scene", "where does the red box go")]
    out = records(lm.generate_until(instances(lm, docs)))
    for doc, rec in zip(docs, out):
        item = EvalItem(item_id="q", dataset="t", video=doc["video"],
                        question=doc["question"], task="open")
        (ref,) = run_eval([item], recorder.ANSWERER, methods=["mdp3"], budgets=[3],
                          embedder=emb, method_options={"candidates": 16}).records
        assert rec["idx"] == ref["selection"]["source_frames"]
        assert len(rec["idx"]) == 3 and rec["idx"] == sorted(rec["idx"])


def test_codec_patches_reach_the_answerer(recorder, calls, videos):
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=codec,budget=2")
    (rec,) = records(lm.generate_until(instances(lm, [{"video": videos["a"],
                                                      "question": "what moves"}])))
    ref = eval_selection(videos["a"], "what moves", "codec", 2, recorder.ANSWERER)
    assert rec["kind"] == "patches" and rec["shape"] is None
    assert rec["idx"] == ref["selection"]["source_frames"]
    assert rec["tokens"] == ref["visual_tokens"] <= 2 * 6
    assert calls[0].visual.patches.pixels is not None


def test_selection_cache(recorder, calls, videos, tmp_path, monkeypatch):
    """``cache_dir``: the selections (and their pixels) of ``vidsel eval``'s cache; a second
    model reuses them; ``cache_dir=true`` is vidsel's default folder."""
    args = f"model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=3,cache_dir={tmp_path}"
    docs = [{"video": videos["a"], "question": "what moves"}]
    first = model(args)
    out1 = first.generate_until(instances(first, docs))
    assert len(list(tmp_path.rglob("selection.json"))) == 1
    second = model(args)
    assert second.generate_until(instances(second, docs)) == out1
    np.testing.assert_array_equal(calls[0].visual.frames, calls[1].visual.frames)
    monkeypatch.setenv("VIDSEL_CACHE_DIR", str(tmp_path / "home"))
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,cache_dir=true")
    assert lm.cache_root == str(tmp_path / "home" / "selections")


def test_until_and_max_new_tokens(recorder, calls, videos):
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=2,"
               "max_new_tokens=33")
    doc = [{"video": videos["a"], "question": "what moves"}]
    (cut,) = lm.generate_until(instances(lm, doc, {"until": ["\nEND"], "max_new_tokens": 5}))
    assert json.loads(cut)["max_new_tokens"] == 5 and not cut.endswith("words")
    (one,) = lm.generate_until(instances(lm, doc, {"until": "more"}))
    assert one.endswith("\nEND\n") and json.loads(one.split("\nEND")[0])["max_new_tokens"] == 33
    (full,) = lm.generate_until(instances(lm, doc, {}))
    assert full.endswith("\nEND\nmore words")
    (two,) = lm.generate_until(instances(lm, doc, {"until": ["words", "\nEND"]}))
    assert json.loads(two) == {**json.loads(cut), "max_new_tokens": 33}
    with pytest.raises(InvalidArgumentError, match="until"):
        lm.generate_until(instances(lm, doc, {"until": 3}))


@pytest.mark.parametrize("gen_kwargs", [["until", "END"], "max_new_tokens=5", 3])
def test_gen_kwargs_must_be_a_dict(recorder, calls, videos, gen_kwargs):
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=2")
    reqs = instances(lm, [{"video": videos["a"], "question": "what moves"}], task="vqa")
    reqs[0].arguments = (reqs[0].args[0], gen_kwargs, *reqs[0].args[2:])
    with pytest.raises(InvalidArgumentError, match=r"vqa/test/0: gen_kwargs=.* must be a dict"):
        lm.generate_until(reqs)
    assert calls == []


def test_sampling_settings_are_warned_once(recorder, calls, videos, caplog):
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=2")
    docs = [{"video": videos["a"], "question": "what moves"}] * 2
    with caplog.at_level("WARNING", logger="vidsel.integrations._lmms_model"):
        lm.generate_until(instances(lm, docs, {"temperature": 0.7, "do_sample": True}))
        lm.generate_until(instances(lm, docs, {"temperature": 0, "do_sample": False}))
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and all("greedily" in w for w in warned)


def test_batches_follow_batch_size(recorder, calls, videos):
    lm = model("model=py:vidsel_lmms_recorder:BATCHED,method=uniform,budget=2",
               batch_size="3")  # the CLI's --batch_size arrives as text
    assert lm.batch_size == 3
    assert model("model=py:vidsel_lmms_recorder:BATCHED,method=uniform,budget=2",
                 batch_size="auto").batch_size == 8
    docs = [{"video": videos["ab"[i % 2]], "question": f"what moves {i}"} for i in range(5)]
    out = records(lm.generate_until(instances(lm, docs)))
    assert recorder.BATCHES == [3, 2]
    assert [r["prompt"] for r in out] == [d["question"] for d in docs]


def test_bad_video_is_a_vidsel_error_naming_the_file(recorder, calls, videos, tmp_path):
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=2")
    missing = str(tmp_path / "gone.mp4")
    with pytest.raises(VideoNotFoundError, match="gone.mp4"):
        lm.generate_until(instances(lm, [{"video": missing, "question": "what moves"}]))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VidselError, match="junk.mp4"):
        lm.generate_until(instances(lm, [{"video": str(junk), "question": "what moves"}]))
    assert calls == []


def test_on_error_empty_answers_the_others(recorder, calls, videos, tmp_path, caplog):
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=2,"
               "on_error=empty")
    docs = [{"video": videos["a"], "question": "what moves"},
            {"video": str(tmp_path / "gone.mp4"), "question": "what moves"}]
    with caplog.at_level("ERROR", logger="vidsel.integrations._lmms_model"):
        out = lm.generate_until(instances(lm, docs))
    assert json.loads(out[0])["video"] == videos["a"] and out[1] == ""
    assert any("gone.mp4" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("visual", "match"), [
    ([], "no video"),
    (None, "no video"),
    ("IMAGE", "not a video path"),
    ("TWO", "2 visuals"),
])
def test_requests_without_exactly_one_video(recorder, videos, visual, match):
    from PIL import Image

    if visual == "IMAGE":
        visual = [Image.new("RGB", (8, 8))]
    elif visual == "TWO":
        visual = [videos["a"], videos["b"]]
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=2")
    with pytest.raises(InvalidArgumentError, match=match):
        lm.generate_until(instances(lm, [{"visual": visual, "question": "what moves"}]))


def test_a_single_path_string_is_one_video(recorder, calls, videos):
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=2")
    (rec,) = records(lm.generate_until(instances(lm, [{"visual": videos["a"],
                                                      "question": "what moves"}])))
    assert rec["video"] == videos["a"]


def test_missing_task_dict_entry(recorder, videos):
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=2")
    reqs = instances(lm, [{"video": videos["a"], "question": "what moves"}])
    lm.task_dict = {}
    with pytest.raises(InvalidArgumentError, match="task_dict"):
        lm.generate_until(reqs)


def test_unsupported_request_error_is_vidsels_own():
    import vidsel.errors

    assert UnsupportedRequestError is vidsel.errors.UnsupportedRequestError


def test_other_request_types_are_refused(recorder):
    lm = model("model=py:vidsel_lmms_recorder:ANSWERER,method=uniform,budget=2")
    for call in (lm.loglikelihood, lm.generate_until_multi_round):
        with pytest.raises(UnsupportedRequestError, match="generate_until") as info:
            call([])
        assert isinstance(info.value, NotImplementedError) and isinstance(info.value,
                                                                          VidselError)


def test_tiny_ovis_end_to_end(tiny_ovis_dir, videos):
    """A real answerer (the random tiny Ovis checkpoint) through the arg string."""
    lm = model(f"model=ovis:{tiny_ovis_dir},method=uniform,budget=2,model.dtype=float32,"
               f"max_new_tokens=4", batch_size="2", device="cpu")
    assert lm.batch_size == lm.answerer.max_batch == 2
    assert lm.answerer.name == f"ovis:{tiny_ovis_dir}"
    docs = [{"video": videos["a"], "question": "what is the man holding"},
            {"video": videos["b"], "question": "what opens"}]
    out = lm.generate_until(instances(lm, docs, {"until": ["<|im_end|>"],
                                                 "max_new_tokens": 3}))
    assert len(out) == 2 and all(isinstance(o, str) for o in out)
    lm.clean()  # what lmms-eval's evaluator does after the last request


# -- the sampler -------------------------------------------------------------------------------

def ele(video: str, nframes: int, **extra: Any) -> dict[str, Any]:
    with VideoReader(video) as reader:
        md = reader.metadata
    return {"video": video, "nframes": nframes, "total_frames": md.num_frames,
            "video_fps": md.fps, **extra}


def test_sampler_whole_video_is_the_method(videos):
    sampler = VidselSampler("uniform")
    got = sampler.sample(ele(videos["b"], 6))
    ref = run_method("uniform", videos["b"], budget=6)
    assert got == [int(i) for i in ref.source_frames] and len(got) == 6
    assert sampler(ele(videos["b"], 6)) == got
    assert sampler.sample({**ele(videos["b"], 6), "video": "file://" + videos["b"]}) == got


def test_sampler_range_and_counts(videos):
    sampler = VidselSampler("uniform")
    got = sampler.sample(ele(videos["b"], 5, start_frame=10, end_frame=30))
    assert len(got) == 5 and got == sorted(set(got)) and got[0] >= 10 and got[-1] <= 30
    few = sampler.sample(ele(videos["b"], 8, start_frame=20, end_frame=23))
    assert few == [20, 21, 22, 23]
    assert all(isinstance(i, int) for i in got)


def test_sampler_query_aware(videos, tiny_siglip_dir):
    sampler = VidselSampler("topk", embedder=f"hf:{tiny_siglip_dir}", candidates=32)
    e = ele(videos["b"], 4)
    answers = {q: sampler.sample(e, question=q) for q in
               ("red box", "what is in the scene", "the camera pans left", "a cat")}
    assert all(len(v) == 4 and v == sorted(v) for v in answers.values())
    assert len({tuple(v) for v in answers.values()}) > 1  # the question decides
    assert sampler.sample({**e, "question": "a cat"}) == answers["a cat"]
    assert sampler.sample(e, query="a cat") == answers["a cat"]
    mdp3 = VidselSampler("mdp3", embedder=f"hf:{tiny_siglip_dir}", lam=0.2)
    ranged = mdp3.sample(ele(videos["b"], 4, start_frame=8, end_frame=47), question="red box")
    assert len(ranged) == 4 and ranged == sorted(ranged) and 8 <= ranged[0] <= ranged[-1] <= 47


def test_sampler_range_uses_the_embedding_cache(videos, tiny_siglip_dir, tmp_path):
    """Within a range the candidates' embeddings go to ``cache_dir`` (one entry per range)
    and a second sampler reuses them with the same answer."""
    e = ele(videos["b"], 3, start_frame=8, end_frame=40)
    first = VidselSampler("topk", embedder=f"hf:{tiny_siglip_dir}", candidates=16,
                          cache_dir=tmp_path).sample(e, question="red box")
    entries = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert entries and len(first) == 3 and 8 <= first[0] <= first[-1] <= 40
    again = VidselSampler("topk", embedder=f"hf:{tiny_siglip_dir}", candidates=16,
                          cache_dir=tmp_path).sample(e, question="red box")
    assert again == first and sorted(p for p in tmp_path.rglob("*") if p.is_file()) == entries


def test_sampler_keyframe_pool_in_a_range(videos, tiny_siglip_dir):
    sampler = VidselSampler("topk", embedder=f"hf:{tiny_siglip_dir}", candidate_mode="keyframe")
    got = sampler.sample(ele(videos["b"], 3, start_frame=10, end_frame=50), question="red box")
    with VideoReader(videos["b"]) as reader:
        keys = set(int(k) for k in reader.metadata.keyframe_indices)
    assert got == sorted(got) and set(got) <= keys and all(10 <= i <= 50 for i in got)
    assert len(got) == 3  # keyframes 16, 24, 32, 40, 48 lie in the range


def test_sampler_errors(videos, tmp_path, tiny_siglip_dir):
    with pytest.raises(InvalidArgumentError, match="not frames"):
        VidselSampler("codec")
    with pytest.raises(InvalidArgumentError, match="embedder"):
        VidselSampler("mdp3")
    with pytest.raises(InvalidArgumentError, match="bogus"):
        VidselSampler("uniform", bogus=1)
    sampler = VidselSampler("uniform")
    with pytest.raises(InvalidArgumentError, match="nframes"):
        sampler.sample({"video": videos["a"]})
    with pytest.raises(InvalidArgumentError, match="list of frames"):
        sampler.sample({"video": ["a.jpg"], "nframes": 2})
    for bad in (None, [1], videos["a"], ({"video": videos["a"]},)):
        with pytest.raises(InvalidArgumentError, match=r"must be a qwen-vl-utils video element"):
            sampler.sample(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"no 'video'.*nframes"):
        sampler.sample({"nframes": 2})
    with pytest.raises(InvalidArgumentError, match=r"ele\['nframes'\]=2\.5 must be an integer"):
        sampler.sample({"video": videos["a"], "nframes": 2.5})
    with pytest.raises(InvalidArgumentError, match=r"ele\['start_frame'\]='a'"):
        sampler.sample({"video": videos["a"], "nframes": 2, "start_frame": "a"})
    with pytest.raises(InvalidArgumentError, match="empty"):
        sampler.sample(ele(videos["a"], 2, start_frame=9, end_frame=3))
    with pytest.raises(VideoNotFoundError, match="gone.mp4"):
        sampler.sample({"video": str(tmp_path / "gone.mp4"), "nframes": 2})
    aware = VidselSampler("mdp3", embedder=f"hf:{tiny_siglip_dir}")
    with pytest.raises(InvalidArgumentError, match="question"):
        aware.sample(ele(videos["a"], 2))


def test_sampler_counts_in_any_whole_number_form(videos):
    """``ele`` values as decoders report them: numpy integers, integral floats, text."""
    sampler = VidselSampler("uniform")
    ref = sampler.sample(ele(videos["b"], 5, start_frame=10, end_frame=30))
    assert sampler.sample({"video": videos["b"], "nframes": np.int64(5), "start_frame": 10.0,
                           "end_frame": " 30", "total_frames": 56.0}) == ref


def test_sampler_path_is_relative_to_cwd(videos, monkeypatch):
    monkeypatch.chdir(Path(videos["a"]).parent)
    assert VidselSampler("uniform").sample({"video": Path(videos["a"]).name,
                                            "nframes": 3}) == [0, 20, 39]


def test_sampler_leaves_the_selector_a_choice_at_large_budgets(make_synth, tiny_siglip_dir):
    """140 of 150 frames: the default pool is every frame (max(128, 4 k)), not a 140-frame grid
    the selector would keep whole, over the whole video and over a range alike."""
    from vidsel.selection import candidate_indices

    path = str(make_synth(num_frames=150, fps=30, width=96, height=64).path)
    sampler = VidselSampler("topk", embedder=f"hf:{tiny_siglip_dir}")
    ele = {"video": path, "nframes": 140}
    with VideoReader(path) as reader:
        grid = candidate_indices(reader, 140).tolist()
    picked = sampler.sample(ele, question="the red box")
    assert len(picked) == 140 and picked != grid
    window = sampler.sample({**ele, "start_frame": 0, "end_frame": 148},
                            question="the red box")
    assert len(window) == 140 and window != np.round(np.linspace(0, 148, 140)).tolist()
