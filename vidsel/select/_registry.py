"""Registry of selectors: one calling convention, names the CLI lists.

Every selector is registered with what it needs:

- ``"none"``: only the number of candidates (``uniform``);
- ``"scores"``: a relevance per candidate (``topk``, ``bolt``, ``aks``); when only embeddings
  are given the scores are their cosine similarities;
- ``"embeddings"``: frame embeddings (n, d) and a text embedding (d,) (``dpp``, ``mdp3``).

:func:`run_selector` dispatches by name. New selectors plug in with :func:`register_selector`::

    def every_other(n, k):
        return np.arange(0, n, 2)[:k]

    register_selector("every_other", lambda inp, k: every_other(inp.n, k), needs="none")

A selector's accepted parameters are declared with ``params=`` or read from ``fn``'s signature
(its arguments after ``inputs`` and ``k``); :func:`run_selector` rejects any other name with an
:class:`~vidsel.errors.InvalidArgumentError` before calling it. A ``fn`` taking ``**kwargs``
without a ``params=`` declaration accepts anything.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from .._validate import (
    check_choice,
    check_finite_float,
    check_positive_float,
    check_positive_int,
    keyword_params,
)
from ..errors import InvalidArgumentError
from ..registry import Registry
from ._baselines import aks, bolt, cosine_scores, topk, uniform
from ._dpp import _to_numpy, check_lam, dpp
from ._kernel import _is_torch, check_alphas, numeric_array
from ._mdp3 import MDP3_MODES, OVIS_DEFAULTS, mdp3

__all__ = [
    "SELECTORS",
    "SelectorInfo",
    "SelectorInputs",
    "available_selectors",
    "get_selector",
    "register_selector",
    "run_selector",
]

Needs = Literal["none", "scores", "embeddings"]
NEEDS: tuple[str, ...] = ("none", "scores", "embeddings")


@dataclass(frozen=True)
class SelectorInputs:
    """What a selector may use. ``n`` is the number of candidates.

    Attributes:
        n: number of candidates.
        frame_embeds: (n, d) float array or None.
        text_embed: (d,) float array or None.
        scores: (n,) relevance or None (derived from the embeddings on demand).
    """

    n: int
    frame_embeds: Any = field(default=None, repr=False)
    text_embed: Any = field(default=None, repr=False)
    scores: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_positive_int("n", self.n)
        if self.frame_embeds is not None and len(getattr(self.frame_embeds, "shape", ())) != 2:
            raise InvalidArgumentError(
                f"frame_embeds must be an (n, d) array or tensor, got "
                f"{type(self.frame_embeds).__name__}")
        if self.frame_embeds is not None and int(self.frame_embeds.shape[0]) != self.n:
            raise InvalidArgumentError(
                f"frame_embeds has {self.frame_embeds.shape[0]} rows, expected n={self.n}"
            )
        if self.scores is not None and np.asarray(self.scores).reshape(-1).size != self.n:
            raise InvalidArgumentError(
                f"scores has {np.asarray(self.scores).size} values, expected n={self.n}"
            )

    def relevance(self) -> np.ndarray:
        """Per-candidate scores: the given ones, else cosine similarity of the embeddings."""
        if self.scores is not None:
            return np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if self.frame_embeds is None or self.text_embed is None:
            raise InvalidArgumentError("this selector needs scores or frame and text embeddings")
        return cosine_scores(self.frame_embeds, self.text_embed)


@dataclass(frozen=True)
class SelectorInfo:
    """A registered selector.

    Attributes:
        name: registry key.
        fn: ``fn(inputs: SelectorInputs, k: int, **params) -> (<= k,) int64 ascending indices``.
        needs: ``"none"``, ``"scores"`` or ``"embeddings"``.
        description: one line for listings.
        defaults: default parameters (shown in listings, recorded in selections).
        params: names of the parameters ``fn`` accepts, or None when undeclared (anything is
            passed through).
        check: ``check(params)`` raises :class:`InvalidArgumentError` for a bad parameter
            VALUE (given the defaults merged with the caller's parameters); run by
            :meth:`check_params`, so before any video is decoded or model loaded.
    """

    name: str
    fn: Callable[..., np.ndarray] = field(repr=False)
    needs: str = "embeddings"
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    params: frozenset[str] | None = None
    check: Callable[[Mapping[str, Any]], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise InvalidArgumentError(f"selector name={self.name!r} must be a non-empty string")
        check_choice("needs", self.needs, NEEDS)
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
        if self.params is not None:
            object.__setattr__(self, "params", frozenset(self.params))
            self.check_params(self.defaults)

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidArgumentError` naming any key of ``params`` the selector does
        not take (and the ones it does), or for a value it would refuse (``lam=0``,
        ``mode="bogus"``, NaN ...). Cheap: callers run it before decoding anything."""
        if self.params is not None:
            bad = set(params) - self.params
            if bad:
                raise InvalidArgumentError(
                    f"selector {self.name!r} does not take {sorted(bad)}; "
                    f"allowed: {sorted(self.params)}"
                )
        if self.check is not None:
            try:
                self.check({**self.defaults, **params})
            except InvalidArgumentError as e:
                raise InvalidArgumentError(f"selector {self.name!r}: {e}") from None


#: The array-level selectors by name.
SELECTORS: Registry[SelectorInfo] = Registry("selector")


def register_selector(
    name: str,
    fn: Callable[..., np.ndarray],
    *,
    needs: Needs,
    description: str = "",
    defaults: Mapping[str, Any] | None = None,
    params: Iterable[str] | None = None,
    check: Callable[[Mapping[str, Any]], None] | None = None,
    overwrite: bool = False,
) -> SelectorInfo:
    """Add a selector under ``name`` (``overwrite=True`` to replace an existing one).

    Args:
        fn: ``fn(inputs, k, **params)``.
        params: the parameter names ``fn`` accepts; default: read from ``fn``'s signature
            (nothing is checked when ``fn`` takes ``**kwargs``).
        check: ``check(params)`` raising :class:`InvalidArgumentError` for a bad value, run
            before any decoding (see :meth:`SelectorInfo.check_params`).

    Raises:
        InvalidArgumentError: ``name`` is taken and ``overwrite`` is False, or a bad ``needs``.
    """
    accepted = frozenset(params) if params is not None else keyword_params(fn, skip=2)
    info = SelectorInfo(name, fn, needs, description, defaults or {}, accepted, check)
    return SELECTORS.register(name, info, overwrite=overwrite)


def available_selectors() -> tuple[str, ...]:
    """Names of the registered selectors, sorted."""
    return SELECTORS.names()


def get_selector(name: str) -> SelectorInfo:
    """The registered selector ``name``.

    Raises:
        InvalidArgumentError: ``name`` is not registered (the message lists the selectors).
    """
    return SELECTORS.get(name)


def run_selector(
    name: str,
    k: int,
    *,
    n: int | None = None,
    frame_embeds: Any = None,
    text_embed: Any = None,
    scores: Any = None,
    **params: Any,
) -> np.ndarray:
    """Run selector ``name`` on whatever inputs it needs.

    Args:
        name: a registered selector (see :func:`available_selectors`).
        k: frames to select.
        n: number of candidates (inferred from the embeddings or scores when omitted).
        frame_embeds: (n, d) float array (numpy or torch).
        text_embed: (d,) float array.
        scores: (n,) per-candidate relevance for score-based selectors.
        **params: selector parameters (e.g. ``lam``, ``segment_size``, ``power``).

    Returns:
        (min(k, n),) int64 ascending candidate indices.

    Raises:
        InvalidArgumentError: unknown selector, a parameter it does not take, or inputs it
            cannot work with.
    """
    info = get_selector(name)
    info.check_params(params)
    k = check_positive_int("k", k)
    if frame_embeds is not None and not _is_torch(frame_embeds):
        frame_embeds = numeric_array("frame_embeds", frame_embeds)
    if frame_embeds is not None and len(frame_embeds.shape) != 2:
        raise InvalidArgumentError(
            f"frame_embeds must be (n, d), got shape {tuple(frame_embeds.shape)}")
    if text_embed is not None and not _is_torch(text_embed):
        text_embed = numeric_array("text_embed", text_embed)
    if scores is not None:
        scores = _to_numpy(scores, "scores").astype(np.float64, copy=False)
    if n is None:
        if frame_embeds is not None:
            n = int(frame_embeds.shape[0])
        elif scores is not None:
            n = int(scores.reshape(-1).size)
        else:
            raise InvalidArgumentError(f"selector {name!r}: pass n, frame_embeds or scores")
    if info.needs == "embeddings" and (frame_embeds is None or text_embed is None):
        raise InvalidArgumentError(
            f"selector {name!r} needs frame_embeds and text_embed (an embedder)"
        )
    if info.needs == "scores" and scores is None and (frame_embeds is None or text_embed is None):
        raise InvalidArgumentError(
            f"selector {name!r} needs scores or frame_embeds and text_embed (an embedder)"
        )
    inputs = SelectorInputs(n, frame_embeds, text_embed, scores)
    return _positions(info.fn(inputs, k, **{**info.defaults, **params}), n, name)


def _positions(out: Any, n: int, name: str) -> np.ndarray:
    """A selector's answer checked: (k,) distinct integer positions in ``[0, n)`` (a plugin
    returning anything else is named here, not an IndexError or a repeated frame later)."""
    arr = np.asarray(out)
    integral = arr.size == 0 or np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and bool(np.all(np.mod(arr, 1) == 0)))
    if arr.ndim != 1 or not integral:
        raise InvalidArgumentError(f"selector {name!r} returned {arr.dtype} of shape "
                                   f"{arr.shape}; it must return (k,) integer positions")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n or np.unique(arr).size != arr.size):
        raise InvalidArgumentError(
            f"selector {name!r} returned positions {arr.tolist()[:12]} for {n} candidates; "
            f"they must be distinct and in [0, {n})")
    return arr


