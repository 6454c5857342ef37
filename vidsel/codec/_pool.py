"""Stage 4 of :func:`~vidsel.codec.select_patches`: the token pool.

During the decode pass a bounded :class:`TokenPool` keeps the best motion tokens seen so far
(with their pixels); after the anchors are known, :func:`choose_tokens` spends the rest of the
budget on the best tokens of non-anchor frames and lays out the final token list
(:class:`Tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CorruptVideoError, DecodeError

__all__ = ["PoolResult", "TokenPool", "Tokens", "choose_tokens", "merge_pools", "rank_tokens",
           "tie_keys"]

#: (scores, tie keys, frames, tokens, pixels or None) of the pool's rows.
PoolResult = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


def tie_keys(frame: int, tokens: np.ndarray) -> np.ndarray:
    """(k,) int64 fixed pseudo-random keys of (frame, token): the deterministic tie-break
    between equal token scores (energies are clipped to [0, 1], so ties are common).

    A hash rather than "later frame / higher token wins" so that tied tokens spread over the
    video and the frame instead of piling into its end and its bottom-right corner; the
    scores themselves are never perturbed.
    """
    x = (np.asarray(tokens, np.uint64) * np.uint64(0x9E3779B97F4A7C15)
         + np.full(len(tokens), frame, np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F))
    x ^= x >> np.uint64(31)  # splitmix64 finaliser
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(29)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(32)
    return (x >> np.uint64(1)).astype(np.int64)  # type: ignore[no-any-return]


def rank_tokens(scores: np.ndarray, keys: np.ndarray, frames: np.ndarray,
                tokens: np.ndarray) -> np.ndarray:
    """Order of tokens best first: higher score, then higher tie key (then later frame, higher
    token index, which only matter on a hash collision)."""
    return np.lexsort((-tokens, -frames, -keys, -scores))


class TokenPool:
    """The best ``budget`` tokens seen so far (score, tie key, frame, token, pixels), in arrays.

    New tokens are appended in chunks; once twice the budget is pending the pool is cut back
    to the best ``budget`` by :func:`rank_tokens`. ``floor`` (score, tie key) is the worst kept
    token: one must rank above it to enter, so only frames with at least one such token are
    ever converted to RGB. Pixels live in one buffer of about ``2 x budget`` token crops: a
    crop is copied in once, when its token enters, and its slot is reused once the token is
    cut (nothing is copied when the pool is cut back).
    """

    def __init__(self, budget: int, keep_pixels: bool) -> None:
        self.budget = budget
        self.keep_pixels = keep_pixels
        self.floor = -np.inf
        self.floor_key = -1
        self.size = 0
        # (scores, tie keys, frames, tokens, pixel slots) of the rows, in chunks
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._pix: np.ndarray | None = None  # (slots, ...) token crops
        self._free = np.zeros(0, np.int64)  # slots not in use

    def better(self, frame: int, tok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(token indices, their tie keys) of one frame's tokens that would enter the pool."""
        good = np.flatnonzero(tok >= self.floor)
        keys = tie_keys(frame, good)
        if self.floor > -np.inf:
            above = (tok[good] > self.floor) | (keys > self.floor_key)
            good, keys = good[above], keys[above]
        return good, keys

    def add(self, frame: int, blocks: np.ndarray, scores: np.ndarray, keys: np.ndarray,
            crops: np.ndarray | None) -> None:
        slots = np.full(len(blocks), -1, np.int64)  # no pixels kept
        if self.keep_pixels and crops is not None:
            slots = self._slots(len(blocks), crops)
            self._pix[slots] = crops  # type: ignore[index]
        self._parts.append((scores.astype(np.float64), keys.astype(np.int64),
                            np.full(len(blocks), frame, np.int64), blocks.astype(np.int64),
                            slots))
        self.size += len(blocks)
        if self.size >= 2 * self.budget:
            self._prune()

    def _slots(self, n: int, crops: np.ndarray) -> np.ndarray:
        """``n`` free pixel slots (the buffer grows when too few are free)."""
        if len(self._free) < n:
            have = 0 if self._pix is None else len(self._pix)
            grow = max(n - len(self._free), 2 * self.budget + n - have, 0)
            more = np.empty((grow, *crops.shape[1:]), crops.dtype)
            self._pix = more if self._pix is None else np.concatenate([self._pix, more])
            self._free = np.concatenate([self._free, np.arange(have, have + grow)])
        slots, self._free = self._free[:n], self._free[n:]
        return slots

    def _prune(self) -> None:
        s, k, f, b, slot = self._concat()
        if len(s) > self.budget:
            order = rank_tokens(s, k, f, b)
            keep, drop = order[: self.budget], order[self.budget:]
            if self.keep_pixels:
                self._free = np.concatenate([self._free, slot[drop]])
            s, k, f, b, slot = s[keep], k[keep], f[keep], b[keep], slot[keep]
        if len(s) >= self.budget:
            worst = rank_tokens(s, k, f, b)[-1]
            self.floor, self.floor_key = float(s[worst]), int(k[worst])
        self._parts = [(s, k, f, b, slot)]
        self.size = len(s)

    def _concat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not self._parts:
            z = np.zeros(0, np.int64)
            return np.zeros(0), z, z, z, z
        if len(self._parts) == 1:
            return self._parts[0]
        s, k, f, b, slot = (np.concatenate([p[i] for p in self._parts]) for i in range(5))
        return s, k, f, b, slot

    def result(self) -> PoolResult:
        """(scores, tie keys, frames, tokens, pixels or None) of the best ``budget`` tokens."""
        self._prune()
        s, k, f, b, slot = self._concat()
        pix = self._pix[slot] if self.keep_pixels and self._pix is not None else None
        return s, k, f, b, pix


