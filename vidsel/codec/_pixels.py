"""Stage 5 of :func:`~vidsel.codec.select_patches`: token layout and pixels.

Token crops come from the decode pass (the pool's crops and the anchor frames kept during the
pass) or, in reference mode, from :class:`vidsel.io.VideoReader`; both convert through the one
:class:`vidsel.io.FrameConverter`, so at equal interpolation they are byte-identical.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..io import Crop, VideoReader
from ..results import PatchConfig
from ._pool import Tokens

__all__ = ["decoded_pixels", "reader_pixels", "token_crops", "token_pixels_to_patches",
           "tokens_to_patches"]


def token_crops(rgb: np.ndarray, cfg: PatchConfig, tokens: np.ndarray | None = None
                ) -> np.ndarray:
    """(k, m*p, m*p, 3) crops of the ``tokens`` (k,) (row-major token indices; default every
    token, k = Th*Tw) of an (H, W, 3) frame: a new array holding only those crops."""
    th, tw = cfg.token_grid
    u = cfg.patch_size * cfg.merge
    grid = rgb.reshape(th, u, tw, u, 3)  # a view
    if tokens is None:
        return grid.transpose(0, 2, 1, 3, 4).reshape(th * tw, u, u, 3)
    r, c = np.divmod(np.asarray(tokens, np.intp), tw)
    return grid[r, :, c]  # (k, u, u, 3): the advanced axes come first


def tokens_to_patches(frames: np.ndarray, tok_rc: np.ndarray, cfg: PatchConfig) -> np.ndarray:
    """(N, 3) patch positions of tokens (frames (k,), tok_rc (k, 2)) in token-major order."""
    m = cfg.merge
    dy, dx = np.divmod(np.arange(m * m), m)  # (m*m,) offsets inside a token, row-major
    rows = tok_rc[:, 0:1] * m + dy[None, :]  # (k, m*m)
    cols = tok_rc[:, 1:2] * m + dx[None, :]
    f = np.broadcast_to(frames[:, None], rows.shape)
    return np.stack([f, rows, cols], axis=-1).reshape(-1, 3).astype(np.int64)


def token_pixels_to_patches(tok_pix: np.ndarray, cfg: PatchConfig) -> np.ndarray:
    """(k, m*p, m*p, 3) token crops -> (k*m*m, p, p, 3) patches, row-major inside a token."""
    m, p = cfg.merge, cfg.patch_size
    k = len(tok_pix)
    return (tok_pix.reshape(k, m, p, m, p, 3).transpose(0, 1, 3, 2, 4, 5)
            .reshape(k * m * m, p, p, 3))


def reader_pixels(path: str, frames: np.ndarray, tok_rc: np.ndarray, cfg: PatchConfig,
                  stream: int | None, interpolation: str, chunk: int = 32,
                  crop: Crop = (0, 0, 0, 0)) -> np.ndarray:
    """Token crops (k, m*p, m*p, 3) of (frames[k], tok_rc[k]) read through VideoReader; with a
    ``crop`` (top, bottom, left, right), of the cropped picture resized to ``frame_size``
    (``VideoReader(path, crop=crop)``: the same swscale call as the decode pass)."""
    u = cfg.patch_size * cfg.merge
    out = np.zeros((len(frames), u, u, 3), np.uint8)
    uniq = np.unique(frames)
    opts: dict[str, Any] = {"crop": tuple(crop)} if any(crop) else {}
    with VideoReader(path, stream=stream, interpolation=interpolation, **opts) as reader:
        for s in range(0, len(uniq), chunk):
            part = uniq[s:s + chunk]
            imgs = reader.get_frames(part, size=cfg.frame_size)  # (c, H, W, 3)
            for j, f in enumerate(part):
                sel = np.flatnonzero(frames == f)
                r, c = tok_rc[sel, 0], tok_rc[sel, 1]
                out[sel] = token_crops(imgs[j], cfg, r * cfg.token_grid[1] + c)
    return out


def decoded_pixels(tokens: Tokens, pool_pixels: np.ndarray | None, anchor_frames: np.ndarray,
                   stored: dict[int, np.ndarray], cfg: PatchConfig) -> np.ndarray:
    """(K*m*m, p, p, 3) patches of the selected tokens from the decode pass: motion tokens from
    the pool's crops, anchor tokens from the anchor frames' RGB kept during the pass."""
    u = cfg.patch_size * cfg.merge
    tok_pix = np.empty((len(tokens), u, u, 3), np.uint8)
    mot = ~tokens.is_anchor
    if pool_pixels is not None and mot.any():
        tok_pix[mot] = pool_pixels[tokens.source[mot]]
    for k, f in enumerate(anchor_frames.tolist()):
        rows = np.flatnonzero(tokens.source == -1 - k)
        tok_pix[rows] = token_crops(stored[f], cfg, tokens.tokens[rows])
    return token_pixels_to_patches(tok_pix, cfg)
