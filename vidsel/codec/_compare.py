"""Uniform vs codec sampling at equal token budgets, with a model-free fidelity proxy.

The proxy re-renders evaluation frames from the selected pixels the way a codec would without
residuals: every patch position shows the most recent selected pixels at that position
("hold last"; positions never selected before the first sample show the first selected pixels).
PSNR of that re-rendering against the true frames says how much of the video's *appearance over
time* the tokens carry. It does not say which tokens a model needs: semantics, small but
important objects and text are not weighted (see docs/codec.md).

The ``uniform`` rows are :func:`uniform_patches`: the frames the ``uniform`` method picks
(``vidsel.run_method("uniform", path, budget=b)``), kept whole. With a question, a third row
per budget is the query-aware codec selection (``codec+<anchor selector>``, e.g.
``codec+mdp3``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .._progress import progress_bar
from .._validate import check_positive_int
from ..errors import InvalidArgumentError
from ..io import VideoReader, packet_index
from ..results import Comparison, ComparisonRow, PatchConfig, PatchSelection
from ._plan import ANCHOR_POLICIES
from ._relevance import QUERY_ANCHORS
from ._select import select_patches, uniform_patches

__all__ = ["compare", "hold_last_psnr"]

logger = logging.getLogger(__name__)

#: A token counts as "on moving content" when its mean absolute change (0-255) between the
#: evaluation frames around it exceeds this.
MOVING_DIFF = 6.0
PSNR_CAP_DB = 100.0
#: select_patches options only the question row takes.
QUERY_OPTIONS = frozenset({"relevance_share", "relevance_candidates", "anchor_params",
                           "cache_dir", "embed_size", "embedder_options", "patch_relevance"})
#: Evaluation frames decoded per request.
_EVAL_CHUNK = 32


def _downscale(img: np.ndarray, s: int) -> np.ndarray:
    """Block-average the two axes before the channel axis by ``s`` (float32)."""
    if s == 1:
        return img.astype(np.float32)
    *lead, h, w, c = img.shape
    x = img.reshape(*lead, h // s, s, w // s, s, c).astype(np.float32)
    return x.mean(axis=(-4, -2))  # type: ignore[no-any-return]


def hold_last_psnr(sel: PatchSelection, eval_idx: np.ndarray, refs: np.ndarray,
                   scale: int = 2) -> float:
    """Mean PSNR of hold-last re-renderings of ``eval_idx`` frames against ``refs``.

    Args:
        sel: a selection with pixels.
        eval_idx: (E,) sorted frame indices.
        refs: (E, H/scale, W/scale, 3) float32 true frames at the selection's frame size,
            downscaled by ``scale``.
    """
    if sel.pixels is None:
        raise InvalidArgumentError("hold_last_psnr needs a selection with pixels")
    cfg = sel.config
    p = cfg.patch_size // scale
    gh, gw = cfg.grid
    pix = _downscale(sel.pixels, scale)  # (N, p, p, 3)
    order = np.argsort(sel.positions[:, 0], kind="stable")
    pos = sel.positions[order]
    pix = pix[order]
    state = np.zeros((gh, gw, p, p, 3), np.float32)
    seen = np.zeros((gh, gw), bool)
    # initial state: the first selected pixels at each position (nothing earlier exists)
    for i in range(len(pos)):
        r, c = pos[i, 1], pos[i, 2]
        if not seen[r, c]:
            state[r, c] = pix[i]
            seen[r, c] = True
    ptr = 0
    psnrs = []
    for e, ref in zip(eval_idx.tolist(), refs):
        while ptr < len(pos) and pos[ptr, 0] <= e:
            j = ptr
            f = pos[ptr, 0]
            while j < len(pos) and pos[j, 0] == f:
                j += 1
            state[pos[ptr:j, 1], pos[ptr:j, 2]] = pix[ptr:j]
            ptr = j
        img = state.transpose(0, 2, 1, 3, 4).reshape(gh * p, gw * p, 3)
        mse = float(np.mean((img - ref) ** 2))
        psnrs.append(PSNR_CAP_DB if mse <= 0 else min(PSNR_CAP_DB, 10 * np.log10(255.0**2 / mse)))
    return float(np.mean(psnrs)) if psnrs else float("nan")


def _moving_share(sel: PatchSelection, eval_idx: np.ndarray, moving: np.ndarray) -> float:
    """Share of tokens whose nearest evaluation frame marks their token as changing."""
    m2 = sel.config.merge ** 2
    tok = sel.positions[::m2]
    j = np.clip(np.searchsorted(eval_idx, tok[:, 0]), 0, len(eval_idx) - 1)
    m = sel.config.merge
    return float(moving[j, tok[:, 1] // m, tok[:, 2] // m].mean()) if len(tok) else 0.0


def compare(
    path: str | os.PathLike[str],
    *,
    budgets: Sequence[int] | int = (4, 8, 16, 32),
    patch_size: int = 14,
    merge: int = 2,
    frame_size: int | Sequence[int] = 392,
    eval_frames: int | None = 240,
    stream: int | None = None,
    progress: bool | None = None,
    question: str | None = None,
    embedder: Any = None,
    **codec_options: Any,
) -> Comparison:
    """Run uniform and codec sampling at each budget and measure what the tokens buy.

    Args:
        path: the video file.
        budgets: budgets in frame-equivalents (ints >= 1; a single int is one budget).
        patch_size, merge, frame_size: patch geometry (see :func:`select_patches`).
        eval_frames: frames the fidelity proxy re-renders, spread uniformly (None: every frame;
            slow on long videos).
        stream: video stream.
        progress: a progress bar on stderr (decoding the evaluation frames, then one step
            per selection); None follows the process default (``enable_progress()`` in
            ``vidsel._progress``; off unless switched on, as the CLI does).
        question: with ``embedder``, adds the query-aware codec row at each budget
            (:func:`select_patches` with ``question=``; named ``codec+<anchors>``, e.g.
            ``codec+mdp3``). The question options in ``codec_options``
            (``relevance_share``, ``anchors`` naming a selector, ``anchor_params``,
            ``relevance_candidates``, ``cache_dir``, ``embed_size``, ``embedder_options``)
            apply to that row only.
        embedder: the embedder scoring the question (see :func:`select_patches`).
        **codec_options: passed to :func:`select_patches` (anchors, camera, signal, ...).

    Returns:
        :class:`~vidsel.results.Comparison` with one row per (budget, method). The
        ``"uniform"`` row at budget ``b`` holds the frames ``run_method("uniform", path,
        budget=b)`` returns (evenly spaced, first and last frame included), kept whole; the
        ``"codec"`` row is :func:`select_patches` (motion only); with a question, the
        ``"codec+<anchors>"`` row is :func:`select_patches` with the question.

    Raises:
        InvalidArgumentError: ``budgets`` is not a non-empty sequence of ints >= 1, or another
            option is out of range.
    """
    if isinstance(budgets, (int, np.integer)) and not isinstance(budgets, bool):
        budgets = (int(budgets),)  # one budget
    if isinstance(budgets, (str, bytes)) or not isinstance(budgets, Iterable):
        raise InvalidArgumentError(
            f"budgets={budgets!r} must be a sequence of budgets in frame-equivalents (ints "
            f">= 1), e.g. (4, 8, 16)")
    budgets = [check_positive_int("budgets", b) for b in budgets]
    if not budgets:
        raise InvalidArgumentError("budgets=() must name at least one budget")
    if (question is None) != (embedder is None):
        raise InvalidArgumentError(
            "the query-aware row needs both question= and embedder= (neither: uniform and "
            "codec rows only)")
    motion_options = {k: v for k, v in codec_options.items() if k not in QUERY_OPTIONS}
    query_options = dict(codec_options)
    anchors = codec_options.get("anchors")
    if anchors is not None and anchors not in ANCHOR_POLICIES:
        motion_options.pop("anchors")  # a selector name: the question row's anchors
    methods = ["uniform", "codec"]
    if question is not None:
        query_options.update(question=question, embedder=embedder)
        methods.append(f"codec+{anchors or QUERY_ANCHORS}")
    cfg = PatchConfig.make(patch_size=patch_size, merge=merge, frame_size=frame_size)
    index = packet_index(path, stream=stream)
    F = index.num_frames
    n_eval = F if eval_frames is None else min(check_positive_int("eval_frames", eval_frames), F)
    eval_idx = np.unique(np.linspace(0, F - 1, n_eval).round().astype(np.int64))
    scale = 2 if cfg.patch_size % 2 == 0 else 1
    # one bar for the whole call: a step per chunk of evaluation frames, then per selection
    chunks = range(0, len(eval_idx), _EVAL_CHUNK)
    with progress_bar(total=len(chunks) + 2 * len(budgets), desc="compare", unit="step",
                      progress=progress) as bar:
        refs_l = []
        bar.set_postfix_str("decoding evaluation frames")
        with VideoReader(index.path, stream=stream) as reader:
            for s in chunks:
                chunk = reader.get_frames(eval_idx[s:s + _EVAL_CHUNK], size=cfg.frame_size)
                refs_l.append(_downscale(chunk, scale))
                bar.update(1)
        refs = np.concatenate(refs_l)  # (E, H/s, W/s, 3) float32
        # changing content between consecutive evaluation frames, per token
        th, tw = cfg.token_grid
        u = cfg.patch_size * cfg.merge // scale
        diff = np.abs(np.diff(refs, axis=0, prepend=refs[:1])).mean(axis=-1)  # (E, H/s, W/s)
        moving = diff.reshape(len(refs), th, u, tw, u).mean(axis=(2, 4)) > MOVING_DIFF
        if len(refs) > 1:
            moving[0] = moving[1]
        rows: list[ComparisonRow] = []
        signal = "none"
        dur = max(index.duration_s, 1e-9)
        m2 = cfg.merge ** 2
        for b in budgets:
            for method in methods:
                bar.set_postfix_str(f"{method} @ {b} frames")
                t0 = time.perf_counter()
                if method == "uniform":  # the frames run_method("uniform", budget=b) picks
                    sel = uniform_patches(index.path, budget_frames=b,
                                          patch_size=cfg.patch_size, merge=cfg.merge,
                                          frame_size=cfg.frame_size, stream=stream, index=index)
                else:
                    sel = select_patches(index.path, budget_frames=b, patch_size=cfg.patch_size,
                                         merge=cfg.merge, frame_size=cfg.frame_size,
                                         stream=stream, index=index,
                                         **(motion_options if method == "codec"
                                            else query_options))
                    signal = sel.signal
                secs = time.perf_counter() - t0
                rows.append(ComparisonRow(
                    method=method, budget_frames=b, num_tokens=sel.num_tokens,
                    span_s=sel.span_s, span_fraction=min(1.0, sel.span_s / dur),
                    frames_touched=len(sel.source_frames),
                    moving_share=_moving_share(sel, eval_idx, moving),
                    psnr_db=hold_last_psnr(sel, eval_idx, refs, scale), elapsed_s=secs,
                    anchor_tokens=sel.num_anchor_patches // m2,
                    motion_tokens=sel.num_motion_patches // m2))
                logger.info("%s: %s @%d: %s", index.path, method, b, rows[-1])
                bar.update(1)
    return Comparison(path=index.path, num_frames=F, duration_s=index.duration_s, signal=signal,
                      eval_frames=len(eval_idx), config=cfg, rows=tuple(rows))
