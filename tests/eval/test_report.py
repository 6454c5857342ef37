"""The report: results files in, the table, the paired comparison and the figure out.

The records are written here as the runner writes them (one JSON object per line); every
mean, count and delta below is worked out by hand in the comments.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from vidsel.errors import InvalidArgumentError, MissingDependencyError
from vidsel.eval import EvalItem, bootstrap_ci, load_report, parse_answer, score_item
from vidsel.render import eval_plot


def rec(item_id, method, budget, score=None, *, dataset="videomme", task="mcq", model="m",
        tokens=784, status="ok", error=None):
    r = {"schema": "vidsel.eval/1", "key": f"{dataset}|{item_id}|{method}|{budget}|{model}",
         "status": status, "dataset": dataset, "item_id": item_id, "task": task,
         "method": method, "budget": budget, "model": model, "visual_tokens": tokens,
         "score": score or {}, "parsed": None, "output": ""}
    if error:
        r["error"] = {"type": error, "message": "boom"}
    return r


def acc(x):
    return {"accuracy": float(x)}


def write(path, records, *, torn=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + torn)
    return path


# uniform@4 [1, 0, 0, 1] -> 50;  codec@4 [1, 1, 0, 0] -> 50 (q2 is 0 in the first file,
# 1 in the second: the later record wins)
# uniform@8 [1, 1, 0, 0] -> 50;  codec@8 [1, 1, 1] + q4 failed -> 100, n 3, failed 1
SHARD_A = [
    rec("q1", "uniform", 4, acc(1)), rec("q2", "uniform", 4, acc(0)),
    rec("q3", "uniform", 4, acc(0)), rec("q4", "uniform", 4, acc(1)),
    rec("q1", "codec", 4, acc(1), tokens=780), rec("q2", "codec", 4, acc(0), tokens=784),
    {"schema": "vidsel.batch/1", "key": "x", "status": "ok"},  # not an eval record
]
SHARD_B = [
    rec("q2", "codec", 4, acc(1), tokens=784), rec("q3", "codec", 4, acc(0), tokens=790),
    rec("q4", "codec", 4, acc(0), tokens=800),
    rec("q1", "uniform", 8, acc(1)), rec("q2", "uniform", 8, acc(1)),
    rec("q3", "uniform", 8, acc(0)), rec("q4", "uniform", 8, acc(0)),
    rec("q1", "codec", 8, acc(1)), rec("q2", "codec", 8, acc(1)), rec("q3", "codec", 8, acc(1)),
    rec("q4", "codec", 8, status="error", error="VideoNotFoundError"),
    # grounding: IoUs 0.5 and 0.25 -> mIoU 37.5, R1@0.3 50, R1@0.5 50, R1@0.7 0
    rec("c1", "uniform", 4, {"iou": 0.5, "R1@0.3": 1, "R1@0.5": 1, "R1@0.7": 0},
        dataset="charades-sta", task="grounding"),
    rec("c2", "uniform", 4, {"iou": 0.25, "R1@0.3": 0, "R1@0.5": 0, "R1@0.7": 0},
        dataset="charades-sta", task="grounding"),
]


@pytest.fixture
def files(tmp_path):
    a = write(tmp_path / "a.jsonl", SHARD_A)
    b = write(tmp_path / "b.jsonl", SHARD_B, torn='{"schema": "vidsel.eval/1", "key": "q9')
    return a, b


def row(report, **match):
    found = [r for r in report.rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, report.rows)
    return found[0]


def comparison(report, **match):
    found = [c for c in report.comparisons if all(c[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, report.comparisons)
    return found[0]


def test_table_numbers(files):
    report = load_report(list(files))
    # 6 + 13 evaluation records, one key twice, one batch record, one torn last line
    assert report.records == 18 and report.duplicates == 1 and report.ignored == 1
    assert report.failures == {"VideoNotFoundError": 1}
    assert report.sources == tuple(str(f) for f in files)

    u4 = row(report, method="uniform", budget=4, dataset="videomme")
    assert (u4["metric"], u4["mean"], u4["n"], u4["failed"]) == ("accuracy", 50.0, 4, 0)
    assert u4["visual_tokens"] == 784
    c4 = row(report, method="codec", budget=4)
    assert (c4["mean"], c4["n"]) == (50.0, 4)
    assert c4["visual_tokens"] == 787  # median of 780, 784, 790, 800
    c8 = row(report, method="codec", budget=8)
    assert (c8["mean"], c8["n"], c8["failed"]) == (100.0, 3, 1)
    assert (c8["ci_low"], c8["ci_high"]) == (100.0, 100.0)  # every resample is all ones
    g = row(report, dataset="charades-sta")
    assert (g["task"], g["metric"], g["mean"]) == ("grounding", "R1@0.5", 50.0)
    for r in report.rows:
        assert r["ci_low"] <= r["mean"] <= r["ci_high"]
    # rows: uniform first, then by budget
    assert [(r["method"], r["budget"]) for r in report.rows if r["dataset"] == "videomme"] == [
        ("uniform", 4), ("uniform", 8), ("codec", 4), ("codec", 8)]


def test_paired_comparison_against_uniform(files):
    report = load_report(files)
    # budget 4: q1 1-1 tie, q2 1-0 win, q3 0-0 tie, q4 0-1 loss -> delta 0
    c4 = comparison(report, budget=4)
    assert (c4["method"], c4["baseline"], c4["metric"]) == ("codec", "uniform", "accuracy")
    assert (c4["n"], c4["wins"], c4["losses"], c4["ties"]) == (4, 1, 1, 2)
    assert c4["mean_delta"] == pytest.approx(0.0)
    assert c4["ci_low"] <= 0.0 <= c4["ci_high"]
    # budget 8: q4 failed for codec -> 3 items: q1 tie, q2 tie, q3 win -> +100/3
    c8 = comparison(report, budget=8)
    assert (c8["n"], c8["wins"], c8["losses"], c8["ties"]) == (3, 1, 0, 2)
    assert c8["mean_delta"] == pytest.approx(100 / 3)
    # charades-sta has uniform only: nothing to compare
    assert all(c["dataset"] == "videomme" for c in report.comparisons)


def test_all_metrics_and_a_named_metric(files):
    report = load_report(files, metric="all")
    g = {r["metric"]: r["mean"] for r in report.rows if r["dataset"] == "charades-sta"}
    assert g == pytest.approx({"mIoU": 37.5, "R1@0.3": 50.0, "R1@0.5": 50.0, "R1@0.7": 0.0})
    miou = load_report(files, metric="mIoU")
    assert [(r["dataset"], r["metric"], r["mean"]) for r in miou.rows] == [
        ("charades-sta", "mIoU", 37.5)]
    with pytest.raises(InvalidArgumentError, match="choose from .*accuracy.*or 'all'"):
        load_report(files, metric="BLEU")


def test_text_table_html_and_dict(files):
    report = load_report(files)
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("18 records from 2 sources; 1 duplicates dropped")
    assert "VideoNotFoundError 1" in lines[0]
    header = next(line for line in lines if line.startswith("dataset"))
    for col in ("method", "budget", "tokens", "metric", "mean", "95% CI", "n", "failed"):
        assert col in header
    codec8 = next(line.split() for line in lines if line.split()[3:5] == ["codec", "8"])
    assert codec8[7] == "100.0" and codec8[-2:] == ["3", "1"]  # mean, n, failed
    assert "paired against uniform" in text and "+33.3" in text
    # the columns line up: every table line as wide as its header or less
    assert all(len(line) <= len(max(lines, key=len)) for line in lines)
    html = report._repr_html_()
    assert html.count("<table>") == 2 and "VideoNotFoundError" in html
    d = json.loads(json.dumps(report.to_dict()))
    assert [r["metric"] for r in d["rows"]] == ["R1@0.5"] + ["accuracy"] * 4
    assert d["duplicates"] == 1 and d["failures"] == {"VideoNotFoundError": 1}
    assert "EvalReport(18 records" in repr(report)


def test_order_of_files_and_lines_does_not_change_the_numbers(tmp_path):
    rng = np.random.default_rng(1)
    recs = [rec(f"q{i}", m, 4, acc(rng.integers(0, 2))) for i in range(40)
            for m in ("uniform", "codec")]
    one = load_report(write(tmp_path / "x.jsonl", recs))
    shuffled = [recs[i] for i in rng.permutation(len(recs))]
    two = load_report([write(tmp_path / "y.jsonl", shuffled[:30]),
                       write(tmp_path / "z.jsonl", shuffled[30:])])
    assert one.rows == two.rows and one.comparisons == two.comparisons


def test_records_in_memory_and_a_folder(tmp_path, files):
    report = load_report(SHARD_A + SHARD_B)
    assert report.sources == ("<records>",) and report.records == 18
    folder = load_report(tmp_path)  # every .jsonl in it, sorted
    assert folder.rows == report.rows


def test_end_to_end_from_answers(tmp_path):
    items = [EvalItem(item_id=f"h{i}", dataset="qvhighlights", video="v.mp4", question="q",
                      task="highlights", spans_s=[(0.0, 10.0), (40.0, 50.0)], duration_s=150.0)
             for i in range(2)]
    answers = {"uniform": ["20-30", "0-10, 20-30, 40-48"], "codec": ["0-10", "0-10, 40-50"]}
    recs = []
    for method, texts in answers.items():
        for it, text in zip(items, texts):
            parsed = parse_answer(it, text)
            recs.append(rec(it.item_id, method, 4, score_item(it, parsed),
                            dataset=it.dataset, task=it.task))
    report = load_report(write(tmp_path / "r.jsonl", recs), metric="all")
    # uniform: mAP 0 and 11/15 (see test_metrics) -> 36.67; codec: AP 1/2 then 1 -> 75
    assert row(report, method="uniform", metric="mAP")["mean"] == pytest.approx(100 * 11 / 30)
    assert row(report, method="codec", metric="mAP")["mean"] == pytest.approx(75.0)
    assert row(report, method="codec", metric="R1@0.7")["mean"] == 100.0
    # primary R1@0.5: uniform 0, 1; codec 1, 1 -> one win, one tie
    c = comparison(report, method="codec")
    assert (c["metric"], c["wins"], c["ties"], c["mean_delta"]) == ("R1@0.5", 1, 1, 50.0)


def test_plot_is_saved_and_opens(tmp_path, files):
    report = load_report(files)
    fig = report.plot(tmp_path / "eval.png")
    with Image.open(tmp_path / "eval.png") as im:
        assert im.format == "PNG" and im.width > 400 and im.height > 200
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["charades-sta", "videomme"]
    vm = axes[1]
    assert vm.get_xscale() == "log"
    assert [t.get_text() for t in vm.get_xticklabels()] == ["4", "8"]
    assert sorted(line.get_label() for line in vm.get_lines()) == ["codec", "uniform"]
    assert vm.get_ylabel() == "accuracy (%)"
    # another metric: only the tasks that have it
    fig2 = load_report(files, metric="all").plot(metric="mIoU")
    assert [ax.get_title() for ax in fig2.axes if ax.get_visible()] == ["charades-sta"]


def test_eval_plot_takes_plain_data():
    fig = eval_plot([("bench", "accuracy (%)", {
        "uniform": [(8, 50.0, 40.0, 60.0), (4, 40.0, None, None)],
        "mdp3": [(4, 45.0, 35.0, 55.0), (8, 60.0, 50.0, 70.0)]})])
    ax = fig.axes[0]
    uniform = next(line for line in ax.get_lines() if line.get_label() == "uniform")
    assert list(uniform.get_xdata()) == [4.0, 8.0]  # sorted by budget
    assert uniform.get_linestyle() == "--"
    with pytest.raises(InvalidArgumentError, match="no panels"):
        eval_plot([])
    with pytest.raises(InvalidArgumentError, match="points must be"):
        eval_plot([("b", "y", {"m": [(4, 1.0)]})])


def test_missing_optional_packages(monkeypatch, files):
    report = load_report(files)
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"needs pandas: pip install .vidsel\[eval\]"):
        report.to_pandas()
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingDependencyError, match=r"vidsel\[plot\]"):
        report.plot()


def test_to_pandas(files):
    pd = pytest.importorskip("pandas")
    report = load_report(files)
    df = report.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == len(report.rows)
    assert list(df.columns[:4]) == ["dataset", "task", "model", "method"]
    assert len(report.to_pandas("comparisons")) == 2


def test_bootstrap_ci():
    values = [0.0, 1.0] * 50
    mean, low, high = bootstrap_ci(values)
    assert mean == 0.5
    # the mean of 100 fair coin flips has sd 0.05: the 95% interval is about 0.5 +- 0.1
    assert 0.38 < low < 0.44 and 0.56 < high < 0.62
    assert bootstrap_ci(values) == (mean, low, high)  # fixed seed
    assert bootstrap_ci([0.7]) == (0.7, 0.7, 0.7)
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        bootstrap_ci([])


def test_bad_inputs(tmp_path):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        load_report(tmp_path / "nope.jsonl")
    other = write(tmp_path / "batch.jsonl", [{"schema": "vidsel.batch/1", "key": "k"}])
    with pytest.raises(InvalidArgumentError, match="no vidsel.eval/1 records"):
        load_report(other)
    newer = write(tmp_path / "new.jsonl", [{**rec("q1", "uniform", 4, acc(1)),
                                            "schema": "vidsel.eval/2"}])
    with pytest.raises(InvalidArgumentError, match="newer"):
        load_report(newer)
    broken = rec("q1", "uniform", 4, acc(1))
    del broken["method"]
    with pytest.raises(InvalidArgumentError, match="no 'method' field"):
        load_report([broken])
    with pytest.raises(InvalidArgumentError, match="budget"):
        load_report([rec("q1", "uniform", "four", acc(1))])
    with pytest.raises(InvalidArgumentError, match="neither"):
        load_report([42])


def test_a_named_metric_leaves_out_other_tasks_in_both_tables(tmp_path) -> None:
    records = [rec("q1", m, 4, acc(1)) for m in ("uniform", "codec")] + [
        rec("c1", m, 4, {"iou": v, "R1@0.3": 1, "R1@0.5": 0, "R1@0.7": 0},
            dataset="charades-sta", task="grounding")
        for m, v in (("uniform", 0.4), ("codec", 0.45))]
    report = load_report(write(tmp_path / "mixed.jsonl", records), metric="mIoU")
    assert {r["task"] for r in report.rows} == {"grounding"}
    assert [(c["task"], c["metric"]) for c in report.comparisons] == [("grounding", "mIoU")]
    assert report.comparisons[0]["mean_delta"] == pytest.approx(5.0)
    assert report.comparisons[0]["token_ratio"] == pytest.approx(1.0)


def test_failures_can_count_as_wrong(tmp_path) -> None:
    # codec@8: [1, 1, 1] + q4 failed -> skip: 100 over 3; wrong: 75 over 4
    records = [rec(f"q{i}", "codec", 8, acc(1)) for i in (1, 2, 3)] + [
        rec("q4", "codec", 8, status="error", error="CorruptVideoError")]
    path = write(tmp_path / "f.jsonl", records)
    (skip,) = load_report(path).rows
    (wrong,) = load_report(path, failures="wrong").rows
    assert (skip["mean"], skip["n"], skip["failed"]) == (100.0, 3, 1)
    assert (wrong["mean"], wrong["n"], wrong["failed"]) == (75.0, 4, 1)
    with pytest.raises(InvalidArgumentError, match="failures="):
        load_report(path, failures="ignore")
