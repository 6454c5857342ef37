"""``run_eval`` end to end on generated videos: records, equal tokens, resume, shards and merge,
the selection cache, failures per item, subtitles at the selected frames, process executor and
model replicas in worker processes.

The model here is a rule-based answerer module written to a temporary folder (a user's own
model through the ``py:`` spec): it answers from what it is given (the first frame's time, the
number of frames), so every number in the records is predictable. Real models (tiny random
Ovis and transformers VLMs) run the same path in test_cli_eval.py and the backends' tests.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vidsel.errors import InvalidArgumentError
from vidsel.eval import (
    CallableAnswerer,
    EvalItem,
    Generation,
    merge_results,
    run_eval,
    shard_of,
)
from vidsel.methods import register_method
from vidsel.results import PatchConfig, Selection
from vidsel.runs import read_records

RULES = '''
import hashlib
from vidsel.eval import Generation

def answer(request):
    """MCQ: 'B' when the visual starts after 1 s, else 'A'; grounding / highlights: the span
    of the frames seen; open: the frame count. Also reports a hash of the pixels."""
    v = request.visual
    first = float(v.timestamps_s[0]) if len(v.timestamps_s) else 0.0
    last = float(v.timestamps_s[-1]) if len(v.timestamps_s) else 0.0
    pix = v.frames if v.kind == "frames" else v.patches.pixels
    digest = hashlib.sha256(pix.tobytes()).hexdigest()[:12]
    if "Options:" in request.prompt:
        text = "B" if first > 1.0 else "A"
    elif "start and end" in request.prompt or "time windows" in request.prompt:
        text = f"{first:.2f} - {last:.2f} seconds"
    else:
        text = f"{len(v.timestamps_s)} frames"
    return Generation(text=text, visual_tokens=v.num_tokens, notes=(f"pixels {digest}",))
'''


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The rule-based answerer as an importable module (also in spawned workers)."""
    d = tmp_path_factory.mktemp("rules")
    (d / "vidsel_test_rules.py").write_text(textwrap.dedent(RULES))
    sys.path.insert(0, str(d))
    return "py:vidsel_test_rules:answer"


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from vidsel.synth import make_video

    d = tmp_path_factory.mktemp("eval_videos")
    out = {}
    for name, n in (("a", 32), ("b", 40)):
        out[name] = d / f"{name}.mp4"
        make_video(out[name], scene="moving_box", num_frames=n, fps=8, width=96, height=64,
                   gop=8)
    return out


def _items(videos: dict[str, Path], missing: Path | None = None) -> list[EvalItem]:
    items = [
        EvalItem("q1", "toy", str(videos["a"]), "Where does the box go?", "mcq",
                 options=("left", "right", "up"), answer="A"),
        EvalItem("q2", "toy", str(videos["b"]), "When does the box move?", "grounding",
                 spans_s=((0.0, 4.0),)),
        EvalItem("q3", "toy", str(videos["b"]), "What is in the video?", "open", answer="8 frames"),
    ]
    if missing is not None:
        items.append(EvalItem("q4", "toy", str(missing), "Anything?", "mcq",
                              options=("yes", "no"), answer="A"))
    return items


GEOM = PatchConfig.make(patch_size=16, merge=2, frame_size=64)  # 4 tokens per frame


def _answerer(rules_mod: str) -> CallableAnswerer:
    import importlib

    mod = importlib.import_module(rules_mod.split(":")[1])
    return CallableAnswerer(mod.answer, geometry=GEOM, name="rules")


