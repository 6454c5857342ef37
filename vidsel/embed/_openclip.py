"""open_clip embedders (``open_clip:`` specs; needs the ``clip`` extra)."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidArgumentError, ModelNotAvailableError
from ..optional import require
from ._access import (
    PICKLE_SUFFIXES,
    cached_hub_file,
    download_failure,
    downloads_allowed,
    pickle_allowed,
    pickle_refusal,
    sentence,
)
from ._base import Embedder, import_torch
from ._text import PromptCleaner, head_tail_chunks

__all__ = ["OpenClipEmbedder"]

logger = logging.getLogger(__name__)

_OPENCLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENCLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def import_open_clip() -> Any:
    return require("open_clip", "the open_clip embedder", extra="clip",
                   needs="open_clip_torch")


class OpenClipEmbedder(Embedder):
    """Any open_clip model: a registry name with a pretrained tag or a local checkpoint.

    Frames are preprocessed as tensors (resize the short side to the model's image size with
    antialiased bicubic interpolation, centre crop, normalise), which batches on the model's
    device; open_clip's PIL transform does the same up to interpolation rounding.
    """

    kind = "open_clip"

    def __init__(self, model: Any, tokenizer: Any, *, model_name: str, pretrained: str | None,
                 fingerprint: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model.to(device=self.device, dtype=self.torch_dtype).eval()
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.pretrained = pretrained
        self._fingerprint = fingerprint
        cfg = dict(getattr(model.visual, "preprocess_cfg", {}) or {})
        size = cfg.get("size", getattr(model.visual, "image_size", 224))
        self.image_size: tuple[int, int] = (
            (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        )
        self.mean = tuple(cfg.get("mean", _OPENCLIP_MEAN))
        self.std = tuple(cfg.get("std", _OPENCLIP_STD))
        self.resize_mode = str(cfg.get("resize_mode", "shortest"))
        self.interpolation = str(cfg.get("interpolation", "bicubic"))
        torch = import_torch("the open_clip embedder")
        with torch.inference_mode():
            probe = model.encode_text(self._tokens("a").to(self.device))
        self._dim = int(probe.shape[-1])

    @classmethod
    def from_pretrained(
        cls, model_name: str = "ViT-B-32", pretrained: str | None = None, *,
        random_init: bool = False, device: str = "cpu", dtype: str = "auto",
        batch_size: int = 32, max_text_tokens: int = 64,
        prompt_cleaner: PromptCleaner | None = None, allow_download: bool | None = None,
        allow_pickle: bool | None = None,
    ) -> OpenClipEmbedder:
        """Build ``model_name`` with weights from ``pretrained``.

        Args:
            model_name: an open_clip model name (``open_clip.list_models()``).
            pretrained: a pretrained tag (``open_clip.list_pretrained_tags_by_model(name)``),
                resolved from the local caches (the Hugging Face cache, ``~/.cache/clip``)
                unless downloads are allowed, or a local checkpoint file.
            random_init: build with random weights (tests and throughput benchmarks only; the
                spec ``open_clip:NAME@random``); without it, ``pretrained=None`` is an error,
                never silently random weights.
            allow_download: download a tag's weights that are not cached (None: only when
                ``VIDSEL_ALLOW_DOWNLOAD=1``); without it nothing touches the network.
            allow_pickle: load pickle-based checkpoints (``.pt`` / ``.bin`` / ``.pth``; None:
                only when ``VIDSEL_ALLOW_PICKLE=1``); without it only ``.safetensors``.

        Raises:
            MissingDependencyError: open_clip_torch is not installed.
            ModelNotAvailableError: the weights are not local and downloads are not allowed or
                fail, or they are pickle-based and not allowed.
            InvalidArgumentError: unknown model name or tag, or no weights asked for.
        """
        open_clip = import_open_clip()
        if model_name not in open_clip.list_models():
            raise InvalidArgumentError(
                f"model_name={model_name!r} is not an open_clip model; see "
                f"open_clip.list_models() (or register a config with open_clip.add_model_config)"
            )
        if pretrained is None and not random_init:
            raise InvalidArgumentError(
                f"open_clip model {model_name!r} needs weights: use the spec "
                f"'open_clip:{model_name}@<tag or /path/to/open_clip_model.safetensors>' "
                f"(Python: pretrained=...); 'open_clip:{model_name}@random' builds random "
                f"weights, for tests only"
            )
        fingerprint = "random"
        checkpoint: str | None = None
        preprocess: dict[str, Any] = {}
        if pretrained is not None:
            p = Path(pretrained).expanduser()
            if p.is_file():
                pretrained = checkpoint = str(p.resolve())
                fingerprint = _file_fingerprint(p)
            elif pretrained.startswith(("/", "./", "../", "~")) or p.suffix in (
                    ".safetensors", *PICKLE_SUFFIXES):
                raise ModelNotAvailableError(f"no open_clip checkpoint file at {pretrained!r}")
            else:
                checkpoint, preprocess = _tag_checkpoint(
                    open_clip, model_name, pretrained, downloads_allowed(allow_download))
                fingerprint = f"tag={pretrained}"
            if not checkpoint.endswith(".safetensors") and not pickle_allowed(allow_pickle):
                raise ModelNotAvailableError(pickle_refusal(
                    f"open_clip {model_name!r} pretrained={pretrained!r}", checkpoint))
        try:
            model = open_clip.create_model(model_name, pretrained=checkpoint, device="cpu",
                                           force_preprocess_cfg=preprocess or None)
        except (OSError, RuntimeError, ValueError) as e:
            raise ModelNotAvailableError(
                f"cannot load open_clip {model_name!r} pretrained={pretrained!r}: "
                f"{sentence(e)}") from e
        tokenizer = open_clip.get_tokenizer(model_name)
        logger.info("loaded open_clip %s (%s) on %s", model_name, pretrained or "random", device)
        return cls(model, tokenizer, model_name=model_name, pretrained=pretrained,
                   fingerprint=fingerprint, device=device, dtype=dtype, batch_size=batch_size,
                   max_text_tokens=max_text_tokens, prompt_cleaner=prompt_cleaner)

    @property
    def name(self) -> str:
        return f"open_clip:{self.model_name}@{self.pretrained or 'random'}"

    @property
    def dim(self) -> int:
        return self._dim

    def _weights_fingerprint(self) -> str:
        return (f"{self._fingerprint}|{self.image_size}|{self.resize_mode}|{self.interpolation}|"
                f"{self.mean}|{self.std}")

    def _pixels(self, frames: list[Any]) -> Any:
        """(b,) uint8 RGB frames -> (b, 3, h, w) normalised tensor on the device."""
        torch = import_torch("the open_clip embedder")
        F = torch.nn.functional
        arrs = [np.asarray(f.convert("RGB")) if hasattr(f, "convert") else np.asarray(f)
                for f in frames]
        th, tw = self.image_size
        mode = "bilinear" if self.interpolation == "bilinear" else "bicubic"
        out = []
        for a in arrs:  # frames may differ in size
            x = torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
            x = x.permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W)
            h, w = x.shape[-2:]
            if self.resize_mode == "squash":
                x = F.interpolate(x, size=(th, tw), mode=mode, antialias=True, align_corners=False)
            else:  # shortest side to size, then centre crop
                scale = max(th / h, tw / w)
                nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
                x = F.interpolate(x, size=(nh, nw), mode=mode, antialias=True,
                                  align_corners=False)
                top, left = (nh - th) // 2, (nw - tw) // 2
                x = x[..., top : top + th, left : left + tw]
            out.append(x.clamp_(0.0, 1.0))
        px = torch.cat(out)  # (b, 3, th, tw)
        mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
        return ((px - mean) / std).to(self.torch_dtype)

    def _encode_pixels(self, frames: list[Any]) -> Any:
        return self.model.encode_image(self._pixels(frames))

    def _tokens(self, text: str) -> Any:
        """(chunks, context_length) token ids; long text in head/tail chunks, each wrapped in
        start/end tokens (SimpleTokenizer); other tokenizers truncate."""
        torch = import_torch("the open_clip embedder")
        tok = self.tokenizer
        ctx = int(getattr(tok, "context_length", 77) or 77)
        if not all(hasattr(tok, a) for a in ("encode", "sot_token_id", "eot_token_id")):
            return tok([text])
        content = tok.encode(text)
        room = max(1, min(self.max_text_tokens, ctx) - 2)
        chunks = head_tail_chunks(content, room)
        ids = torch.zeros((len(chunks), ctx), dtype=torch.long)
        for i, c in enumerate(chunks):
            row = [tok.sot_token_id, *c, tok.eot_token_id]
            ids[i, : len(row)] = torch.tensor(row)
        return ids

    def _encode_text(self, text: str) -> Any:
        return self.model.encode_text(self._tokens(text).to(self.device))


def _tag_checkpoint(open_clip: Any, model_name: str, tag: str,
                    download: bool) -> tuple[str, dict[str, Any]]:
    """The local checkpoint file of an open_clip pretrained tag and the tag's preprocessing.

    Without ``download`` only the caches open_clip downloads to are looked in (the Hugging Face
    cache, safetensors first, and ``~/.cache/clip`` for URL weights); nothing is fetched.

    Raises:
        InvalidArgumentError: ``tag`` is not a pretrained tag of ``model_name``.
        ModelNotAvailableError: not cached and ``download`` is False, or the download failed.
    """
    from open_clip.pretrained import download_pretrained
    from open_clip.transform import merge_preprocess_dict

    cfg = open_clip.get_pretrained_cfg(model_name, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        raise InvalidArgumentError(
            f"pretrained={tag!r} is neither a checkpoint file nor a pretrained tag of open_clip "
            f"{model_name!r}; tags: {', '.join(map(repr, tags)) or 'none'}")
    preprocess = merge_preprocess_dict({}, cfg)
    what = f"open_clip weights {model_name}@{tag}"
    use_it = f"'open_clip:{model_name}@/path/to/open_clip_model.safetensors'"
    hub = str(cfg.get("hf_hub", ""))
    url = str(cfg.get("url", ""))
    get_it = (f"`hf download {os.path.split(hub)[0]} --local-dir DIR`" if hub
              else f"`curl -LO {url}`")
    if cfg.get("file"):
        return str(cfg["file"]), preprocess
    if download:
        try:
            target = download_pretrained(cfg)
        except (OSError, RuntimeError, ValueError) as e:  # no network, unknown file, ...
            raise ModelNotAvailableError(download_failure(
                what, allowed=True, err=e, get_it=get_it, use_it=use_it)) from e
        if target:
            return str(target), preprocess
    else:
        cached = _cached_tag_files(hub, url)
        if cached:
            return cached[0], preprocess
    raise ModelNotAvailableError(download_failure(what, allowed=download, get_it=get_it,
                                                  use_it=use_it))


def _cached_tag_files(hub: str, url: str) -> list[str]:
    """Already-downloaded files of a tag (no network): safetensors first."""
    found: list[str] = []
    if hub:
        repo, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        names = [filename]
        if filename.endswith((".bin", ".pth")):
            names.insert(0, filename[:-4] + ".safetensors")
        if filename == "open_clip_pytorch_model.bin":
            names.insert(0, "open_clip_model.safetensors")
        found += [hit for n in names if (hit := cached_hub_file(repo, n, None))]
    if url:
        target = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        if target.is_file():
            found.append(str(target))
    return found


def _file_fingerprint(p: Path) -> str:
    """Size plus a hash of the first and last MiB of a checkpoint file."""
    h = hashlib.sha256(str(p.stat().st_size).encode())
    with p.open("rb") as f:
        h.update(f.read(1 << 20))
        if p.stat().st_size > 2 << 20:
            f.seek(-(1 << 20), 2)
            h.update(f.read())
    return h.hexdigest()[:16]

