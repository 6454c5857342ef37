"""``vidsel eval`` / ``vidsel eval report`` / ``vidsel eval merge`` as a user runs them: tiny
annotation files in every public format pointing at generated videos, a real tiny model
(random Ovis checkpoint on disk) killed mid-run and resumed, the report table, plot, JSON
and CSV, and the usage errors.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vidsel.cli import main
from vidsel.runs import read_records

RULES = '''
from vidsel.eval import Generation

def answer(request):
    """A rule-based model: 'A' for questions, the span of the frames seen for time queries."""
    v = request.visual
    if "Options:" in request.prompt:
        return "The answer is (A)."
    t = v.timestamps_s
    return Generation(text=f"{float(t[0]):.1f} - {float(t[-1]):.1f} seconds",
                      visual_tokens=v.num_tokens)
'''


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A benchmark folder: two videos and annotations in every format the loaders read."""
    from vidsel.synth import make_video

    d = tmp_path_factory.mktemp("bench")
    (d / "videos").mkdir()
    for vid, n in (("vidA", 32), ("vidB", 40)):
        make_video(d / "videos" / f"{vid}.mp4", scene="moving_box", num_frames=n, fps=8,
                   width=96, height=64, gop=8)
    (d / "charades.txt").write_text("vidA 0.0 2.0##a box moves left.\n"
                                    "vidB 1.0 3.5##the box goes right.\n"
                                    "vidA 2.5 4.0##the box stops.\n")
    qvh = [{"qid": i, "query": q, "vid": v, "duration": 4.0, "relevant_windows": w,
            "relevant_clip_ids": [0, 1], "saliency_scores": [[1, 2, 3], [2, 2, 2]]}
           for i, (q, v, w) in enumerate([("a box moving", "vidA", [[0, 2]]),
                                          ("a red box", "vidB", [[1, 3], [4, 5]]),
                                          ("the end", "vidA", [[3, 4]])])]
    (d / "qvh.jsonl").write_text("".join(json.dumps(r) + "\n" for r in qvh))
    mcq = [("vidA", "Where does the box go?", ["left", "right", "up", "down"], "A"),
           ("vidB", "What moves?", ["a box", "a cat", "a dog", "nothing"], "A"),
           ("vidA", "How many boxes?", ["one", "two", "three", "four"], "B")]
    vmme = [{"video_id": "001", "duration": "short", "domain": "Toy", "sub_category": "Toy",
             "url": "", "videoID": v, "question_id": f"001-{i}", "task_type": "Counting",
             "question": q, "options": [f"{'ABCD'[j]}. {o}" for j, o in enumerate(opts)],
             "answer": a} for i, (v, q, opts, a) in enumerate(mcq)]
    (d / "videomme.json").write_text(json.dumps(vmme))
    lvb = [{"video_id": v, "video_path": f"{v}.mp4", "duration": 4.0, "question": q,
            "candidates": opts, "correct_choice": "ABCD".index(a), "id": f"lvb{i}",
            "subtitle_path": f"{v}_en.json", "starting_timestamp_for_subtitles": 0.0,
            "question_category": "T", "level": "L1", "duration_group": 15}
           for i, (v, q, opts, a) in enumerate(mcq)]
    (d / "lvb_val.json").write_text(json.dumps(lvb))
    (d / "mlvu").mkdir()
    mlvu = [{"video": f"{v}.mp4", "duration": 4.0, "question": q, "candidates": opts,
             "answer": opts["ABCD".index(a)], "question_type": "plotQA"}
            for v, q, opts, a in mcq]
    (d / "mlvu" / "1_plotQA.json").write_text(json.dumps(mlvu))
    (d / "generic.jsonl").write_text("".join(
        json.dumps({"id": f"g{i}", "video": f"{v}.mp4", "question": q, "options": opts,
                    "answer": a}) + "\n" for i, (v, q, opts, a) in enumerate(mcq)))
    with open(d / "generic.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "video", "question", "start", "end"])
        w.writerow(["c0", "vidA.mp4", "when does the box move", "0", "2"])
        w.writerow(["c1", "vidB.mp4", "when does it stop", "3", "4.5"])
        w.writerow(["c2", "vidA.mp4", "when is it red", "1", "3"])
    (d / "vidsel_cli_rules.py").write_text(textwrap.dedent(RULES))
    return d


FORMATS = {  # dataset name -> (annotations, task)
    "charades-sta": ("charades.txt", "grounding"),
    "qvhighlights": ("qvh.jsonl", "highlights"),
    "videomme": ("videomme.json", "mcq"),
    "longvideobench": ("lvb_val.json", "mcq"),
    "mlvu": ("mlvu", "mcq"),
    "jsonl": ("generic.jsonl", "mcq"),
    "csv": ("generic.csv", "grounding"),
}


def test_every_dataset_format_is_tested() -> None:
    from vidsel.eval import available_datasets

    assert set(FORMATS) == set(available_datasets())


#: Each format runs through a different real tiny model (random weights: the answers are
#: noise, the path is real), so every backend family meets a loader.
MODELS = {"charades-sta": "ovis", "qvhighlights": "qwen2_5_vl", "videomme": "qwen3_vl",
          "longvideobench": "llava_onevision", "mlvu": "qwen2_vl", "jsonl": "ovis",
          "csv": "qwen3_vl"}


@pytest.mark.parametrize("dataset", sorted(FORMATS))
def test_eval_and_report_on_every_format(dataset, data, tmp_path, tiny_ovis_dir, tiny_hf_dirs,
                                         capsys) -> None:
    ann, task = FORMATS[dataset]
    family = MODELS[dataset]
    model = f"ovis:{tiny_ovis_dir}" if family == "ovis" else f"hf:{tiny_hf_dirs[family]}"
    out = tmp_path / "runs" / f"{dataset}.jsonl"
    rc = main(["eval", "--dataset", dataset, "--annotations", str(data / ann),
               "--videos", str(data / "videos"), "--model", model, "--model-option",
               "device=cpu", "--methods", "uniform,codec", "--budgets", "2,4",
               "--max-new-tokens", "6", "--out", str(out),
               "--selection-cache", str(tmp_path / "cache")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    recs = read_records(out)
    assert len(recs) == 3 * 2 * 2 and all(r["status"] == "ok" for r in recs), recs[0]
    assert {r["task"] for r in recs} == {task}
    assert "12 ok, 0 failed" in captured.err
    assert "uniform" in captured.out and "codec" in captured.out  # the table
    for r in recs:
        assert isinstance(r["output"], str) and r["score"], r  # every item here has a truth
        if r["method"] == "uniform":  # whole frames: the model counts what vidsel planned
            assert r["model_visual_tokens"] == r["visual_tokens"], r
    plot, js, table = tmp_path / "grid.png", tmp_path / "report.json", tmp_path / "t.csv"
    assert main(["eval", "report", str(out), "--plot", str(plot), "--json", str(js),
                 "--csv", str(table), "--metric", "all"]) == 0
    text = capsys.readouterr().out
    assert "uniform" in text and "codec" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(js.read_text())["rows"]
    rows = list(csv.DictReader(table.open()))
    assert {(r["method"], r["budget"]) for r in rows} == {
        ("uniform", "2"), ("uniform", "4"), ("codec", "2"), ("codec", "4")}


def test_scores_through_the_cli(data, tmp_path, monkeypatch, capsys) -> None:
    """A rule-based model (always option A, the span of the frames seen) gives known scores."""
    monkeypatch.syspath_prepend(str(data))
    out = tmp_path / "mcq.jsonl"
    assert main(["eval", "--dataset", "videomme", "--annotations", str(data / "videomme.json"),
                 "--videos", str(data / "videos"), "--model", "py:vidsel_cli_rules:answer",
                 "--budgets", "2", "--out", str(out), "--no-selection-cache"]) == 0
    recs = read_records(out)
    assert {r["parsed"] for r in recs} == {"A"}
    assert sum(r["score"]["accuracy"] for r in recs) == 2  # answers A, A, B
    assert "66.7" in capsys.readouterr().out


def test_usage_errors_exit_2(data, tmp_path, capsys) -> None:
    base = ["eval", "--dataset", "charades-sta", "--annotations", str(data / "charades.txt"),
            "--videos", str(data / "videos"), "--model", "py:vidsel_cli_rules:answer"]
    assert main(base) == 2
    assert "needs --out" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "x.jsonl"), "--methods", "bogus"]) == 2
    assert "bogus" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "x.jsonl"), "--methods", "mdp3"]) == 2
    assert "--embedder" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "x.jsonl"), "--budgets", "0"]) == 2
    assert main([*base, "--out", str(tmp_path / "x.jsonl"), "--shard", "5/2"]) == 2
    assert main(["eval", "--dataset", "nope", "--annotations", "x", "--model", "hf:x",
                 "--out", str(tmp_path / "y.jsonl")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["eval", "report", str(tmp_path / "missing.jsonl")]) == 2
    bad = tmp_path / "bad.txt"
    bad.write_text("vidA 0.0##no end time\n")
    assert main(["eval", "--dataset", "charades-sta", "--annotations", str(bad),
                 "--model", "py:vidsel_cli_rules:answer", "--out", str(tmp_path / "z.jsonl")]
                ) == 2
    assert "bad.txt:1" in capsys.readouterr().err


def test_missing_videos_are_failure_records_and_exit_1(data, tmp_path, monkeypatch,
                                                      capsys) -> None:
    monkeypatch.syspath_prepend(str(data))
    ann = tmp_path / "c.txt"
    ann.write_text((data / "charades.txt").read_text() + "vidGONE 0.0 1.0##nothing here.\n")
    out = tmp_path / "c.jsonl"
    rc = main(["eval", "--dataset", "charades-sta", "--annotations", str(ann),
               "--videos", str(data / "videos"), "--model", "py:vidsel_cli_rules:answer",
               "--out", str(out), "--no-selection-cache"])
    assert rc == 1
    bad = [r for r in read_records(out) if r["status"] == "error"]
    assert len(bad) == 1 and bad[0]["error"]["type"] == "VideoNotFoundError"
    assert "3 ok, 1 failed" in capsys.readouterr().err


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("vidsel")
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full_env)


