"""Attention backends over packed, variable-length segments, chosen explicitly and resolved once.

Every backend computes the same thing: for packed ``q, k, v`` of shape ``(total, heads, head_dim)``
and segment boundaries ``cu_seqlens`` (int32, ``(num_segments + 1,)``), token ``i`` attends to
every token of its own segment and to nothing else (no causal mask).

Worked example: three frames of 4, 4 and 2 patches -> ``cu_seqlens = [0, 4, 8, 10]``; tokens 0-3,
4-7 and 8-9 form three independent attention problems.

Backends (registry :data:`ATTENTION_BACKENDS`, a :class:`vidsel.registry.Registry` of
:class:`AttentionSpec`; add one with :func:`register_attention_backend`):

========== ======================================================= ==========================
name       implementation                                          devices / dtypes
========== ======================================================= ==========================
sdpa       ``F.scaled_dot_product_attention`` once per distinct      any (default)
           segment length (equal-length segments are batched)
sdpa_masked one SDPA call over everything with a block-diagonal      any; O(total^2) memory,
           boolean mask (reference for agreement tests)             for tests
flex       FlexAttention with a document ``mask_mod`` block mask     CUDA (CPU runs unfused)
varlen     ``torch.nn.attention.varlen.varlen_attn``                CUDA, fp16 / bf16
flash      ``flash_attn.flash_attn_varlen_func`` (``gpu`` extra)     CUDA, fp16 / bf16
========== ======================================================= ==========================

Optional kernels are imported lazily, inside :func:`resolve_attention_backend`; asking for one that
cannot run raises (:class:`~ovis_model.errors.MissingDependencyError` when a package is missing,
:class:`~ovis_model.errors.InvalidArgumentError` for an unknown name or a device / dtype it cannot
run on). Nothing falls back silently.
"""

from __future__ import annotations

import inspect
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from vidsel import errors as vidsel_errors
from vidsel.registry import Registry

from .errors import InvalidArgumentError, MissingDependencyError

__all__ = [
    "ATTENTION_BACKENDS",
    "AttentionBackend",
    "AttentionSpec",
    "Segments",
    "available_attention_backends",
    "make_segments",
    "register_attention_backend",
    "resolve_attention_backend",
]

logger = logging.getLogger(__name__)


@dataclass
class Segments:
    """Attention segments of one packed sequence, computed once per forward and reused by layers.

    Attributes:
        cu_seqlens: int32 ``(S + 1,)`` on the compute device, starting at 0, non-decreasing.
        lengths: host list of the S segment lengths.
        max_seqlen: the longest segment (host int; kernels need it without a device sync).
        cache: per-backend prepared objects (index tensors, masks), filled lazily.
    """

    cu_seqlens: torch.Tensor
    lengths: list[int]
    max_seqlen: int
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return int(sum(self.lengths))


def make_segments(cu_seqlens: torch.Tensor | list[int], device: torch.device | str) -> Segments:
    """Validate ``cu_seqlens`` once (one host transfer) and wrap it as :class:`Segments`."""
    host = (cu_seqlens.detach().to("cpu", torch.int64).tolist()
            if isinstance(cu_seqlens, torch.Tensor) else [int(x) for x in cu_seqlens])
    if len(host) < 2 or host[0] != 0:
        raise InvalidArgumentError(
            f"cu_seqlens must start at 0 and hold at least one segment, got {host[:8]}")
    lengths = [b - a for a, b in itertools.pairwise(host)]
    if any(n < 0 for n in lengths):
        raise InvalidArgumentError(f"cu_seqlens must be non-decreasing, got {host[:16]}")
    lengths = [n for n in lengths if n > 0]  # empty segments are legal and ignored
    cu = [0]
    for n in lengths:
        cu.append(cu[-1] + n)
    tensor = torch.tensor(cu, dtype=torch.int32, device=device)
    return Segments(cu_seqlens=tensor, lengths=lengths, max_seqlen=max(lengths, default=0))


AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Segments, float, float],
                       torch.Tensor]


