"""Item-level scores: what one answer is worth, by task.

:func:`parse_answer` reads the model's text in the task's terms and :func:`score_item` scores
that against the item's ground truth. Every score is in ``[0, 1]``; a benchmark's reported
metric is the mean over its items times 100 (:func:`vidsel.eval.load_report` does that, with a
bootstrap confidence interval).

=============  ================================================  ===========================
task           item scores                                       reported as
=============  ================================================  ===========================
``mcq``        ``accuracy`` (0/1)                                accuracy
``grounding``  ``iou``, ``R1@0.3``, ``R1@0.5``, ``R1@0.7``        mIoU, R1@0.3/0.5/0.7
               (R1@t = 1 when the IoU is at least t)              (Charades-STA)
``highlights`` ``R1@0.5``, ``R1@0.7`` (top window), ``mAP@0.5``,  the QVHighlights moment
               ``mAP@0.75``, ``mAP`` (AP over IoU 0.5:0.05:0.95)  retrieval metrics
``open``       ``exact``, ``contains`` (0/1)                      exact, contains
=============  ================================================  ===========================

The open-ended scores are weak proxies: ``exact`` compares normalised strings (lower case,
punctuation and the articles a / an / the removed, as SQuAD does) and ``contains`` asks
whether the normalised reference occurs in the normalised answer as whole words; neither
knows synonyms, paraphrase or negation ("not a dog" contains "a dog"). Use them to compare
methods on the same model, not as a measure of correctness.

An item without ground truth (an unlabeled grounding item, an mcq item with no answer) scores
``{}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError
from ._parsing import extract_choice, parse_spans, parse_time_span
from ._types import EvalItem

__all__ = [
    "HIGHLIGHT_IOU_THRESHOLDS",
    "MAX_PRED_WINDOWS",
    "METRICS",
    "PRIMARY",
    "moment_average_precision",
    "parse_answer",
    "score_item",
    "score_key",
    "temporal_iou",
]

Span = tuple[float, float]

#: The metric each task is judged by (report names): the comparison against uniform uses it.
PRIMARY: Mapping[str, str] = MappingProxyType(
    {"mcq": "accuracy", "grounding": "R1@0.5", "highlights": "R1@0.5", "open": "contains"})
#: Every metric a task reports, in the report's names and order.
METRICS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "mcq": ("accuracy",),
    "grounding": ("mIoU", "R1@0.3", "R1@0.5", "R1@0.7"),
    "highlights": ("R1@0.5", "R1@0.7", "mAP@0.5", "mAP@0.75", "mAP"),
    "open": ("contains", "exact"),
})
#: Report names that differ from the item score's key (the mean IoU is "mIoU").
_SCORE_KEYS: Mapping[str, str] = MappingProxyType({"mIoU": "iou"})
#: Grounding R@1 thresholds (Charades-STA).
GROUNDING_THRESHOLDS = (0.3, 0.5, 0.7)
#: QVHighlights' IoU thresholds 0.5:0.05:0.95 (rounded to 2 decimals, as its evaluation does).
HIGHLIGHT_IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
#: QVHighlights scores at most the first 10 predicted windows.
MAX_PRED_WINDOWS = 10

_PUNCT_RE = re.compile(r"[^\w\s]")
_ARTICLES_RE = re.compile(r"\b(?:a|an|the)\b")


def score_key(metric: str) -> str:
    """The item score key behind a report metric name (``"mIoU"`` -> ``"iou"``)."""
    return _SCORE_KEYS.get(metric, metric)


def temporal_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two time spans ``(start_s, end_s)``; 0 when they do not
    overlap or both are empty.

    Example:
        >>> temporal_iou((2.0, 6.0), (4.0, 8.0))  # 2 s shared of 6 s covered
        0.3333333333333333
    """
    s1, e1 = float(a[0]), float(a[1])
    s2, e2 = float(b[0]), float(b[1])
    inter = max(min(e1, e2) - max(s1, s2), 0.0)
    union = (e1 - s1) + (e2 - s2) - inter
    return inter / union if union > 0 else 0.0


