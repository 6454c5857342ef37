"""Text tokenizers the processor can use: the :class:`TextTokenizer` protocol, a real tiny
:class:`ByteTokenizer` for tests and :class:`HFTokenizer` around a checkpoint's transformers
tokenizer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from ._optional import require
from .errors import ModelNotAvailableError

__all__ = ["ByteTokenizer", "HFTokenizer", "TextTokenizer"]


class TextTokenizer(Protocol):
    """What the processor needs from a text tokenizer."""

    eos_token_id: int | None
    pad_token_id: int | None

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str: ...


class ByteTokenizer:
    """UTF-8 bytes (ids 0-255) + ChatML special tokens: a real, tiny tokenizer for tests.

    Vocabulary size 261; fits the ``tiny`` preset's 1024-entry LLM vocabulary.
    """

    SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")

    def __init__(self) -> None:
        self.special_ids = {tok: 256 + i for i, tok in enumerate(self.SPECIALS)}
        self.id_to_special = {v: k for k, v in self.special_ids.items()}
        self._split = re.compile("(" + "|".join(re.escape(s) for s in self.SPECIALS) + ")")
        self.eos_token_id: int | None = self.special_ids["<|im_end|>"]
        self.pad_token_id: int | None = self.special_ids["<|endoftext|>"]

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.SPECIALS)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for part in self._split.split(text):
            if part in self.special_ids:
                ids.append(self.special_ids[part])
            elif part:
                ids.extend(part.encode("utf-8"))
        return ids

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        out = bytearray()
        for i in ids:
            i = int(i)
            if i < 256:
                out.append(i)
            elif i in self.id_to_special and not skip_special_tokens:
                out.extend(self.id_to_special[i].encode())
        return out.decode("utf-8", errors="replace")


class HFTokenizer:
    """Adapter around a transformers tokenizer (e.g. the checkpoint's Qwen tokenizer)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.eos_token_id: int | None = tokenizer.convert_tokens_to_ids("<|im_end|>")
        if self.eos_token_id is None or self.eos_token_id == tokenizer.unk_token_id:
            self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id: int | None = tokenizer.pad_token_id

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> HFTokenizer:
        transformers = require("transformers", "HFTokenizer")
        try:
            # an empty config: the tokenizer's own tokenizer_config.json names its class, and
            # transformers would otherwise read the checkpoint's config.json (model_type
            # ovis2_5, unknown to it) and warn that the model type does not match
            tok = transformers.AutoTokenizer.from_pretrained(
                str(directory), trust_remote_code=False, config=transformers.PretrainedConfig())
        except (OSError, ValueError) as exc:
            raise ModelNotAvailableError(f"{directory}: no usable tokenizer ({exc})") from exc
        return cls(tok)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens))