def test_grid_records_equal_tokens_and_scores(videos, rules, tmp_path) -> None:
    out = tmp_path / "runs" / "toy.jsonl"
    summary = run_eval(_items(videos), _answerer(rules), methods=["uniform", "codec"],
                       budgets=[2, 4], out=out, cache_dir=tmp_path / "cache")
    assert (summary.ok, summary.failed, summary.units) == (12, 0, 12)
    recs = read_records(out)
    assert len(recs) == 12 and len({r["key"] for r in recs}) == 12
    for r in recs:
        assert r["schema"] == "vidsel.eval/1" and r["status"] == "ok"
        # every method spends exactly budget x tokens_per_frame of this model's tokens
        assert r["visual_tokens"] == r["budget"] * GEOM.tokens_per_frame, r
        assert r["model_visual_tokens"] == r["visual_tokens"]
        assert r["geometry"]["frame_size"] == [64, 64]
        assert r["timings_s"]["model"] >= 0 and r["timings_s"]["total"] >= r["timings_s"]["model"]
        sel = r["selection"]
        assert sel["kind"] == ("patches" if r["method"] == "codec" else "frames")
        assert len(sel["source_frames"]) == len(sel["source_timestamps_s"]) > 0
    uni = {(r["item_id"], r["budget"]): r for r in recs if r["method"] == "uniform"}
    # uniform frames start at frame 0 -> the rules answer "A" (correct) and span from 0.0
    assert uni[("q1", 2)]["parsed"] == "A" and uni[("q1", 2)]["score"]["accuracy"] == 1.0
    span = uni[("q2", 4)]["parsed"]
    assert span[0] == 0.0 and span[1] == pytest.approx(39 / 8, abs=0.01)
    assert uni[("q2", 4)]["score"]["iou"] == pytest.approx(4.0 / (39 / 8), abs=0.01)
    assert uni[("q3", 4)]["output"] == "4 frames"
    assert uni[("q3", 2)]["prompt"].endswith("What is in the video?")
    assert "Options:\nA. left\nB. right\nC. up" in uni[("q1", 4)]["prompt"]
    # the report reads it back
    report = summary.report()
    assert {(row["method"], row["budget"]) for row in report.rows} >= {("uniform", 2),
                                                                       ("codec", 4)}


def test_resume_skips_and_a_missing_video_is_a_failure(videos, rules, tmp_path) -> None:
    out = tmp_path / "r.jsonl"
    items = _items(videos, missing=tmp_path / "gone.mp4")
    s1 = run_eval(items, _answerer(rules), methods=["uniform"], budgets=[2], out=out,
                  cache_dir=None)
    assert (s1.ok, s1.failed) == (3, 1)
    bad = [r for r in read_records(out) if r["status"] == "error"]
    assert bad[0]["item_id"] == "q4" and bad[0]["stage"] == "select"
    assert bad[0]["error"]["type"] == "VideoNotFoundError"
    with pytest.raises(InvalidArgumentError, match="already has results"):
        run_eval(items, _answerer(rules), methods=["uniform"], budgets=[2], out=out)
    s2 = run_eval(items, _answerer(rules), methods=["uniform"], budgets=[2], out=out,
                  resume=True, cache_dir=None)
    assert (s2.ok, s2.failed, s2.skipped) == (0, 0, 4)
    s3 = run_eval(items, _answerer(rules), methods=["uniform"], budgets=[2], out=out,
                  resume=True, retry_failed=True, cache_dir=None)
    assert (s3.ok, s3.failed, s3.skipped) == (0, 1, 3)
    recs = read_records(out)
    assert len(recs) == 4 and len({r["key"] for r in recs}) == 4


def test_shards_partition_and_merge_without_duplicates(videos, rules, tmp_path) -> None:
    items = _items(videos)
    parts = []
    for i in range(3):
        out = tmp_path / f"s{i}.jsonl"
        run_eval(items, _answerer(rules), methods=["uniform"], budgets=[2, 3], out=out,
                 shard=f"{i}/3", cache_dir=tmp_path / "cache")
        parts.append(out)
    per = [{r["item_id"] for r in read_records(p)} for p in parts]
    assert set().union(*per) == {"q1", "q2", "q3"}
    assert sum(len(s) for s in per) == 3  # disjoint
    for i, ids in enumerate(per):
        assert all(shard_of(it, 3) == i for it in items if it.item_id in ids)
    merged = merge_results([*parts, parts[0]], tmp_path / "all.jsonl")  # a shard given twice
    assert merged.records == 6 and merged.duplicates == len(read_records(parts[0]))
    recs = read_records(tmp_path / "all.jsonl")
    assert len({r["key"] for r in recs}) == len(recs) == 6
    with pytest.raises(InvalidArgumentError, match="I/N|0 <= I < N"):
        run_eval(items, _answerer(rules), shard="3/3")


