"""Baselines (uniform, top-k, BOLT, AKS) and the selector registry."""

from __future__ import annotations

import numpy as np
import pytest

from tests.select.conftest import unit_rows
from vidsel.errors import InvalidArgumentError
from vidsel.select import (
    SELECTORS,
    aks,
    available_selectors,
    bolt,
    cosine_scores,
    dpp_greedy,
    get_selector,
    mdp3,
    multi_gaussian_kernel,
    register_selector,
    relevance,
    run_selector,
    topk,
    uniform,
)


def test_uniform() -> None:
    assert uniform(10, 4).tolist() == [0, 3, 6, 9]
    assert uniform(128, 8).tolist() == np.round(np.linspace(0, 127, 8)).astype(int).tolist()
    assert uniform(5, 9).tolist() == [0, 1, 2, 3, 4]
    assert uniform(9, 1).tolist() == [4]
    with pytest.raises(InvalidArgumentError, match="k=0"):
        uniform(5, 0)


def test_topk_ties_and_order() -> None:
    s = np.array([0.1, 0.9, 0.5, 0.9, 0.2])
    assert topk(s, 2).tolist() == [1, 3]
    assert topk(s, 3).tolist() == [1, 2, 3]
    assert topk(np.ones(4), 2).tolist() == [0, 1]  # ties -> earlier
    with pytest.raises(InvalidArgumentError, match="NaN"):
        topk([np.nan, 1.0], 1)


def test_bolt_concentrates_on_relevant_region_and_is_unique() -> None:
    n = 100
    s = np.exp(-0.5 * ((np.arange(n) - 70) / 5.0) ** 2)  # one relevant event at t = 70
    out = bolt(s, 8, power=3.0)
    assert len(out) == 8 and len(set(out.tolist())) == 8 and np.all(np.diff(out) > 0)
    assert np.all(np.abs(out - 70) <= 12)
    flat = bolt(np.ones(n), 5)
    assert len(flat) == 5 and np.all(np.diff(flat) > 0)  # flat scores: spread out
    assert flat.min() < 30 and flat.max() > 70
    spike = np.zeros(20)
    spike[3] = 1.0  # every quantile lands on frame 3: collisions go to the neighbours
    out = bolt(spike, 4)
    assert len(set(out.tolist())) == 4 and 3 in out.tolist()
    assert bolt(s, 1).tolist() == [70]


def _aks_public(scores: np.ndarray, k: int, t1: float, t2: float, depth_max: int) -> list[int]:
    """The public AKS judge-and-split, restated with heapq (ties as heapq.nlargest)."""
    import heapq

    s = (scores - scores.min()) / (scores.max() - scores.min())

    def judge(bins):
        keep, split = [], []
        for sc, fn, depth in bins:
            top = [sc[i] for i in heapq.nlargest(k, range(len(sc)), sc.__getitem__)]
            if len(sc) and np.mean(top) - np.mean(sc) > t1 and np.std(sc) > t2:
                keep.append((sc, fn, depth))
            elif depth < depth_max:
                h = len(sc) // 2
                split += [(sc[:h], fn[:h], depth + 1), (sc[h:], fn[h:], depth + 1)]
            else:
                keep.append((sc, fn, depth))
        return keep + (judge(split) if split else [])

    out: list[int] = []
    for sc, fn, depth in judge([(list(s), list(range(len(s))), 0)]):
        top = heapq.nlargest(int(k / 2**depth), range(len(sc)), sc.__getitem__)
        out += [fn[i] for i in top]
    return sorted(out)


