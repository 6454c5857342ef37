"""Benchmark loaders on tiny annotation files written here in each public format, laid out as
the datasets ship (sub-folders, ``.MP4`` suffixes, subtitles), pointing at generated videos;
broken lines name ``file:line``; a missing video is the item's path, never a loader error."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vidsel.errors import InvalidArgumentError, MissingDependencyError
from vidsel.eval import (
    DATASETS,
    EvalItem,
    available_datasets,
    dataset_name,
    load_dataset,
    load_subtitles,
    register_dataset,
    subtitles_at,
)
from vidsel.io import is_video


@pytest.fixture(scope="module")
def clip(make_synth: Callable[..., Any]) -> Path:
    return Path(make_synth(scene="moving_box", num_frames=24, fps=8, width=96, height=64).path)


def place(clip: Path, *parts: str | Path) -> Path:
    """Copy the generated clip to ``parts`` (a benchmark's file name and folder)."""
    dest = Path(*parts)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clip, dest)
    return dest


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


SRT = "1\n00:00:00,000 --> 00:00:01,000\n<font color=\"white\" size=\".72c\">hi</font>\n"


# --- Video-MME ------------------------------------------------------------------------------


def videomme_rows() -> list[dict[str, Any]]:
    base = {"video_id": "001", "duration": "short", "domain": "Knowledge",
            "sub_category": "Humanity & History", "url": "https://www.youtube.com/watch?v=aaa"}
    return [
        {**base, "videoID": "fFjv93ACGo8", "question_id": "001-1", "task_type": "Counting Problem",
         "question": "How many boxes?", "options": ["A. 1", "B. 2", "C. 3", "D. 4"],
         "answer": "A"},
        {**base, "videoID": "fFjv93ACGo8", "question_id": "001-2", "task_type": "OCR Problems",
         "question": "Which colour?", "options": ["A. red", "B. blue", "C. green", "D. gray"],
         "answer": "C"},
        {**base, "video_id": "002", "duration": "long", "videoID": "Bq2sSrTc1_w",
         "question_id": "002-1", "task_type": "Action Reasoning", "question": "Why?",
         "options": ["A. x", "B. y", "C. z", "D. w"], "answer": "D"},
        {**base, "video_id": "003", "duration": "medium", "videoID": "gone000000",
         "question_id": "003-1", "task_type": "Action Reasoning", "question": "Where?",
         "options": ["A. x", "B. y", "C. z", "D. w"], "answer": "B"},
    ]


def videomme_layout(root: Path, clip: Path) -> None:
    place(clip, root / "data" / "fFjv93ACGo8.mp4")
    place(clip, root / "data" / "Bq2sSrTc1_w.MP4")  # some Video-MME files have upper-case suffixes
    (root / "subtitle").mkdir(parents=True)
    (root / "subtitle" / "fFjv93ACGo8.srt").write_text(SRT)


def test_videomme_jsonl(tmp_path: Path, clip: Path) -> None:
    root = tmp_path / "Video-MME"
    videomme_layout(root, clip)
    ann = write_jsonl(root / "videomme" / "test.jsonl", videomme_rows())
    items = load_dataset("Video-MME", ann, root)
    assert [i.item_id for i in items] == ["001-1", "001-2", "002-1", "003-1"]
    first = items[0]
    assert first.dataset == "videomme" and first.task == "mcq"
    assert first.options == ("1", "2", "3", "4") and first.answer == "A"
    assert items[1].answer == "C" and items[2].answer == "D"
    assert first.video == str(root / "data" / "fFjv93ACGo8.mp4") and is_video(first.video)
    assert items[2].video == str(root / "data" / "Bq2sSrTc1_w.MP4") and is_video(items[2].video)
    assert first.subtitles == str(root / "subtitle" / "fFjv93ACGo8.srt")
    assert [s.text for s in load_subtitles(first.subtitles)] == ["hi"]
    assert items[2].subtitles is None  # no .srt for that video: none, as in Video-MME
    assert dict(first.meta) == {"duration": "short", "domain": "Knowledge",
                                "sub_category": "Humanity & History",
                                "task_type": "Counting Problem", "video_id": "001",
                                "url": "https://www.youtube.com/watch?v=aaa"}
    # a missing video is not an error: the item names where it would be
    assert items[3].video == str(root / "data" / "gone000000.mp4")
    # videos=None: found from the annotation's folder and its parent
    assert [i.video for i in load_dataset("videomme", ann)] == [i.video for i in items]
    # EvalItem round trip of what a loader made
    assert EvalItem.from_dict(first.to_dict()) == first