@dataclass(frozen=True)
class AttentionBackend:
    """A resolved backend: ``fn(q, k, v, segments, scale, dropout_p) -> out``.

    ``q, k, v``: ``(total, heads, head_dim)``; ``out``: ``(total, heads, head_dim)``.
    """

    name: str
    fn: AttentionFn
    cuda_only: bool = False

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, segments: Segments,
                 scale: float, dropout_p: float = 0.0) -> torch.Tensor:
        if self.cuda_only and not q.is_cuda:
            raise InvalidArgumentError(
                f"attention backend {self.name!r} runs on CUDA only, got tensors on {q.device}")
        return self.fn(q, k, v, segments, scale, dropout_p)


# --------------------------------------------------------------------------------------------
# sdpa: one call per distinct segment length


def _sdpa_groups(segments: Segments, device: torch.device) -> list[tuple[int, torch.Tensor | None,
                                                                         int, int]]:
    """Group segments by length.

    Returns ``(length, index, start, count)`` tuples: ``index`` is a ``(count, length)`` long
    tensor of token positions, or None when the group is one contiguous run starting at
    ``start`` (then a reshape is enough and nothing is gathered).
    """
    key = f"sdpa_groups:{device}"
    if key in segments.cache:
        return segments.cache[key]  # type: ignore[no-any-return]
    starts: dict[int, list[int]] = {}
    offset = 0
    for n in segments.lengths:
        starts.setdefault(n, []).append(offset)
        offset += n
    groups: list[tuple[int, torch.Tensor | None, int, int]] = []
    for n, s in starts.items():
        contiguous = all(b - a == n for a, b in itertools.pairwise(s))
        if contiguous:
            groups.append((n, None, s[0], len(s)))
        else:
            base = torch.tensor(s, dtype=torch.long, device=device)[:, None]  # (count, 1)
            index = base + torch.arange(n, device=device)[None, :]  # (count, n)
            groups.append((n, index, 0, len(s)))
    segments.cache[key] = groups
    return groups


def _sdpa_per_segment(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, segments: Segments,
                      scale: float, dropout_p: float) -> torch.Tensor:
    total, heads, dim = q.shape
    groups = _sdpa_groups(segments, q.device)
    if len(groups) == 1 and groups[0][1] is None and groups[0][2] == 0:
        n, _, _, count = groups[0]
        # (total, H, D) -> (count, n, H, D) -> (count, H, n, D)
        qb, kb, vb = (x.view(count, n, heads, dim).transpose(1, 2) for x in (q, k, v))
        out = F.scaled_dot_product_attention(qb, kb, vb, dropout_p=dropout_p, scale=scale)
        return out.transpose(1, 2).reshape(total, heads, dim)
    out = torch.empty_like(q)
    for n, index, start, count in groups:
        if index is None:
            sl = slice(start, start + n * count)
            qb, kb, vb = (x[sl].view(count, n, heads, dim).transpose(1, 2) for x in (q, k, v))
            o = F.scaled_dot_product_attention(qb, kb, vb, dropout_p=dropout_p, scale=scale)
            out[sl] = o.transpose(1, 2).reshape(count * n, heads, dim)
        else:
            flat = index.reshape(-1)  # (count * n,)
            qb, kb, vb = (x[flat].view(count, n, heads, dim).transpose(1, 2) for x in (q, k, v))
            o = F.scaled_dot_product_attention(qb, kb, vb, dropout_p=dropout_p, scale=scale)
            out[flat] = o.transpose(1, 2).reshape(count * n, heads, dim)
    return out


# --------------------------------------------------------------------------------------------
# sdpa_masked: one call with a block-diagonal mask (reference)


def _segment_ids(segments: Segments, device: torch.device) -> torch.Tensor:
    """``(total,)`` long: the segment number of every token."""
    key = f"segment_ids:{device}"
    if key not in segments.cache:
        lengths = torch.tensor(segments.lengths, dtype=torch.long, device=device)
        segments.cache[key] = torch.repeat_interleave(
            torch.arange(len(segments.lengths), device=device), lengths)
    return segments.cache[key]  # type: ignore[no-any-return]


