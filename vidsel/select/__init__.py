"""Array-level keyframe selectors: embeddings (or scores) in, candidate indices out.

No model is needed here: every function takes plain arrays (numpy, or torch where noted).

- :func:`mdp3` — MDP3 (relevance + DPP diversity + segment DP), ``mode="conditional"`` (default)
  or ``mode="reference"`` (the public Ovis implementation's exact behaviour);
- :func:`dpp` — greedy MAP of the relevance-conditioned DPP; :func:`dpp_greedy` — greedy MAP of
  any PSD kernel matrix (numpy or torch, fast incremental Cholesky);
- :func:`uniform`, :func:`topk`, :func:`bolt`, :func:`aks` — baselines;
- :func:`multi_gaussian_kernel`, :func:`relevance` — the MDP3 kernel;
- a registry (:data:`SELECTORS`, a :class:`vidsel.registry.Registry`, and its helpers
  :func:`available_selectors`, :func:`get_selector`, :func:`run_selector`,
  :func:`register_selector`).

Shapes: ``frame_embeds`` (n, d) float, ``text_embed`` (d,) float, ``scores`` (n,) float;
selectors return (min(k, n),) int64 indices into the candidates, ascending.

Example:
    >>> import numpy as np
    >>> from vidsel.select import mdp3
    >>> x = np.random.default_rng(0).standard_normal((64, 16))
    >>> x /= np.linalg.norm(x, axis=1, keepdims=True)
    >>> mdp3(x, x[3], 4, segment_size=16).tolist()  # doctest: +SKIP
"""

from ._baselines import aks, bolt, cosine_scores, topk, uniform
from ._dpp import MIN_LAM, dpp, dpp_greedy
from ._kernel import DEFAULT_ALPHAS, multi_gaussian_kernel, relevance
from ._mdp3 import MDP3_MODES, OVIS_DEFAULTS, mdp3, mdp3_objective
from ._registry import (
    SELECTORS,
    SelectorInfo,
    SelectorInputs,
    available_selectors,
    get_selector,
    register_selector,
    run_selector,
)

__all__ = [
    "DEFAULT_ALPHAS",
    "MDP3_MODES",
    "MIN_LAM",
    "OVIS_DEFAULTS",
    "SELECTORS",
    "SelectorInfo",
    "SelectorInputs",
    "aks",
    "available_selectors",
    "bolt",
    "cosine_scores",
    "dpp",
    "dpp_greedy",
    "get_selector",
    "mdp3",
    "mdp3_objective",
    "multi_gaussian_kernel",
    "register_selector",
    "relevance",
    "run_selector",
    "topk",
    "uniform",
]