def test_videomme_duration_split_folder_and_grouped_layout(tmp_path: Path, clip: Path) -> None:
    root = tmp_path / "vmme"
    videomme_layout(root, clip)
    # the original release: one record per video with its questions
    rows = videomme_rows()
    grouped = [{k: v for k, v in rows[0].items() if k in ("video_id", "duration", "domain",
                                                          "sub_category", "url", "videoID")}]
    grouped[0]["questions"] = [{k: r[k] for k in ("question_id", "task_type", "question",
                                                  "options", "answer")} for r in rows[:2]]
    grouped.append(rows[2])
    write_json(root / "videomme.json", grouped)
    items = load_dataset("video_mme", root, root / "data", duration=["short", "long"])
    assert [(i.item_id, i.meta["duration"]) for i in items] == [
        ("001-1", "short"), ("001-2", "short"), ("002-1", "long")]
    assert items[0].subtitles == str(root / "subtitle" / "fFjv93ACGo8.srt")  # next to data/
    assert [i.item_id for i in load_dataset("videomme", root, duration="long")] == ["002-1"]
    with pytest.raises(InvalidArgumentError, match="'longest' is not one of short, medium, long"):
        load_dataset("videomme", root, duration="longest")


def test_videomme_bad_rows_name_file_and_line(tmp_path: Path) -> None:
    rows = videomme_rows()
    rows[2]["answer"] = "E"
    ann = write_jsonl(tmp_path / "v.jsonl", rows)
    with pytest.raises(InvalidArgumentError,
                       match=r"v\.jsonl:3: answer 'E' is not an option letter \(ABCD\)"):
        load_dataset("videomme", ann)
    del rows[2]["answer"], rows[1]["question"]
    ann = write_jsonl(tmp_path / "w.jsonl", rows)
    with pytest.raises(InvalidArgumentError, match=r"w\.jsonl:2: missing field 'question'"):
        load_dataset("videomme", ann)
    (tmp_path / "x.jsonl").write_text(json.dumps(videomme_rows()[0]) + "\n{\"videoID\": \n")
    with pytest.raises(InvalidArgumentError, match=r"x\.jsonl:2: not valid JSON"):
        load_dataset("videomme", tmp_path / "x.jsonl")


