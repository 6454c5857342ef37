"""Per-patch (t, h, w) positions, attention segments and rotary frequencies.

Every patch the encoder sees carries an integer position ``(t, h, w)``: ``t`` the source frame
index (0 for a still image), ``h, w`` the patch row / column inside that frame's patch grid.
Images, uniform frames and codec patches only differ in which positions they carry.

Patches are packed in *merge-block order*: the ``hidden_stride x hidden_stride`` patches that the
visual tokenizer later concatenates into one visual token are consecutive. For one frame of
``4 x 6`` patches and ``hidden_stride = 2`` (worked example, ``t`` omitted)::

    packed order ->  (0,0) (0,1) (1,0) (1,1) | (0,2) (0,3) (1,2) (1,3) | (0,4) (0,5) (1,4) (1,5)
                     (2,0) (2,1) (3,0) (3,1) | (2,2) (2,3) (3,2) (3,3) | (2,4) (2,5) (3,4) (3,5)

which is the official Ovis2.5 order ``(t, h/2, w/2, 2, 2)``.

Two rotary schemes:

* ``navit2d`` (Ovis2.5 / SigLIP2-NaViT): ``head_dim/4`` frequencies ``theta^(-2i/(head_dim/2))``
  for h and the same for w, concatenated ``[h | w]`` and duplicated, applied half-split
  (``rotate_half``). ``t`` is not used.
* ``rope3d`` (OneVision): ``head_dim/2`` frequencies split 4:6:6 between t, h, w, each axis with
  ``theta^(-i/n_axis)``, concatenated ``[t | h | w]`` and duplicated, applied with interleaved
  pairs ``(x0, x1) -> (-x1, x0)``. For head_dim 64: 8 t-, 12 h- and 12 w-frequencies.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .errors import InvalidArgumentError

__all__ = [
    "apply_rotary",
    "block_order_positions",
    "layout_from_grids",
    "rotary_frequencies",
    "segments_from_positions",
    "window_partition",
]


def block_order_positions(t: int, h: int, w: int, hidden_stride: int, *,
                          frame_ids: Sequence[int] | None = None) -> torch.Tensor:
    """Positions of a ``t x h x w`` patch grid in merge-block order.

    Args:
        t, h, w: grid size in patches; ``h`` and ``w`` must be multiples of ``hidden_stride``.
        hidden_stride: merge factor (2 for Ovis2.5).
        frame_ids: the ``t`` value of each of the ``t`` frames (default ``0..t-1``), e.g. source
            frame indices of uniformly sampled frames.

    Returns:
        long ``(t*h*w, 3)`` rows ``(t, h, w)``.
    """
    s = hidden_stride
    if h % s or w % s:
        raise InvalidArgumentError(
            f"grid ({h}, {w}) is not a multiple of hidden_stride={s}")
    ft = (torch.arange(t, dtype=torch.long) if frame_ids is None
          else torch.as_tensor(list(frame_ids), dtype=torch.long))
    if ft.numel() != t:
        raise InvalidArgumentError(f"frame_ids has {ft.numel()} entries for t={t}")
    hh = torch.arange(h).view(h // s, s, 1, 1).expand(h // s, s, w // s, s)
    ww = torch.arange(w).view(1, 1, w // s, s).expand(h // s, s, w // s, s)
    # (h/s, s, w/s, s) -> (h/s, w/s, s, s): block rows, block cols, in-block row, in-block col
    hh = hh.permute(0, 2, 1, 3).reshape(-1)  # (h*w,)
    ww = ww.permute(0, 2, 1, 3).reshape(-1)  # (h*w,)
    n = h * w
    tt = ft.repeat_interleave(n)  # (t*h*w,)
    return torch.stack([tt, hh.repeat(t), ww.repeat(t)], dim=1)


def segments_from_positions(positions: torch.Tensor, item_ids: torch.Tensor, mode: str,
                            frames_per_segment: int = 4) -> torch.Tensor:
    """Attention segment boundaries for packed patches.

    Args:
        positions: long ``(N, 3)`` (t, h, w), packed (frames of an item contiguous).
        item_ids: long ``(N,)`` image / video / codec-sample number of each patch.
        mode: ``"frame"`` (new segment whenever the item or t changes), ``"item"`` (one per item)
            or ``"window"`` (``frames_per_segment`` consecutive distinct frames of an item).

    Returns:
        int32 ``cu_seqlens`` ``(S + 1,)``.

    Example: an item of 3 frames with 4 patches each followed by an image of 4 patches gives
    ``[0, 4, 8, 12, 16]`` for "frame", ``[0, 12, 16]`` for "item", ``[0, 8, 12, 16]`` for
    "window" with 2 frames per segment.
    """
    n = positions.shape[0]
    if n == 0:
        return torch.zeros(1, dtype=torch.int32)
    item_ids = item_ids.to(torch.long)
    new_item = torch.ones(n, dtype=torch.bool)
    new_item[1:] = item_ids[1:] != item_ids[:-1]
    new_frame = new_item.clone()
    new_frame[1:] |= positions[1:, 0] != positions[:-1, 0]
    if mode == "frame":
        starts = new_frame
    elif mode == "item":
        starts = new_item
    elif mode == "window":
        # frame ordinal inside its item: cumulative count of frame starts, reset at each item
        frame_no = torch.cumsum(new_frame.to(torch.long), 0) - 1  # (N,) global frame ordinal
        first_frame_of_item = frame_no[new_item]  # ordinal of each item's first frame
        item_no = torch.cumsum(new_item.to(torch.long), 0) - 1  # (N,)
        local = frame_no - first_frame_of_item[item_no]  # (N,) frame ordinal within item
        starts = new_item | (new_frame & (local % frames_per_segment == 0))
    else:
        raise InvalidArgumentError(
            f"segment mode={mode!r} is unknown; allowed: ['frame', 'item', 'window']")
    idx = torch.nonzero(starts).flatten()
    cu = torch.cat([idx, torch.tensor([n])])
    return cu.to(torch.int32)


def window_partition(positions: torch.Tensor, cu_seqlens: torch.Tensor, hidden_stride: int,
                     window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Window attention layout (Ovis2.5's ``get_window_index``) for packed patches.

    Windows are ``window x window`` merged tokens of one frame (a frame = consecutive patches with
    one ``t`` inside one segment), numbered row-major; merge blocks keep their order inside a
    window and their ``hidden_stride**2`` patches stay together.

    Args:
        positions: long ``(N, 3)`` in merge-block order.
        cu_seqlens: int32 ``(S + 1,)`` full-attention segments.
        hidden_stride: merge factor.
        window: window side in merged tokens (``window_size // hidden_stride // patch_size``).

    Returns:
        ``(perm, cu_window_seqlens)``: ``perm`` long ``(N,)`` such that ``x[perm]`` is the
        window-major order (undo with ``argsort(perm)``); ``cu_window_seqlens`` int32.
    """
    n = positions.shape[0]
    unit = hidden_stride * hidden_stride
    if n % unit:
        raise InvalidArgumentError(f"{n} patches are not a whole number of merge blocks")
    device = positions.device
    seg = torch.zeros(n, dtype=torch.long, device=device)
    bounds = cu_seqlens.to(device=device, dtype=torch.long)[1:-1]
    if bounds.numel():
        seg = torch.bucketize(torch.arange(n, device=device), bounds, right=True)
    new_frame = torch.ones(n, dtype=torch.bool, device=device)
    new_frame[1:] = (seg[1:] != seg[:-1]) | (positions[1:, 0] != positions[:-1, 0])
    frame = torch.cumsum(new_frame.to(torch.long), 0) - 1  # (N,) frame ordinal
    wr = torch.div(positions[:, 1], hidden_stride * window, rounding_mode="floor")
    wc = torch.div(positions[:, 2], hidden_stride * window, rounding_mode="floor")
    # one key per merge block (its first patch), ordered (frame, window row, window column)
    bf, br, bc = frame[::unit], wr[::unit], wc[::unit]
    big = int(max(int(br.max()), int(bc.max())) + 1) if n else 1
    key = (bf * big + br) * big + bc  # (N/unit,)
    order = torch.sort(key, stable=True).indices  # (N/unit,) block permutation
    perm = (order[:, None] * unit + torch.arange(unit, device=device)[None, :]).reshape(-1)
    sorted_key = key[order]
    new_win = torch.ones_like(sorted_key, dtype=torch.bool)
    new_win[1:] = sorted_key[1:] != sorted_key[:-1]
    starts = torch.nonzero(new_win).flatten() * unit
    cu = torch.cat([starts, torch.tensor([n], device=device)]).to(torch.int32)
    return perm, cu