def test_aks_matches_the_public_judge_and_split() -> None:
    rng = np.random.default_rng(0)
    checked_full = 0
    for trial in range(40):
        n = int(rng.integers(16, 200))
        k = int(rng.integers(1, 17))
        s = rng.random(n) ** 8  # sparse peaks: bins get kept at various depths
        if trial % 3 == 0:
            s[rng.integers(0, n, 3)] += 3.0
        t1 = float(rng.choice([0.3, 0.5, 0.8]))
        depth = int(rng.integers(1, 6))
        want = _aks_public(s, k, t1, -100.0, depth)
        got = aks(s, k, t1=t1, max_depth=depth).tolist()
        assert len(got) == min(k, n) and got == sorted(set(got))
        if len(want) == min(k, n):
            assert got == want
            checked_full += 1
        else:  # the public code returns fewer; we keep those and fill by score
            assert set(want) <= set(got)
    assert checked_full >= 10


def test_aks_simple_cases() -> None:
    n = 64
    s = np.zeros(n)
    s[40:44] = 1.0  # top-4 mean - mean = 1 - 4/64 > 0.8: the root bin is kept
    assert aks(s, 4).tolist() == [40, 41, 42, 43]
    noisy = np.random.default_rng(0).random(n)
    # flat noise never passes the judge: depth-5 bins get int(8 / 32) = 0 frames, all filled
    assert aks(noisy, 8).tolist() == topk(noisy, 8).tolist()
    assert aks(noisy, 8, max_depth=0).tolist() == topk(noisy, 8).tolist()


def test_cosine_scores() -> None:
    x = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    np.testing.assert_allclose(cosine_scores(x, np.array([2.0, 0.0])), [1, 0, np.sqrt(0.5)])


def test_registry_lists_and_runs_everything() -> None:
    names = available_selectors()
    assert {"uniform", "topk", "dpp", "mdp3", "mdp3-reference", "bolt", "aks"} <= set(names)
    rng = np.random.default_rng(1)
    x = unit_rows(rng, 64, 8, smooth=0.3)
    for name in names:
        out = run_selector(name, 6, frame_embeds=x, text_embed=x[10])
        assert len(out) == 6 and np.all(np.diff(out) > 0), name
    assert run_selector("uniform", 4, n=10).tolist() == [0, 3, 6, 9]
    assert run_selector("topk", 2, scores=[0.0, 3.0, 1.0, 2.0]).tolist() == [1, 3]
    assert run_selector("bolt", 3, scores=np.arange(30.0), power=1.0).tolist() == \
        bolt(np.arange(30.0), 3, power=1.0).tolist()
    assert get_selector("mdp3-reference").defaults["segment_size"] == -1


def test_registry_errors_and_plugins() -> None:
    with pytest.raises(InvalidArgumentError, match=r"selector='nope' is not registered; choose one of"):
        run_selector("nope", 3, n=10)
    with pytest.raises(InvalidArgumentError, match="needs frame_embeds"):
        run_selector("mdp3", 3, n=10)
    with pytest.raises(InvalidArgumentError, match="needs scores"):
        run_selector("topk", 3, n=10)
    with pytest.raises(InvalidArgumentError, match="already registered"):
        register_selector("uniform", lambda inp, k: np.arange(k), needs="none")
    try:
        register_selector("every_other", lambda inp, k: np.arange(0, inp.n, 2)[:k], needs="none",
                          description="test plugin")
        assert "every_other" in available_selectors()
        assert run_selector("every_other", 3, n=10).tolist() == [0, 2, 4]
    finally:
        if "every_other" in SELECTORS:
            SELECTORS.unregister("every_other")
    with pytest.raises(InvalidArgumentError, match="needs="):
        register_selector("bad", lambda inp, k: np.arange(k), needs="pixels")  # type: ignore[arg-type]
    assert "bad" not in available_selectors()


@pytest.mark.parametrize("bad", [{"t1": float("nan")}, {"t2": float("nan")},
                                 {"t1": float("inf")}, {"t2": float("-inf")}])
def test_aks_rejects_non_finite_thresholds(bad: dict) -> None:
    name = next(iter(bad))
    with pytest.raises(InvalidArgumentError, match=rf"{name}=.* must be finite"):
        aks(np.arange(10.0), 3, **bad)
    with pytest.raises(InvalidArgumentError, match="t1='high' must be a number"):
        aks(np.arange(10.0), 3, t1="high")  # type: ignore[arg-type]