def _interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the precision envelope (ActivityNet / QVHighlights): precision made
    non-increasing from the right, summed over the steps where recall grows."""
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mprec[steps]))


def moment_average_precision(pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]],
                             thresholds: Sequence[float] = HIGHLIGHT_IOU_THRESHOLDS
                             ) -> np.ndarray:
    """Average precision of ranked predicted windows against ground-truth windows, at each IoU
    threshold: QVHighlights' moment-retrieval AP of one query.

    Each prediction, best ranked first, is matched to the unmatched ground-truth window it
    overlaps most; it is a true positive at threshold ``t`` when that IoU is at least ``t``,
    else a false positive. AP is the area under the interpolated precision-recall curve, with
    recall counted over all ground-truth windows.

    Args:
        pred: (P, 2) predicted windows in rank order (only the order matters).
        gt: (G, 2) ground-truth windows.
        thresholds: IoU thresholds.

    Returns:
        (len(thresholds),) float64 AP in ``[0, 1]`` (zeros when there is no prediction or no
        ground truth).

    Example:
        One GT window (0, 10); predictions (20, 30) then (0, 10): a miss, then a hit, so
        precision 1/2 at recall 1 and AP = 0.5 at every threshold.
    """
    ap = np.zeros(len(thresholds))
    if len(pred) == 0 or len(gt) == 0:
        return ap
    # (P, G) IoU of every prediction with every GT window
    ious = np.array([[temporal_iou(p, g) for g in gt] for p in pred], dtype=np.float64)
    for t_idx, thr in enumerate(thresholds):
        taken = np.zeros(len(gt), dtype=bool)
        tp = np.zeros(len(pred))
        for p_idx in range(len(pred)):
            for g_idx in ious[p_idx].argsort()[::-1]:  # best overlap first, as QVHL
                if ious[p_idx, g_idx] < thr:
                    break  # every further GT window overlaps less: a false positive
                if not taken[g_idx]:
                    taken[g_idx] = True
                    tp[p_idx] = 1.0
                    break
        tp_cum = np.cumsum(tp)
        precision = tp_cum / np.arange(1, len(pred) + 1)
        recall = tp_cum / len(gt)
        ap[t_idx] = _interpolated_ap(precision, recall)
    return ap


def parse_answer(item: EvalItem, text: str) -> Any:
    """The model's answer ``text`` read in the terms of ``item.task`` (JSON-safe).

    Returns:
        mcq: the option letter (``"B"``) or None; grounding: ``[start_s, end_s]`` or None
        (clipped to the item's duration when known); highlights: ``[[start_s, end_s], ...]``
        in the order given (possibly empty); open: the stripped text.
    """
    if not isinstance(text, str):
        raise InvalidArgumentError(f"parse_answer: text must be a string, got "
                                   f"{type(text).__name__}")
    if item.task == "mcq":
        return extract_choice(text, len(item.options), item.options)
    if item.task == "grounding":
        span = parse_time_span(text, duration=item.duration_s)
        return None if span is None else [span[0], span[1]]
    if item.task == "highlights":
        return [[s, e] for s, e in parse_spans(text, duration=item.duration_s)]
    return text.strip()


def _span(value: Any, item: EvalItem) -> Span:
    try:
        s, e = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"item {item.item_id!r}: parsed span {value!r} is not "
                                   f"[start_s, end_s]") from None
    if not (math.isfinite(s) and math.isfinite(e)):
        raise InvalidArgumentError(f"item {item.item_id!r}: parsed span {value!r} is not finite")
    return (s, e) if s <= e else (e, s)


def _normalise(text: str) -> str:
    text = _PUNCT_RE.sub(" ", text.lower())
    return " ".join(_ARTICLES_RE.sub(" ", text).split())


def score_item(item: EvalItem, parsed: Any) -> dict[str, float]:
    """Score one parsed answer (what :func:`parse_answer` returned, or its JSON round trip).

    Returns:
        ``{metric: value in [0, 1]}`` by task (see the module's table); ``{}`` when the item
        has no ground truth. An unparsed answer (None, an empty list) scores 0.

    Raises:
        InvalidArgumentError: ``parsed`` has the wrong shape for the task.
    """
    if item.task == "mcq":
        if item.answer is None:
            return {}
        if parsed is not None and not isinstance(parsed, str):
            raise InvalidArgumentError(f"item {item.item_id!r}: an mcq answer must be a "
                                       f"letter or None, got {parsed!r}")
        hit = parsed is not None and parsed.strip().upper() == item.answer.upper()
        return {"accuracy": float(hit)}
    if item.task == "grounding":
        if not item.spans_s:
            return {}
        iou = 0.0 if parsed is None else max(
            temporal_iou(_span(parsed, item), g) for g in item.spans_s)
        return {"iou": iou, **{f"R1@{t:g}": float(iou >= t) for t in GROUNDING_THRESHOLDS}}
    if item.task == "highlights":
        if not item.spans_s:
            return {}
        if parsed is not None and (isinstance(parsed, (str, bytes))
                                   or not isinstance(parsed, Sequence)):
            raise InvalidArgumentError(f"item {item.item_id!r}: highlights answers must be a "
                                       f"list of [start_s, end_s], got {parsed!r}")
        windows = [_span(w, item) for w in (parsed or [])][:MAX_PRED_WINDOWS]
        top = max((temporal_iou(windows[0], g) for g in item.spans_s), default=0.0) \
            if windows else 0.0
        ap = moment_average_precision(windows, item.spans_s)
        at = dict(zip(HIGHLIGHT_IOU_THRESHOLDS, ap.tolist()))
        return {"R1@0.5": float(top >= 0.5), "R1@0.7": float(top >= 0.7),
                "mAP@0.5": at[0.5], "mAP@0.75": at[0.75], "mAP": float(ap.mean())}
    # open
    if item.answer is None:
        return {}
    if parsed is not None and not isinstance(parsed, str):
        raise InvalidArgumentError(f"item {item.item_id!r}: an open answer must be text, got "
                                   f"{parsed!r}")
    said, ref = _normalise(parsed or ""), _normalise(item.answer)
    exact = said == ref
    contains = exact if not ref else f" {ref} " in f" {said} "
    return {"exact": float(exact), "contains": float(contains)}
