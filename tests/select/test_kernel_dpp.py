"""Kernel and greedy DPP: exactness against brute force, numerics, torch parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.select.conftest import unit_rows
from vidsel.errors import InvalidArgumentError
from vidsel.select import (
    DEFAULT_ALPHAS,
    dpp,
    dpp_greedy,
    mdp3,
    multi_gaussian_kernel,
    relevance,
)
from vidsel.select._dpp import _dpp_torch
from vidsel.select._kernel import KernelRows, log_relevance


def explicit_kernel(x: np.ndarray, y: np.ndarray, alphas=DEFAULT_ALPHAS) -> np.ndarray:
    d2 = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    return sum(np.exp(-d2 / (2 * a)) for a in alphas)


def brute_greedy(L: np.ndarray, k: int, tol: float = 1e-9) -> list[int]:
    """Greedy log-det maximisation by recomputing determinants from scratch."""
    sel: list[int] = []
    for _ in range(k):
        best, best_val = -1, -np.inf
        for i in range(L.shape[0]):
            if i in sel:
                continue
            s = [*sel, i]
            sign, val = np.linalg.slogdet(L[np.ix_(s, s)])
            if sign > 0 and val > best_val:
                best, best_val = i, val
        if best < 0:
            break
        sel.append(best)
    return sel


def test_kernel_matches_explicit_difference_and_float32() -> None:
    rng = np.random.default_rng(0)
    x = unit_rows(rng, 40, 24)
    y = unit_rows(rng, 7, 24)
    ref = explicit_kernel(x, y)
    np.testing.assert_allclose(multi_gaussian_kernel(x, y), ref, rtol=1e-12, atol=1e-12)
    k32 = multi_gaussian_kernel(x.astype(np.float32), y.astype(np.float32))
    assert k32.dtype == np.float32
    np.testing.assert_allclose(k32, ref, rtol=1e-5, atol=1e-5)
    gram = multi_gaussian_kernel(x)
    assert np.all(np.diagonal(gram) == len(DEFAULT_ALPHAS))  # exactly, as the reference
    np.testing.assert_allclose(gram, gram.T)
    assert np.linalg.eigvalsh(gram).min() > -1e-9  # PSD
    kt = multi_gaussian_kernel(torch.from_numpy(x), torch.from_numpy(y))
    np.testing.assert_allclose(kt.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_kernel_rows_blocks_match_full_kernel() -> None:
    rng = np.random.default_rng(1)
    x = unit_rows(rng, 37, 16)
    full = multi_gaussian_kernel(x)
    kr = KernelRows(x, DEFAULT_ALPHAS)
    rows = np.array([3, 30, 8])
    np.testing.assert_allclose(kr.block(rows, np.arange(37)), full[rows], atol=1e-12)
    blocks = kr.diagonal_blocks(10)  # 4 blocks, the last one ragged (7) and zero-padded
    assert blocks.shape == (4, 10, 10)
    for s in range(4):
        lo, hi = 10 * s, min(10 * s + 10, 37)
        np.testing.assert_allclose(blocks[s, : hi - lo, : hi - lo], full[lo:hi, lo:hi],
                                   atol=1e-12)
    kr32 = KernelRows(x, DEFAULT_ALPHAS, dot_dtype=np.float32)
    np.testing.assert_allclose(kr32.block(rows, np.arange(37)), full[rows], atol=1e-5)


def test_relevance_and_log_relevance_agree() -> None:
    rng = np.random.default_rng(2)
    x = unit_rows(rng, 20, 8)
    t = unit_rows(rng, 1, 8)[0] * 0.7  # a mean of chunk embeddings is not unit-norm
    r = relevance(x, t)
    np.testing.assert_allclose(np.log(r), log_relevance(x, t), rtol=1e-12)
    np.testing.assert_allclose(r, explicit_kernel(t[None], x)[0], rtol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_fast_greedy_equals_brute_logdet_greedy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 14, 6
    if seed % 2:
        b = rng.standard_normal((n, 9))
        L = b @ b.T + 1e-3 * np.eye(n)
    else:
        x = unit_rows(rng, n, 5)
        w = np.exp(rng.standard_normal(n))
        L = w[:, None] * multi_gaussian_kernel(x) * w[None, :]
    assert dpp_greedy(L, k).tolist() == brute_greedy(L, k)


def test_greedy_first_pick_is_max_diagonal_and_stops_on_singular_kernel() -> None:
    rng = np.random.default_rng(3)
    b = rng.standard_normal((10, 3))  # rank 3
    L = b @ b.T
    order = dpp_greedy(L, 8)
    assert order[0] == int(np.argmax(np.diagonal(L)))
    assert len(order) == 3  # gains vanish after the rank is exhausted
    assert len(set(order.tolist())) == 3
    assert dpp_greedy(L, 1).tolist() == [order[0]]
    assert dpp_greedy(np.eye(3), 10).tolist() == [0, 1, 2]  # k clamped, ties to lowest


def test_dpp_greedy_torch_matches_numpy() -> None:
    rng = np.random.default_rng(4)
    x = unit_rows(rng, 60, 12)
    w = np.exp(0.5 * rng.standard_normal(60))
    L = w[:, None] * multi_gaussian_kernel(x) * w[None, :]
    want = dpp_greedy(L, 12)
    got64 = dpp_greedy(torch.from_numpy(L), 12)
    got32 = dpp_greedy(torch.from_numpy(L).float(), 12)
    assert got64.tolist() == want.tolist()
    assert got32.tolist() == want.tolist()
    b = rng.standard_normal((9, 2))
    assert len(dpp_greedy(torch.from_numpy(b @ b.T), 5)) == 2  # early stop on the torch path too


def test_dpp_greedy_validates() -> None:
    with pytest.raises(InvalidArgumentError, match="square"):
        dpp_greedy(np.zeros((3, 4)), 2)
    with pytest.raises(InvalidArgumentError, match="k=0"):
        dpp_greedy(np.eye(3), 0)


def test_conditional_dpp_first_pick_is_most_relevant_and_equals_weighted_greedy() -> None:
    rng = np.random.default_rng(5)
    x = unit_rows(rng, 50, 16, smooth=0.3)
    t = x[17] + 0.3 * rng.standard_normal(16)
    t /= np.linalg.norm(t)
    order = dpp(x, t, 8, return_order=True)
    assert order[0] == int(np.argmax(relevance(x, t)))
    lam = 0.2
    d = relevance(x, t) ** (1 / lam)
    L = d[:, None] * multi_gaussian_kernel(x) * d[None, :]
    assert order.tolist() == dpp_greedy(L, 8).tolist()
    # one segment of MDP3 is exactly the conditional DPP
    assert mdp3(x, t, 8, segment_size=-1).tolist() == sorted(order.tolist())
    assert dpp(x.astype(np.float32), t.astype(np.float32), 8).tolist() == sorted(order.tolist())
    got = _dpp_torch(torch.from_numpy(x), torch.from_numpy(t), 8, lam=lam,
                     alphas=DEFAULT_ALPHAS, return_order=True)
    assert got.tolist() == order.tolist()


def test_dpp_returns_k_even_with_duplicates() -> None:
    rng = np.random.default_rng(6)
    base = unit_rows(rng, 3, 8)
    x = np.repeat(base, 5, axis=0)  # 15 candidates, 3 distinct
    out = dpp(x, base[0], 6)
    assert len(out) == 6 and len(set(out.tolist())) == 6
    assert {int(i) // 5 for i in out} == {0, 1, 2}  # the distinct ones come first


@pytest.mark.parametrize("as_torch", [False, True])
def test_dpp_greedy_rejects_non_finite_asymmetric_or_negative_kernels(as_torch: bool) -> None:
    def conv(a: np.ndarray):
        return torch.from_numpy(a) if as_torch else a

    nan_diag = np.eye(3)
    nan_diag[0, 0] = np.nan
    with pytest.raises(InvalidArgumentError, match="NaN or inf"):
        dpp_greedy(conv(nan_diag), 2)  # used to return duplicate indices [0 0]
    inf_off = np.eye(3)
    inf_off[0, 1] = inf_off[1, 0] = np.inf
    with pytest.raises(InvalidArgumentError, match="NaN or inf"):
        dpp_greedy(conv(inf_off), 2)
    asym = np.array([[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(InvalidArgumentError, match="symmetric"):
        dpp_greedy(conv(asym), 2)
    with pytest.raises(InvalidArgumentError, match="non-negative diagonal"):
        dpp_greedy(conv(-np.eye(3)), 2)  # used to return []
    # the symmetry tolerance scales with max|L|: a rounding-level asymmetry is accepted
    rng = np.random.default_rng(7)
    b = rng.standard_normal((6, 6))
    big = 1e6 * (b @ b.T + 6 * np.eye(6))
    big[0, 1] *= 1 + 1e-12
    assert len(dpp_greedy(conv(big), 3)) == 3
    # float32 kernels get float32's tolerance
    f32 = torch.from_numpy(big).float() if as_torch else big.astype(np.float32)
    f32[2, 3] = f32[2, 3] * (1 + 1e-6)
    assert len(dpp_greedy(f32, 3)) == 3


def test_dpp_greedy_zero_kernel_numpy_and_torch_agree() -> None:
    # max(diag) <= 0: both paths use the absolute floor eps, so nothing is picked
    assert dpp_greedy(np.zeros((4, 4)), 2).tolist() == []
    assert dpp_greedy(torch.zeros(4, 4), 2).tolist() == []
    tiny = np.diag([1e-12, 0.0, 0.0])  # positive max: the floor is relative (eps * 1e-12)
    assert dpp_greedy(tiny, 3).tolist() == dpp_greedy(torch.from_numpy(tiny), 3).tolist() == [0]


def test_dpp_torch_path_validates_its_inputs() -> None:
    x = torch.from_numpy(unit_rows(np.random.default_rng(8), 6, 4))
    kw = dict(lam=0.2, alphas=DEFAULT_ALPHAS, return_order=False)
    with pytest.raises(InvalidArgumentError, match=r"frame_embeds must be \(n, d\)"):
        _dpp_torch(x[0], x[0], 2, **kw)
    with pytest.raises(InvalidArgumentError, match="text_embed must be"):
        _dpp_torch(x, x[0, :3], 2, **kw)
    with pytest.raises(InvalidArgumentError, match="no rows"):
        _dpp_torch(x[:0], x[0], 2, **kw)
    bad = x.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(InvalidArgumentError, match="NaN or inf"):
        _dpp_torch(bad, x[0], 2, **kw)
    # a numpy (1, d) text embedding is accepted like on the numpy path
    got = _dpp_torch(x, x[0].numpy()[None, :], 3, **kw)
    assert got.tolist() == dpp(x.numpy(), x[0].numpy(), 3).tolist()


def test_kernel_rows_against_every_frame_needs_no_copy_and_is_exact() -> None:
    """``block(rows)`` (all columns, no copy of the embeddings) equals ``block(rows, arange)``
    bit for bit, so the DPP's picks do not depend on the path."""
    from vidsel.select._kernel import KernelRows

    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 16))
    kr = KernelRows(x, (0.5, 1.0))
    rows = np.array([3, 7, 7, 49])
    np.testing.assert_array_equal(kr.block(rows), kr.block(rows, np.arange(50)))
    assert np.all(kr.block(rows)[np.arange(4), rows] == kr.diag)
