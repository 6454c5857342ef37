"""Numeric kernels of the lmms-video-utils reference mode, bit-exact with the PyTorch CPU
kernels lmms-video-utils 0.1.0 runs (numpy only; torch is never imported).

What is reproduced, and how it was established (against torch 2.14 CPU, AVX2 build):

- ``F.interpolate(x.float(), size, mode="bilinear", align_corners=False)`` on an NCHW
  contiguous float32 batch with more than one intra-op thread (torch's generic N-d kernel):
  the source index is ``fma(scale, dst + 0.5, -0.5)`` (``scale = float32(in) / out``), and
  both the width and the height step compute ``fma(t0, w0, t1 * w1)`` in float32 (GCC
  contracts ``t0 * w0 + t1 * w1`` into one fused multiply-add). The fma is evaluated in
  float64, which is exact here (products of uint8 pixels or float32 row values with float32
  weights fit in 53 bits), then rounded once to float32. With ``torch.set_num_threads(1)``
  torch switches to its separable kernel (other weights): not reproduced.
- ``F.avg_pool2d(d, k, k) * k * k``: a sequential float32 sum of each window in row-major
  order, divided by ``k * k`` and multiplied back, in float32.
- ``torch.topk`` on CPU: ``std::nth_element`` (libstdc++ introselect; ``std::partial_sort``,
  i.e. a heap select, when ``64 k <= n``) with a "greater value" comparison. Which of several
  equal values are kept depends on that algorithm; :func:`topk_set` emulates it whenever equal
  values straddle the k-th place (e.g. the zero scores of static content).
"""

from __future__ import annotations

import numpy as np

__all__ = ["BilinearResize", "block_sums", "fma", "luma", "topk_set"]

_F32 = np.float32


def fma(a: np.ndarray, b: np.ndarray | np.float64, c: np.ndarray | np.float64) -> np.ndarray:
    """float32 ``a * b + c`` with one rounding (computed exactly in float64)."""
    return (np.asarray(a, np.float64) * b + c).astype(_F32)  # type: ignore[no-any-return]


def linear_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray,
                                                          np.ndarray, np.ndarray]:
    """torch's bilinear source indices and weights along one axis (align_corners=False).

    Returns:
        (i0, i1, w0, w1): (out_size,) int64 source indices and float32 weights; output ``d`` is
        ``fma(x[i0[d]], w0[d], x[i1[d]] * w1[d])``.
    """
    d = np.arange(out_size)
    if in_size == out_size:  # torch copies
        return d, d.copy(), np.ones(out_size, _F32), np.zeros(out_size, _F32)
    scale = _F32(in_size) / _F32(out_size)
    src = fma(np.full(out_size, scale, _F32), d.astype(_F32) + _F32(0.5),
              np.full(out_size, -0.5, _F32))  # (out,)
    src = np.where(src < 0, _F32(0), src).astype(_F32)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    w1 = np.clip(src - i0.astype(_F32), _F32(0), _F32(1)).astype(_F32)
    i1 = i0 + (i0 < in_size - 1)
    w0 = (_F32(1) - w1).astype(_F32)
    return i0, i1, w0, w1


