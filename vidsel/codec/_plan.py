"""Stage 1 of :func:`~vidsel.codec.select_patches`: the plan (budget, anchor counts, which
frames to decode, candidate frames), from the packet index alone.

Data between the stages (see :mod:`vidsel.codec._select`)::

    Plan  --decode pass-->  Scan  --anchors-->  (anchor frames, cuts)  --token pool-->  Tokens
          --pixels-->  PatchSelection
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .._validate import check_positive_int
from ..errors import InvalidArgumentError
from ..io import PacketIndex
from ..results import PatchConfig
from ._motion import MV_CODECS
from ._score import Camera

__all__ = ["ANCHOR_POLICIES", "CANDIDATES_PER_FRAME", "AnchorPolicy", "Plan", "anchor_counts",
           "grid_targets", "make_plan", "resolve_budget"]

AnchorPolicy = Literal["adaptive", "uniform", "query"]
#: Anchor policies of the motion-only selection; with a question, a frame selector's name
#: (``"mdp3"``, ``"dpp"``, ...) chooses the anchors (the plan's policy is then ``"query"``).
ANCHOR_POLICIES: tuple[str, ...] = ("adaptive", "uniform")

#: Candidate frames per frame-equivalent of budget (64 sampled for 8 frames' worth, as the
#: official pipelines do).
CANDIDATES_PER_FRAME = 8
#: Share of the budget anchors get by default, and at most (adaptive, many cuts).
ANCHOR_SHARE = 0.25
MAX_ANCHOR_SHARE = 0.5


@dataclass(frozen=True, repr=False)
class Plan:
    """What one codec selection will do, decided before decoding.

    Attributes:
        index: the packet index the pass is planned on (``pts_reliable`` False after the
            decode pass fell back to counting frames).
        config: patch geometry.
        budget: tokens to spend, exactly.
        use_mv: the change signal is motion vectors (else pixel differences on the Y plane).
        fallback: pixel differences replace motion vectors the codec does not export.
        anchors: anchor policy (``"query"``: fixed frames a frame selector chose for the
            question, snapped like the uniform grid); camera: camera-motion compensation.
        n_def, n_max: default and most anchor frames (equal for uniform anchors).
        skip: FFmpeg ``skip_frame`` of the pass.
        decodable: frames the pass will analyse.
        keep: (F,) bool, the frames analysed when only I- and P-frames are (reference
            B-frames are then decoded for exact pictures and add their vectors to the energy,
            but are no candidates); None: every decoded frame is analysed.
        candidate_targets: (T,) int64 grid targets; each snaps to the next analysed frame.
        anchor_targets: {n: (n,) int64 grid targets} for the uniform anchor grids of n_def and
            n_max frames (n > 0 only).
        spikes: (F,) float32 bit-cost spike per frame (a cut hint).
        keep_pixels: pixels come from the pass (``pixels="decode"``).
        relevance: (F,) float32 question relevance of every frame in [0, 1], or None.
        relevance_share: share of the motion budget spent by relevance (0: motion only).
        patch_maps: (n, Th * Tw) float32 region relevance in [0, 1] of the scored frames'
            tokens (see :mod:`vidsel.codec._relevance`), or None.
        patch_rows: (F,) int64 row of ``patch_maps`` for every frame (the nearest scored
            frame in time), or None.
    """

    index: PacketIndex
    config: PatchConfig
    budget: int
    use_mv: bool
    fallback: bool
    anchors: AnchorPolicy
    camera: Camera
    n_def: int
    n_max: int
    skip: str
    decodable: int
    keep: np.ndarray | None
    candidate_targets: np.ndarray
    anchor_targets: dict[int, np.ndarray]
    spikes: np.ndarray
    keep_pixels: bool
    relevance: np.ndarray | None = None
    relevance_share: float = 0.0
    patch_maps: np.ndarray | None = None
    patch_rows: np.ndarray | None = None

    @property
    def signal(self) -> str:
        return "motion_vectors" if self.use_mv else "pixel_diff"

    @property
    def stream_keep(self) -> np.ndarray | None:
        """The ``keep`` mask handed to the decoder: with motion vectors every decoded frame is
        yielded (reference B-frames add their vectors), else only the analysed ones."""
        return None if self.use_mv else self.keep

    def relevance_tokens(self, frame: int, tok: np.ndarray) -> np.ndarray | None:
        """A candidate frame's token scores by relevance: ``r * (1 + m) / 2`` for the frame's
        question relevance ``r`` and each token's change score ``m`` (both in [0, 1]): the
        most relevant frames first, their changing tokens before their static ones. With
        patch maps ``r`` is per token: the frame's relevance times the token's region
        relevance in the nearest scored frame. None without a question (or with
        ``relevance_share = 0``)."""
        if self.relevance is None or self.relevance_share == 0.0:
            return None
        r: float | np.ndarray = float(self.relevance[frame])
        if self.patch_maps is not None and self.patch_rows is not None:
            r = r * self.patch_maps[self.patch_rows[frame]]
        return r * (1.0 + tok) / 2.0  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return (f"Plan(budget={self.budget}, signal={self.signal!r}, anchors={self.n_def}.."
                f"{self.n_max}, skip={self.skip!r}, decodable={self.decodable}, "
                f"candidates={len(self.candidate_targets)})")


def resolve_budget(budget_frames: int | None, budget_tokens: int | None,
                   cfg: PatchConfig) -> int:
    """Tokens to spend: ``budget_tokens``, else ``budget_frames * tokens_per_frame``."""
    if budget_tokens is not None:
        return check_positive_int("budget_tokens", budget_tokens)
    if budget_frames is None:
        raise InvalidArgumentError("budget_frames=None needs budget_tokens")
    return check_positive_int("budget_frames", budget_frames) * cfg.tokens_per_frame


def grid_targets(num_frames: int, n: int) -> np.ndarray:
    """(n,) int64 centres of n equal segments of [0, num_frames)."""
    if n <= 0:
        return np.zeros(0, np.int64)
    return np.unique(np.floor((np.arange(n) + 0.5) * num_frames / n).astype(np.int64))


def bit_spikes(index: PacketIndex, window: int = 31) -> np.ndarray:
    """(F,) float32 in [0, 1]: how much a non-key frame's packet exceeds its neighbours'."""
    size = index.size.astype(np.float64)
    out = np.zeros(len(size), np.float32)
    for kind in ("P", "B"):
        sel = np.flatnonzero((index.pict_type == kind) & ~index.is_keyframe)
        if len(sel) < 3:
            continue
        s = size[sel]
        w = min(window, len(s)) | 1
        padded = np.pad(s, w // 2, mode="edge")
        med = np.median(np.lib.stride_tricks.sliding_window_view(padded, w), axis=1)  # (len(s),)
        out[sel] = np.clip(np.log2(np.maximum(s, 1.0) / np.maximum(med, 1.0)) / 3.0, 0.0, 1.0)
    return out


def anchor_counts(budget: int, tokens_per_frame: int, num_anchors: int | None
                  ) -> tuple[int, int]:
    """(default, most) anchor frames of a ``budget``-token selection: ``num_anchors`` when
    given, else a quarter of the budget (at least one once it holds two frames; a single
    frame's worth goes entirely to motion tokens spread over the video), up to half of it."""
    tpf = tokens_per_frame
    if num_anchors is not None:
        return num_anchors, num_anchors
    bf = budget / tpf  # frame-equivalents (may be fractional with budget_tokens)
    n_def = min(max(1 if bf >= 2 else 0, round(bf * ANCHOR_SHARE)), budget // tpf)
    n_max = min(max(n_def, int(bf * MAX_ANCHOR_SHARE)), budget // tpf)
    return n_def, n_max


def make_plan(index: PacketIndex, cfg: PatchConfig, budget: int, *, anchors: AnchorPolicy,
              num_anchors: int | None, camera: Camera, signal: str, candidates_per_frame: int,
              keep_pixels: bool, relevance: np.ndarray | None = None,
              relevance_share: float = 0.0, query_anchors: np.ndarray | None = None,
              patch_maps: np.ndarray | None = None,
              patch_rows: np.ndarray | None = None) -> Plan:
    """Plan a codec selection of ``budget`` tokens (the video holds more than the budget).

    ``query_anchors`` (anchors ``"query"``): the (A,) frames a frame selector chose; they
    replace the uniform grid as anchor targets.
    """
    F = index.num_frames
    tpf = cfg.tokens_per_frame
    use_mv = index.codec in MV_CODECS and signal in ("auto", "motion_vectors")

    bf = budget / tpf  # frame-equivalents (may be fractional with budget_tokens)
    n_def, n_max = anchor_counts(budget, tpf, num_anchors)
    targets = np.zeros(0, np.int64)  # the selector's anchor frames (anchors "query")
    if anchors == "query":
        if query_anchors is None:
            raise InvalidArgumentError("anchors='query' needs the selector's anchor frames")
        n_def = n_max = len(query_anchors)
        targets = np.asarray(query_anchors, np.int64)
    if anchors == "uniform":
        n_max = n_def

    # -- which frames to decode / candidates ---------------------------------------------------
    skip = index.skip_mode("reference")
    decodable = {"DEFAULT": F, "BIDIR": int((index.pict_type != "B").sum()),
                 "NONREF": int(index.is_reference.sum())}[skip]
    if decodable * tpf < budget + n_max * tpf or not index.pts_reliable:
        skip, decodable = "DEFAULT", F
    n_want = int(np.ceil(candidates_per_frame * bf))
    # Candidates, cut tests and anchors come from I- and P-frames only when there are enough of
    # them: reference B-frames are then decoded so that the pictures after them stay exact and
    # add their motion vectors to the energy, but they are never converted to RGB.
    keep: np.ndarray | None = None
    non_b = index.pict_type != "B"
    n_ip = int(non_b.sum())
    if index.pts_reliable and n_ip < decodable and n_ip * tpf >= budget + n_max * tpf:
        # candidates snap to the next analysed frame: restrict to I+P only if that loses (almost)
        # none of them (fewer candidates would crowd more motion tokens into each)
        ip = np.flatnonzero(non_b)
        snapped = ip[np.minimum(np.searchsorted(ip, grid_targets(F, min(n_want, n_ip))),
                                len(ip) - 1)]
        if len(np.unique(snapped)) >= 0.98 * min(n_want, decodable):
            keep, decodable = non_b, n_ip
    n_cand = min(n_want, decodable)
    return Plan(
        index=index, config=cfg, budget=budget, use_mv=use_mv,
        fallback=not use_mv and signal == "auto", anchors=anchors, camera=camera, n_def=n_def,
        n_max=n_max, skip=skip, decodable=decodable, keep=keep,
        candidate_targets=grid_targets(F, n_cand),
        anchor_targets=({n_def: targets} if anchors == "query" and n_def > 0 else
                        {n: grid_targets(F, n) for n in {n_def, n_max} if n > 0}),
        spikes=bit_spikes(index), keep_pixels=keep_pixels, relevance=relevance,
        relevance_share=relevance_share, patch_maps=patch_maps, patch_rows=patch_rows)