def test_real_tiny_model_killed_and_resumed(data, tiny_ovis_dir, tmp_path) -> None:
    """3 items x 2 methods x 2 budgets through a random Ovis checkpoint: kill -9 after the
    first records, --resume finishes without duplicates; a second model reuses the cache."""
    out = tmp_path / "ovis.jsonl"
    cache = tmp_path / "cache"
    args = ["eval", "--dataset", "charades-sta", "--annotations", str(data / "charades.txt"),
            "--videos", str(data / "videos"), "--model", f"ovis:{tiny_ovis_dir}",
            "--model-option", "device=cpu", "--model-option", "dtype=float32",
            "--methods", "uniform,codec", "--budgets", "2,4", "--max-new-tokens", "12",
            "--selection-cache", str(cache), "--out", str(out)]
    proc = _cli(*args)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    before = read_records(out)
    assert killed and 2 <= len(before) < 12, "the run was not stopped in the middle"
    done = _cli(*args, "--resume")
    stdout, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr
    recs = read_records(out)
    assert len(recs) == 12 and len({r["key"] for r in recs}) == 12
    assert all(r["status"] == "ok" for r in recs)
    assert f"{len(before)} already done" in stderr
    for r in recs:
        assert r["model_visual_tokens"] == r["visual_tokens"] == r["budget"] * 6
        assert r["output"] is not None and isinstance(r["score"]["iou"], float)
    assert "R1@0.5" in stdout  # the table after the run
    # a second model (batched: another identity) on the same cache: no selection work
    out2 = tmp_path / "ovis2.jsonl"
    assert main([*[a if a != str(out) else str(out2) for a in args],
                 "--model-option", "max_batch=2"]) == 0
    assert all(r["cache_hit"] for r in read_records(out2))