def test_selection_cache_serves_a_second_model_the_same_pixels(videos, rules, tmp_path) -> None:
    cache = tmp_path / "cache"
    items = _items(videos)
    first = run_eval(items, _answerer(rules), methods=["uniform", "codec"], budgets=[2],
                     cache_dir=cache)
    second_model = CallableAnswerer(_answerer(rules).fn, geometry=GEOM, name="rules-2")
    second = run_eval(items, second_model, methods=["uniform", "codec"], budgets=[2],
                      cache_dir=cache)
    assert not any(r["cache_hit"] for r in first.records)
    assert all(r["cache_hit"] for r in second.records)
    a = {(r["item_id"], r["method"]): r for r in first.records}
    for r in second.records:
        before = a[(r["item_id"], r["method"])]
        assert r["notes"] == before["notes"]  # the same pixels reached the model
        assert r["selection"] == before["selection"]
        assert r["model"] == "rules-2" and r["key"] != before["key"]
        assert r["timings_s"].get("select", 0.0) == 0.0
    # uniform selections do not depend on the question: q2 and q3 (same video) share one
    assert len(list(cache.glob("??/*"))) == 4  # uniform and codec, for videos a and b
    # a damaged entry is recomputed, not fatal
    entry = next(cache.glob("??/*/pixels.npy"))
    entry.write_bytes(b"garbage")
    again = run_eval(items, second_model, methods=["uniform", "codec"], budgets=[2],
                     cache_dir=cache)
    assert again.failed == 0 and sum(not r["cache_hit"] for r in again.records) >= 1


def test_subtitles_follow_the_selected_frames(videos, tmp_path) -> None:
    """The lines shown are those at the frames the method picked, not at uniform times."""
    srt = tmp_path / "b.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nintro line\n\n"
                   "2\n00:00:02,000 --> 00:00:03,000\nmiddle line\n\n"
                   "3\n00:00:04,600 --> 00:00:05,000\nending line\n")

    def last_frames(path, *, question, budget, geometry):
        from vidsel.io import VideoReader

        with VideoReader(path) as r:
            idx = np.arange(len(r) - budget, len(r))
            return Selection(indices=idx, timestamps_s=r.metadata.timestamps_s[idx],
                             scores=None, method="test-last-frames", source_fps=r.metadata.fps,
                             path=r.path, num_frames=len(r),
                             tokens_per_frame=geometry.tokens_per_frame)

    register_method("test-last-frames", last_frames, overwrite=True)
    item = EvalItem("s1", "toy", str(videos["b"]), "What is said?", "mcq",
                    options=("hi", "bye"), answer="B", subtitles=str(srt))
    seen = []

    def model(request):
        seen.append(request.prompt)
        return "B"

    s = run_eval([item], CallableAnswerer(model, geometry=GEOM),
                 methods=["test-last-frames", "uniform"], budgets=[3], subtitles=True,
                 cache_dir=None)
    by = {r["method"]: r for r in s.records}
    assert by["test-last-frames"]["subtitles"] == ["ending line"]
    assert "ending line" in by["test-last-frames"]["prompt"]
    assert "intro line" not in by["test-last-frames"]["prompt"]
    # uniform frames at 0, 2.5 and 4.875 s
    assert by["uniform"]["subtitles"] == ["intro line", "middle line", "ending line"]
    without = run_eval([item], CallableAnswerer(model, geometry=GEOM), methods=["uniform"],
                       budgets=[2], cache_dir=None)
    assert without.records[0]["subtitles"] == []