def test_run_selector_rejects_parameters_the_selector_does_not_take() -> None:
    with pytest.raises(InvalidArgumentError,
                       match=r"selector 'topk' does not take \['lam'\]; allowed: \[\]"):
        run_selector("topk", 2, scores=np.arange(5.0), lam=0.2)
    with pytest.raises(InvalidArgumentError,
                       match=r"selector 'uniform' does not take \['segment_size'\]"):
        run_selector("uniform", 2, n=5, segment_size=3)
    x = unit_rows(np.random.default_rng(2), 16, 4)
    with pytest.raises(InvalidArgumentError, match=r"does not take \['power'\]; allowed: "
                                                   r"\['alphas', 'condition_size', 'lam'"):
        run_selector("mdp3", 2, frame_embeds=x, text_embed=x[0], power=2.0)
    with pytest.raises(InvalidArgumentError, match=r"'dpp' does not take \['return_order'\]"):
        run_selector("dpp", 2, frame_embeds=x, text_embed=x[0], return_order=True)
    assert get_selector("aks").params == {"t1", "t2", "max_depth"}
    assert run_selector("aks", 2, scores=np.arange(6.0), t1=0.5).tolist() == [4, 5]
    # plugins: accepted names come from the signature, or params=; **kwargs means unchecked
    try:
        register_selector("strided", lambda inp, k, stride=2: np.arange(0, inp.n, stride)[:k],
                          needs="none")
        assert get_selector("strided").params == {"stride"}
        assert run_selector("strided", 2, n=10, stride=3).tolist() == [0, 3]
        with pytest.raises(InvalidArgumentError, match=r"does not take \['step'\]"):
            run_selector("strided", 2, n=10, step=3)
        register_selector("anything", lambda inp, k, **p: np.arange(k), needs="none")
        assert get_selector("anything").params is None
        assert run_selector("anything", 2, n=10, whatever=1).tolist() == [0, 1]
        with pytest.raises(InvalidArgumentError, match="does not take"):
            register_selector("bad_defaults", lambda inp, k: np.arange(k), needs="none",
                              defaults={"lam": 1.0})
    finally:
        for name in ("strided", "anything", "bad_defaults"):
            if name in SELECTORS:
                SELECTORS.unregister(name)


@pytest.mark.parametrize("call,match", [
    (lambda: topk("abc", 2), "scores must be an array of numbers"),
    (lambda: cosine_scores(np.ones((3, 2)), "a"), "text_embed must be an array of numbers"),
    (lambda: mdp3("a", np.ones(2), 3), "frame_embeds must be an array of numbers"),
    (lambda: dpp_greedy("a", 3), "L must be an array of numbers"),
    (lambda: dpp_greedy([[1.0, 0.0], [0.0, 1.0]], 1), None),  # nested lists are fine
    (lambda: multi_gaussian_kernel("a"), "x must be an array of numbers"),
    (lambda: multi_gaussian_kernel(np.ones(3)), r"x must be \(n, d\) rows"),
    (lambda: multi_gaussian_kernel(np.ones((3, 2)), np.ones((2, 3))), "differ in d"),
    (lambda: relevance(np.ones((3, 2)), "a"), "text_embed must be an array of numbers"),
    (lambda: run_selector("topk", 3, scores="a"), "scores must be an array of numbers"),
    (lambda: run_selector("mdp3", 2, frame_embeds=[["a"]], text_embed=[1.0]),
     "frame_embeds must be an array of numbers"),
    (lambda: run_selector("mdp3", 2, frame_embeds=np.ones(3), text_embed=np.ones(3)),
     r"frame_embeds must be \(n, d\)"),
])
def test_non_numeric_inputs_are_invalid_argument_errors(call, match) -> None:
    if match is None:
        call()
        return
    with pytest.raises(InvalidArgumentError, match=match):
        call()