def rotary_frequencies(positions: torch.Tensor, head_dim: int, scheme: str,
                       theta: float = 10000.0) -> torch.Tensor:
    """Rotary angles for every patch.

    Args:
        positions: long ``(N, 3)`` (t, h, w).
        head_dim: attention head width.
        scheme: ``"navit2d"`` or ``"rope3d"`` (see the module docstring).

    Returns:
        float32 ``(N, head_dim // 2)`` angles (duplicated to ``head_dim`` by :func:`apply_rotary`).
    """
    device = positions.device
    pos = positions.to(torch.float32)
    if scheme == "navit2d":
        dim = head_dim // 2
        inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim))
        return torch.cat([pos[:, 1:2] * inv, pos[:, 2:3] * inv], dim=-1)  # (N, head_dim/2)
    if scheme == "rope3d":
        unit = head_dim // 2 // 16
        parts = []
        for axis, n in ((0, 4 * unit), (1, 6 * unit), (2, 6 * unit)):
            inv = 1.0 / (theta ** (torch.arange(n, dtype=torch.float32, device=device) / n))
            parts.append(pos[:, axis:axis + 1] * inv)
        return torch.cat(parts, dim=-1)  # (N, head_dim/2) = [t | h | w]
    raise InvalidArgumentError(f"position scheme={scheme!r} is unknown; allowed: "
                               "['navit2d', 'rope3d']")


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _rotate_interleaved(x: torch.Tensor) -> torch.Tensor:
    even, odd = x[..., ::2], x[..., 1::2]
    return torch.stack((-odd, even), dim=-1).flatten(-2)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                 scheme: str) -> torch.Tensor:
    """Rotate ``x`` ``(N, heads, head_dim)`` by ``cos``/``sin`` ``(N, head_dim)`` (float32).

    Computed in float32 and cast back to ``x.dtype``.
    """
    xf = x.float()
    c, s = cos[:, None, :], sin[:, None, :]  # (N, 1, head_dim)
    rot = _rotate_half(xf) if scheme == "navit2d" else _rotate_interleaved(xf)
    return (xf * c + rot * s).to(x.dtype)


