"""Measure what a selection does to a model's answers.

``vidsel eval`` (and :func:`run_eval` from Python) runs benchmark items x methods x budgets
through a model, at equal visual tokens for that model, into a resumable JSON-lines file;
:func:`load_report` turns results files into the table and the plot.

Public faces:

- :class:`EvalItem` and the benchmark loaders (:func:`load_dataset`, :data:`DATASETS`).
- :class:`Answerer`, :func:`load_answerer`, :data:`ANSWERERS`: ``ovis:``, ``hf:``, ``vllm:``,
  ``py:`` model specs and any Python callable.
- :class:`VisualInput`, :class:`Request`, :class:`Generation`: what a model gets and says.
- metrics and answer parsing (MCQ letters, time spans).
"""

from ._answerer import (
    ANSWERERS,
    Answerer,
    AnswererSpec,
    CallableAnswerer,
    FixedGeometry,
    GeometryFn,
    available_answerers,
    frame_geometry,
    frame_tokens,
    load_answerer,
    register_answerer,
    temporal_merge,
)
from ._backends import check_model
from ._cache import CachedSelection, SelectionCache, selection_key
from ._hf import HF_FAMILIES, HFAnswerer, HFGeometry
from ._loaders import (
    DATASETS,
    LoaderFn,
    available_datasets,
    dataset_name,
    load_dataset,
    register_dataset,
)
from ._merge import MergeSummary, merge_results, unique_records
from ._metrics import (
    METRICS,
    PRIMARY,
    moment_average_precision,
    parse_answer,
    score_item,
    temporal_iou,
)
from ._models import check_devices, parse_devices
from ._parsing import extract_choice, parse_spans, parse_time_span
from ._prompts import PROMPT_VERSION, build_prompt
from ._report import EvalReport, bootstrap_ci, load_report
from ._runner import (
    SCHEMA,
    EvalSummary,
    default_cache_dir,
    parse_shard,
    run_eval,
    shard_of,
    visual_input,
)
from ._subtitles import Subtitle, load_subtitles, parse_srt, subtitles_at
from ._types import TASKS, EvalItem, Generation, Request, TaskKind, VisualInput
from ._vllm import VLLMAnswerer
from ._work import SelectJob, options_for, route_options, select_job

__all__ = [
    "ANSWERERS",
    "DATASETS",
    "HF_FAMILIES",
    "METRICS",
    "PRIMARY",
    "PROMPT_VERSION",
    "SCHEMA",
    "TASKS",
    "Answerer",
    "AnswererSpec",
    "CachedSelection",
    "CallableAnswerer",
    "EvalItem",
    "EvalReport",
    "EvalSummary",
    "FixedGeometry",
    "Generation",
    "GeometryFn",
    "HFAnswerer",
    "HFGeometry",
    "LoaderFn",
    "MergeSummary",
    "Request",
    "SelectJob",
    "SelectionCache",
    "Subtitle",
    "TaskKind",
    "VLLMAnswerer",
    "VisualInput",
    "available_answerers",
    "available_datasets",
    "bootstrap_ci",
    "build_prompt",
    "check_devices",
    "check_model",
    "dataset_name",
    "default_cache_dir",
    "extract_choice",
    "frame_geometry",
    "frame_tokens",
    "load_answerer",
    "load_dataset",
    "load_report",
    "load_subtitles",
    "merge_results",
    "moment_average_precision",
    "options_for",
    "parse_answer",
    "parse_devices",
    "parse_shard",
    "parse_spans",
    "parse_srt",
    "parse_time_span",
    "register_answerer",
    "register_dataset",
    "route_options",
    "run_eval",
    "score_item",
    "select_job",
    "selection_key",
    "shard_of",
    "subtitles_at",
    "temporal_iou",
    "temporal_merge",
    "unique_records",
    "visual_input",
]
