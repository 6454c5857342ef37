"""Text handling shared by the embedders: MDP3's long-text chunking and prompt cleaning."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..errors import InvalidArgumentError

__all__ = ["PromptCleaner", "head_tail_chunks", "make_prompt_cleaner"]

T = TypeVar("T")

#: A prompt cleaner maps the raw question/prompt to the text that is embedded.
PromptCleaner = Callable[[str], str]


def head_tail_chunks(tokens: Sequence[T], max_len: int) -> list[list[T]]:
    """Split a token sequence into equal chunks of <= ``max_len``, taken alternately from head
    and tail, returned in text order (MDP3's scheme for text longer than SigLIP's 64 tokens).

    With ``L`` tokens: ``c = ceil(L / max_len)`` chunks of ``s = ceil(L / c)`` tokens; chunk 1 is
    ``tokens[0:s]``, chunk 2 ``tokens[L-s:L]``, chunk 3 ``tokens[s:2s]``, ... until head and
    tail meet (the last head chunk may overlap the tail ones, so every chunk has length ``s``).

    Example:
        >>> head_tail_chunks(list(range(10)), 4)
        [[0, 1, 2, 3], [4, 5, 6, 7], [6, 7, 8, 9]]
    """
    if max_len < 1:
        raise InvalidArgumentError(f"max_len={max_len} must be >= 1")
    n = len(tokens)
    if n <= max_len:
        return [list(tokens)]
    stride = math.ceil(n / math.ceil(n / max_len))
    heads: list[list[T]] = []
    tails: list[list[T]] = []
    lo, hi = 0, n
    while lo < hi:
        heads.append(list(tokens[lo : lo + stride]))
        lo += stride
        if lo < hi:
            tails.append(list(tokens[hi - stride : hi]))
            hi -= stride
    return heads + tails[::-1]


def make_prompt_cleaner(
    heads: Sequence[str] = (), tails: Sequence[str] = ()
) -> PromptCleaner:
    """Build a cleaner that drops boilerplate before/after the question (MDP3's semantics).

    For each phrase in ``heads`` the text is cut to what follows its last occurrence; for each
    phrase in ``tails`` to what precedes its first occurrence; then whitespace is stripped. The
    phrases are the caller's (a benchmark's instructions), never built into the library.

    Example:
        >>> clean = make_prompt_cleaner(tails=["Answer with the option's letter"])
        >>> clean("What moves? A. box B. cat Answer with the option's letter.")
        'What moves? A. box B. cat'
    """
    heads = tuple(heads)
    tails = tuple(tails)

    def clean(prompt: str) -> str:
        for h in heads:
            prompt = prompt.split(h)[-1]
        for t in tails:
            prompt = prompt.split(t)[0]
        return prompt.strip()

    return clean