def layout_from_grids(grid_thws: torch.Tensor, hidden_stride: int, segment_mode: str = "frame",
                      frames_per_segment: int = 4
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Positions, frame grids and segments for inputs given only as Ovis ``grid_thws`` rows.

    Each row ``(t, h, w)`` is one image (t = 1) or video (t frames, ``t`` positions 0..t-1),
    packed in merge-block order as the official preprocessing does.

    Args:
        grid_thws: long ``(n_items, 3)``.

    Returns:
        ``(positions (N, 3), frame_grids (N, 2), cu_seqlens (S + 1,) int32)`` on the CPU.

    Example: ``grid_thws = [[1, 2, 2], [2, 2, 4]]`` with stride 2 -> 4 + 16 patches;
    ``cu_seqlens`` is ``[0, 4, 12, 20]`` in "frame" mode (one segment per frame).
    """
    rows = [tuple(int(v) for v in r) for r in grid_thws.detach().to("cpu").tolist()]
    pos, grids, items = [], [], []
    for i, (t, h, w) in enumerate(rows):
        p = block_order_positions(t, h, w, hidden_stride)
        pos.append(p)
        grids.append(torch.tensor([[h, w]], dtype=torch.long).expand(p.shape[0], 2))
        items.append(torch.full((p.shape[0],), i, dtype=torch.long))
    if not pos:
        empty = torch.zeros(0, 3, dtype=torch.long)
        return empty, torch.zeros(0, 2, dtype=torch.long), torch.zeros(1, dtype=torch.int32)
    positions = torch.cat(pos)
    cu = segments_from_positions(positions, torch.cat(items), segment_mode, frames_per_segment)
    return positions, torch.cat(grids), cu
