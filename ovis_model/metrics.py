"""Metrics: temporal grounding (Charades-STA R@1 at IoU 0.3 / 0.5 / 0.7, mIoU) and MCQ accuracy.

All results are percentages (x100). An unparsable prediction (None) scores IoU 0.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import InvalidArgumentError

__all__ = ["grounding_metrics", "mcq_accuracy", "temporal_iou"]

Span = tuple[float, float]


def temporal_iou(pred: Span | None, gt: Span) -> float:
    """``max(min(e1, e2) - max(s1, s2), 0) / (max(e1, e2) - min(s1, s2))``; 0 for None."""
    if pred is None:
        return 0.0
    s1, e1 = pred
    s2, e2 = gt
    inter = max(min(e1, e2) - max(s1, s2), 0.0)
    union = max(e1, e2) - min(s1, s2)
    return inter / union if union > 0 else 0.0


def grounding_metrics(preds: Sequence[Span | None], gts: Sequence[Span],
                      thresholds: Sequence[float] = (0.3, 0.5, 0.7)) -> dict[str, float]:
    """``{"R1@0.3": ..., "R1@0.5": ..., "R1@0.7": ..., "mIoU": ...}`` in percent."""
    if len(preds) != len(gts):
        raise InvalidArgumentError(f"preds has {len(preds)} entries but gts has {len(gts)}")
    if not gts:
        raise InvalidArgumentError("grounding_metrics needs at least one sample")
    ious = [temporal_iou(p, g) for p, g in zip(preds, gts)]
    out = {f"R1@{t:g}": 100.0 * sum(i >= t for i in ious) / len(ious) for t in thresholds}
    out["mIoU"] = 100.0 * sum(ious) / len(ious)
    return out


def mcq_accuracy(preds: Sequence[str | None], answers: Sequence[str]) -> float:
    """Percentage of predictions equal to the answer letter (case-insensitive; None = wrong)."""
    if len(preds) != len(answers):
        raise InvalidArgumentError(f"preds has {len(preds)} entries but answers has "
                                   f"{len(answers)}")
    if not answers:
        raise InvalidArgumentError("mcq_accuracy needs at least one sample")
    hits = sum(p is not None and p.strip().upper() == a.strip().upper()
               for p, a in zip(preds, answers))
    return 100.0 * hits / len(answers)