@dataclass(frozen=True, repr=False)
class Tokens:
    """The selected tokens, sorted by (frame, token row, token column).

    Attributes:
        frames: (K,) int64 source frame of each token.
        tokens: (K,) int64 token index inside its frame (row-major over the token grid).
        scores: (K,) float32 change score (NaN for anchor tokens).
        is_anchor: (K,) bool.
        source: (K,) int64 where the token's pixels are: ``-1 - a`` for the a-th anchor frame,
            else a row of the pool.
    """

    frames: np.ndarray
    tokens: np.ndarray
    scores: np.ndarray
    is_anchor: np.ndarray
    source: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


def merge_pools(motion: PoolResult, relevance: PoolResult | None
                ) -> tuple[PoolResult, np.ndarray]:
    """(the motion pool's rows followed by the relevance pool's, (rows,) bool: the row comes
    from the relevance pool); the motion pool itself when there is no relevance pool."""
    if relevance is None:
        return motion, np.zeros(len(motion[0]), bool)
    parts = [np.concatenate([motion[i], relevance[i]]) for i in range(4)]
    pix = (None if motion[4] is None or relevance[4] is None
           else np.concatenate([motion[4], relevance[4]]))
    flags = np.concatenate([np.zeros(len(motion[0]), bool), np.ones(len(relevance[0]), bool)])
    return (parts[0], parts[1], parts[2], parts[3], pix), flags


def _best_rows(pool: PoolResult, rows: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best of ``rows`` (pool row indices) by :func:`rank_tokens`."""
    s, keys, f, b, _ = pool
    return rows[rank_tokens(s[rows], keys[rows], f[rows], b[rows])[:k]]


def choose_tokens(pool: PoolResult, anchor_frames: np.ndarray, budget: int,
                  tokens_per_frame: int, *, path: str, candidates: int, analysed: int,
                  decodable: int, relevance_rows: np.ndarray | None = None,
                  relevance_share: float = 0.0) -> Tokens:
    """Every token of the anchor frames plus the best pool tokens of other frames, exactly
    ``budget`` in all.

    With a question (``relevance_rows``: (rows,) bool marking the relevance pool's rows of a
    :func:`merge_pools` pool), ``round(relevance_share x motion budget)`` tokens are the best
    by relevance and the rest the best by motion among the tokens not taken yet.

    Raises:
        CorruptVideoError: too few tokens because frames are missing (damaged data).
        DecodeError: too few tokens for another reason (e.g. too few candidates).
    """
    tpf = tokens_per_frame
    k_motion = budget - len(anchor_frames) * tpf
    pool_s, _, pool_f, pool_b, _ = pool
    free = ~np.isin(pool_f, anchor_frames)
    if relevance_rows is None or not relevance_rows.any():
        sel_rows = _best_rows(pool, np.flatnonzero(free), k_motion)
    else:
        k_rel = min(round(relevance_share * k_motion), k_motion)
        rel_rows = _best_rows(pool, np.flatnonzero(free & relevance_rows), k_rel)
        taken = pool_f[rel_rows] * tpf + pool_b[rel_rows]
        mot = np.flatnonzero(free & ~relevance_rows)
        mot = mot[~np.isin(pool_f[mot] * tpf + pool_b[mot], taken)]
        sel_rows = np.concatenate([rel_rows, _best_rows(pool, mot, k_motion - len(rel_rows))])
    if len(sel_rows) < k_motion:
        # the promise is an exact budget (a video smaller than the budget is kept dense)
        msg = (f"{path}: only {len(sel_rows)} of {k_motion} motion tokens could be "
               f"filled from {candidates} candidate frames ({analysed} of "
               f"{decodable} frames analysed)")
        if analysed < decodable:
            raise CorruptVideoError(f"{msg}: frames are missing (damaged or truncated data)",
                                    path=path)
        raise DecodeError(f"{msg}; lower the budget or raise candidates_per_frame")
    a_f = np.repeat(anchor_frames, tpf)
    a_b = np.tile(np.arange(tpf), len(anchor_frames))
    m_f = pool_f[sel_rows]
    m_b = pool_b[sel_rows]
    m_s = pool_s[sel_rows].astype(np.float32)
    tok_f = np.concatenate([a_f, m_f])
    tok_b = np.concatenate([a_b, m_b])
    tok_s = np.concatenate([np.full(len(a_f), np.nan, np.float32), m_s])
    tok_a = np.concatenate([np.ones(len(a_f), bool), np.zeros(len(m_f), bool)])
    # source row of each token: anchors -> -1 - (k-th anchor frame), motion -> pool row
    src = np.concatenate([-1 - np.repeat(np.arange(len(anchor_frames)), tpf), sel_rows])
    order = np.lexsort((tok_b, tok_f))
    out = Tokens(frames=tok_f[order], tokens=tok_b[order], scores=tok_s[order],
                 is_anchor=tok_a[order], source=src[order])
    if len(out) != budget or len(np.unique(out.frames * tpf + out.tokens)) != budget:
        raise DecodeError(f"{path}: internal error: {len(out)} tokens (duplicates "
                          f"included) selected for a budget of {budget}")
    return out