def test_merge_shards_cli(data, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.syspath_prepend(str(data))
    base = ["eval", "--dataset", "videomme", "--annotations", str(data / "videomme.json"),
            "--videos", str(data / "videos"), "--model", "py:vidsel_cli_rules:answer",
            "--budgets", "2", "--selection-cache", str(tmp_path / "cache")]
    shards = []
    for i in range(2):
        shards.append(tmp_path / f"s{i}.jsonl")
        assert main([*base, "--shard", f"{i}/2", "--out", str(shards[-1])]) == 0
    assert sum(len(read_records(s)) for s in shards) == 3
    merged = tmp_path / "all.jsonl"
    assert main(["eval", "merge", "--out", str(merged), *map(str, shards),
                 str(shards[0])]) == 0
    assert len(read_records(merged)) == 3
    assert "duplicates dropped" in capsys.readouterr().err
    assert main(["eval", "merge", "--out", str(merged), str(shards[0])]) == 2  # exists


def test_checked_before_any_work(data, tmp_path, monkeypatch, capsys) -> None:
    """Typos and impossible requests are usage errors (exit 2) before a video or a model is
    touched; a missing embedder stops the run once instead of failing every item."""
    monkeypatch.syspath_prepend(str(data))
    base = ["eval", "--dataset", "charades-sta", "--annotations", str(data / "charades.txt"),
            "--videos", str(data / "videos"), "--out", str(tmp_path / "x.jsonl")]
    rules = ["--model", "py:vidsel_cli_rules:answer"]
    assert main([*base, *rules, "--param", "lambda_=0.2"]) == 2
    assert "no method of uniform takes lambda_" in capsys.readouterr().err
    assert main([*base, *rules, "--methods", "mdp3", "--embedder", "hf:/x", "--param",
                 "lam=banana"]) == 2
    assert "lam='banana' must be a number" in capsys.readouterr().err
    assert main([*base, "--model", "hf:/m", "--model-option", "devcie=cpu"]) == 2
    assert "does not take the option(s) devcie" in capsys.readouterr().err
    import torch

    if not torch.cuda.is_available():
        assert main([*base, "--model", "hf:/m", "--model-option", "device=cuda"]) == 2
        assert "torch sees 0 CUDA device(s)" in capsys.readouterr().err
        assert main([*base, *rules, "--replicas", "2"]) == 2
        assert "--replicas cpu,cpu" in capsys.readouterr().err
    assert main([*base, *rules, "--replicas", "0"]) == 2
    out = tmp_path / "emb.jsonl"
    rc = main(["eval", "--dataset", "charades-sta", "--annotations", str(data / "charades.txt"),
               "--videos", str(data / "videos"), *rules, "--methods", "topk", "--embedder",
               "hf:/nope/siglip", "--out", str(out)])
    assert rc == 1
    assert "ModelNotAvailableError" in capsys.readouterr().err
    assert not read_records(out)  # no failure record per item
    assert main(["eval", "report", str(data), "--metric", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vidsel eval report: error:")


def test_report_reads_a_folder_and_flags_unequal_tokens(data, tmp_path, monkeypatch,
                                                         capsys) -> None:
    monkeypatch.syspath_prepend(str(data))
    runs = tmp_path / "runs"
    for i in range(2):
        assert main(["eval", "--dataset", "charades-sta", "--annotations",
                     str(data / "charades.txt"), "--videos", str(data / "videos"), "--model",
                     "py:vidsel_cli_rules:answer", "--methods", "uniform,codec", "--budgets",
                     "2", "--shard", f"{i}/2", "--out", str(runs / f"s{i}.jsonl"),
                     "--no-selection-cache"]) == 0
    err = capsys.readouterr().err
    assert "(shard 1/2 of 3)" in err
    assert main(["eval", "report", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "6 records from 2 sources" in out and "tokens vs uniform" in out


def test_ctrl_c_says_what_is_safe(data, tmp_path) -> None:
    (tmp_path / "slow_rules.py").write_text("import time\n\ndef answer(request):\n"
                                            "    time.sleep(0.4)\n    return 'A'\n")
    out = tmp_path / "slow.jsonl"
    proc = _cli("eval", "--dataset", "charades-sta", "--annotations", str(data / "charades.txt"),
                "--videos", str(data / "videos"), "--model", "py:slow_rules:answer",
                "--budgets", "2,3,4,5", "--no-selection-cache", "--out", str(out),
                env={"PYTHONPATH": str(tmp_path)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (out.exists() and out.read_bytes().count(b"\n")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    n = len(read_records(out))
    assert 1 <= n < 12
    assert f"holds {n} answers" in err and "--resume runs the rest" in err