def test_a_failing_batch_is_retried_one_by_one(videos, tmp_path) -> None:
    calls = []

    def batched(requests):
        calls.append(len(requests))
        if any(r.item_id == "q2" for r in requests):
            raise RuntimeError("the model choked on q2")
        return ["A"] * len(requests)

    s = run_eval(_items(videos), CallableAnswerer(batched, geometry=GEOM, batched=True,
                                                  max_batch=3),
                 methods=["uniform"], budgets=[2], cache_dir=None)
    by = {r["item_id"]: r for r in s.records}
    assert by["q2"]["status"] == "error" and by["q2"]["stage"] == "model"
    assert "choked" in by["q2"]["error"]["message"]
    assert by["q1"]["status"] == by["q3"]["status"] == "ok"
    assert calls[0] == 3 and calls[1:] == [1, 1, 1]


def _digest(records: list[dict]) -> list[tuple]:
    return sorted((r["item_id"], r["method"], r["budget"], r["output"], tuple(r["notes"]))
                  for r in records)


def test_process_executor_and_cpu_replicas_give_the_same_answers(videos, rules,
                                                                 tmp_path) -> None:
    items = _items(videos)
    base = run_eval(items, rules, methods=["uniform", "codec"], budgets=[2], cache_dir=None,
                    model_options={"geometry": GEOM})
    pooled = run_eval(items, rules, methods=["uniform", "codec"], budgets=[2], cache_dir=None,
                      executor="process", workers=2, model_options={"geometry": GEOM})
    replicas = run_eval(items, rules, methods=["uniform", "codec"], budgets=[2],
                        cache_dir=None, replicas="cpu,cpu", model_options={"geometry": GEOM})
    assert _digest(base.records) == _digest(pooled.records) == _digest(replicas.records)
    assert base.records[0]["model"] == replicas.records[0]["model"]


def test_bad_arguments_fail_before_any_work(videos, rules) -> None:
    items = _items(videos)
    with pytest.raises(InvalidArgumentError, match="not registered"):
        run_eval(items, _answerer(rules), methods=["nope"])
    with pytest.raises(InvalidArgumentError, match="budget"):
        run_eval(items, _answerer(rules), budgets=[0])
    with pytest.raises(InvalidArgumentError, match="embedder"):
        run_eval(items, _answerer(rules), methods=["mdp3"])
    with pytest.raises(InvalidArgumentError, match="replicas need a model spec"):
        run_eval(items, _answerer(rules), replicas=2)
    with pytest.raises(InvalidArgumentError, match="BACKEND:TARGET"):
        run_eval(items, "no-colon")


def test_generation_coerce() -> None:
    assert Generation.coerce("x").text == "x"
    with pytest.raises(InvalidArgumentError, match="string or a vidsel.eval.Generation"):
        Generation.coerce(3)


def test_a_finished_resume_loads_no_model(videos, tmp_path, monkeypatch) -> None:
    """--resume with every answer done returns at once: the model is not even imported."""
    mod = tmp_path / "mods"
    mod.mkdir()
    (mod / "vidsel_once_rules.py").write_text(textwrap.dedent(RULES))
    monkeypatch.syspath_prepend(str(mod))
    out = tmp_path / "done.jsonl"
    spec = "py:vidsel_once_rules:answer"
    first = run_eval(_items(videos), spec, budgets=[2], out=out, cache_dir=None,
                     model_options={"geometry": GEOM})
    assert first.ok == 3
    (mod / "vidsel_once_rules.py").unlink()  # loading it again would fail now
    monkeypatch.delitem(sys.modules, "vidsel_once_rules")
    again = run_eval(_items(videos), spec, budgets=[2], out=out, resume=True, cache_dir=None,
                     model_options={"geometry": GEOM})
    assert (again.ok, again.failed, again.skipped) == (0, 0, 3)
    with pytest.raises(InvalidArgumentError, match="cannot import"):
        run_eval(_items(videos), spec, budgets=[3], out=out, resume=True, cache_dir=None,
                 model_options={"geometry": GEOM})


