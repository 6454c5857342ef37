"""Robust parsers for model answers: time spans for grounding, option letters for MCQ.

They live in :mod:`vidsel.eval` (one implementation for every model an evaluation asks);
this module re-exports them under their old home.
"""

from __future__ import annotations

from vidsel.eval import extract_choice, parse_spans, parse_time_span

__all__ = ["extract_choice", "parse_spans", "parse_time_span"]