class BilinearResize:
    """Resize (H, W, 3) uint8 RGB frames to (out_h, out_w, 3) uint8 as lmms-video-utils'
    ``_resize_stack`` does (torch bilinear in float32, ``clamp(0, 255)``, truncation to uint8).

    Only the source rows some output row reads are interpolated along the width.
    """

    def __init__(self, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> None:
        (h, w), (oh, ow) = in_hw, out_hw
        self.in_hw, self.out_hw = (h, w), (oh, ow)
        hi0, hi1, hw0, hw1 = linear_weights(h, oh)
        wi0, wi1, ww0, ww1 = linear_weights(w, ow)
        self._rows = np.union1d(hi0, hi1)  # (R,) source rows read
        self._r0 = np.searchsorted(self._rows, hi0)  # (oh,) into the R interpolated rows
        self._r1 = np.searchsorted(self._rows, hi1)
        self._hw0 = hw0.astype(np.float64)[:, None]  # (oh, 1)
        self._hw1 = hw1[:, None]
        ch = np.arange(3)
        # flat (W * 3) column of each output (column, channel), HWC order
        self._c0 = (wi0[:, None] * 3 + ch).reshape(-1)  # (ow * 3,)
        self._c1 = (wi1[:, None] * 3 + ch).reshape(-1)
        self._ww0 = np.repeat(ww0.astype(np.float64), 3)[None]  # (1, ow * 3)
        self._ww1 = np.repeat(ww1, 3)[None]

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (out_h, out_w, 3) uint8."""
        h, w = self.in_hw
        oh, ow = self.out_hw
        if (h, w) == (oh, ow):
            return frame
        rows = frame.reshape(h, w * 3)[self._rows]  # (R, W*3) uint8
        a = np.take(rows, self._c0, axis=1)  # (R, ow*3)
        b = np.take(rows, self._c1, axis=1)
        # width step: float32(a * w0 + float32(b * w1)), the sum in float64 (exact)
        t = np.add(a * self._ww0, np.multiply(b, self._ww1, dtype=_F32), dtype=np.float64,
                   out=np.empty(a.shape, _F32), casting="same_kind")  # (R, ow*3)
        v = np.add(t[self._r0] * self._hw0, t[self._r1] * self._hw1, dtype=np.float64,
                   out=np.empty((oh, ow * 3), _F32), casting="same_kind")  # (oh, ow*3)
        np.clip(v, 0, 255, out=v)
        return v.astype(np.uint8).reshape(oh, ow, 3)


#: float32 ``c * x`` for every uint8 ``x`` and the three luma weights, (3, 256).
_LUMA_LUT = (np.array([0.299, 0.587, 0.114], _F32)[:, None]
             * np.arange(256, dtype=_F32)[None]).astype(_F32)


def luma(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., H, W) float32 ``(0.299 R + 0.587 G) + 0.114 B`` with
    torch's float32 roundings (each product looked up in a table of the 256 values)."""
    r = _LUMA_LUT[0].take(frames[..., 0])
    r += _LUMA_LUT[1].take(frames[..., 1])
    r += _LUMA_LUT[2].take(frames[..., 2])
    return r  # type: ignore[no-any-return]


def block_sums(diff: np.ndarray, block_px: int) -> np.ndarray:
    """(N, H, W) float32 -> (N, H // b, W // b) float32: the sum over each ``b x b`` block as
    ``avg_pool2d(d, b, b) * b * b`` computes it (sequential row-major float32 sum)."""
    n, h, w = diff.shape
    hb, wb = h // block_px, w // block_px
    if hb == 0 or wb == 0:
        return np.zeros((n, 0, 0), _F32)
    win = diff[:, : hb * block_px, : wb * block_px].reshape(n, hb, block_px, wb, block_px)
    win = np.ascontiguousarray(win.transpose(2, 4, 0, 1, 3))  # (b, b, N, hb, wb)
    acc = np.zeros((n, hb, wb), _F32)
    for dy in range(block_px):
        for dx in range(block_px):
            acc += win[dy, dx]
    area = _F32(block_px * block_px)
    return ((acc / area).astype(_F32) * area).astype(_F32)  # type: ignore[no-any-return]


def topk_set(values: np.ndarray, k: int) -> np.ndarray:
    """Indices ``torch.topk(values, k)`` returns on CPU, sorted ascending.

    Args:
        values: (n,) float32, no NaN.
        k: 1 <= k <= n.

    Returns:
        (k,) int64 sorted indices.
    """
    n = len(values)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    kth = np.partition(values, n - k)[n - k]  # the k-th largest value
    above = np.flatnonzero(values > kth)
    ties = np.flatnonzero(values == kth)
    if len(above) + len(ties) == k:  # no tie straddles the k-th place: the set is unique
        return np.sort(np.concatenate([above, ties]))
    v = values.tolist()
    idx = list(range(n))
    if k * 64 <= n:
        _heap_select(v, idx, 0, k, n)
    else:
        _nth_element(v, idx, k - 1)
    return np.sort(np.asarray(idx[:k], np.int64))


# -- libstdc++ selection algorithms, comparison "a > b", on parallel lists ----------------------

def _nth_element(v: list[float], idx: list[int], nth: int) -> None:
    """``std::nth_element(first, first + nth, last, greater)`` (introselect)."""
    first, last = 0, len(v)
    if first == last or nth == last:
        return
    depth = 2 * (last.bit_length() - 1)
    while last - first > 3:
        if depth == 0:
            _heap_select(v, idx, first, nth + 1, last)
            _swap(v, idx, first, nth)
            return
        depth -= 1
        cut = _partition_pivot(v, idx, first, last)
        if cut <= nth:
            first = cut
        else:
            last = cut
    _insertion_sort(v, idx, first, last)


def _swap(v: list[float], idx: list[int], i: int, j: int) -> None:
    v[i], v[j] = v[j], v[i]
    idx[i], idx[j] = idx[j], idx[i]


def _partition_pivot(v: list[float], idx: list[int], first: int, last: int) -> int:
    """``__unguarded_partition_pivot``: median of (first+1, mid, last-1) to ``first``, then an
    unguarded Hoare partition of [first+1, last) around it."""
    a, b, c = first + 1, first + (last - first) // 2, last - 1
    if v[a] > v[b]:
        if v[b] > v[c]:
            _swap(v, idx, first, b)
        elif v[a] > v[c]:
            _swap(v, idx, first, c)
        else:
            _swap(v, idx, first, a)
    elif v[a] > v[c]:
        _swap(v, idx, first, a)
    elif v[b] > v[c]:
        _swap(v, idx, first, c)
    else:
        _swap(v, idx, first, b)
    p = v[first]
    lo, hi = first + 1, last
    while True:
        while v[lo] > p:
            lo += 1
        hi -= 1
        while p > v[hi]:
            hi -= 1
        if not lo < hi:
            return lo
        _swap(v, idx, lo, hi)
        lo += 1


def _insertion_sort(v: list[float], idx: list[int], first: int, last: int) -> None:
    for i in range(first + 1, last):
        val, vi = v[i], idx[i]
        if val > v[first]:
            v[first + 1: i + 1] = v[first:i]
            idx[first + 1: i + 1] = idx[first:i]
            v[first], idx[first] = val, vi
        else:
            j = i - 1
            while val > v[j]:
                v[j + 1], idx[j + 1] = v[j], idx[j]
                j -= 1
            v[j + 1], idx[j + 1] = val, vi


def _adjust_heap(v: list[float], idx: list[int], first: int, hole: int, length: int,
                 val: float, vi: int) -> None:
    """``std::__adjust_heap`` followed by ``std::__push_heap``."""
    top = second = hole
    while second < (length - 1) // 2:
        second = 2 * (second + 1)
        if v[first + second] > v[first + second - 1]:
            second -= 1
        v[first + hole], idx[first + hole] = v[first + second], idx[first + second]
        hole = second
    if (length & 1) == 0 and second == (length - 2) // 2:
        second = 2 * (second + 1)
        v[first + hole], idx[first + hole] = v[first + second - 1], idx[first + second - 1]
        hole = second - 1
    parent = (hole - 1) // 2
    while hole > top and v[first + parent] > val:
        v[first + hole], idx[first + hole] = v[first + parent], idx[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    v[first + hole], idx[first + hole] = val, vi


def _heap_select(v: list[float], idx: list[int], first: int, middle: int, last: int) -> None:
    """``std::__heap_select``: [first, middle) ends up holding the ``middle - first``
    largest values."""
    length = middle - first
    if length >= 2:
        parent = (length - 2) // 2
        while True:
            _adjust_heap(v, idx, first, parent, length, v[first + parent], idx[first + parent])
            if parent == 0:
                break
            parent -= 1
    for i in range(middle, last):
        if v[i] > v[first]:
            val, vi = v[i], idx[i]
            v[i], idx[i] = v[first], idx[first]
            _adjust_heap(v, idx, first, 0, length, val, vi)