CRASHER = '''
import os

def answer(request):
    """Dies (as a segfaulting or OOM-killed model would) on one question."""
    if "KILL" in request.prompt:
        os._exit(3)
    return "A"
'''


def test_a_dying_replica_fails_only_its_item(videos, tmp_path, monkeypatch) -> None:
    mod = tmp_path / "mods"
    mod.mkdir()
    (mod / "vidsel_crasher.py").write_text(textwrap.dedent(CRASHER))
    monkeypatch.syspath_prepend(str(mod))
    items = [EvalItem(f"k{i}", "toy", str(videos["a"]), "KILL now" if i == 2 else f"q {i}?",
                      "mcq", options=("x", "y"), answer="A") for i in range(6)]
    s = run_eval(items, "py:vidsel_crasher:answer", budgets=[2], replicas="cpu,cpu",
                 cache_dir=None, model_options={"geometry": GEOM})
    by = {r["item_id"]: r for r in s.records}
    assert len(by) == 6
    assert by["k2"]["status"] == "error" and by["k2"]["stage"] == "model"
    assert by["k2"]["error"]["type"] == "WorkerCrashedError"
    assert all(by[f"k{i}"]["status"] == "ok" for i in (0, 1, 3, 4, 5))


def test_an_unwritable_cache_only_costs_speed(videos, rules, tmp_path, caplog) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")  # the cache root is a file: nothing can be stored under it
    s = run_eval(_items(videos), _answerer(rules), budgets=[2], cache_dir=blocker)
    assert (s.ok, s.failed) == (3, 0)
    assert "selection cache" in caplog.text


def test_keys_do_not_depend_on_where_the_videos_are(videos, rules, tmp_path) -> None:
    """The same benchmark at another path (another node, another working directory)
    resumes into the same records."""
    import shutil

    other = tmp_path / "elsewhere"
    other.mkdir()
    moved = {k: Path(shutil.copy(v, other / v.name)) for k, v in videos.items()}
    out = tmp_path / "k.jsonl"
    run_eval(_items(videos), _answerer(rules), budgets=[2], out=out)
    again = run_eval(_items(moved), _answerer(rules), budgets=[2], out=out, resume=True)
    assert (again.ok, again.skipped) == (0, 3)


def test_times_count_from_the_start_of_playback(fixtures_dir) -> None:
    """A stream whose first frame is at 8.33 s: the model, the annotations and the subtitles
    all count from 0 (the record keeps the stream times of what was selected)."""
    path = fixtures_dir / "edge" / "torchcodec__test_non_zero_start.mp4"
    seen = []

    def model(request):
        seen.append(request.visual.timestamps_s.copy())
        return "0 - 1 seconds"

    item = EvalItem("nz", "toy", str(path), "When?", "grounding", spans_s=((0.0, 0.2),))
    (rec,) = run_eval([item], CallableAnswerer(model, geometry=GEOM), budgets=[3]).records
    assert seen[0][0] == pytest.approx(0.0, abs=1e-6)
    assert rec["selection"]["source_timestamps_s"][0] == pytest.approx(8.333, abs=0.01)


def test_an_answerer_passed_in_stays_open(videos, tmp_path) -> None:
    """run_eval closes what it loaded, never the caller's model (a grid run in a loop)."""
    from vidsel.eval import Answerer

    class Mine(Answerer):
        name = "mine"
        closed = False

        def geometry(self):
            return CallableAnswerer(str, geometry=GEOM).geometry()

        def generate(self, requests):
            assert not self.closed, "generate after close"
            return [Generation("A") for _ in requests]

        def close(self) -> None:
            self.closed = True

    model = Mine()
    for budget in (2, 3):
        s = run_eval(_items(videos), model, budgets=[budget])
        assert (s.ok, s.failed) == (3, 0)
    assert not model.closed