# --- built-in selectors -------------------------------------------------------------------------


def _keywords(fn: Callable[..., Any], *, exclude: Iterable[str] = ()) -> frozenset[str]:
    """Keyword-only parameters of an array-level selector (what the registry forwards)."""
    sig = inspect.signature(fn)
    return frozenset(p.name for p in sig.parameters.values()
                     if p.kind is p.KEYWORD_ONLY and p.name not in set(exclude))


def _check_segment_size(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(f"segment_size={value!r} must be an integer")


#: Value checks of the built-in selectors' parameters, by name (the same the selectors run).
_VALUE_CHECKS: dict[str, Callable[[Any], object]] = {
    "lam": check_lam,
    "alphas": check_alphas,
    "power": partial(check_positive_float, "power"),
    "t1": partial(check_finite_float, "t1", allow_bool=False),
    "t2": partial(check_finite_float, "t2", allow_bool=False),
    "max_depth": partial(check_positive_int, "max_depth", allow_zero=True),
    "condition_size": partial(check_positive_int, "condition_size", allow_zero=True),
    "segment_size": _check_segment_size,
    "mode": partial(check_choice, "mode", allowed=MDP3_MODES),
}


def _check_values(params: Mapping[str, Any]) -> None:
    """Run the value check of every built-in parameter in ``params``."""
    for key, value in params.items():
        checker = _VALUE_CHECKS.get(key)
        if checker is not None:
            checker(value)


register_selector(
    "uniform", lambda inp, k: uniform(inp.n, k), needs="none",
    description="evenly spaced candidates (first and last included); needs no model",
)
register_selector(
    "topk", lambda inp, k: topk(inp.relevance(), k), needs="scores",
    description="the k most relevant candidates",
)
register_selector(
    "bolt", lambda inp, k, **p: bolt(inp.relevance(), k, **p), needs="scores",
    description="BOLT inverse-transform sampling of relevance^power",
    defaults={"power": 3.0}, check=_check_values, params=_keywords(bolt),
)
register_selector(
    "aks", lambda inp, k, **p: aks(inp.relevance(), k, **p), needs="scores",
    description="AKS adaptive judge-and-split over the timeline",
    defaults={"t1": 0.8, "t2": -100.0, "max_depth": 5}, check=_check_values,
    params=_keywords(aks),
)
register_selector(
    "dpp", lambda inp, k, **p: dpp(inp.frame_embeds, inp.text_embed, k, **p),
    needs="embeddings",
    description="greedy MAP of the relevance-conditioned DPP (no segments)",
    defaults={"lam": 0.2}, check=_check_values,
    params=_keywords(dpp, exclude=("return_order",)),
)
register_selector(
    "mdp3", lambda inp, k, **p: mdp3(inp.frame_embeds, inp.text_embed, k, **p),
    needs="embeddings",
    description="MDP3: conditional DPP + segment DP with conditional gains (vidsel default)",
    defaults={"lam": 0.2, "segment_size": 32, "condition_size": 1, "mode": "conditional"},
    check=_check_values, params=_keywords(mdp3),
)
register_selector(
    "mdp3-reference", lambda inp, k, **p: mdp3(inp.frame_embeds, inp.text_embed, k, **p),
    needs="embeddings",
    description="MDP3 exactly as the Ovis plugin ships it (one segment, absolute rewards)",
    defaults={"lam": OVIS_DEFAULTS["lam"], "segment_size": OVIS_DEFAULTS["segment_size"],
              "condition_size": OVIS_DEFAULTS["condition_size"], "mode": "reference"},
    check=_check_values, params=_keywords(mdp3),
)