def _sdpa_masked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, segments: Segments,
                 scale: float, dropout_p: float) -> torch.Tensor:
    ids = _segment_ids(segments, q.device)
    mask = ids[:, None] == ids[None, :]  # (total, total) bool, True = attend
    # (total, H, D) -> (1, H, total, D)
    qb, kb, vb = (x.transpose(0, 1)[None] for x in (q, k, v))
    out = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=mask, dropout_p=dropout_p,
                                         scale=scale)
    return out[0].transpose(0, 1)  # (total, H, D)


# --------------------------------------------------------------------------------------------
# flex: FlexAttention with a document mask


def _make_flex() -> AttentionFn:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    compiled: dict[str, Callable[..., Any]] = {}

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, segments: Segments, scale: float,
            dropout_p: float) -> torch.Tensor:
        if dropout_p:
            raise InvalidArgumentError("attention backend 'flex' does not support dropout")
        key = f"flex_mask:{q.device}"
        if key not in segments.cache:
            ids = _segment_ids(segments, q.device)

            def document(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
                return ids[q_idx] == ids[kv_idx]

            # compiled mask construction on CUDA: never materialises the (total, total) mask
            segments.cache[key] = create_block_mask(
                document, B=None, H=None, Q_LEN=q.shape[0], KV_LEN=q.shape[0], device=q.device,
                _compile=q.is_cuda)
        if q.is_cuda:
            if "fn" not in compiled:
                compiled["fn"] = torch.compile(flex_attention, dynamic=True)
            fn = compiled["fn"]
        else:
            fn = flex_attention  # eager (unfused) on CPU: correct, for tests only
        # (total, H, D) -> (1, H, total, D)
        qb, kb, vb = (x.transpose(0, 1)[None] for x in (q, k, v))
        out = fn(qb, kb, vb, block_mask=segments.cache[key], scale=scale)
        return out[0].transpose(0, 1)  # type: ignore[no-any-return]

    return run


# --------------------------------------------------------------------------------------------
# varlen: PyTorch's own flash varlen kernel


def _make_varlen() -> AttentionFn:
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError as exc:  # torch < 2.10
        raise MissingDependencyError(
            "attention backend 'varlen' needs torch.nn.attention.varlen (PyTorch >= 2.10); "
            f"this is torch {torch.__version__}") from exc
    takes_scale = "scale" in inspect.signature(varlen_attn).parameters

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, segments: Segments, scale: float,
            dropout_p: float) -> torch.Tensor:
        if dropout_p:
            raise InvalidArgumentError("attention backend 'varlen' does not support dropout")
        cu = segments.cu_seqlens
        n = segments.max_seqlen
        if takes_scale:
            out = varlen_attn(q, k, v, cu, cu, n, n, scale=scale)
            return out  # type: ignore[return-value]
        if abs(scale - q.shape[-1] ** -0.5) > 1e-12:
            raise InvalidArgumentError(
                "this torch's varlen_attn has no 'scale' argument; only the default scale works")
        out = varlen_attn(q, k, v, cu, cu, n, n)
        return out  # type: ignore[return-value]

    return run


# --------------------------------------------------------------------------------------------
# flash: flash-attn's varlen kernel (optional `gpu` extra)


def _make_flash() -> AttentionFn:
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError as exc:
        raise MissingDependencyError(
            "attention backend 'flash' needs flash-attn: pip install 'vidsel[gpu]' "
            "(or pip install flash-attn --no-build-isolation on a CUDA machine)") from exc

    def run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, segments: Segments, scale: float,
            dropout_p: float) -> torch.Tensor:
        cu = segments.cu_seqlens
        n = segments.max_seqlen
        return flash_attn_varlen_func(  # type: ignore[no-any-return]
            q, k, v, cu, cu, n, n, dropout_p=dropout_p, softmax_scale=scale, causal=False)

    return run


