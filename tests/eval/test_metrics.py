"""Item scores by task, every number worked out by hand in the comments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidsel.errors import InvalidArgumentError
from vidsel.eval import (
    METRICS,
    PRIMARY,
    TASKS,
    EvalItem,
    moment_average_precision,
    parse_answer,
    score_item,
    temporal_iou,
)


def item(task, **kw):
    base = {"item_id": "q1", "dataset": "d", "video": "v.mp4", "question": "what?",
            "task": task}
    if task == "mcq":
        base["options"] = ("a dog", "a red car", "a tree", "a house")
    base.update(kw)
    return EvalItem(**base)


def test_every_task_has_a_primary_metric_among_its_metrics():
    assert set(PRIMARY) == set(METRICS) == set(TASKS)
    assert all(PRIMARY[t] in METRICS[t] for t in TASKS)
    assert PRIMARY == {"mcq": "accuracy", "grounding": "R1@0.5", "highlights": "R1@0.5",
                       "open": "contains"}


@pytest.mark.parametrize("a,b,iou", [
    ((2, 6), (4, 8), 2 / 6),   # 2 s shared, 6 s covered
    ((0, 10), (0, 10), 1.0),
    ((0, 10), (2, 4), 0.2),    # inside: 2 / 10
    ((0, 2), (3, 5), 0.0),     # apart
    ((0, 2), (2, 5), 0.0),     # touching
    ((3, 3), (3, 3), 0.0),     # both empty
])
def test_temporal_iou(a, b, iou):
    assert temporal_iou(a, b) == pytest.approx(iou)
    assert temporal_iou(b, a) == pytest.approx(iou)


# --------------------------------------------------------------------------------- mcq

def test_mcq_parse_and_score():
    it = item("mcq", answer="B")
    assert parse_answer(it, "The answer is (B).") == "B"
    assert score_item(it, "B") == {"accuracy": 1.0}
    assert score_item(it, "b") == {"accuracy": 1.0}
    assert score_item(it, "C") == {"accuracy": 0.0}
    assert score_item(it, None) == {"accuracy": 0.0}  # unparsed = wrong
    assert parse_answer(it, "a red car") == "B"  # option text


def test_mcq_without_answer_scores_nothing():
    assert score_item(item("mcq"), "B") == {}


# --------------------------------------------------------------------------------- grounding

def test_grounding_parse_and_score():
    it = item("grounding", spans_s=[(2.0, 6.0)], duration_s=30.0)
    parsed = parse_answer(it, "It happens from 4 to 8 seconds.")
    assert parsed == [4.0, 8.0]
    # IoU = 2 / 6 = 0.333: above 0.3 only
    assert score_item(it, parsed) == pytest.approx(
        {"iou": 1 / 3, "R1@0.3": 1.0, "R1@0.5": 0.0, "R1@0.7": 0.0})
    # (2.5, 6) in (2, 6): IoU 3.5 / 4 = 0.875
    assert score_item(it, [2.5, 6.0]) == pytest.approx(
        {"iou": 0.875, "R1@0.3": 1.0, "R1@0.5": 1.0, "R1@0.7": 1.0})
    # exactly at a threshold counts: (2, 4.8) vs (2, 6) = 2.8 / 4 = 0.7
    assert score_item(it, [2.0, 4.8])["R1@0.7"] == 1.0
    assert score_item(it, None) == {"iou": 0.0, "R1@0.3": 0.0, "R1@0.5": 0.0, "R1@0.7": 0.0}
    assert score_item(it, [6.0, 2.0])["iou"] == 1.0  # swapped ends put in order


def test_grounding_parse_clips_to_the_item_duration():
    it = item("grounding", spans_s=[(2.0, 6.0)], duration_s=10.0)
    assert parse_answer(it, "8 - 40 s") == [8.0, 10.0]
    assert parse_answer(it, "no idea") is None


def test_grounding_scores_survive_a_json_round_trip():
    it = item("grounding", spans_s=[(2.0, 6.0)])
    parsed = parse_answer(it, "[3.0, 5.0]")
    assert score_item(it, json.loads(json.dumps(parsed))) == score_item(it, parsed)


def test_unlabeled_grounding_scores_nothing():
    assert score_item(item("grounding"), [1.0, 2.0]) == {}


@pytest.mark.parametrize("parsed", ["3 to 4", [1.0], [1.0, "x"], [1.0, float("nan")]])
def test_grounding_rejects_malformed_parsed(parsed):
    with pytest.raises(InvalidArgumentError, match="q1"):
        score_item(item("grounding", spans_s=[(2.0, 6.0)]), parsed)


# --------------------------------------------------------------------------------- highlights

HL_GT = [(0.0, 10.0), (40.0, 50.0)]


def test_highlights_ap_worked_by_hand():
    """GT (0, 10), (40, 50); predictions ranked (0, 10), (20, 30), (40, 48).

    IoUs with their best GT: 1.0, 0.0, 8/10 = 0.8.
    At a threshold <= 0.8: hit, miss, hit -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1;
    the precision envelope is 1 up to recall 1/2 and 2/3 up to 1, so AP = 1/2 * 1 + 1/2 * 2/3
    = 5/6. Above 0.8 (0.85, 0.9, 0.95): only the first hits, AP = 1/2 * 1 = 1/2.
    Thresholds 0.5 ... 0.8 are 7 of the 10, so mAP = (7 * 5/6 + 3 * 1/2) / 10 = 11/15.
    """
    ap = moment_average_precision([(0, 10), (20, 30), (40, 48)], HL_GT)
    assert ap == pytest.approx([5 / 6] * 7 + [1 / 2] * 3)
    it = item("highlights", spans_s=HL_GT, duration_s=150.0)
    parsed = parse_answer(it, "The query holds in 0-10, 20-30 and 40 to 48 seconds.")
    assert parsed == [[0.0, 10.0], [20.0, 30.0], [40.0, 48.0]]
    assert score_item(it, parsed) == pytest.approx(
        {"R1@0.5": 1.0, "R1@0.7": 1.0, "mAP@0.5": 5 / 6, "mAP@0.75": 5 / 6, "mAP": 11 / 15})


def test_highlights_rank_order_matters():
    """Same windows ranked (20, 30), (40, 48), (0, 10): miss, hit, hit.

    At <= 0.8: precision 0, 1/2, 2/3 at recall 0, 1/2, 1; the envelope is 2/3 everywhere, so
    AP = 1/2 * 2/3 + 1/2 * 2/3 = 2/3. Above 0.8: miss, miss, hit -> precision 1/3 at recall
    1/2, AP = 1/6. mAP = (7 * 2/3 + 3 * 1/6) / 10 = 31/60. The top window misses: R1 = 0.
    """
    it = item("highlights", spans_s=HL_GT)
    assert score_item(it, [[20, 30], [40, 48], [0, 10]]) == pytest.approx(
        {"R1@0.5": 0.0, "R1@0.7": 0.0, "mAP@0.5": 2 / 3, "mAP@0.75": 2 / 3, "mAP": 31 / 60})


def test_highlights_top_window_r1_uses_its_best_gt():
    # top (41, 50) vs (40, 50): 9/10 = 0.9 -> both R1 hit; (5, 10) vs (0, 10): 0.5 -> R1@0.5
    it = item("highlights", spans_s=HL_GT)
    assert score_item(it, [[41, 50]])["R1@0.7"] == 1.0
    got = score_item(it, [[5, 10]])
    assert (got["R1@0.5"], got["R1@0.7"]) == (1.0, 0.0)


def test_highlights_a_repeated_window_cannot_match_twice():
    # (0, 10) twice vs one GT (0, 10): hit then a false positive; precision 1 reached at
    # recall 1 first, so AP = 1
    assert moment_average_precision([(0, 10), (0, 10)], [(0, 10)]) == pytest.approx([1.0] * 10)
    # a miss first: precision 1/2 at recall 1, AP = 1/2
    assert moment_average_precision([(20, 30), (0, 10)], [(0, 10)]) == pytest.approx([0.5] * 10)


def test_highlights_only_the_first_ten_windows_count():
    it = item("highlights", spans_s=[(100.0, 110.0)])
    misses = [[float(i), float(i) + 1] for i in range(10)]
    assert score_item(it, [*misses, [100.0, 110.0]])["mAP"] == 0.0
    assert score_item(it, [*misses[:9], [100.0, 110.0]])["mAP"] == pytest.approx(1 / 10)


def test_highlights_without_prediction_scores_zero():
    it = item("highlights", spans_s=HL_GT)
    zero = {"R1@0.5": 0.0, "R1@0.7": 0.0, "mAP@0.5": 0.0, "mAP@0.75": 0.0, "mAP": 0.0}
    assert score_item(it, []) == zero
    assert score_item(it, None) == zero
    assert parse_answer(it, "no idea") == []
    assert moment_average_precision([], HL_GT).shape == (10,)
    assert not np.any(moment_average_precision([(1, 2)], []))
    with pytest.raises(InvalidArgumentError, match="list of"):
        score_item(it, "0-10")


# --------------------------------------------------------------------------------- open

@pytest.mark.parametrize("said,ref,exact,contains", [
    ("The dog.", "dog", 1.0, 1.0),              # articles, case and punctuation ignored
    ("a brown dog runs", "dog", 0.0, 1.0),
    ("hotdog", "dog", 0.0, 0.0),                # whole words only
    ("not a dog", "a dog", 0.0, 1.0),           # the documented weakness
    ("", "dog", 0.0, 0.0),
])
def test_open_exact_and_contains(said, ref, exact, contains):
    it = item("open", answer=ref)
    assert score_item(it, parse_answer(it, f"  {said}  ")) == {"exact": exact,
                                                               "contains": contains}


def test_open_without_reference_and_bad_text():
    assert score_item(item("open"), "anything") == {}
    with pytest.raises(InvalidArgumentError, match="string"):
        parse_answer(item("open"), None)  # type: ignore[arg-type]