def test_videomme_parquet(tmp_path: Path, clip: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    root = tmp_path / "Video-MME"
    videomme_layout(root, clip)
    (root / "videomme").mkdir()
    pq.write_table(pa.Table.from_pylist(videomme_rows()),
                   root / "videomme" / "test-00000-of-00001.parquet")
    items = load_dataset("videomme", root)  # the snapshot folder: finds videomme/*.parquet
    assert [i.item_id for i in items] == ["001-1", "001-2", "002-1", "003-1"]
    assert items[0].options == ("1", "2", "3", "4") and is_video(items[0].video)


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ann = tmp_path / "test-00000-of-00001.parquet"
    ann.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # third-party: what a bare install has
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(MissingDependencyError, match=r"needs pyarrow: pip install .vidsel\[eval\]"):
        load_dataset("videomme", ann)


# --- LongVideoBench -------------------------------------------------------------------------


def lvb_row(**over: Any) -> dict[str, Any]:
    row = {"video_id": "86CxyhFV9MI", "video_path": "86CxyhFV9MI.mp4", "duration": 3.0,
           "question": "In the video, what moves?", "candidates": ["a box", "a cat", "a dog"],
           "correct_choice": 0, "subtitle_path": "86CxyhFV9MI_en.json",
           "starting_timestamp_for_subtitles": 100.0, "id": "86CxyhFV9MI_0",
           "question_category": "S2E", "topic_category": "NP-News-Programs", "level": "L1",
           "duration_group": 15, "position": [1, 2]}
    row.update(over)
    return row


def test_longvideobench(tmp_path: Path, clip: Path) -> None:
    root = tmp_path / "LongVideoBench"
    place(clip, root / "videos" / "86CxyhFV9MI.mp4")
    write_json(root / "subtitles" / "86CxyhFV9MI_en.json",
               [{"start": "00:01:40.000", "end": "00:01:41.000", "line": "first"},
                {"start": "00:01:42.500", "end": "00:01:43.000", "line": "second"}])
    rows = [lvb_row(), lvb_row(id="86CxyhFV9MI_1", correct_choice=2),
            lvb_row(id="missing_0", video_path="missing.mp4", subtitle_path="missing_en.json")]
    test_row = lvb_row(id="t0")
    del test_row["correct_choice"]  # lvb_test_wo_gt.json
    rows.append(test_row)
    write_json(root / "lvb_val.json", rows)
    items = load_dataset("LongVideoBench", root)  # the dataset folder: finds lvb_val.json
    assert [i.answer for i in items] == ["A", "C", "A", None]
    first = items[0]
    assert first.options == ("a box", "a cat", "a dog") and first.duration_s == 3.0
    assert first.video == str(root / "videos" / "86CxyhFV9MI.mp4") and is_video(first.video)
    assert first.subtitles == str(root / "subtitles" / "86CxyhFV9MI_en.json")
    assert first.subtitle_offset_s == -100.0
    assert first.meta["question_category"] == "S2E" and first.meta["duration_group"] == 15
    # subtitles follow the frames: frames at 0.5 s and 2.7 s of the clip
    subs = load_subtitles(first.subtitles)
    assert subtitles_at(subs, [0.5, 2.7], offset_s=first.subtitle_offset_s) == ["first",
                                                                                 "second"]
    assert subtitles_at(subs, [1.5], offset_s=first.subtitle_offset_s) == []
    # a missing video and subtitle keep their expected paths
    assert items[2].video == str(root / "videos" / "missing.mp4")
    assert items[2].subtitles == str(root / "subtitles" / "missing_en.json")


def test_longvideobench_bad_correct_choice(tmp_path: Path) -> None:
    ann = write_json(tmp_path / "lvb_val.json", [lvb_row(), lvb_row(id="x", correct_choice=3)])
    # the line the second element of the (indented) JSON array starts on
    line = [n for n, t in enumerate(ann.read_text().splitlines(), 1) if t == "  {"][1]
    with pytest.raises(InvalidArgumentError,
                       match=rf"lvb_val\.json:{line}: correct_choice=3 is not an index of the "
                             rf"3 options"):
        load_dataset("lvb", ann)


# --- MLVU -----------------------------------------------------------------------------------


def test_mlvu_folder(tmp_path: Path, clip: Path) -> None:
    root = tmp_path / "MLVU"
    place(clip, root / "video" / "1_plotQA" / "movie101_66.mp4")
    place(clip, root / "video" / "needle" / "needle_32.mp4")  # the older folder names
    write_json(root / "json" / "1_plotQA.json", [
        {"video": "movie101_66.mp4", "duration": 246, "question": "What colour is the car?",
         "candidates": ["Yellow", "Red", "Green", "Blue"], "answer": "Green",
         "question_type": "plotQA"}])
    write_json(root / "json" / "2_needle.json", [
        {"video": "needle_32.mp4", "duration": 467.98, "question": "What is hidden?",
         "candidates": ["3", "1", "2", "4"], "answer": "2", "question_type": "findNeedle"},
        {"video": "needle_99.mp4", "duration": 100, "question": "And here?",
         "candidates": ["B", "A"], "answer": "A", "question_type": "findNeedle"}])
    write_json(root / "json" / "8_sub_scene.json", [
        {"video": "movie101_66.mp4", "duration": 246, "question": "Describe the scene.",
         "answer": "A car drives.", "question_type": "subPlot", "scoring_points": ["car"]}])
    items = load_dataset("MLVU", root / "json", root / "video")
    assert [i.item_id for i in items] == ["1_plotQA/0", "2_needle/0", "2_needle/1"]
    assert [i.answer for i in items] == ["C", "C", "B"]  # the option TEXT, never a letter
    assert items[0].video == str(root / "video" / "1_plotQA" / "movie101_66.mp4")
    assert items[1].video == str(root / "video" / "needle" / "needle_32.mp4")
    assert all(is_video(i.video) for i in items[:2])
    assert items[2].video == str(root / "video" / "needle" / "needle_99.mp4")  # missing
    assert dict(items[1].meta) == {"task": "2_needle", "question_type": "findNeedle"}
    assert items[1].duration_s == 467.98
    # the dataset folder, open-ended tasks, a task filter by name or question type
    both = load_dataset("mlvu", root, open_ended=True)
    assert [i.task for i in both] == ["mcq", "mcq", "mcq", "open"]
    assert both[3].answer == "A car drives." and both[3].options == ()
    assert [i.item_id for i in load_dataset("mlvu", root, tasks="findNeedle")] == [
        "2_needle/0", "2_needle/1"]
    assert len(load_dataset("mlvu", root / "json" / "1_plotQA.json", tasks=["plotQA"])) == 1
    with pytest.raises(InvalidArgumentError, match="'ordering' matched no question"):
        load_dataset("mlvu", root, tasks=["plotQA", "ordering"])


def test_mlvu_answer_must_be_an_option_text(tmp_path: Path) -> None:
    ann = write_json(tmp_path / "4_count.json", [
        {"video": "c.mp4", "duration": 10, "question": "How many?", "candidates": ["1", "2"],
         "answer": "A", "question_type": "count"}])
    with pytest.raises(InvalidArgumentError, match=r"4_count\.json:2: answer 'A' is not one of "
                                                   r"the options"):
        load_dataset("mlvu", ann)


# --- Charades-STA ---------------------------------------------------------------------------


def test_charades_sta_text(tmp_path: Path, clip: Path) -> None:
    root = tmp_path / "charades"
    place(clip, root / "Charades_v1_480" / "3MSZA.mp4")
    ann = root / "charades_sta_test.txt"
    ann.write_bytes(b"3MSZA 24.3 30.4##person turn a light on.\r\n\r\n"
                    b"3MSZA 0 1.5##person opens the door.\r\nAO8RW 2.0 3.0##a person ## sits.\r\n")
    items = load_dataset("charades", ann)
    assert [i.item_id for i in items] == ["3MSZA_0", "3MSZA_1", "AO8RW_2"]
    assert items[0].task == "grounding" and items[0].dataset == "charades-sta"
    assert items[0].spans_s == ((24.3, 30.4),) and items[0].question == "person turn a light on."
    assert items[2].question == "a person ## sits."
    assert items[0].video == str(root / "Charades_v1_480" / "3MSZA.mp4")
    assert is_video(items[0].video)
    assert items[2].video == str(root / "Charades_v1_480" / "AO8RW.mp4")  # missing


@pytest.mark.parametrize(("line", "match"), [
    ("3MSZA 24.3##no end", "expected 'VIDEO_ID START END##SENTENCE'"),
    ("3MSZA 24.3 30.4 person without separator", "expected 'VIDEO_ID START END##SENTENCE'"),
    ("3MSZA 24.3 30.4##   ", "expected 'VIDEO_ID START END##SENTENCE'"),
    ("3MSZA a b##text", "start 'a' / end 'b' are not numbers"),
    ("3MSZA 9 3##text", "the span 9..3 must be finite with 0 <= start <= end"),
])
def test_charades_sta_broken_lines(tmp_path: Path, line: str, match: str) -> None:
    ann = tmp_path / "sta.txt"
    ann.write_text(f"3MSZA 0 1##fine\n{line}\n")
    with pytest.raises(InvalidArgumentError, match=rf"sta\.txt:2: {match}"):
        load_dataset("charades-sta", ann)


def test_charades_sta_json(tmp_path: Path) -> None:
    ann = write_json(tmp_path / "charades_test.json", {
        "3MSZA": {"duration": 30.96, "timestamps": [[24.3, 30.4], [0, 1.5]],
                  "sentences": ["person turn a light on.", "person opens the door."]}})
    items = load_dataset("charades_sta", ann, tmp_path)
    assert [(i.item_id, i.spans_s, i.duration_s) for i in items] == [
        ("3MSZA_0", ((24.3, 30.4),), 30.96), ("3MSZA_1", ((0.0, 1.5),), 30.96)]
    write_json(ann, {"3MSZA": {"timestamps": [[1, 2]], "sentences": []}})
    with pytest.raises(InvalidArgumentError, match="video '3MSZA': needs 'sentences'"):
        load_dataset("charades-sta", ann)


# --- QVHighlights ---------------------------------------------------------------------------


def test_qvhighlights(tmp_path: Path, clip: Path) -> None:
    place(clip, tmp_path / "videos" / "NUhaRMHeHMc_360.0_510.0.mp4")
    ann = write_jsonl(tmp_path / "highlight_val_release.jsonl", [
        {"qid": 2579, "query": "A girl and her mother cooked while talking with each other.",
         "duration": 150, "vid": "NUhaRMHeHMc_360.0_510.0",
         "relevant_clip_ids": [13, 14, 15], "saliency_scores": [[1, 3, 2], [4, 4, 4], [2, 2, 2]],
         "relevant_windows": [[26, 32], [40, 46]]},
        {"qid": 9001, "query": "A test query.", "duration": 150, "vid": "j7rJstUseKg_360.0_510.0"},
    ])
    items = load_dataset("QVHighlights", ann)
    first, unlabeled = items
    assert first.item_id == "2579" and first.task == "highlights"
    assert first.spans_s == ((26.0, 32.0), (40.0, 46.0)) and first.duration_s == 150.0
    assert first.video == str(tmp_path / "videos" / "NUhaRMHeHMc_360.0_510.0.mp4")
    assert is_video(first.video)
    assert first.meta["relevant_clip_ids"] == [13, 14, 15]
    assert unlabeled.spans_s == () and unlabeled.video.endswith("j7rJstUseKg_360.0_510.0.mp4")


def test_qvhighlights_bad_windows(tmp_path: Path) -> None:
    ann = write_jsonl(tmp_path / "qvh.jsonl", [
        {"qid": 1, "query": "q", "duration": 150, "vid": "a_0.0_150.0",
         "relevant_windows": [[26, 32]]},
        {"qid": 2, "query": "q", "duration": 150, "vid": "a_0.0_150.0",
         "relevant_windows": [[40, 30]]}])
    with pytest.raises(InvalidArgumentError, match=r"qvh\.jsonl:2: 'relevant_windows': span"):
        load_dataset("qvh", ann)


# --- generic JSONL / CSV ----------------------------------------------------------------------


def test_generic_jsonl(tmp_path: Path, clip: Path) -> None:
    place(clip, tmp_path / "clips" / "a.mp4")
    place(clip, tmp_path / "videos" / "b.mkv")
    ann = write_jsonl(tmp_path / "mybench.jsonl", [
        {"video": "clips/a.mp4", "question": "What moves?", "options": ["A. box", "B. cat"],
         "answer": "B", "id": "q1", "source": "handmade"},
        {"path": "b", "question": "What moves?", "options": ["box", "cat"], "answer": "box"},
        {"video": "b.mkv", "query": "the box moves", "start": 0.5, "end": 1.5},
        {"video": str(tmp_path / "clips" / "a.mp4"), "question": "Describe it.",
         "answer": "a box"},
        {"video": "a.mp4", "query": "box", "spans": [[0, 1], [2, 3]], "task": "highlights"},
        {"video": "a.mp4", "question": "Pick", "options": ["x", "y", "z"], "correct_choice": 2},
    ])
    items = load_dataset("jsonl", ann)
    assert [i.task for i in items] == ["mcq", "mcq", "grounding", "open", "highlights", "mcq"]
    assert [i.item_id for i in items] == ["q1", "1", "2", "3", "4", "5"]
    assert {i.dataset for i in items} == {"mybench"}  # the file's name: files do not merge
    assert items[0].options == ("box", "cat") and items[0].answer == "B"
    assert items[1].answer == "A" and items[5].answer == "C"
    assert items[0].video == str(tmp_path / "clips" / "a.mp4") and is_video(items[0].video)
    assert items[1].video == str(tmp_path / "videos" / "b.mkv") and is_video(items[1].video)
    assert items[2].spans_s == ((0.5, 1.5),) and items[2].answer is None
    assert items[3].answer == "a box" and items[3].video == str(tmp_path / "clips" / "a.mp4")
    assert items[4].spans_s == ((0.0, 1.0), (2.0, 3.0))
    assert dict(items[0].meta) == {"source": "handmade"}
    named = load_dataset("json", ann, tmp_path, dataset="ours", task="open", limit=2)
    # the task option is what rows that do not name theirs are
    assert [(i.dataset, i.task, i.answer) for i in named] == [("ours", "open", "B"),
                                                              ("ours", "open", "box")]


@pytest.mark.parametrize(("row", "match"), [
    ({"question": "q"}, "missing field 'video'"),
    ({"video": "a.mp4", "question": "q", "options": ["x"]}, "'options' has 1 options"),
    ({"video": "a.mp4", "question": "q", "options": ["x", "y"], "answer": "maybe"},
     "answer 'maybe' is not an option letter"),
    ({"video": "a.mp4", "question": "q", "start": 1.0}, "give both 'start' and 'end'"),
    ({"video": "a.mp4", "question": "q", "task": "mcq"}, "an mcq item needs 'options'"),
    ({"video": "a.mp4", "question": "q", "task": "quiz"}, "task='quiz' is not one of"),
    ({"video": "a.mp4", "question": "q", "duration": "long"}, "'duration'='long' is not a num"),
    (["not", "an", "object"], "expected a JSON object, got list"),
])
def test_generic_jsonl_errors(tmp_path: Path, row: Any, match: str) -> None:
    ann = write_jsonl(tmp_path / "g.jsonl", [{"video": "a.mp4", "question": "ok"}, row])
    with pytest.raises(InvalidArgumentError, match=rf"g\.jsonl:2: {match}"):
        load_dataset("jsonl", ann)


def test_generic_duplicate_ids(tmp_path: Path) -> None:
    ann = write_jsonl(tmp_path / "d.jsonl", [{"video": "a", "question": "q", "id": "x"},
                                             {"video": "b", "question": "q", "id": "x"}])
    with pytest.raises(InvalidArgumentError, match="item id 'x' appears more than once"):
        load_dataset("jsonl", ann)


def test_generic_csv_and_tsv(tmp_path: Path, clip: Path) -> None:
    place(clip, tmp_path / "a.mp4")
    (tmp_path / "bench.csv").write_text(
        "id,video,question,options,answer,start,end,note\n"
        "m1,a.mp4,What moves?,box|cat|dog,cat,,,first\n"
        'm2,a,Which?,"[""A. red"", ""B. blue""]",a,,,\n'
        "g1,a.mp4,the box moves,,,0.5,1.25,\n"
        "o1,a.mp4,Say something,,hello,,,\n")
    items = load_dataset("CSV", tmp_path / "bench.csv")
    assert [(i.item_id, i.task, i.answer) for i in items] == [
        ("m1", "mcq", "B"), ("m2", "mcq", "A"), ("g1", "grounding", None),
        ("o1", "open", "hello")]
    assert items[1].options == ("red", "blue") and items[2].spans_s == ((0.5, 1.25),)
    assert dict(items[0].meta) == {"note": "first"} and dict(items[1].meta) == {}
    assert items[0].video == items[1].video == str(tmp_path / "a.mp4")
    (tmp_path / "bench.tsv").write_text("video\tquestion\tspans\na.mp4\tbox\t[[1, 2]]\n")
    assert load_dataset("tsv", tmp_path / "bench.tsv")[0].spans_s == ((1.0, 2.0),)
    (tmp_path / "bad.csv").write_text("video,question\na.mp4,ok\na.mp4,too,many\n")
    with pytest.raises(InvalidArgumentError, match=r"bad\.csv:3: 3 cells but the header has 2"):
        load_dataset("csv", tmp_path / "bad.csv")


# --- load_dataset and the registry ---------------------------------------------------------------


def test_names_options_and_arguments(tmp_path: Path) -> None:
    assert {"videomme", "longvideobench", "mlvu", "charades-sta", "qvhighlights", "jsonl",
            "csv"} <= set(available_datasets())
    for spelling, name in [("Video-MME", "videomme"), ("video_mme", "videomme"),
                           ("VIDEOMME", "videomme"), ("charades", "charades-sta"),
                           ("Charades_STA", "charades-sta"), ("lvb", "longvideobench"),
                           ("QV Highlights", "qvhighlights")]:
        assert dataset_name(spelling) == name
    ann = write_jsonl(tmp_path / "a.jsonl", [{"video": f"v{k}", "question": "q"}
                                             for k in range(5)])
    with pytest.raises(InvalidArgumentError, match="dataset='egoschema' is not registered; "
                                                   "choose one of .*'charades-sta'"):
        load_dataset("egoschema", ann)
    with pytest.raises(InvalidArgumentError, match="takes no option 'duration'; its options: "
                                                   "dataset, task"):
        load_dataset("jsonl", ann, duration="long")
    with pytest.raises(InvalidArgumentError, match="do not exist"):
        load_dataset("jsonl", tmp_path / "nope.jsonl")
    with pytest.raises(InvalidArgumentError, match="is not a folder"):
        load_dataset("jsonl", ann, ann)
    with pytest.raises(InvalidArgumentError, match="limit=0 must be >= 1"):
        load_dataset("jsonl", ann, limit=0)
    assert [i.item_id for i in load_dataset("jsonl", ann, limit=3)] == ["0", "1", "2"]
    assert load_dataset("jsonl", write_jsonl(tmp_path / "empty.jsonl", [])) == []


def test_missing_videos_are_logged_not_raised(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    ann = write_jsonl(tmp_path / "a.jsonl", [{"video": "v1", "question": "q"},
                                             {"video": "v2", "question": "q"}])
    with caplog.at_level(logging.WARNING):
        items = load_dataset("jsonl", ann)
    assert [i.video for i in items] == [str(tmp_path / "v1.mp4"), str(tmp_path / "v2.mp4")]
    assert "2 of 2 videos not found" in caplog.text


def test_register_dataset(tmp_path: Path) -> None:
    def load_tiny(annotations: Path, videos: Path | None, *, flag: bool = False) -> list[EvalItem]:
        return [EvalItem(item_id="1", dataset="tiny", video=str(annotations), question="q",
                         task="open", meta={"flag": flag})]

    register_dataset("tiny-bench", load_tiny, aliases=("tb",))
    try:
        ann = write_jsonl(tmp_path / "x.jsonl", [])
        assert load_dataset("TB", ann, flag=True)[0].meta["flag"] is True
        assert load_dataset("tiny_bench", ann)[0].dataset == "tiny"
        with pytest.raises(InvalidArgumentError, match="already means 'longvideobench'"):
            register_dataset("other", load_tiny, aliases=("LVB",))
        with pytest.raises(InvalidArgumentError, match="already registered"):
            register_dataset("tiny-bench", load_tiny)
    finally:
        DATASETS.unregister("tiny-bench")