@dataclass(frozen=True)
class AttentionSpec:
    """A registered attention backend, not yet resolved.

    Attributes:
        factory: builds the attention function (imports the optional kernel); called once per
            :func:`resolve_attention_backend`.
        cuda_only: runs on CUDA tensors only.
        half_only: runs in float16 / bfloat16 only.
        doc: one line for logs and listings.
    """

    factory: Callable[[], AttentionFn]
    cuda_only: bool = False
    half_only: bool = False
    doc: str = ""


#: Registry of attention backends: name -> :class:`AttentionSpec`. Resolve a name with
#: :func:`resolve_attention_backend`; add one with :func:`register_attention_backend`.
ATTENTION_BACKENDS: Registry[AttentionSpec] = Registry("attn_impl")


def register_attention_backend(name: str, factory: Callable[[], AttentionFn], *,
                               cuda_only: bool = False, half_only: bool = False, doc: str = "",
                               overwrite: bool = False) -> AttentionSpec:
    """Register a vision attention backend under ``name``.

    Args:
        factory: returns ``fn(q, k, v, segments, scale, dropout_p) -> out`` with ``q, k, v,
            out`` of shape ``(total, heads, head_dim)``; import optional kernels inside it.
        overwrite: replace an existing entry of that name.

    Raises:
        InvalidArgumentError: ``name`` is taken (and ``overwrite`` is False) or empty.
    """
    spec = AttentionSpec(factory, cuda_only=cuda_only, half_only=half_only, doc=doc)
    try:
        return ATTENTION_BACKENDS.register(name, spec, overwrite=overwrite)
    except vidsel_errors.InvalidArgumentError as exc:
        raise InvalidArgumentError(str(exc)) from None


register_attention_backend("sdpa", lambda: _sdpa_per_segment,
                           doc="SDPA once per distinct segment length (default; CPU and GPU)")
register_attention_backend("sdpa_masked", lambda: _sdpa_masked,
                           doc="one SDPA call with a block-diagonal mask (reference)")
register_attention_backend("flex", _make_flex, doc="FlexAttention with a document block mask")
register_attention_backend("varlen", _make_varlen, cuda_only=True, half_only=True,
                           doc="torch.nn.attention.varlen.varlen_attn")
register_attention_backend("flash", _make_flash, cuda_only=True, half_only=True,
                           doc="flash_attn.flash_attn_varlen_func")


def _get_spec(name: str) -> AttentionSpec:
    try:
        return ATTENTION_BACKENDS.get(name)
    except vidsel_errors.InvalidArgumentError as exc:
        raise InvalidArgumentError(str(exc)) from None


def resolve_attention_backend(name: str, device: torch.device | str | None = None,
                              dtype: torch.dtype | None = None) -> AttentionBackend:
    """Resolve ``name`` for ``device`` / ``dtype`` once, importing optional kernels now.

    Raises:
        InvalidArgumentError: unknown name (the message lists the registered ones), or a
            device / dtype the backend cannot run on.
        MissingDependencyError: the backend's package is not installed.
    """
    spec = _get_spec(name)
    dev = torch.device(device) if device is not None else None
    if spec.cuda_only and (dev is None or dev.type != "cuda"):
        raise InvalidArgumentError(
            f"attn_impl={name!r} needs a CUDA device, got device={dev}; use 'sdpa' on CPU")
    if spec.half_only and dtype is not None and dtype not in (torch.float16, torch.bfloat16):
        raise InvalidArgumentError(
            f"attn_impl={name!r} runs in float16 / bfloat16 only, got dtype={dtype}")
    fn = spec.factory()
    logger.info("vision attention backend: %s (%s) on %s", name, spec.doc, dev)
    return AttentionBackend(name=name, fn=fn, cuda_only=spec.cuda_only)


def available_attention_backends(device: torch.device | str = "cpu",
                                 dtype: torch.dtype | None = None) -> list[str]:
    """Names that :func:`resolve_attention_backend` accepts here for ``device`` / ``dtype``."""
    out = []
    for name in ATTENTION_BACKENDS:
        try:
            resolve_attention_backend(name, device, dtype)
        except (InvalidArgumentError, MissingDependencyError):
            continue
        out.append(name)
    return out
