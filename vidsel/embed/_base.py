"""The embedder interface: frames and text in, L2-normalised float32 vectors out."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .._progress import progress_bar
from .._validate import check_choice, check_positive_int
from ..errors import InvalidArgumentError, UnsupportedRequestError
from ..optional import require
from ._text import PromptCleaner

__all__ = ["DTYPES", "Embedder", "import_torch"]

logger = logging.getLogger(__name__)

DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")


def import_torch(feature: str = "vidsel's embedders") -> Any:
    """torch, imported on first use.

    Raises:
        MissingDependencyError: "... needs torch and transformers: pip install 'vidsel[embed]'".
    """
    return require("torch", feature, extra="embed", needs="torch and transformers")


class Embedder(ABC):
    """Image and text encoder of a contrastive model (CLIP, SigLIP, SigLIP2).

    Subclasses load their model in a ``from_pretrained``-style classmethod and implement
    :meth:`_encode_pixels` and :meth:`_encode_text`. This base class batches, moves data to the
    device, L2-normalises, applies the optional prompt cleaner and averages long-text chunks.

    Attributes:
        device: torch device string the model runs on.
        dtype: compute dtype name (``"float32"``, ``"bfloat16"``, ``"float16"``).
        batch_size: frames per forward pass.
        max_text_tokens: longest token chunk fed to the text tower (MDP3: 64).
        prompt_cleaner: optional ``str -> str`` applied before tokenising.
    """

    #: registry kind, e.g. "hf" or "open_clip"
    kind: str = ""

    def __init__(self, *, device: str = "cpu", dtype: str = "auto", batch_size: int = 32,
                 max_text_tokens: int = 64, prompt_cleaner: PromptCleaner | None = None) -> None:
        check_choice("dtype", dtype, DTYPES)
        self.device = str(device)
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.dtype = dtype
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.max_text_tokens = check_positive_int("max_text_tokens", max_text_tokens)
        self.prompt_cleaner = prompt_cleaner

    # --- identity -------------------------------------------------------------------------------
    @property
    @abstractmethod
    def name(self) -> str:
        """Registry spec that reloads this embedder, e.g. ``"hf:/models/siglip"``."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Embedding dimension d."""

    @property
    def cache_key(self) -> str:
        """Identity of the image embedding function (model + weights + preprocessing + dtype),
        used to key cached frame embeddings."""
        return f"{self.name}|{self._weights_fingerprint()}|{self.dtype}"

    def _weights_fingerprint(self) -> str:
        return ""

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, device={self.device!r},"
                f" dtype={self.dtype!r})")

    @property
    def torch_dtype(self) -> Any:
        torch = import_torch()
        return {"float32": torch.float32, "bfloat16": torch.bfloat16,
                "float16": torch.float16}[self.dtype]

    # --- images ---------------------------------------------------------------------------------
    def embed_images(self, frames: np.ndarray | Sequence[np.ndarray] | Iterable[Any], *,
                     progress: bool | None = None) -> np.ndarray:
        """Embed frames.

        Args:
            frames: (N, H, W, 3) uint8 RGB array, or a sequence of (H, W, 3) uint8 arrays / PIL
                images.
            progress: a progress bar over frames on stderr (None: the process default,
                see :mod:`vidsel._progress`).

        Returns:
            (N, d) float32, rows L2-normalised.
        """
        batch = _as_frame_list(frames)
        if not batch:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._batched(batch, self._encode_pixels, "embedding frames", progress)

    def _batched(self, batch: list[Any], encode: Any, desc: str,
                 progress: bool | None) -> np.ndarray:
        """``encode`` over ``batch`` in chunks of ``batch_size`` (no grad, a progress bar),
        each output vector (last axis) L2-normalised; float32 numpy."""
        torch = import_torch()
        out = []
        with torch.inference_mode(), progress_bar(total=len(batch), desc=desc, unit="frame",
                                                  progress=progress) as bar:
            for i in range(0, len(batch), self.batch_size):
                feats = encode(batch[i : i + self.batch_size])  # (b, ..., d)
                feats = torch.nn.functional.normalize(feats.float(), dim=-1)
                out.append(feats.cpu().numpy())
                bar.update(min(self.batch_size, len(batch) - i))
        return np.concatenate(out).astype(np.float32, copy=False)

    # --- patches --------------------------------------------------------------------------------
    #: Whether :meth:`embed_patches` works: the model gives patch features in the space of its
    #: text embeddings (subclasses that implement :meth:`_encode_patch_pixels` set it).
    supports_patches: bool = False

    def embed_patches(self, frames: np.ndarray | Sequence[np.ndarray], *,
                      progress: bool | None = None) -> np.ndarray:
        """Embed each frame's patches in the text space (for region relevance).

        Args:
            frames: (N, H, W, 3) uint8 RGB array, or a sequence of (H, W, 3) arrays of one
                size. Every patch covers its share of the whole picture: nothing is cropped
                (the picture is resized to the model's input, aspect ratio not kept).
            progress: a progress bar over frames (as :meth:`embed_images`).

        Returns:
            (N, gh, gw, d) float32, each patch vector L2-normalised; (gh, gw) is the model's
            patch grid, row-major over the picture.

        Raises:
            UnsupportedRequestError: the embedder gives no patch features
                (:attr:`supports_patches` is False).
        """
        if not self.supports_patches:
            raise UnsupportedRequestError(
                f"{self.name}: this embedder gives no patch features; patch relevance needs "
                f"one that does (e.g. 'hf:' SigLIP / SigLIP2 checkpoints)")
        batch = _as_frame_list(frames)
        if not batch:
            return np.zeros((0, 0, 0, self.dim), dtype=np.float32)
        if len({np.asarray(f).shape for f in batch}) > 1:
            raise InvalidArgumentError("embed_patches: the frames must all have one size")
        return self._batched(batch, self._encode_patch_pixels, "embedding patches", progress)

    def _encode_patch_pixels(self, frames: list[Any]) -> Any:
        """(b,) frames -> (b, gh, gw, d) torch tensor of (unnormalised) patch features in the
        text space. Implemented by embedders with :attr:`supports_patches`."""
        raise UnsupportedRequestError(f"{type(self).__name__} gives no patch features")

    # --- text -----------------------------------------------------------------------------------
    def embed_text(self, text: str) -> np.ndarray:
        """Embed a question/prompt.

        The prompt cleaner (if any) runs first. Text longer than ``max_text_tokens`` tokens is cut
        into head/tail chunks (see :func:`~vidsel.embed.head_tail_chunks`); the result is the mean
        of the L2-normalised chunk embeddings (not re-normalised, as MDP3 does).

        Returns:
            (d,) float32.
        """
        if not isinstance(text, str):
            raise InvalidArgumentError(f"text must be a str, got {type(text).__name__}")
        if self.prompt_cleaner is not None:
            text = self.prompt_cleaner(text)
        torch = import_torch()
        with torch.inference_mode():
            feats = self._encode_text(text)  # (chunks, d)
            feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        if feats.shape[0] > 1:
            logger.debug("text of %d chunks embedded (mean of chunks)", feats.shape[0])
        return np.asarray(feats.mean(dim=0).cpu().numpy(), dtype=np.float32)

    # --- backend hooks --------------------------------------------------------------------------
    @abstractmethod
    def _encode_pixels(self, frames: list[Any]) -> Any:
        """(b,) frames -> (b, d) torch tensor of (unnormalised) image features."""

    @abstractmethod
    def _encode_text(self, text: str) -> Any:
        """text -> (chunks, d) torch tensor of (unnormalised) text features."""


def _as_frame_list(frames: Any) -> list[Any]:
    if isinstance(frames, np.ndarray):
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise InvalidArgumentError(
                f"frames must be (N, H, W, 3) uint8 RGB, got shape {frames.shape}"
            )
        if not frames.flags.writeable:  # torch warns on read-only arrays (torch.from_numpy)
            frames = frames.copy()
        return [frames[i] for i in range(frames.shape[0])]
    return [f.copy() if isinstance(f, np.ndarray) and not f.flags.writeable else f
            for f in frames]


def unwrap_features(out: Any) -> Any:
    """transformers 5 returns model outputs from ``get_*_features``; older versions tensors."""
    if hasattr(out, "pooler_output") and out.pooler_output is not None:
        return out.pooler_output
    if isinstance(out, (tuple, list)):
        return out[0]
    return out
